package tree

import (
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// TestLostFloodsPulled: on a line whose every hop loses a third of its
// frames, a claim's flood (broadcasts, never sent again) seldom reaches
// the far end; the nodes it misses pull the claim from their parents by
// hops that are acked, so that no node buries the live root and no new
// term or epoch starts anywhere over many claim periods.
func TestLostFloodsPulled(t *testing.T) {
	const n = 30
	m := newMesh(t, n, lineEdges(n), Config{Trees: 1, EpochPeriods: -1}, 7)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	for i := range n - 1 {
		m.net.Disconnect("espnow", i, i+1)
		m.net.Connect("espnow", i, i+1, sim.Independent(0.3), sim.Independent(0.3))
	}
	var terms uint64
	epochs := make([]uint64, n)
	for i, tr := range m.trees {
		terms += tr.Stats().Terms
		epochs[i] = tr.Stats().Epochs
	}
	cp := m.trees[0].Config().ClaimPeriod
	m.clk.RunFor(30 * cp)
	var after uint64
	for i, tr := range m.trees {
		st := tr.Stats()
		after += st.Terms
		if st.Epochs != epochs[i] {
			t.Errorf("node %d entered %d epochs under a live root", i, st.Epochs-epochs[i])
		}
		if _, alive := tr.Root(0); !alive {
			t.Errorf("node %d buried the live root", i)
		}
	}
	if after != terms {
		t.Errorf("%d terms started under a live root", after-terms)
	}
	if !m.allConverged(m.alive()) {
		m.dump()
		t.Error("the tree came apart")
	}
}
