package tree

import (
	"testing"
	"time"
)

// TestRenewalHeldWhileTreeGrows: a root holds its scheduled new term while
// a neighbour took a place in its term in the last GrowQuietPeriods claim
// periods (a term that ends while its tree still forms rebuilds a tree
// that was never whole: dense and hub meshes never converged), and renews
// once no new place came for that long — never later than MaxHoldTerms
// terms.
func TestRenewalHeldWhileTreeGrows(t *testing.T) {
	const periods = 6
	m := newMesh(t, 3, [][2]int{{0, 1}, {1, 2}, {0, 2}}, Config{Trees: 1, EpochPeriods: periods}, 5)
	for i := range 3 {
		m.nodes[i].Start()
	}
	for i := range 2 {
		m.trees[i].Start()
	}
	cp := m.trees[0].Config().ClaimPeriod
	if _, ok := m.runUntil(10*beaconPeriod, func() bool {
		p0, ok0 := m.trees[0].Current(0)
		p1, ok1 := m.trees[1].Current(0)
		return ok0 && ok1 && p0.Term == p1.Term
	}); !ok {
		m.dump()
		t.Fatal("nodes 0 and 1 did not converge")
	}
	pk, _ := m.trees[0].Root(0)
	r := m.index(pk)
	term := func() int64 {
		p, _ := m.trees[r].Current(0)
		return p.Term
	}
	t0 := term()
	termAt := time.Unix(0, t0)
	// Node 2 joins late in the term: its place is taken within the
	// last GrowQuietPeriods periods before the scheduled renewal.
	m.clk.RunFor(termAt.Add(time.Duration(periods-2)*cp - 5*time.Second).Sub(m.clk.Now()))
	if term() != t0 {
		t.Fatalf("the root renewed its term before the scheduled end (%v after it began)", m.clk.Now().Sub(termAt))
	}
	m.trees[2].Start()
	placedAt, ok := m.runUntil(time.Duration(periods)*cp, func() bool {
		p, ok := m.trees[2].Current(0)
		return ok && p.Term == t0
	})
	if !ok {
		m.dump()
		t.Fatal("node 2 took no place in the root's term")
	}
	grew := m.clk.Now()
	t.Logf("node 2 placed %v after it started, %v into the term", placedAt, grew.Sub(termAt))
	// The scheduled end passes: the term holds.
	m.clk.RunFor(termAt.Add(time.Duration(periods)*cp + 5*time.Second).Sub(m.clk.Now()))
	if term() != t0 {
		t.Fatalf("the root renewed its term %v after it began, %v after a neighbour took a place in it (want held for %d claim periods)", m.clk.Now().Sub(termAt), m.clk.Now().Sub(grew), GrowQuietPeriods)
	}
	// No new place since: renewed within a period of the quiet's end, and
	// never later than MaxHoldTerms terms.
	renewed, ok := m.runUntil(time.Duration(MaxHoldTerms*periods)*cp, func() bool { return term() != t0 })
	if !ok {
		t.Fatalf("the term was never renewed (%v after it began)", m.clk.Now().Sub(termAt))
	}
	at := m.clk.Now().Sub(grew)
	if at < GrowQuietPeriods*cp || at > (GrowQuietPeriods+2)*cp {
		t.Errorf("renewed %v after the last new place (want %d to %d claim periods)", at, GrowQuietPeriods, GrowQuietPeriods+2)
	}
	_ = renewed
}
