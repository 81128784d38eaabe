package tree

import (
	"slices"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

// TestLostFloodsPulled: on a line whose every hop loses a third of its
// frames, a claim's flood (broadcasts, never sent again) seldom reaches
// the far end; the nodes it misses pull the claim from their parents by
// hops that are acked, so that no node buries the live root and no new
// term or epoch starts anywhere over many claim periods.
func TestLostFloodsPulled(t *testing.T) {
	const n = 30
	m := newMesh(t, n, lineEdges(n), Config{Trees: 1, EpochPeriods: -1}, 7)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	for i := range n - 1 {
		m.net.Disconnect("espnow", i, i+1)
		m.net.Connect("espnow", i, i+1, sim.Independent(0.3), sim.Independent(0.3))
	}
	var terms uint64
	epochs := make([]uint64, n)
	for i, tr := range m.trees {
		terms += tr.Stats().Terms
		epochs[i] = tr.Stats().Epochs
	}
	cp := m.trees[0].Config().ClaimPeriod
	m.clk.RunFor(30 * cp)
	var after uint64
	for i, tr := range m.trees {
		st := tr.Stats()
		after += st.Terms
		if st.Epochs != epochs[i] {
			t.Errorf("node %d entered %d epochs under a live root", i, st.Epochs-epochs[i])
		}
		if _, alive := tr.Root(0); !alive {
			t.Errorf("node %d buried the live root", i)
		}
	}
	if after != terms {
		t.Errorf("%d terms started under a live root", after-terms)
	}
	if !m.allConverged(m.alive()) {
		m.dump()
		t.Error("the tree came apart")
	}
}

// TestLeafDoesNotPull: a node with one neighbour, without a place and with
// a request out, does not pull a lost flood from that neighbour: it can
// only ask the node whose broadcast it lost, and on a hubs mesh that is
// the gateway, whose crowd's air is what lost it. h29clust's placeless
// pull (e56f486, not merged) had such nodes pull: on hubs 300 six trees
// seed 7, 60 of its 62 placeless pullers were the gateway's one-neighbour
// leaves, and 74 % of their hops failed (docs/routing-notes.md, h29seed7,
// h30pull). A guard for any pull of nodes without a place.
func TestLeafDoesNotPull(t *testing.T) {
	const n = 8
	m := newMesh(t, n, lineEdges(n), Config{Trees: 1, EpochPeriods: -1}, 7)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	r := m.rootNode(0)
	mid, leaf, anchor := n-2, n-1, n-3
	if r >= n/2 {
		mid, leaf, anchor = 1, 0, 2
	}
	a := m.trees[anchor].trees[0]
	a.cur.next = addr.MaxCoord + 1 // full: no new child
	delete(a.cur.children, m.id(mid))
	for _, i := range []int{mid, leaf} {
		tr := m.trees[i].trees[0]
		tr.cur, tr.pending = nil, nil
		tr.changed()
	}
	for _, e := range [][2]int{{anchor, mid}, {mid, leaf}} {
		m.net.Disconnect("espnow", e[0], e[1])
		m.net.Connect("espnow", e[0], e[1], sim.Independent(0.5), sim.Independent(0.5))
	}
	lt := m.trees[leaf].trees[0]
	cp := m.trees[0].Config().ClaimPeriod
	asking := 0
	for range 40 * 8 {
		m.clk.RunFor(cp / 8)
		if lt.cur == nil && lt.pending != nil {
			asking++
		}
		if !lt.pulledAt.IsZero() {
			t.Fatalf("the leaf, with no place and one neighbour, pulled from it at %v", lt.pulledAt)
		}
	}
	if asking == 0 {
		t.Fatal("the leaf never had a request out without a place: the test shows nothing")
	}
}

// TestGatewayPullServedByBroadcast [ours]: a gateway that misses a round
// of the root's claims is pulled by every child of its crowd at once (at
// a round and a half). It has no newer claim to give them, and answered
// each with the one it had (theirs too), then each again, one by one,
// once it had the newer: two claims a child by hops that are acked, on
// the air round a node that had just lost a broadcast to that air. On
// hubs of 300 nodes (six trees, seed 10, at a renewal) such a round grew into ninety
// seconds of pulls, the gateway missing round after round under them,
// and routed probes through it were lost (h41pullstale). It now answers
// a pull only with a claim newer than a round and a quarter, and the
// broadcast that passes the newer claim on serves every child that asked
// for it; a child that misses that too asks again at its next watch.
func TestGatewayPullServedByBroadcast(t *testing.T) {
	const leaves = 24
	for _, seed := range []uint64{1, 2, 3} {
		m, g, kids := certMesh(t, leaves, seed)
		gt := m.trees[g].trees[0]
		// The gateway's one neighbour that is no leaf of it: the only
		// way claims come to it.
		up := -1
		for j, adj := range m.adj[g] {
			if adj && !slices.Contains(kids, j) {
				up = j
			}
		}
		cp := m.trees[0].Config().ClaimPeriod
		epochs := make([]uint64, len(m.trees))
		for i, tr := range m.trees {
			epochs[i] = tr.Stats().Epochs
		}
		a := watchAir(m, g, func() {
			// Just after a claim has come: the next round is lost at the
			// gateway.
			fresh := gt.lastFresh
			if _, ok := m.runUntil(2*cp, func() bool { return gt.lastFresh.After(fresh) }); !ok {
				t.Fatalf("seed %d: no claim came to the gateway", seed)
			}
			// and the gateway's own pulls fail until its children,
			// stale at a round and a half, have all asked it.
			m.disconnect(g, up)
			m.clk.RunFor(cp * 9 / 5)
			m.connect(g, up)
			m.clk.RunFor(3 * cp)
		})
		pulled := a.pulls
		t.Logf("seed %d: %d pulls from %d children, %d claims sent to one child", seed, pulled, len(kids), a.claims)
		if pulled < len(kids)/2 {
			t.Fatalf("seed %d: %d of %d children pulled: not the case under test", seed, pulled, len(kids))
		}
		if a.claims > len(kids)/4 {
			t.Errorf("seed %d: the gateway sent %d claims to one child each (%d children pulled)", seed, a.claims, pulled)
		}
		for i, tr := range m.trees {
			if tr.Stats().Epochs != epochs[i] {
				t.Errorf("seed %d: node %d entered a new epoch under a live root", seed, i)
			}
		}
		if !m.allConverged(m.alive()) {
			m.dump()
			t.Fatalf("seed %d: the tree came apart", seed)
		}
	}
}
