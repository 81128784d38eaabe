package route

import (
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// deadEndLine is a converged line of four nodes in two trees, and for
// node 0 a destination "node 3" whose tree-0 address leads nowhere from
// node 0 (a child of its own it does not have: one hop away by tree
// distance, so tree 0 comes first) and whose tree-1 address is node 3's.
func deadEndLine(t *testing.T, seed uint64) (me *hmesh, dead TreeAddr, d Destination) {
	me = newHMesh(t, tree.Config{Trees: 2}, seed)
	for range 4 {
		me.add(hspec{})
	}
	me.edges(line(4))
	me.start()
	me.mustConverge(10 * time.Minute)
	ghost, err := me.pos(0, 0).Addr.Child(9)
	if err != nil {
		t.Fatal(err)
	}
	p1 := me.pos(3, 1)
	dead = TreeAddr{Tree: 0, TreeState: me.pos(0, 0).TreeState, Addr: ghost}
	return me, dead, Destination{ID: me.nodes[3].n.ID(), Addrs: []TreeAddr{dead, {Tree: 1, TreeState: p1.TreeState, Addr: p1.Addr}}}
}

// No route at the origin itself, in the tree it chose first, is not the
// end: the next tree is tried, as when a relay reports no route.
func TestOriginNoRouteTriesNextTree(t *testing.T) {
	me, _, d := deadEndLine(t, 61)
	res := me.nodes[0].rt.SendTo(d, testApp, []byte("the other tree"), nil)
	if err := me.wait(res, 2*time.Minute); err != nil {
		t.Fatalf("send with one dead-end tree and one good one: %v", err)
	}
	if len(me.nodes[3].got) == 0 {
		t.Fatal("not delivered")
	}
}

// A trace leaves in a tree where it can: the closest tree leads nowhere
// from here, the next reaches the destination, and the trace completes
// there; with no tree leading anywhere it fails at once with no route.
func TestTraceSkipsDeadEndTree(t *testing.T) {
	me, dead, d := deadEndLine(t, 62)
	var hops []TraceHop
	var terr error
	done := false
	me.nodes[0].rt.Trace(d, nil, func(h []TraceHop, err error) { hops, terr, done = h, err, true })
	if !me.run(time.Minute, func() bool { return done }) || terr != nil || len(hops) != 4 || !hops[3].Final {
		t.Fatalf("trace: %v %+v", terr, hops)
	}
	done = false
	me.nodes[0].rt.Trace(Destination{Addrs: []TreeAddr{dead}}, nil, func(h []TraceHop, err error) { terr, done = err, true })
	if !done || !errors.Is(terr, node.ErrNoRoute) {
		t.Fatalf("trace toward a dead end: done %v, %v", done, terr)
	}
}
