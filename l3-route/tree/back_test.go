package tree

import (
	"slices"
	"testing"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// TestBackToLeftTerm: the split h27clust2 traced, small. The live root r
// (the best score) goes unheard by its neighbours (its frames lost on the
// way) for three claim periods; they bury it, g (the second best) stands,
// and g's next term pushes r's term out of every node's two epochs: each
// has left it for good. Then r is heard again, its claims newer than any
// the nodes had of its term. Each must take r's term back at the place it
// kept there (back [ours]): the same address as before the burial (two
// addresses in one epoch could route in circles), every node following r
// in the term it never left, and no term started. On the old code they
// dropped r's claims as of an epoch left for good and followed g until
// r's next term (never, here: no renewals).
func TestBackToLeftTerm(t *testing.T) {
	type mesh4 struct {
		edges func(r, g, a, b int) [][2]int
		nbrs  func(r, g, a, b int) []int // the neighbours that go deaf to r
		split func(r, g, a, b int) []int // the nodes that bury it
	}
	shapes := []mesh4{
		// r with two neighbours in the triangle g, a, b.
		{func(r, g, a, b int) [][2]int { return [][2]int{{g, a}, {a, b}, {b, g}, {r, g}, {r, a}} },
			func(r, g, a, b int) []int { return []int{g, a} },
			func(r, g, a, b int) []int { return []int{g, a, b} }},
		// a line b–r–g–a: the hop r–g, as the bridge into a town, cuts
		// g and a off while b still follows r.
		{func(r, g, a, b int) [][2]int { return [][2]int{{b, r}, {r, g}, {g, a}} },
			func(r, g, a, b int) []int { return []int{g} },
			func(r, g, a, b int) []int { return []int{g, a} }},
	}
	for _, sh := range shapes {
		for _, seed := range []uint64{1, 2, 3} {
			t.Run("", func(t *testing.T) {
				ids := byScore(4, seed)
				r, g, a, b := ids[0], ids[1], ids[2], ids[3]
				nbrs := sh.nbrs(r, g, a, b)
				m := newMesh(t, 4, sh.edges(r, g, a, b), Config{Trees: 1, EpochPeriods: -1}, seed)
				cp := m.trees[0].Config().ClaimPeriod
				m.start()
				m.waitConverged(10 * cp)
				if m.rootNode(0) != r {
					t.Fatalf("the root is %d, not the best, %d", m.rootNode(0), r)
				}
				before := m.checkTree(0, m.alive())
				places := map[int]addr.Long{}
				for i := range m.trees {
					p, _ := m.trees[i].Current(0)
					places[i] = p.Addr
				}
				term := m.trees[r].trees[0].curTerm()
				buryAndRenew(t, m, r, g, nbrs)
				for _, i := range sh.split(r, g, a, b) {
					if !slices.Contains(m.trees[i].trees[0].left, term) {
						t.Fatalf("node %d has not left r's term for good: the test does not reach the rule", i)
					}
				}
				terms := m.trees[r].Stats().Terms
				hearAgain(m, r, nbrs)
				m.waitConverged(4 * cp)
				after := m.checkTree(0, m.alive())
				if after.root != r || after.ts != before.ts {
					t.Fatalf("the tree follows %d in epoch %d, not r (%d) in its term's %d", after.root, after.ts, r, before.ts)
				}
				for i := range m.trees {
					if p, _ := m.trees[i].Current(0); !p.Addr.Equal(places[i]) {
						t.Errorf("node %d is back at %v, not at its place %v", i, p.Addr, places[i])
					}
				}
				m.clk.RunFor(5 * cp)
				if d := m.trees[r].Stats().Terms - terms; d > 0 {
					t.Errorf("r started %d terms", d)
				}
				if !m.allConverged(m.alive()) || m.rootNode(0) != r {
					t.Errorf("the tree did not stay with r")
				}
			})
		}
	}
}

// TestBackNeedsNewerClaim: what takes a node back into an epoch it left
// for good (back [ours]) is a claim of that term newer than the newest it
// had there, signed by its root: one no newer (a late echo, a replay of
// what it had) does not.
func TestBackNeedsNewerClaim(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		ids := byScore(4, seed)
		r, g, a, b := ids[0], ids[1], ids[2], ids[3]
		m := newMesh(t, 4, [][2]int{{g, a}, {a, b}, {b, g}, {r, g}, {r, a}}, Config{Trees: 1, EpochPeriods: -1}, seed)
		cp := m.trees[0].Config().ClaimPeriod
		m.start()
		m.waitConverged(10 * cp)
		term := m.trees[r].trees[0].curTerm()
		buryAndRenew(t, m, r, g, []int{g, a})
		tr := m.trees[a].trees[0]
		i := slices.IndexFunc(tr.kept, func(s *slot) bool { return s.term == term })
		if i < 0 {
			t.Fatalf("seed %d: a kept no place in r's term", seed)
		}
		newest := tr.kept[i].newest
		if newest == 0 {
			t.Fatalf("seed %d: a kept no time of r's newest claim", seed)
		}
		rs := m.nodes[r].Signer()
		for _, c := range []struct {
			at   int64
			want bool
		}{{newest - 1, false}, {newest, false}, {newest + 1, true}} {
			claim := cert.NewClaim(rs, 0, term.Start, c.at)
			if got := tr.back(&claim); got != c.want {
				t.Errorf("seed %d: a claim of r's term stamped %d ns after a's newest: back %v, want %v", seed, c.at-newest, got, c.want)
			}
		}
		// Through onClaim: a claim of r's term stamped now takes a back, at
		// its place there.
		kept := tr.kept[i].pos.Addr
		now := cert.NewClaim(rs, 0, term.Start, m.clk.Now().UnixNano())
		tr.onClaim(now, nil)
		if rk, alive := m.trees[a].Root(0); !alive || m.index(rk) != r || tr.curTerm() != term {
			t.Fatalf("seed %d: a fresh claim of r's term did not take a back", seed)
		}
		if p, ok := m.trees[a].Current(0); !ok || !p.Addr.Equal(kept) {
			t.Errorf("seed %d: a is back at %v (placed %v), not at its kept place %v", seed, p.Addr, ok, kept)
		}
	}
}

// TestClaimQueryAcrossRenewal: a node its root's new term's flood missed
// asks its parent for the root's newest claim under the old term's
// tree_state byte (watch, pullFor); the parent, in the new term with the
// old one as its previous epoch, answers with the new term's claim
// (renewedFrom [ours]), and the asker takes the term at once. On the line
// x–r–b–c–d (r the best score), b–c is cut while r renews and for a claim
// period after (b takes the new term, c stays in the old); then it is
// mended and c asks. On the old code the answer never came: c waited for
// the next flood (a claim period), or, where floods are lost on that hop,
// buried the live root.
func TestClaimQueryAcrossRenewal(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run("", func(t *testing.T) {
			ids := byScore(5, seed)
			r, b, c, x, d := ids[0], ids[1], ids[2], ids[3], ids[4]
			m := newMesh(t, 5, [][2]int{{x, r}, {r, b}, {b, c}, {c, d}}, Config{Trees: 1, EpochPeriods: -1}, seed)
			cp := m.trees[0].Config().ClaimPeriod
			m.start()
			m.waitConverged(10 * cp)
			if m.rootNode(0) != r {
				t.Fatalf("the root is %d, not %d", m.rootNode(0), r)
			}
			old := m.trees[c].trees[0].ts
			m.disconnect(b, c)
			if !m.trees[r].Renew(0) {
				t.Fatalf("r did not renew")
			}
			m.clk.RunFor(cp + cp/10) // b takes the new term and the next claim
			tb, tc := m.trees[b].trees[0], m.trees[c].trees[0]
			if tb.ts == old || tb.cur == nil || tb.prev == nil || tb.prev.pos.TreeState != old {
				t.Fatalf("b is not in the new term with the old as its previous epoch")
			}
			if tc.ts != old {
				t.Fatalf("c left the old epoch while cut off")
			}
			m.connect(b, c)
			m.trees[c].sendTo(m.ep(b), appendQuery(nil, 0, old, wantClaim))
			m.clk.RunFor(cp / 10) // well before the next flood
			if tc.ts != tb.ts {
				t.Fatalf("c is still in epoch %d, b's is %d: the query across the renewal was not answered", tc.ts, tb.ts)
			}
			m.waitConverged(4 * cp)
			m.checkTree(0, m.alive())
		})
	}
}
