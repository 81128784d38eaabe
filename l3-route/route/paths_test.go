package route

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// rankedIDs returns n identities: the first has the best (lowest) score in
// tree 0, so it wins the election; the others follow in node_id order, so
// that a test can choose which node wins a tie broken by node_id.
func rankedIDs(n int, seed uint64) []identity.Identity {
	ids := make([]identity.Identity, n)
	for i := range ids {
		ids[i] = hid(i, seed)
	}
	best := 0
	for i := range ids {
		if cert.Less(cert.Score(ids[i].Public(), 0), cert.Score(ids[best].Public(), 0)) {
			best = i
		}
	}
	ids[0], ids[best] = ids[best], ids[0]
	rest := ids[1:]
	slices.SortFunc(rest, func(a, b identity.Identity) int {
		x, y := a.ID(), b.ID()
		return bytes.Compare(x[:], y[:])
	})
	return ids
}

// greedyHood is the path a path header takes on one tree (path.go,
// hood.go), computed from the graph and the nodes' addresses alone: a
// node's potential is the least of (its distance, its distance) and, for
// each neighbour w, (w's distance + 1, w's distance); from each node the
// neighbour of least potential below both the node's and the bound it
// came with (which that neighbour's potential becomes), ties to the
// lowest node_id.
func greedyHood(adj [][]int, pos []addr.Long, ids []identity.NodeID, m addr.Metric, src, dst int) ([]int, bool) {
	to := pos[dst]
	type pot struct{ least, sum uint32 }
	less := func(a, b pot) bool { return a.least < b.least || a.least == b.least && a.sum < b.sum }
	potOf := func(v int) pot {
		k := m.RouteKey(pos[v], to)
		p := pot{k, k}
		for _, w := range adj[v] {
			kw := m.RouteKey(pos[w], to)
			if via := (pot{kw + 1, kw}); less(via, p) {
				p = via
			}
		}
		return p
	}
	path := []int{src}
	bound := pot{math.MaxUint32, math.MaxUint32}
	for cur := src; ; {
		if pos[cur].Equal(to) {
			return path, cur == dst
		}
		if len(path) > len(pos) {
			return path, false // cannot happen: the bound falls at every hop
		}
		q := potOf(cur)
		if less(bound, q) {
			q = bound
		}
		best := -1
		var bestPot pot
		for _, j := range adj[cur] {
			p := potOf(j)
			if !less(p, q) {
				continue
			}
			if best < 0 || less(p, bestPot) || p == bestPot && bytes.Compare(ids[j][:], ids[best][:]) < 0 {
				best, bestPot = j, p
			}
		}
		if best < 0 {
			return path, false
		}
		cur, bound = best, bestPot
		path = append(path, cur)
	}
}

// TestGreedyPathsBothMetrics checks every routing decision against paths
// computed by hand, in both metrics, on a fixed graph whose tree is
// breadth-first from a chosen root: every ordered pair of nodes, mode 0 and
// mode 1. The graph holds the one shape where the metrics part ways on a
// breadth-first tree (at S, a neighbour X one level up and a neighbour Y one
// level down, in the destination's branch one level deeper than X: equal
// tree distances, ties to the lower node_id X, while the common-prefix
// distance prefers Y).
func TestGreedyPathsBothMetrics(t *testing.T) {
	const n = 9
	// Roles: 0 root; 1, 2 depth 1; 3, 4 under 1 and 5 under 2 (depth 2);
	// 6, 7 under 4 and 8 under 5 (depth 3). Chords: 3–6 (S=3, X=1, Y=6,
	// D=7), 3–5 and 7–8.
	edges := [][2]int{{0, 1}, {0, 2}, {1, 3}, {1, 4}, {2, 5}, {4, 6}, {4, 7}, {5, 8}, {3, 6}, {3, 5}, {7, 8}}
	// Identities: the root's wins the election; of the rest, node_ids
	// ascend in the order 1, 4, 2, 3, 5, 6, 7, 8, so that X=1 < Y=6 (the
	// tie at S goes to X) and 4 < 3 (6 prefers 4 as its parent when both
	// are equally near the root).
	ranked := rankedIDs(n, 11)
	order := []int{0, 1, 4, 2, 3, 5, 6, 7, 8}
	ids := make([]identity.Identity, n)
	for r, i := range order {
		ids[i] = ranked[r]
	}
	// The breadth-first shape checked below is this test's precondition,
	// not the property under test (the paths are): the tree forms breadth
	// first only when no relay of the root's first claim is lost, and the
	// hidden relays 5 and 7 collide at 8 in some runs (seeds 11 and 16
	// among 11..16 with the trees' own random source; it happened as well
	// when they drew from the node's, at seed 17). The seed is one where
	// it forms as meant.
	me := newHMesh(t, tree.Config{Trees: 1}, 12)
	for i := range n {
		me.add(hspec{id: &ids[i]})
	}
	me.edges(edges)
	me.start()
	took := me.mustConverge(10 * time.Minute)
	t.Logf("converged in %v", took)
	// Every node tells its neighbours where its own are (hood.go) within
	// a claim period.
	cp := me.nodes[0].tr.Config().ClaimPeriod
	me.run(cp, func() bool { return false })
	for i := range n {
		r := me.nodes[i].rt
		for _, nb := range r.t.Neighbors(0, me.pos(i, 0).TreeState) {
			h := r.hood.heard[nb.Via]
			if h == nil || !h.has[0] || h.ts[0] != me.pos(i, 0).TreeState || len(h.lists[0]) != len(me.neighbours(me.index(nb.ID))) {
				t.Errorf("node %d holds no full list of its neighbour %d's neighbours: %+v", i, me.index(nb.ID), h)
			}
		}
	}

	adj := make([][]int, n)
	for _, e := range edges {
		adj[e[0]] = append(adj[e[0]], e[1])
		adj[e[1]] = append(adj[e[1]], e[0])
	}
	pos := make([]addr.Long, n)
	nid := make([]identity.NodeID, n)
	for i := range n {
		pos[i] = me.pos(i, 0).Addr
		nid[i] = me.nodes[i].n.ID()
	}
	// The tree is the one meant: node 0 is the root, every depth is the
	// hop count from it (breadth first), every parent a neighbour.
	if p := me.pos(0, 0); !p.Root || p.Depth != 0 {
		t.Fatalf("node 0 is not the root: %+v", p)
	}
	hopsFromRoot := bfs(adj, 0)
	for i := 1; i < n; i++ {
		if d := pos[i].Depth(); d != hopsFromRoot[i] {
			t.Errorf("node %d at depth %d (%v), %d hops from the root", i, d, pos[i], hopsFromRoot[i])
		}
		pa, _ := pos[i].Parent()
		if !slices.ContainsFunc(adj[i], func(j int) bool { return pos[j].Equal(pa) }) {
			t.Errorf("node %d (%v): parent %v is no neighbour", i, pos[i], pa)
		}
	}
	// What the routers route on: each node's verified neighbours are its
	// graph neighbours at their true addresses.
	for i := range n {
		ts := me.pos(i, 0).TreeState
		var got []string
		for _, nb := range me.nodes[i].tr.Neighbors(0, ts) {
			got = append(got, fmt.Sprintf("%d@%v", me.index(nb.ID), nb.Addr))
		}
		var want []string
		for _, j := range adj[i] {
			want = append(want, fmt.Sprintf("%d@%v", j, pos[j]))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("node %d routes on neighbours %v, want %v", i, got, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for i := range n {
		t.Logf("node %d: %v", i, pos[i])
	}

	want := map[bool]map[[2]int][]int{false: {}, true: {}}
	for _, mode := range []bool{false, true} {
		for s := range n {
			for d := range n {
				if s == d {
					continue
				}
				p, ok := greedyHood(adj, pos, nid, metricOf(mode), s, d)
				if !ok {
					t.Fatalf("mode %v: greedy does not reach %d from %d (%v)", mode, d, s, p)
				}
				want[mode][[2]int{s, d}] = p
				blob := fmt.Appendf(nil, "mode %v %d->%d", mode, s, d)
				res := me.nodes[s].rt.SendTo(me.dest(d), testApp, blob, &Options{Mode: mode})
				if err := me.wait(res, time.Minute); err != nil {
					t.Fatalf("mode %v %d->%d: %v", mode, s, d, err)
				}
				got, delivered := me.path(pkgHash(blob))
				if !delivered || !slices.Equal(got, p) {
					t.Errorf("mode %v %d->%d: routed %v (delivered %v), greedy by hand %v", mode, s, d, got, delivered, p)
				}
				if last := me.nodes[d].got; len(last) == 0 || !bytes.Equal(last[len(last)-1].Blob, blob) || last[len(last)-1].Route.Mode != mode {
					t.Errorf("mode %v %d->%d: not delivered to the application", mode, s, d)
				}
			}
		}
	}
	// The metrics part ways where the graph was built for it.
	var differ []string
	for pair, p0 := range want[false] {
		if p1 := want[true][pair]; !slices.Equal(p0, p1) {
			differ = append(differ, fmt.Sprintf("%d->%d: tree %v, cpl %v", pair[0], pair[1], p0, p1))
		}
	}
	slices.Sort(differ)
	t.Logf("pairs where the metrics differ: %v", differ)
	// The construction needs 6 under 4 (not under 3, its other neighbour
	// one level up: equally near the root, 4 wins by node_id).
	if pa, _ := pos[6].Parent(); !pa.Equal(pos[4]) {
		t.Fatalf("node 6 (%v) is not under node 4 (%v): the tree is not the one this test was built for (parent ties go to the lower node_id, placed first)", pos[6], pos[4])
	}
	// Seeing a hop ahead, 3 finds 4 (the destination 7's parent) behind
	// both X=1 and Y=6: the tie goes to X in either metric. Where they
	// still part ways: from 4 toward 2, the common-prefix distance takes
	// the chord 7–8 into 2's branch (8, under 5 under 2, shares its
	// prefix), the tree distance the way over the root.
	if p0, p1 := want[false][[2]int{3, 7}], want[true][[2]int{3, 7}]; !slices.Equal(p0, []int{3, 1, 4, 7}) || !slices.Equal(p1, []int{3, 1, 4, 7}) {
		t.Errorf("3->7: tree %v, cpl %v; want 3 1 4 7 in both", p0, p1)
	}
	if p0, p1 := want[false][[2]int{4, 2}], want[true][[2]int{4, 2}]; !slices.Equal(p0, []int{4, 1, 0, 2}) || !slices.Equal(p1, []int{4, 7, 8, 5, 2}) {
		t.Errorf("4->2: tree %v, cpl %v; want 4 1 0 2 and 4 7 8 5 2", p0, p1)
	}
	// And the hop ahead finds what plain greedy routing does not: from 4,
	// 8 is two hops away over the chord 7–8 (greedy by tree distance
	// alone went up over the root: 4 1 0 2 5 8).
	if p := want[false][[2]int{4, 8}]; !slices.Equal(p, []int{4, 7, 8}) {
		t.Errorf("4->8: %v, want 4 7 8", p)
	}
}

// bfs returns the hop count from src to every node.
func bfs(adj [][]int, src int) []int {
	d := make([]int, len(adj))
	for i := range d {
		d[i] = -1
	}
	d[src] = 0
	q := []int{src}
	for len(q) > 0 {
		c := q[0]
		q = q[1:]
		for _, j := range adj[c] {
			if d[j] < 0 {
				d[j] = d[c] + 1
				q = append(q, j)
			}
		}
	}
	return d
}
