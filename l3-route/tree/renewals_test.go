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
