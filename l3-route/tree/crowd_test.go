package tree

import (
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// TestSilentNeighbourQueriedLess: a neighbour that never tells its place
// (here one whose trees never started: a leaf, or a node with no place
// yet) is asked again after two claim periods, then every four, not
// every two. Around a rooftop gateway two hundred
// nodes asked it, placeless, in each of six trees, and the queries and
// their MAC retries kept its air full (it heard too little to get a
// place).
func TestSilentNeighbourQueriedLess(t *testing.T) {
	m := newMesh(t, 3, lineEdges(3), Config{Trees: 1, EpochPeriods: -1}, 5)
	m.nodes[2].Start()
	for i := range 2 {
		m.nodes[i].Start()
		m.trees[i].Start()
	}
	cp := m.trees[0].Config().ClaimPeriod
	m.clk.RunFor(5 * beaconPeriod)
	if _, ok := m.trees[1].Current(0); !ok {
		t.Fatal("node 1 has no place")
	}
	from, to := m.radios[1], m.radios[2].Addr().String()
	frames := 0
	m.med.SetAttemptLog(func(a *sim.Attempt) {
		if a.From == from && a.Try == 1 && a.Dst != nil && a.Dst.String() == to {
			frames++
		}
	})
	const periods = 40
	m.clk.RunFor(periods * cp)
	m.med.SetAttemptLog(nil)
	// Every two periods would be 20; every four, 10 or 11.
	if frames > 12 {
		t.Errorf("node 1 sent %d frames to a neighbour with no place over %d claim periods (want at most 12)", frames, periods)
	}
	t.Logf("%d frames to the silent neighbour over %d claim periods", frames, periods)
}

// TestQueriesPaced: a node missing the places of many neighbours asks a
// few of them at each watch, not all at once: their answers, from nodes
// that cannot hear each other, would collide at it (a gateway asking two
// hundred heard almost nothing else), and it learns them all within a few
// watches.
func TestQueriesPaced(t *testing.T) {
	const spokes = 40
	m := newMesh(t, spokes+1, starEdges(spokes), Config{Trees: 1, EpochPeriods: -1}, 3)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	cp := m.trees[0].Config().ClaimPeriod
	m.clk.RunFor(2 * cp) // queries wait a claim period into the epoch
	tr := m.trees[0].trees[0]
	ts := tr.ts
	tr.nbrs.del(ts) // as if every notification had been lost
	tr.queried = nil
	tr.queryMissing()
	if n := len(tr.queried); n > maxQueries {
		t.Errorf("%d neighbours asked at once (want at most %d)", n, maxQueries)
	}
	took, ok := m.runUntil(4*cp, func() bool { return len(m.trees[0].Neighbors(0, ts)) == spokes })
	if !ok {
		t.Fatalf("%d of %d places known again after %v", len(m.trees[0].Neighbors(0, ts)), spokes, took)
	}
	t.Logf("all %d places known again after %v", spokes, took)
}

// TestBusyNodeAsksAgainForAPlace: a node whose air is busy asks fewer
// neighbours at a watch, but a neighbour whose place it missed is asked
// again as soon as in quiet air (two claim periods), not BusyPace times
// later (five minutes: at 2,000 nodes, seed 3, one busy node that missed
// one neighbour's place held the trees' convergence back 229 s).
func TestBusyNodeAsksAgainForAPlace(t *testing.T) {
	const leaves = 8
	m := newMesh(t, leaves+1, starEdges(leaves), Config{Trees: 1, EpochPeriods: -1}, 3)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	cp := m.trees[0].Config().ClaimPeriod
	for i := 1; i <= leaves; i++ {
		m.net.Connect("espnow", i, 0, sim.Loss{P: 0.7}, sim.Loss{}) // the hub misses most of what they send
	}
	hub := m.trees[0]
	if _, ok := m.runUntil(10*beaconPeriod, func() bool { return hub.b.AirBusy() }); !ok {
		t.Fatal("the hub never said it is busy")
	}
	tr := hub.trees[0]
	ts := tr.ts
	ep := m.ep(1)
	tr.dropNeighborIn(ep, ts) // its place lost, and our query for it too
	if tr.queried == nil {
		tr.queried = map[peer.Endpoint]queryState{}
	}
	tr.queried[ep] = queryState{at: m.clk.Now()}
	took, ok := m.runUntil(3*cp, func() bool { return tr.placedIn(ep, ts) })
	if !hub.b.AirBusy() {
		t.Fatal("the hub's air cleared: the test shows nothing")
	}
	if !ok {
		t.Fatalf("the busy hub did not know its neighbour's place again %v after losing it (want within %v)", took, 3*cp)
	}
	t.Logf("known again after %v", took)
}
