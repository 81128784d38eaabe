package tree

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// A node a claim period into an epoch whose neighbour on its shortest way
// up has a place, deeper than that way is long (a node above it took a
// longer way: its own shortest was broken), takes a place under it at once:
// nothing nearer comes from that side. It was refused until the node's
// depth limit grew a level a claim period, and each level of such excess
// made every node below wait a period more: after a tenth of a 1,000-node
// mesh died, the renewed tree 0 still had 34 nodes without a place 7 claim
// periods into its term, and the names stored in it waited for them.
func TestDeeperWayTakenAtOnce(t *testing.T) {
	m := newMesh(t, 9, lineEdges(9), Config{Trees: 1}, 3)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	sh := m.checkTree(0, m.alive())
	// A node four levels down or more, and its parent.
	x := -1
	for i := range m.nodes {
		if sh.depth[i] >= 4 {
			x = i
			break
		}
	}
	if x < 0 {
		t.Fatal("no node four levels down")
	}
	y := sh.parent[x]
	py := mustPos(m, y)
	// x has been in the epoch a claim period without a place (its depth
	// limit one level past its way), the claims having told it its way up
	// is two hops shorter than y's place makes it (y two levels deeper
	// than its way: as if a node above y had taken a longer one).
	tr := m.trees[x].trees[0]
	tr.cur = nil
	tr.pending = nil
	tr.tried = map[peer.Endpoint]time.Time{}
	tr.full = nil
	period := m.trees[x].Config().ClaimPeriod
	tr.epochAt = m.clk.Now().Add(-period)
	tr.listenEnd = m.clk.Now()
	tr.upHops = uint8(py.Depth - 1)
	tr.heard = map[peer.Endpoint]uint8{m.ep(y): uint8(py.Depth - 2)}
	tr.acquire()
	if tr.pending == nil || *tr.pending != m.ep(y) {
		t.Fatalf("node %d asked %v for a place, want its neighbour on the way up %d (depth %d, its way %d hops)", x, tr.pending, y, py.Depth, py.Depth-2)
	}
	// And it gets it within a few round trips, a level below y.
	if _, ok := m.runUntil(period/2, func() bool { _, ok := m.trees[x].Current(0); return ok }); !ok {
		t.Fatalf("node %d has no place half a claim period on", x)
	}
	if p := mustPos(m, x); p.Depth != py.Depth+1 {
		t.Fatalf("node %d placed at depth %d, want %d (under %d)", x, p.Depth, py.Depth+1, y)
	}
}
