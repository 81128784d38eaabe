package tree

import (
	"testing"
	"time"
)

// TestFormation: from a cold start every node gets a verifiable place in
// every tree, under one root (the best score: the election's rule), in a
// breadth-first tree (depth = hop distance from the root), within ten
// beacon periods.
func TestFormation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		edges [][2]int
		trees int
		slack int // how much deeper than breadth-first a node may be
	}{
		{"line8", 8, lineEdges(8), 3, 0},
		{"star1+8", 9, starEdges(8), 3, 0},
		// A grid is the hard case: every node has two or more neighbours at
		// the same distance from the root, and claims passed on by hidden
		// pairs of them collide; a node that heard the nearer one too late
		// keeps a longer way for the epoch. The cost of waiting longer to
		// be sure (more claim relays, slower formation and re-convergence
		// at scale) was measured and not taken: two levels are allowed,
		// and on average the tree must stay within a third of a level of
		// breadth-first.
		{"grid5x5", 25, gridEdges(5, 5), 2, 2},
		// On the random graph one level is allowed: a node whose shortest
		// way runs through a neighbour it has not yet discovered (both
		// beacon bursts lost at the cold start; the node layer greets only
		// unicast strangers) cannot use it, nor one whose claim relays
		// collided twice. (Over 30 seeds, with the flood fix of the
		// report's patch 2: 4 runs have a node at +1, none deeper;
		// without it, 17 runs, up to +2, and grids up to +6.)
		{"random40", 40, randomEdges(40, 22, 7), 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMesh(t, tc.n, tc.edges, Config{Trees: tc.trees}, 3)
			m.start()
			all := m.alive()
			// Converged: every node placed under the best root of each
			// tree. (A worse candidate may win the first race, by the
			// jitter of the election delays: the best one stands a claim
			// period later, and the tree forms again under it.)
			took, ok := m.runUntil(10*beaconPeriod, func() bool {
				if !m.allConverged(all) {
					return false
				}
				for k := range tc.trees {
					if r, _ := m.trees[0].Root(k); m.index(r) != m.bestScore(k, all) {
						return false
					}
				}
				return true
			})
			if !ok {
				m.dump()
				t.Fatalf("not converged under the best roots in %v", took)
			}
			t.Logf("converged in %v of mesh time", took)
			for k := range tc.trees {
				sh := m.checkTree(k, all)
				if want := m.bestScore(k, all); sh.root != want {
					t.Errorf("tree %d: root %d, best score is %d's", k, sh.root, want)
				}
				hops := m.hopsFrom(sh.root)
				maxDepth, deeper, excess := 0, 0, 0
				for _, i := range all {
					maxDepth = max(maxDepth, sh.depth[i])
					excess += sh.depth[i] - hops[i]
					if d := sh.depth[i]; d < hops[i] || d > hops[i]+tc.slack {
						t.Errorf("tree %d: node %d at depth %d, %d hops from the root %d", k, i, d, hops[i], sh.root)
					} else if d > hops[i] {
						deeper++
					}
				}
				t.Logf("tree %d: root %d, depth %d, %d nodes deeper than breadth-first, %.2f levels on average", k, sh.root, maxDepth, deeper, float64(excess)/float64(len(all)))
				if avg := float64(excess) / float64(len(all)); avg > 0.34 {
					t.Errorf("tree %d: %.2f levels deeper than breadth-first on average", k, avg)
				}
			}
			// The trees are formed: nothing moves while the root lives
			// (addresses are immutable within an epoch, and EpochPeriods
			// is 45 claims).
			before := m.positions()
			m.clk.RunFor(2 * time.Minute)
			if after := m.positions(); !equalStrings(before, after) {
				t.Errorf("positions moved in a settled mesh:\n%v\n%v", before, after)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
