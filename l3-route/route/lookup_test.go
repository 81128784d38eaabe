package route

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// lineMesh is a converged line of n nodes with registered names.
func lineMesh(t *testing.T, n int, trees int, seed uint64) *hmesh {
	me := newHMesh(t, tree.Config{Trees: trees}, seed)
	for range n {
		me.add(hspec{})
	}
	me.edges(line(n))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	return me
}

// TestLookupThenCache: a name several hops away is found by lookup, the
// next send to it takes the cache, and a name nobody registered fails with
// ErrUnknownNode within the lookup's patience.
func TestLookupThenCache(t *testing.T) {
	me := lineMesh(t, 6, 2, 31)
	src, dst := me.nodes[0], me.nodes[5]
	// The destination's record lives somewhere in the mesh (not only at
	// the destination itself, or the lookup would be trivial).
	homes := 0
	for i, hn := range me.nodes {
		if i != 5 && hn.rt.HasRecord(dst.n.ID()) {
			homes++
		}
	}
	if homes == 0 {
		t.Fatal("nobody stores node 5's record")
	}

	before := src.rt.Stats()
	res := src.rt.Send(dst.n.ID(), testApp, []byte("first, by lookup"), nil)
	if err := me.wait(res, 2*time.Minute); err != nil {
		t.Fatalf("first send: %v", err)
	}
	mid := src.rt.Stats()
	if mid.Lookups != before.Lookups+1 || mid.LookupHits != before.LookupHits {
		t.Fatalf("first send: lookups %d->%d, hits %d->%d; want one lookup, no hit", before.Lookups, mid.Lookups, before.LookupHits, mid.LookupHits)
	}
	res = src.rt.Send(dst.n.ID(), testApp, []byte("second, from the cache"), nil)
	if err := me.wait(res, 2*time.Minute); err != nil {
		t.Fatalf("second send: %v", err)
	}
	after := src.rt.Stats()
	if after.LookupHits != mid.LookupHits+1 || after.Lookups != mid.Lookups {
		t.Fatalf("second send: lookups %d->%d, hits %d->%d; want a cache hit", mid.Lookups, after.Lookups, mid.LookupHits, after.LookupHits)
	}
	if len(dst.got) != 2 || !bytes.Equal(dst.got[0].Blob, []byte("first, by lookup")) || !bytes.Equal(dst.got[1].Blob, []byte("second, from the cache")) {
		t.Fatalf("delivered %d messages", len(dst.got))
	}

	// A node_id nobody has.
	var ghost identity.NodeID
	copy(ghost[:], bytes.Repeat([]byte{0x5e}, len(ghost)))
	start := me.clk.Now()
	var lerr error
	done := false
	src.rt.Lookup(ghost, func(_ Destination, err error) { lerr, done = err, true })
	// The lookup keeps trying for lookupPatience (records of nodes just
	// starting may be on their way); it must give up soon after.
	bound := lookupPatience + 2*lookupTimeout
	if !me.run(bound, func() bool { return done }) {
		t.Fatalf("lookup of an unknown node still running after %v", bound)
	}
	if !errors.Is(lerr, ErrUnknownNode) {
		t.Fatalf("lookup of an unknown node: %v", lerr)
	}
	t.Logf("unknown node given up after %v", me.clk.Now().Sub(start))
	res = src.rt.Send(ghost, testApp, []byte("to no one"), nil)
	if err := me.wait(res, bound); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("send to an unknown node: %v", err)
	}
}

// TestTraceFourHops: a trace toward a node four hops away lists the sender,
// the three relays and the destination in order, each at its address, the
// link each passed the probe on, and only the last one Final.
func TestTraceFourHops(t *testing.T) {
	me := lineMesh(t, 6, 1, 41)
	var hops []TraceHop
	var terr error
	done := false
	me.nodes[1].rt.Trace(me.dest(5), nil, func(h []TraceHop, err error) { hops, terr, done = h, err, true })
	if !me.run(time.Minute, func() bool { return done }) {
		t.Fatal("trace did not finish")
	}
	if terr != nil {
		t.Fatalf("trace: %v (%v)", terr, hops)
	}
	// Every report counts, even if one is missing: each names the node at
	// its hop number.
	if len(hops) != 5 {
		t.Errorf("trace: %d hops, want 5 (the sender, three relays, the destination): %+v", len(hops), hops)
	}
	for i, h := range hops {
		if i > 0 && h.Hop <= hops[i-1].Hop {
			t.Errorf("hops out of order: %+v", hops)
		}
		if h.Hop < 0 || h.Hop > 4 {
			t.Errorf("hop number %d", h.Hop)
			continue
		}
		node := 1 + h.Hop
		if want := me.pos(node, 0).Addr; !h.Addr.Equal(want) {
			t.Errorf("hop %d at %v, node %d is at %v", h.Hop, h.Addr, node, want)
		}
		final := h.Hop == 4
		if h.Final != final {
			t.Errorf("hop %d Final %v", h.Hop, h.Final)
		}
		if want := "espnow"; !final && h.Link != want {
			t.Errorf("hop %d left on %q, want %q", h.Hop, h.Link, want)
		}
		if final && h.Link != "" {
			t.Errorf("the destination names a link: %q", h.Link)
		}
	}
	if len(hops) == 0 || !hops[len(hops)-1].Final {
		t.Errorf("the last hop is not the destination: %+v", hops)
	}
}
