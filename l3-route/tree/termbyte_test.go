package tree

import (
	"slices"
	"testing"
	"time"
)

// TestNewTermAvoidsLeftBytes: a root's new term takes none of the
// tree_state bytes of the epochs it left with a place in them (tr.gone):
// neighbours it did not know there (a gateway misses many of its
// neighbours' places) may still route by its old place, which the new
// term's byte would turn into other coordinates. Half of the tree's 16
// bytes are made left before each term; on the old code (which avoided
// only the current and previous epochs' bytes) 20 terms hit one.
func TestNewTermAvoidsLeftBytes(t *testing.T) {
	m := newMesh(t, 3, lineEdges(3), Config{Trees: 1, EpochPeriods: -1}, 9)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	tr := m.trees[1].trees[0]
	for range 20 {
		var gone []goneEpoch
		for b := int(tr.k); b < 256 && len(gone) < maxLeft; b += MaxTrees {
			ts := uint8(b)
			if ts == tr.ts || (tr.prev != nil && ts == tr.prev.pos.TreeState) {
				continue
			}
			gone = append(gone, goneEpoch{ts: ts})
		}
		tr.gone = slices.Clone(gone)
		tr.startTerm()
		if slices.ContainsFunc(gone, func(g goneEpoch) bool { return g.ts == tr.ts }) {
			t.Fatalf("a new term under tree_state %d, the byte of an epoch left", tr.ts)
		}
		m.clk.RunFor(time.Second)
	}
}
