package node

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// lateDone is a link that reports each datagram done late after it left:
// a radio whose TxDone comes after its MAC ack, which it retried while
// the neighbour, having heard the first copy, answered already.
type lateDone struct {
	link.Link
	clk  clock.Clock
	late time.Duration
}

func (l *lateDone) Attach(d link.Dispatcher) { l.Link.Attach(lateDispatcher{d, l}) }

type lateDispatcher struct {
	link.Dispatcher
	l *lateDone
}

func (d lateDispatcher) TxDone(tag link.Tag, err error) {
	d.l.clk.AfterFunc(d.l.late, func() { d.Dispatcher.TxDone(tag, err) })
}

// An answer to a sequence's ask that comes before the link reported the
// ask sent is no round trip. Taken as one, it was measured from the zero
// time: on a clock of this century the sample overflowed the estimate
// into a large negative one, every later ask then timed out at the
// timeout's floor, and the sender probed where it should have waited
// (clustered 1,000 seed 2: 505 of the 3,906 failed hops logged had such
// an estimate toward their next hop, 484 of them on the chains' relays,
// h38chain).
func TestAnswerBeforeTxDoneIsNoRoundTrip(t *testing.T) {
	net := simnet.New()
	net.Clock = clock.NewVirtual(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	me := &mesh{t: t, net: net, clk: net.Clock, m: net.AddMedium("m", phys.ESPNOW(), 3)}
	for i := range 2 {
		me.add(sim.Position{}, Config{Identity: identity.FromSeed([32]byte{byte(i + 1), 3}), Seed: uint64(30 + i)}, func(c *Config) {
			if i == 0 {
				c.Links = []link.Link{&lateDone{Link: c.Links[0], clk: me.clk, late: 20 * time.Millisecond}}
			}
		})
	}
	me.connect(0, 1, sim.Loss{})
	me.start()
	me.discover()
	a, b := me.nodes[0], me.nodes[1]
	ep := a.endpointAt(a.Peer(b.ID()).Endpoints[0])
	retrans := a.stats.Retransmits
	for i := range 20 {
		if err := me.wait(a.Send(b.ID(), testApp, blob(600, byte(i)), nil), time.Minute); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if ep.rttOK && (ep.srtt < 0 || ep.srtt > time.Second) {
			t.Fatalf("after send %d the feedback delay estimate toward b is %v (deviation %v)", i, ep.srtt, ep.rttvar)
		}
	}
	if len(me.got[1]) != 20 {
		t.Fatalf("b got %d of 20", len(me.got[1]))
	}
	if n := a.stats.Retransmits - retrans; n != 0 {
		t.Errorf("%d packets sent again on a lossless link", n)
	}
}
