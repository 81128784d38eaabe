package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// dropper wraps a link so that frames the test picks never reach the node.
type dropper struct {
	link.Link
	drop func(p *packet.Packet) bool
}

type dropDispatcher struct {
	d    link.Dispatcher
	drop func(p *packet.Packet) bool
}

func (w *dropper) Attach(d link.Dispatcher) {
	if d == nil {
		w.Link.Attach(nil)
		return
	}
	w.Link.Attach(&dropDispatcher{d: d, drop: w.drop})
}

func (w *dropper) Airtime(n int) time.Duration { return link.Airtime(w.Link, n) }

func (dd *dropDispatcher) TxDone(tag link.Tag, err error) { dd.d.TxDone(tag, err) }
func (dd *dropDispatcher) DeliverFrame(f link.Frame) {
	var p packet.Packet
	if p.UnmarshalBinary(f.Data) == nil && dd.drop(&p) {
		return
	}
	dd.d.DeliverFrame(f)
}

// A sequence abandoned while its receiver holds part of it keeps its
// seq_id until the receiver has let that part go: a new sequence of the
// same size under that id would complete the old reassembly (chunks of two
// Packages, refused for their hash). On a line of 100 nodes the busiest
// relays' ids came round every 17 s, and such mixed Packages failed
// deliveries.
func TestSeqIDNotReusedWhileReceiverHoldsPart(t *testing.T) {
	var stuck *packet.Packet // the first sequence's id, once seen
	cutFirst := true
	me := newMesh(t, 2, phys.ESPNOW(), sim.Loss{}, 9, func(i int, c *Config) {
		c.BeaconPeriod = time.Hour
		if i != 1 {
			return
		}
		l := c.Links[0]
		c.Links[0] = &dropper{Link: l, drop: func(p *packet.Packet) bool {
			if !p.SchemaOf().Sequenced() || p.Flags.Encoded() == packet.EncAck {
				return false
			}
			if stuck == nil {
				q := *p
				stuck = &q
			}
			// The first sequence never gets its chunk 0 across.
			return cutFirst && p.SeqID == stuck.SeqID && p.PacketID == 0
		}}
	})
	me.start()
	me.discover()
	a, b := me.nodes[0], me.nodes[1]
	const size = 300 // two chunks on ESP-NOW
	first := a.Send(b.ID(), testApp, blob(size, 200), nil)
	if err := me.wait(first, 2*time.Minute); err == nil {
		t.Fatal("the first sequence went through without its chunk 0")
	}
	if stuck == nil || stuck.SeqSize != 1 {
		t.Fatalf("first sequence not seen as two chunks: %+v", stuck)
	}
	if b.rxSeqs == 0 {
		t.Fatal("the receiver no longer holds the abandoned sequence's chunk 1")
	}
	cutFirst = false
	// Enough sequences of the same size that the id comes round, while
	// the receiver still holds the old chunk 1.
	for i := range 300 {
		data := blob(size, byte(i))
		r := a.Send(b.ID(), testApp, data, nil)
		if err := me.wait(r, time.Minute); err != nil {
			t.Fatalf("send %d (at %v after the first gave up): %v", i, me.clk.Now(), err)
		}
		got := me.got[1]
		if len(got) == 0 || !bytes.Equal(got[len(got)-1].Blob, data) {
			t.Fatalf("send %d: not delivered intact", i)
		}
	}
}

// A node out of seq_ids retries in a second, once per neighbour: every
// kick that found no id used to add a retry timer of its own, which
// lived as long as the ids stayed taken (a gateway's clock held millions).
func TestNoSeqIDRetriesOnce(t *testing.T) {
	me := newMesh(t, 2, phys.ESPNOW(), sim.Loss{}, 5, nil)
	me.start()
	me.discover()
	a, b := me.nodes[0], me.nodes[1]
	for i := range a.seqLive {
		a.seqLive[i] = true
	}
	me.clk.RunFor(time.Second)
	base := me.clk.Pending()
	var rs []*Result
	for i := range 10 {
		rs = append(rs, a.Send(b.ID(), testApp, blob(300, byte(i)), nil))
	}
	me.clk.RunFor(10 * time.Second)
	if p := me.clk.Pending(); p > base+4 {
		t.Fatalf("%d timers pending with no seq_id free, %d before the sends", p, base)
	}
	for i := range a.seqLive {
		a.seqLive[i] = false
	}
	for _, r := range rs {
		if err := me.wait(r, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
}
