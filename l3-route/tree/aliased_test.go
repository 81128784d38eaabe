package tree

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// aliasingClaim returns a fresh claim of tree 0 by a root worse than the
// one m's node y follows, of a term whose tree_state byte is ts (the byte
// names one of 256/MaxTrees terms of a tree: another root's term takes
// ours now and then).
func aliasingClaim(t *testing.T, m *mesh, y int, ts uint8) cert.Claim {
	t.Helper()
	ty := m.trees[y].trees[0]
	now := m.clk.Now().UnixNano()
	for i := 100; i < 200; i++ {
		id := testIdentity(i, m.seed)
		pk := id.Public()
		if !cert.Less(ty.rootScore, cert.Score(pk, 0)) {
			continue // a better root: y would take its term, and drop every place of ours anyway
		}
		for start := now; start > now-int64(time.Hour); start -= int64(time.Millisecond) {
			if cert.TreeState(pk, 0, start) == ts {
				return cert.NewClaim(id, 0, start, now)
			}
		}
	}
	t.Fatal("no worse root's term under this tree_state")
	return cert.Claim{}
}

// TestClaimOfAnotherTermDropsThePlace: a neighbour whose place we know in
// our epoch passes on the claim of another term under the same tree_state
// byte (a rival root's, worse than ours, so we stay): it has left our
// epoch for good (adopt), and the place we knew it by there goes at once,
// not when its new position reaches us — a broadcast that may be lost, as
// on --kill 0.1 seed 9, where a node routed three Packages by such a
// place into the other term's coordinates (the loop check's three
// errors).
func TestClaimOfAnotherTermDropsThePlace(t *testing.T) {
	m := newMesh(t, 3, lineEdges(3), Config{Trees: 1, EpochPeriods: -1}, 9)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	x, y := 0, 1
	ty := m.trees[y].trees[0]
	ts := ty.ts
	if !ty.placedIn(m.ep(x), ts) {
		t.Fatalf("node %d does not know node %d's place", y, x)
	}
	c := aliasingClaim(t, m, y, ts)
	from := m.ep(x)
	ty.onClaim(c, &from)
	if ty.placedIn(m.ep(x), ts) {
		t.Errorf("node %d still routes by node %d's place in the term it left", y, x)
	}
	if got, _ := m.trees[y].Current(0); got.TreeState != ts || ty.term == c.TermStart {
		t.Errorf("node %d left its epoch for a worse root's", y)
	}
	// Our own term's claim from the same neighbour drops nothing.
	z := 2
	if !ty.placedIn(m.ep(z), ts) {
		t.Fatalf("node %d does not know node %d's place", y, z)
	}
	from = m.ep(z)
	ty.onClaim(ty.latest, &from)
	if !ty.placedIn(m.ep(z), ts) {
		t.Errorf("node %d dropped node %d's place on a claim of their own term", y, z)
	}
}

// TestAliasingTermToldToNeighbours: a node that enters a term under the
// tree_state byte of an epoch it held a place in tells the neighbours it
// knew there, one hop each, acked: they drop its old place though no
// broadcast of it reached them (here none is sent: adopt alone, the flood
// being onClaim's; after a kill, 10 % of 1,000 nodes, seed 9, a neighbour
// missed the flood and the new position for 27 s).
func TestAliasingTermToldToNeighbours(t *testing.T) {
	m := newMesh(t, 3, lineEdges(3), Config{Trees: 1, EpochPeriods: -1}, 9)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	x, y := 0, 1
	tx, ty := m.trees[x].trees[0], m.trees[y].trees[0]
	ts := tx.ts
	if !ty.placedIn(m.ep(x), ts) {
		t.Fatalf("node %d does not know node %d's place", y, x)
	}
	c := aliasingClaim(t, m, y, ts)
	if err := m.trees[x].Verifier().VerifyClaim(&c); err != nil {
		t.Fatal(err)
	}
	tx.adopt(c)
	if got, _ := m.trees[x].Current(0); got.TreeState == ts && tx.cur != nil {
		t.Fatalf("node %d kept its place beside the new term", x)
	}
	m.clk.RunFor(time.Second)
	if ty.placedIn(m.ep(x), ts) {
		t.Errorf("node %d still routes by node %d's place in the term it left", y, x)
	}
}

// TestAliasingTermToldAfterTwoEpochs: a node that left an epoch for good
// two epochs back (it was then its previous, and went when the node left
// a third with a place in it), and then enters a term under that epoch's
// tree_state byte, tells the neighbours it knew there too: nothing told
// them it left, and they would route by its old place in the new term's
// coordinates. On hubs of 300 nodes (seed 7) a gateway left its place in
// a term so, as the root of two terms of its own in turn, then took a term
// under the old term's byte; a child of its old place, still in that
// term, sent a plain Package to it by that place 0.6 s later (the loop
// check's error).
func TestAliasingTermToldAfterTwoEpochs(t *testing.T) {
	m := newMesh(t, 4, lineEdges(4), Config{Trees: 1, EpochPeriods: -1}, 9)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	y, x := 1, 0
	if p, _ := m.trees[x].Current(0); p.Root {
		x = 2 // the tree's root would take y into its own terms
	}
	tx, ty := m.trees[x].trees[0], m.trees[y].trees[0]
	ts := tx.ts
	if !ty.placedIn(m.ep(x), ts) {
		t.Fatalf("node %d does not know node %d's place", y, x)
	}
	// x starts a term of its own (worse than y's root: y stays), one
	// that someone joined, then another: the first pushes ts to x's
	// previous epoch, the second out of x's memory.
	tx.startTerm()
	tx.cur.children[testIdentity(99, m.seed).ID()] = 1
	tx.startTerm()
	if got, ok := m.trees[x].ByState(ts); ok {
		t.Fatalf("node %d still holds its place %v in the first epoch", x, got.Addr)
	}
	if !ty.placedIn(m.ep(x), ts) {
		t.Fatalf("node %d no longer knows node %d's old place: nothing to test", y, x)
	}
	tx.adopt(aliasingClaim(t, m, y, ts))
	m.clk.RunFor(time.Second)
	if got, _ := m.trees[y].Current(0); got.TreeState != ts {
		t.Fatalf("node %d left the epoch: nothing to test", y)
	}
	if ty.placedIn(m.ep(x), ts) {
		t.Errorf("node %d still routes by node %d's place in the term it left two epochs back", y, x)
	}
}
