package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// Throttle flags from a peer raise its counter, flags without lower it, and
// while it is above zero frames to it are spaced counter × unit apart.
func TestThrottleSpacing(t *testing.T) {
	rp := newRefPeer(t)
	// A full peer (lists capabilities) that does not sleep.
	m := beacon.Message{Op: beacon.OpResponse, NodeID: rp.id, Apps: []packet.AppID{beacon.AppID, beacon.CapabilitiesID}}
	b, _ := m.AppendTo(nil)
	rp.send(packet.Packet{Schema: 0, PacketID: 1, Body: packet.NewPackage(beacon.AppID, b).AppendTo(nil)})
	p := rp.n.Peer(rp.id)
	if p == nil || !p.Full {
		t.Fatal("peer not known as full")
	}
	// Three packets with the throttle flag (NIAs will do).
	for i := range 3 {
		rp.send(packet.Packet{Schema: 0, PacketID: uint16(10 + i), Flags: packet.FlagThrottle.WithEncoded(packet.EncNIA)})
	}
	if p.Throttle != 3 {
		t.Fatalf("throttle counter %d, want 3", p.Throttle)
	}
	unit := rp.n.links[0].unit
	for k := range 3 {
		rp.n.Send(rp.id, testApp, blob(50, byte(k)), nil)
	}
	// Acks for the singles come from the test: answer each as it is sent.
	var times []time.Time
	var counters []int
	rp.clk.RunWhile(rp.clk.Now().Add(time.Minute), func() bool {
		for _, s := range rp.fl.take() {
			d := s.decoded()
			if d.Flags.Ask() {
				times = append(times, s.handed)
				counters = append(counters, p.Throttle)
				var a packet.Packet
				packet.AckFor(&d, &a)
				a.Flags |= packet.FlagThrottle // still congested: the counter stays up
				rp.send(a)
			}
		}
		return len(times) < 3
	})
	if len(times) != 3 {
		t.Fatalf("%d sends went out", len(times))
	}
	for i := 1; i < 3; i++ {
		gap := times[i].Sub(times[i-1])
		if min := time.Duration(counters[i-1]) * unit; gap < min {
			t.Fatalf("frames %v apart with counter %d (unit %v)", gap, counters[i-1], unit)
		}
	}
	// Packets without the flag count it back down, not below zero.
	for i := range 10 {
		rp.send(packet.Packet{Schema: 0, PacketID: uint16(20 + i), Flags: packet.Flags(0).WithEncoded(packet.EncNIA)})
	}
	if p.Throttle != 0 {
		t.Fatalf("counter %d after unflagged packets", p.Throttle)
	}
}

// A congested node says so: its frames carry the throttle flag. Here its
// transmit backlog is past its threshold (two Packages of its own queued
// for a, with Backlog 1) while a sends to it.
func TestCongestedNodeSetsThrottle(t *testing.T) {
	me := newMesh(t, 2, phys.ESPNOW(), sim.Loss{}, 31, func(i int, c *Config) {
		c.BeaconPeriod = time.Hour
		if i == 1 {
			c.Budgets.Backlog = 1
		}
	})
	me.start()
	me.discover()
	a, b := me.nodes[0], me.nodes[1]
	sawThrottle := false
	peerB := a.Peer(b.ID())
	r := a.Send(b.ID(), testApp, blob(20000, 1), nil)
	rb1, rb2 := b.Send(a.ID(), testApp, blob(20000, 2), nil), b.Send(a.ID(), testApp, blob(20000, 3), nil)
	me.clk.RunWhile(me.clk.Now().Add(time.Minute), func() bool {
		if peerB.Throttle > 0 {
			sawThrottle = true
		}
		return !r.Finished() || !rb1.Finished() || !rb2.Finished()
	})
	for _, x := range []*Result{r, rb1, rb2} {
		if err := x.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if !sawThrottle {
		t.Fatal("the congested node never set the throttle flag")
	}
}

// flooder is a misbehaving radio: it starts bogus sequences as fast as its
// radio allows, claiming the largest sizes, and never slows down.
type flooder struct {
	r     *sim.Radio
	dst   link.Addr
	seq   uint8
	idx   uint16
	count int
}

func (f *flooder) TxDone(link.Tag, error)  { f.next() }
func (f *flooder) DeliverFrame(link.Frame) {}
func (f *flooder) next() {
	// Every frame a chunk of another sequence, each claiming 200 packets
	// (48 kB, within the per-peer budget), none ever finished.
	p := packet.Packet{Schema: 2, SeqID: f.seq, SeqSize: 199, PacketID: f.idx % 199, Body: bytes.Repeat([]byte{0xee}, 243)}
	f.seq++
	if f.seq == 0 {
		f.idx++
	}
	b, _ := p.AppendSealed(nil)
	if f.r.Send(f.dst, b, 0) == nil {
		f.count++
	}
}

// A neighbour that floods and ignores throttling cannot starve others: the
// receiver's memory stays within its budget and a well-behaved sender's
// transfer still completes.
func TestFlooderCannotStarveOthers(t *testing.T) {
	net := simnet.New()
	clk := net.Clock
	net.AddMedium("espnow", phys.ESPNOW(), 41)
	for range 3 {
		net.AddStation(sim.Position{}, "espnow")
	}
	ra, rb, rf := net.Radio(0, "espnow"), net.Radio(1, "espnow"), net.Radio(2, "espnow")
	net.Connect("espnow", 0, 1, sim.Loss{}, sim.Loss{})
	net.Connect("espnow", 2, 1, sim.Loss{}, sim.Loss{})
	net.Connect("espnow", 0, 2, sim.Loss{}, sim.Loss{})
	bud := Budgets{RxTotal: 256 << 10, RxPerPeer: 128 << 10}
	a, _ := New(Config{Clock: clk, Links: []link.Link{ra}, Seed: 1, Identity: identity.FromSeed([32]byte{1})})
	b, _ := New(Config{Clock: clk, Links: []link.Link{rb}, Seed: 2, Identity: identity.FromSeed([32]byte{2}), Budgets: bud})
	var got [][]byte
	b.Register(testApp, func(msg Message) { got = append(got, msg.Blob) })
	a.Start()
	b.Start()
	clk.RunWhile(clk.Now().Add(10*time.Minute), func() bool { return a.Peer(b.ID()) == nil })
	f := &flooder{r: rf, dst: rb.Addr()}
	rf.Attach(f)
	f.next()
	f.next()
	clk.RunFor(time.Second)
	data := blob(30000, 9)
	r := a.Send(b.ID(), testApp, data, nil)
	peak := 0
	clk.RunWhile(clk.Now().Add(5*time.Minute), func() bool {
		peak = max(peak, b.RxBytes())
		return !r.Finished()
	})
	if err := r.Err(); err != nil {
		t.Logf("a %+v", a.Stats())
		t.Logf("b %+v", b.Stats())
		t.Logf("radios: a %+v b %+v f %+v", ra.Counters(), rb.Counters(), rf.Counters())
		t.Fatalf("well-behaved sender failed under a flood: %v (flood frames %d)", err, f.count)
	}
	if len(got) != 1 || !bytes.Equal(got[0], data) {
		t.Fatal("not delivered")
	}
	if peak > bud.RxTotal || b.Stats().PeakRxBytes > bud.RxTotal {
		t.Fatalf("receiver memory peaked at %d, budget %d", peak, bud.RxTotal)
	}
	if b.Stats().Drops[DropBudget] == 0 {
		t.Fatal("the flood was never refused")
	}
	t.Logf("flood: %d frames; receiver peak %d bytes (budget %d); budget drops %d", f.count, b.Stats().PeakRxBytes, bud.RxTotal, b.Stats().Drops[DropBudget])
}
