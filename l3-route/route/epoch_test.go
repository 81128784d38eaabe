package route

import (
	"fmt"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// TestEpochChangeMidStream: a stream of sends (one every 200 ms) runs while
// the root starts two new terms (EpochPeriods: 4, a term every 80 s: the
// second change retires the epoch the stream started in, and the addresses
// senders have cached with it). Every
// send completes (after the router's retries, if it needs them), and every
// routing decision, in either epoch, strictly decreased the distance to the
// destination as computed on the true positions of the deciding node and
// the next one in the Package's epoch: no loop is possible.
func TestEpochChangeMidStream(t *testing.T) {
	const n = 9
	// A 3×3 grid: several shortest paths, so greedy has choices.
	var edges [][2]int
	for r := range 3 {
		for c := range 3 {
			i := r*3 + c
			if c < 2 {
				edges = append(edges, [2]int{i, i + 1})
			}
			if r < 2 {
				edges = append(edges, [2]int{i, i + 3})
			}
		}
	}
	me := newHMesh(t, tree.Config{Trees: 1, EpochPeriods: 4}, 81)
	for range n {
		me.add(hspec{})
	}
	me.edges(edges)
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)

	byID := map[identity.NodeID]int{}
	for i, hn := range me.nodes {
		byID[hn.n.ID()] = i
	}
	var checked, bad int
	epochs := map[uint8]int{}
	for i, hn := range me.nodes {
		hn.rt.Observe(func(h Hop) {
			if h.Delivered || h.Proxy {
				return
			}
			checked++
			if err := h.Check(me.router); err != nil {
				bad++
				t.Errorf("node %d: %v", i, err)
			}
			if !h.Error {
				epochs[h.TreeState]++
			}
		})
	}

	// The next term starts EpochPeriods claim periods after this one did.
	root := -1
	for i := range me.nodes {
		if me.pos(i, 0).Root {
			root = i
		}
	}
	cfg := me.nodes[0].tr.Config()
	termAt := time.Unix(0, me.pos(root, 0).Term).Add(time.Duration(cfg.EpochPeriods) * cfg.ClaimPeriod)
	if termAt.Before(me.clk.Now().Add(5 * time.Second)) {
		termAt = termAt.Add(time.Duration(cfg.EpochPeriods) * cfg.ClaimPeriod)
	}
	me.clk.RunUntil(termAt.Add(-5 * time.Second))
	terms := me.nodes[root].tr.Stats().Terms
	oldTS := me.pos(root, 0).TreeState

	// The stream, from the corner to the opposite corner and back.
	var results []*node.Result
	for k := range 5 * 185 {
		src, dst := 0, n-1
		if k%2 == 1 {
			src, dst = dst, src
		}
		blob := fmt.Appendf(nil, "stream %d", k)
		results = append(results, me.nodes[src].rt.Send(me.nodes[dst].n.ID(), testApp, blob, nil))
		me.clk.RunFor(200 * time.Millisecond)
	}
	if !me.run(10*time.Minute, func() bool {
		for _, r := range results {
			if !r.Finished() {
				return false
			}
		}
		return true
	}) {
		t.Fatal("sends still pending after 10 min")
	}
	failed := 0
	for k, r := range results {
		if r.Err() != nil {
			failed++
			t.Errorf("send %d: %v", k, r.Err())
		}
	}
	if got := me.nodes[root].tr.Stats().Terms; got < terms+2 {
		t.Fatalf("%d new terms during the stream, want 2", got-terms)
	}
	newTS := me.pos(root, 0).TreeState
	t.Logf("epochs %d -> ... -> %d; hops per epoch %v; %d decisions checked, %d bad; %d of %d sends failed", oldTS, newTS, epochs, checked, bad, failed, len(results))
	if len(epochs) < 3 || epochs[oldTS] == 0 {
		t.Errorf("the stream did not cross the changes: hops per epoch %v", epochs)
	}
	delivered := len(me.nodes[0].got) + len(me.nodes[n-1].got)
	if delivered < len(results) {
		t.Errorf("%d of %d delivered", delivered, len(results))
	}
}
