package tree

import (
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// TestOverdueRootAskedBeforeBurial: on a ring of four, the node opposite
// the root loses its parent, and the frames from its other neighbour
// reach it only now and then (75 % lost that way): it misses round after
// round of the root's claims, which that neighbour hears. It must not
// bury the live root nor stand: before burying an overdue root it asks a
// neighbour for a newer claim, by a hop that is acked (buryOverdue).
func TestOverdueRootAskedBeforeBurial(t *testing.T) {
	m := newMesh(t, 4, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 0}}, Config{Trees: 1, EpochPeriods: -1}, 5)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	rk, _ := m.trees[0].Root(0)
	r := m.index(rk)
	x := (r + 2) % 4
	pos := mustPos(m, x)
	pa, _ := pos.Addr.Parent()
	parent, other := (x+1)%4, (x+3)%4
	if q := mustPos(m, other); q.Addr.Equal(pa) {
		parent, other = other, parent
	}
	m.kill(parent)
	m.net.Disconnect("espnow", x, other)
	m.net.Connect("espnow", other, x, sim.Independent(0.75), sim.Independent(0))
	terms := make([]uint64, 4)
	for i, tr := range m.trees {
		terms[i] = tr.Stats().Terms
	}
	tr := m.trees[x].trees[0]
	cp := m.trees[0].Config().ClaimPeriod
	for range 40 {
		m.clk.RunFor(cp / 2)
		if tr.rootDead {
			t.Fatalf("node %d buried the live root (last fresh claim %v ago)", x, m.clk.Now().Sub(tr.lastFresh))
		}
	}
	for i, tr := range m.trees {
		if m.dead[i] {
			continue
		}
		if n := tr.Stats().Terms - terms[i]; n > 0 {
			t.Errorf("node %d started %d terms under a live root", i, n)
		}
		if k, alive := tr.Root(0); !alive || m.index(k) != r {
			t.Errorf("node %d does not follow the live root %d", i, r)
		}
	}
}
