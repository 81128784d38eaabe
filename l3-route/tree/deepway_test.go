package tree

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// A node entering an epoch whose neighbour on its shortest way up already
// has a place, deeper than that way is long (a node above it took a longer
// way: its own shortest was broken), takes a place under it at once: nothing
// nearer comes from that side. It was refused until the node's depth limit
// grew a level a claim period, and each level down the subtree waited as
// long again: after a tenth of a 1,000-node mesh died, the renewed tree 0
// still had 34 nodes without a place 7 claim periods into its term, and
// the names stored in it waited for them.
func TestDeeperWayTakenAtOnce(t *testing.T) {
	m := newMesh(t, 7, lineEdges(7), Config{Trees: 1}, 3)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	sh := m.checkTree(0, m.alive())
	// A node three levels down or more, and its parent.
	x := -1
	for i := range m.nodes {
		if sh.depth[i] >= 3 {
			x = i
			break
		}
	}
	if x < 0 {
		t.Fatal("no node three levels down")
	}
	y := sh.parent[x]
	py := mustPos(m, y)
	// x comes into the epoch afresh, the claim having told it its way up
	// is one hop shorter than y's place makes it (y is one level deeper
	// than its way: as if a node above y had taken a longer one).
	tr := m.trees[x].trees[0]
	tr.cur = nil
	tr.pending = nil
	tr.tried = map[peer.Endpoint]time.Time{}
	tr.full = nil
	tr.epochAt = m.clk.Now()
	tr.listenEnd = m.clk.Now()
	tr.upHops = uint8(py.Depth)
	tr.heard = map[peer.Endpoint]uint8{m.ep(y): uint8(py.Depth - 1)}
	tr.acquire()
	if tr.pending == nil || *tr.pending != m.ep(y) {
		t.Fatalf("node %d asked %v for a place, want its neighbour on the way up %d (depth %d, its way %d hops)", x, tr.pending, y, py.Depth, py.Depth-1)
	}
	// And it gets it within a few round trips, a level below y.
	if _, ok := m.runUntil(m.trees[x].Config().ClaimPeriod/2, func() bool { _, ok := m.trees[x].Current(0); return ok }); !ok {
		t.Fatalf("node %d has no place half a claim period on", x)
	}
	if p := mustPos(m, x); p.Depth != py.Depth+1 {
		t.Fatalf("node %d placed at depth %d, want %d (under %d)", x, p.Depth, py.Depth+1, y)
	}
}
