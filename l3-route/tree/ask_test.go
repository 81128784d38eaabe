package tree

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// TestAskNeverShorter: within an epoch a node never asks a neighbour for
// fewer certificates of its chain than it asked it for before, and a
// shorter query within a claim period of a longer one is not sent. A
// position kept pending (its parent's place unknown) is checked again
// whenever another neighbour's place comes and asked for two
// certificates; when two were too few the answer asks for four. With the
// two asks alternating the longer answer was overtaken again and again: a
// rooftop gateway 9 levels deep was asked by its 193 neighbours, none of
// whom knew its parent, for a whole quarter of an hour (hubs, 300 nodes,
// six trees, seed 17), its answers 2 % of its air.
func TestAskNeverShorter(t *testing.T) {
	const n = 6
	m := newMesh(t, n, lineEdges(n), Config{Trees: 1, EpochPeriods: -1}, 4)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	cp := m.trees[0].Config().ClaimPeriod
	m.clk.RunFor(2 * cp)
	const x, g = 2, 3
	var wants []uint8 // the queries x sent g, as the air carried them (first tries)
	to := m.radios[g].Addr().String()
	m.med.SetAttemptLog(func(a *sim.Attempt) {
		if a.From != m.radios[x] || a.Dst == nil || a.Dst.String() != to || a.Try > 1 {
			return
		}
		if want, ok := queryWant(a.Data); ok {
			wants = append(wants, want)
		}
	})
	tr := m.trees[x].trees[0]
	ts, ep := tr.ts, m.ep(g)
	step := func(want uint8, wantRes askResult) {
		t.Helper()
		if got := tr.ask(ep, ts, want); got != wantRes {
			t.Errorf("ask for %d certificates: result %d, want %d (0 sent, 1 not: asked as much lately)", want, got, wantRes)
		}
		m.clk.RunFor(time.Second) // the query and its answer cross
	}
	step(4, askSent)
	step(2, askRecent) // four are on their way: two would only be too few again
	step(1, askRecent)
	m.clk.RunFor(cp)
	step(1, askSent) // a claim period on: asked again, for four
	step(0, askSent) // the whole chain is more
	step(4, askRecent)
	m.med.SetAttemptLog(nil)
	want := []uint8{4, 4, 0}
	if len(wants) != len(want) {
		t.Fatalf("queries on the air asked for %v certificates, want %v", wants, want)
	}
	for i := range want {
		if wants[i] != want[i] {
			t.Fatalf("queries on the air asked for %v certificates, want %v", wants, want)
		}
	}
}
