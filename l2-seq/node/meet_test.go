package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/hop"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// lossyLink is a link whose received frames pass a filter first: how a
// test loses chosen frames of one direction (the medium loses at random).
type lossyLink struct {
	link.Link
	drop func(f link.Frame) bool
}

func (l *lossyLink) Attach(d link.Dispatcher) {
	if d == nil {
		l.Link.Attach(nil)
		return
	}
	l.Link.Attach(&frameFilter{Dispatcher: d, l: l})
}

func (l *lossyLink) Airtime(n int) time.Duration { return link.Airtime(l.Link, n) }

type frameFilter struct {
	link.Dispatcher
	l *lossyLink
}

func (d *frameFilter) DeliverFrame(f link.Frame) {
	if d.l.drop != nil && d.l.drop(f) {
		return
	}
	d.Dispatcher.DeliverFrame(f)
}

// frameApp returns the application a one-packet frame is for (its hop
// trailer, if any, aside), and the proof message type for the
// neighbour-proof application; ok false for anything else.
func frameApp(data []byte) (app packet.AppID, typ byte, ok bool) {
	if hop.Marked(data) {
		data = hop.Packet(data)
	}
	var p packet.Packet
	if p.UnmarshalBinary(data) != nil || p.SchemaOf().Sequenced() || len(p.Body) < packet.AppIDSize {
		return app, 0, false
	}
	app = packet.AppID(p.Body[:packet.AppIDSize])
	if app == proof.AppID {
		var pkg packet.Package
		var m proof.Message
		if pkg.UnmarshalBinary(p.Body) == nil && m.UnmarshalBinary(pkg.Blob) == nil {
			typ = m.Type
		}
	}
	return app, typ, true
}

// meetMesh is two of our nodes, a (0) and b (1), on one ESP-NOW medium
// with nothing lost, but what drop (given each frame a hears from b)
// takes out at a.
func meetMesh(t *testing.T, hopAuth bool, drop func(f link.Frame) bool) *mesh {
	me := emptyMesh(t, phys.ESPNOW(), 7)
	var bAddr link.Addr
	for i := range 2 {
		c := Config{Identity: identity.FromSeed([32]byte{byte(i + 1), 7}), Seed: uint64(i), HopAuth: hopAuth}
		me.add(sim.Position{}, c, func(c *Config) {
			if i == 0 {
				c.Links[0] = &lossyLink{Link: c.Links[0], drop: func(f link.Frame) bool {
					return f.Src.String() == bAddr.String() && drop(f)
				}}
			}
		})
	}
	bAddr = me.nodes[1].links[0].info.Addr
	me.connect(0, 1, sim.Loss{})
	return me
}

// fullPeers reports whether a and b hold each other as full, proven peers.
func fullPeers(a, b *Node) bool {
	p, q := a.Peer(b.ID()), b.Peer(a.ID())
	return p != nil && p.Proven && p.Full && q != nil && q.Proven && q.Full
}

// TestStrangerChallengeRetried: every beacon b sends a is lost (its
// bursts, its answers to a's beacons), and so are b's first three proofs,
// all the tries of a's first challenge. b knows a from a's beacons and
// challenges it; a proves itself and challenges b back, to an address it
// has no peer entry for. That challenge was never sent again: a stayed
// without b for as long as b's beacons were lost (here, for ever). With
// rounds for a challenge to an address with no peer entry, the two are
// full peers within 30 s of mesh time (half a beacon period), and a sends
// b a bounded number of challenges.
func TestStrangerChallengeRetried(t *testing.T) {
	for _, hopAuth := range []bool{false, true} {
		t.Run(fmt.Sprintf("hop=%v", hopAuth), func(t *testing.T) {
			proofs := 0
			me := meetMesh(t, hopAuth, func(f link.Frame) bool {
				app, typ, ok := frameApp(f.Data)
				switch {
				case !ok:
					return false
				case app == beacon.AppID:
					return true
				case app == proof.AppID && typ == proof.TypeProof:
					proofs++
					return proofs <= challengeTries
				}
				return false
			})
			me.start()
			a, b := me.nodes[0], me.nodes[1]
			start := me.clk.Now()
			me.clk.RunWhile(start.Add(30*time.Second), func() bool { return !fullPeers(a, b) })
			if !fullPeers(a, b) {
				t.Fatalf("not full peers after 30 s: a's view of b %+v, b's of a %+v; a's counters %+v",
					a.Peer(b.ID()), b.Peer(a.ID()), a.Stats().Trust)
			}
			t.Logf("full peers after %v; a sent %d challenges", me.clk.Now().Sub(start), a.Stats().Trust.ChallengesSent)
			if proofs <= challengeTries {
				t.Fatalf("only %d proofs from b reached a's link: the loss did not play", proofs)
			}
			// Bounded: a's first challenge's three tries, and three
			// rounds at most.
			if n := a.Stats().Trust.ChallengesSent; n > 6 {
				t.Fatalf("a sent b %d challenges, more than 6", n)
			}
			// b's challenge and proofs say who b is: a greeted it not
			// (greeted, b would have answered with a beacon, which
			// costs air while a mesh forms).
			if ep := a.eps[epOf(a, b)]; ep == nil || !ep.lastGreet.IsZero() {
				t.Fatal("a greeted b, which challenged it")
			}
			// Both ways usable: a sends to b, and b to a.
			if err := me.wait(a.Send(b.ID(), testApp, []byte("a to b"), nil), time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := me.wait(b.Send(a.ID(), testApp, []byte("b to a"), nil), time.Minute); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGreetingAnswered: a and b are full peers; then b's broadcasts stop
// reaching a (a busy node's air loses them) and a, hearing nothing more
// from b, forgets it, while b, hearing a's beacons, still holds a proven.
// A frame of b's to a makes a greet b (a unicast beacon), and b answered
// a greeting only under the rules for beacons (not within eight periods
// of its last answer to a): the pair stayed apart. Answered now, a knows
// b and has proven it within 5 s of b's frame.
func TestGreetingAnswered(t *testing.T) {
	for _, hopAuth := range []bool{false, true} {
		t.Run(fmt.Sprintf("hop=%v", hopAuth), func(t *testing.T) {
			lose := false
			me := meetMesh(t, hopAuth, func(f link.Frame) bool { return lose && f.Broadcast })
			me.start()
			a, b := me.nodes[0], me.nodes[1]
			me.clk.RunWhile(me.clk.Now().Add(time.Minute), func() bool { return !fullPeers(a, b) })
			if !fullPeers(a, b) {
				t.Fatal("not full peers after a minute without loss")
			}
			lose = true
			ok := me.clk.RunWhile(me.clk.Now().Add(10*time.Minute), func() bool { return a.Peer(b.ID()) != nil })
			if !ok {
				t.Fatal("a did not forget b in 10 minutes")
			}
			if p := b.Peer(a.ID()); p == nil || !p.Proven {
				t.Fatalf("b forgot a too: %+v", p)
			}
			sent := me.clk.Now()
			r := b.Send(a.ID(), testApp, []byte("b to a"), nil)
			me.clk.RunWhile(sent.Add(5*time.Second), func() bool { return !fullPeers(a, b) })
			if !fullPeers(a, b) {
				t.Fatalf("a does not know b 5 s after b's frame: %+v", a.Peer(b.ID()))
			}
			t.Logf("full peers again after %v", me.clk.Now().Sub(sent))
			if err := me.wait(r, time.Minute); err != nil {
				t.Fatal(err)
			}
			// Greetings answered, not a storm: a greets at most once a
			// beacon period, and b answers at most twice one.
			resp := b.Stats().PacketsSent
			me.clk.RunFor(5 * time.Minute)
			if d := b.Stats().PacketsSent - resp; d > 5*BeaconBurst+20 {
				t.Fatalf("b sent %d frames in 5 quiet minutes", d)
			}
		})
	}
}
