package tree

import (
	"testing"
	"time"
)

// TestRenewalsCounted: Stats.Renewals counts the terms a root starts while
// it is already the root (its periodic new term), and no other: the cold
// start's election is no renewal, and on a quiet line every later term is
// the root's renewal (Terms − Renewals stays as the election left it).
// The simulator reports the renewals that fall in its routing window from
// this count (meshsim.RoutingWindow).
func TestRenewalsCounted(t *testing.T) {
	m := newMesh(t, 4, lineEdges(4), Config{Trees: 1, EpochPeriods: 3}, 9)
	m.start()
	m.waitConverged(10 * time.Minute)
	sum := func() (terms, renewals uint64) {
		for _, tr := range m.trees {
			s := tr.Stats()
			terms += s.Terms
			renewals += s.Renewals
		}
		return terms, renewals
	}
	terms0, renewals0 := sum()
	if terms0 == 0 || terms0 < renewals0 {
		t.Fatalf("after the election: %d terms, %d renewals", terms0, renewals0)
	}
	r := m.rootNode(0)
	own := m.trees[r].Stats().Renewals
	// Ten claim periods: a term lasts three, so the root renews three
	// times (four if one was nearly due).
	m.clk.RunFor(10 * 20 * time.Second)
	terms, renewals := sum()
	if got := m.trees[r].Stats().Renewals - own; got < 3 || got > 4 || m.rootNode(0) != r {
		t.Errorf("the root (%d, now %d) renewed %d times in ten claim periods of terms of three; want 3 or 4", r, m.rootNode(0), got)
	}
	if terms-renewals != terms0-renewals0 {
		t.Errorf("%d terms not renewals after the election, %d ten periods later: a node stood on a quiet line", terms0-renewals0, terms-renewals)
	}
}

// TestRenewalsStaggered: the trees renew one at a time. They form within
// seconds of each other at a cold start, and with terms of one length
// every tree re-formed at once each term, ever after; a root's first term
// runs k/Trees of a term longer in tree k (stagger), so the renewals of
// trees 0, 1 and 2 (terms of twelve claims) come four claim periods
// apart, give or take the one period of their roots' claims' phases.
func TestRenewalsStaggered(t *testing.T) {
	const trees, epoch = 3, 12
	for _, seed := range []uint64{3, 4, 5, 6, 7, 8} {
		m := newMesh(t, 5, lineEdges(5), Config{Trees: trees, EpochPeriods: epoch}, seed)
		m.start()
		m.waitConverged(10 * time.Minute)
		// Each tree's renewals over three terms, as its root's term
		// changing (the root stays: a quiet line).
		var at [trees][]time.Duration
		var term [trees]int64
		start := m.clk.Now()
		for k := range trees {
			p, _ := m.trees[m.rootNode(k)].Current(k)
			term[k] = p.Term
		}
		for m.clk.Now().Sub(start) < 3*epoch*20*time.Second {
			m.clk.RunFor(time.Second)
			for k := range trees {
				r := m.rootNode(k)
				if r < 0 {
					continue
				}
				if p, _ := m.trees[r].Current(k); p.Term != term[k] {
					term[k] = p.Term
					at[k] = append(at[k], m.clk.Now().Sub(start))
				}
			}
		}
		for k := range trees {
			if len(at[k]) < 2 {
				t.Fatalf("seed %d: tree %d renewed at %v in three terms of %d claims", seed, k, at[k], epoch)
			}
		}
		// Every renewal of one tree at least three claim periods from
		// every renewal of another.
		for a := range trees {
			for b := a + 1; b < trees; b++ {
				for _, x := range at[a] {
					for _, y := range at[b] {
						if d := (x - y).Abs(); d < 3*20*time.Second {
							t.Errorf("seed %d: trees %d and %d renewed %v apart (at %v and %v): want three claim periods at least", seed, a, b, d, x, y)
						}
					}
				}
			}
		}
	}
}
