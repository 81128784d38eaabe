package tree

import "testing"

// TestRequestRefusedAtOnceStillWatched: when the node refuses a request's
// send at once (too many sends waiting for that neighbour: on a busy
// node's air its queue drains slowly), the node asks the next neighbour,
// and that request must stay watched: asked again, given up if it is not
// answered, and the place found. The timer set for the refused send used
// to replace the next request's, which then had none: at 5,000 nodes busy
// nodes waited 250 to 315 s on a request without one, with placed
// neighbours in reach, until the next term.
func TestRequestRefusedAtOnceStillWatched(t *testing.T) {
	m := newMesh(t, 3, lineEdges(3), Config{Trees: 1, EpochPeriods: -1}, 5)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	cp := m.trees[0].Config().ClaimPeriod
	const x = 2
	pos, _ := m.trees[x].Current(0) // under node 1, its one neighbour
	// A neighbour that passes the claims on as close to the root as node
	// 1 but never answers a request (its node acks the frames).
	r := m.addRogue(1, x)
	r.waitKnown(x)
	tr := m.trees[x].trees[0]
	via := m.ep(1)
	tr.heard[r.ep()] = tr.heard[via]
	// As if x had no place yet, with its queue to node 1 full.
	tr.cur = nil
	for range 64 {
		m.nodes[x].SendTo(via, AppID, make([]byte, 2000), nil)
	}
	tr.acquire()
	if tr.pending == nil || *tr.pending != r.ep() {
		t.Fatalf("node %d did not move on to the next neighbour when its send to node 1 was refused", x)
	}
	took, ok := m.runUntil(3*cp, func() bool { _, placed := m.trees[x].Current(0); return placed })
	if !ok {
		t.Fatalf("node %d still has no place %v after its send was refused (pending on the silent neighbour: %v)", x, took, tr.pending != nil && *tr.pending == r.ep())
	}
	if got, _ := m.trees[x].Current(0); !got.Addr.Equal(pos.Addr) {
		t.Errorf("node %d placed at %v, was at %v (its parent keeps its index)", x, got.Addr, pos.Addr)
	}
	t.Logf("placed again after %v", took)
}
