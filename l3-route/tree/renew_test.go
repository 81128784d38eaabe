package tree

import (
	"testing"
	"time"
)

// The roots of several trees asked at once for a new term (one failure
// orphans nodes in every tree) start them RenewStagger claim periods apart,
// tree 0 first: trees forming at once crowd the air. (They all started at
// once: after a tenth of a 1,000-node mesh died, six trees forming together
// were a third unplaced three claim periods later.)
func TestRenewStaggered(t *testing.T) {
	m := newMesh(t, 9, gridEdges(3, 3), Config{Trees: 3, EpochPeriods: -1}, 4)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	cp := m.trees[0].Config().ClaimPeriod
	m.clk.RunFor(2 * cp) // every term a claim period old and more
	roots := make([]int, 3)
	terms := make([]int64, 3)
	for k := range 3 {
		roots[k] = -1
		for i, tr := range m.trees {
			if p, ok := tr.Current(k); ok && p.Root {
				roots[k], terms[k] = i, p.Term
			}
		}
		if roots[k] < 0 {
			t.Fatalf("no root of tree %d", k)
		}
		if !m.trees[roots[k]].Renew(k) {
			t.Fatalf("the root of tree %d did not take the request", k)
		}
	}
	renewed := func(k int) bool {
		p, ok := m.trees[roots[k]].Current(k)
		return ok && p.Term != terms[k]
	}
	if !renewed(0) {
		t.Fatal("tree 0 did not start its new term at once")
	}
	asked := m.clk.Now()
	for k := 1; k < 3; k++ {
		due := asked.Add(time.Duration(float64(k) * RenewStagger * float64(cp)))
		m.clk.RunFor(due.Add(-cp / 10).Sub(m.clk.Now()))
		if renewed(k) {
			t.Fatalf("tree %d started its new term before %v", k, due.Sub(asked))
		}
		m.clk.RunFor(due.Add(cp / 10).Sub(m.clk.Now()))
		if !renewed(k) {
			t.Fatalf("tree %d had not started its new term %v after the request", k, due.Add(cp/10).Sub(asked))
		}
	}
}
