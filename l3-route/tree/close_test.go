package tree

import (
	"testing"
)

// A node switched off closes its trees with it: cut off from everyone, a
// dead node's trees would otherwise miss their root's claims, stand for
// root themselves and start term after term of their own for ever
// (hundreds of terms in a simulated kill of a tenth of 1,000 nodes). A
// closed Trees starts no term, enters no epoch and sends nothing, however
// long the clock runs; Close, Start and Renew after it do nothing.
func TestClosedTreesStayQuiet(t *testing.T) {
	m := newMesh(t, 5, lineEdges(5), Config{Trees: 2}, 3)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	cp := m.trees[0].Config().ClaimPeriod
	// The root of tree 0 and a node that is not, each switched off.
	root := m.checkTree(0, m.alive()).root
	other := (root + 2) % 5
	for _, v := range []int{root, other} {
		m.kill(v)
		m.trees[v].Close()
	}
	before := map[int]Stats{root: m.trees[root].Stats(), other: m.trees[other].Stats()}
	for _, v := range []int{root, other} {
		m.trees[v].Close()
		m.trees[v].Start()
		for k := range 2 {
			if m.trees[v].Renew(k) {
				t.Errorf("node %d: a closed Trees renewed tree %d", v, k)
			}
		}
	}
	m.clk.RunFor(40 * cp)
	for v, b := range before {
		if s := m.trees[v].Stats(); s != b {
			t.Errorf("node %d: stats %+v at Close, then %+v", v, b, s)
		}
		// The counters themselves, not only what Stats reports: a callback
		// in flight at Close may try one message (refused by the closed
		// node), but no term or epoch starts.
		if s := m.trees[v].stats; s.Terms != b.Terms || s.Epochs != b.Epochs || s.MsgsSent > b.MsgsSent+4 {
			t.Errorf("node %d kept working after Close: %d terms, %d epochs, %d messages, then %d, %d, %d",
				v, b.Terms, b.Epochs, b.MsgsSent, s.Terms, s.Epochs, s.MsgsSent)
		}
	}
	// The live ones carried on: they formed their trees anew.
	var terms uint64
	for _, i := range m.alive() {
		terms += m.trees[i].Stats().Terms
	}
	if terms == 0 {
		t.Error("no live node started a term after the root's death")
	}
}
