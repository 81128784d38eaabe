package route

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// TestErrorsTravelBack: failures far away come back to the sender as typed
// errors (PROTOCOL 7), reported by the node where the Package failed.
// A line of six nodes (five hops); node 5 sends with a hop limit of 2.
func TestErrorsTravelBack(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 1}, 21)
	for i := range 6 {
		var c Config
		if i == 5 {
			c.TTL = 2
		}
		me.add(hspec{rcfg: c})
	}
	me.edges(line(6))
	me.start()
	me.mustConverge(10 * time.Minute)
	// Node 5's records may not reach their homes in 2 hops, nor node 5's
	// receipts the nodes whose records it holds more than 2 hops away
	// (with the root at node 2 or 3, not at an end: a leaf is no
	// candidate, node 2's record is homed at node 5).
	me.mustRegister(10*time.Minute, 2, 5)

	t.Run("unknown app", func(t *testing.T) {
		other := packet.NewAppID("test", "nobody registered this", 1)
		before := me.nodes[4].n.Stats().Drops
		res := me.nodes[0].rt.Send(me.nodes[4].n.ID(), other, []byte("anyone there?"), nil)
		err := me.wait(res, 2*time.Minute)
		var re *node.RemoteError
		if !errors.Is(err, node.ErrUnknownApp) || !errors.As(err, &re) {
			t.Fatalf("send to an unregistered app: %v (%T)", err, err)
		}
		if want := longName(me.pos(4, 0).Addr); re.From != want {
			t.Errorf("reported by %q, want the destination %q", re.From, want)
		}
		if after := me.nodes[4].n.Stats().Drops; after == before {
			t.Error("the destination counted no drop")
		}
		if len(me.nodes[4].got) != 0 {
			t.Errorf("delivered to the test app: %v", me.nodes[4].got)
		}
	})

	noRoute := func(t *testing.T, from, end int) {
		t.Helper()
		// A child of node end that does not exist: greedy ends at node
		// end, which has no neighbour nearer to it.
		ghost, err := me.pos(end, 0).Addr.Child(9)
		if err != nil {
			t.Fatal(err)
		}
		d := Destination{Addrs: []TreeAddr{{Tree: 0, TreeState: me.pos(end, 0).TreeState, Addr: ghost}}}
		refused := me.nodes[end].rt.Stats().NoRoute
		res := me.nodes[from].rt.SendTo(d, testApp, fmt.Appendf(nil, "to nowhere from %d", from), nil)
		err = me.wait(res, 5*time.Minute)
		var re *node.RemoteError
		if !errors.Is(err, node.ErrNoRoute) || !errors.As(err, &re) {
			t.Fatalf("send to a missing address: %v (%T)", err, err)
		}
		if want := reporterName(me.pos(end, 0).Addr.Truncate()); re.From != want {
			t.Errorf("reported by %q, want node %d at %q (the end of the greedy path)", re.From, end, want)
		}
		// No route in one tree may be a route in another: the sender tried
		// every attempt it had, and each one reached node end.
		rt := me.nodes[from].rt
		if got, want := me.nodes[end].rt.Stats().NoRoute-refused, uint64(max(rt.cfg.Attempts, rt.t.Count())); got != want {
			t.Errorf("node %d refused %d attempts, want %d", end, got, want)
		}
	}
	t.Run("no route", func(t *testing.T) { noRoute(t, 4, 0) })
	// The error's way back must not depend on the hop limit the reporting
	// node gives its own sends: node 5 (ttl 2) reports to node 0, 5 hops.
	t.Run("no route reported from afar", func(t *testing.T) { noRoute(t, 0, 5) })

	t.Run("hop limit", func(t *testing.T) {
		hl := me.nodes[3].rt.Stats().HopLimit
		res := me.nodes[5].rt.SendTo(me.dest(0), testApp, []byte("too far for ttl 2"), nil)
		err := me.wait(res, 2*time.Minute)
		var re *node.RemoteError
		if !errors.Is(err, node.ErrHopLimit) || !errors.As(err, &re) {
			t.Fatalf("send over 5 hops with ttl 2: %v (%T)", err, err)
		}
		// Node 4 decrements 2 to 1; node 3 may not pass it on.
		if want := longName(me.pos(3, 0).Addr); re.From != want {
			t.Errorf("reported by %q, want node 3 at %q", re.From, want)
		}
		// A relay's report is one node's word (signed.go): the sender
		// tried every attempt it had, and each one stopped at node 3 (an
		// attempt's path header may reach it in more than one tree).
		if got, want := me.nodes[3].rt.Stats().HopLimit-hl, uint64(me.nodes[5].rt.cfg.Attempts); got < want {
			t.Errorf("node 3 counted %d hop limits, want at least %d", got, want)
		}
		if len(me.nodes[0].got) != 0 {
			t.Error("delivered despite the hop limit")
		}
		// Within the limit it goes.
		res = me.nodes[5].rt.SendTo(me.dest(3), testApp, []byte("two hops"), nil)
		if err := me.wait(res, time.Minute); err != nil {
			t.Fatalf("two hops with ttl 2: %v", err)
		}
	})
}

// longName is how an error report names the node at a: "(root)" for the
// root (reporterName).
func longName(a addr.Long) string {
	if a.Depth() == 0 {
		return "(root)"
	}
	return a.String()
}
