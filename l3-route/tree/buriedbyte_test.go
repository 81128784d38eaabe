package tree

import (
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// TestNewTermAvoidsBuriedByte: a node that buried its root's term (its
// claims stopped reaching it) and followed a rival's claim since does not
// start a term of its own under the buried term's tree_state byte. The
// buried root is often alive, its term going on elsewhere in the mesh,
// and two live terms under one byte are two sets of coordinates a
// Package's header cannot tell apart (clustered 1,000, seed 2: 140 nodes
// in such a term beside 860 in the live one for 550 s, h30term). Each
// mesh below is made to hit it: the buried term's byte is the one the
// node's new term would take without the rule (the old code takes it).
func TestNewTermAvoidsBuriedByte(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		m := newMesh(t, 3, lineEdges(3), Config{Trees: 1, EpochPeriods: -1}, seed)
		m.start()
		m.waitConverged(10 * beaconPeriod)
		i := slices.IndexFunc(m.trees, func(ts *Trees) bool { return ts.trees[0].cur != nil && !ts.trees[0].amRoot })
		if i < 0 {
			t.Fatalf("seed %d: no node placed below a root", seed)
		}
		tr := m.trees[i].trees[0]
		dead, riv := m.trees[(i+1)%3], m.trees[(i+2)%3]
		k := tr.k
		now := m.clk.Now().UnixNano()
		placed := tr.cur.pos.TreeState
		// A rival's term (another node's key), begun before now: what the node
		// follows after the burial, so the new term starts now.
		rivalTerm := now - 1e9
		for cert.TreeState(riv.pk, k, rivalTerm)%MaxTrees != k || cert.TreeState(riv.pk, k, rivalTerm) == placed {
			rivalTerm--
		}
		rival := cert.NewClaim(riv.id, k, rivalTerm, now)
		// The byte a term of the node's starting now takes with the rival's
		// epoch current and its place in the converged one previous.
		term := now
		var natural uint8
		for {
			ts := cert.TreeState(tr.t.pk, k, term)
			if ts%MaxTrees == k && ts != rival.TreeState() && ts != placed && !slices.ContainsFunc(tr.gone, func(g goneEpoch) bool { return g.ts == ts }) {
				natural = ts
				break
			}
			term++
		}
		// The term buried: a third node's, under that byte, which the node had
		// followed without a place in it.
		deadTerm := now - 2e9
		for cert.TreeState(dead.pk, k, deadTerm) != natural {
			deadTerm--
		}
		tr.adopt(cert.NewClaim(dead.id, k, deadTerm, now))
		tr.lastFresh = m.clk.Now().Add(-time.Duration(tr.t.cfg.MissedClaims+1) * tr.t.cfg.ClaimPeriod)
		tr.buryOverdue()
		if !tr.rootDead {
			t.Fatalf("seed %d: the root not buried", seed)
		}
		tr.adopt(rival)
		tr.startTerm()
		if tr.ts == natural {
			t.Fatalf("seed %d: a new term under tree_state %d, the byte of the term just buried", seed, natural)
		}
		if tr.ts%MaxTrees != k || tr.ts == rival.TreeState() {
			t.Fatalf("seed %d: new term's byte %d (tree %d, rival's %d)", seed, tr.ts, k, rival.TreeState())
		}
	}
}
