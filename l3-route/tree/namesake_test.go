package tree

import (
	"crypto/ed25519"
	"testing"

	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// TestPositionOfAnotherTermDropsThePlace: a neighbour whose place we know
// in an epoch announces, under the same tree_state, a place of another
// term (a tree_state names one of 16 epochs, and another term took it):
// the certificate does not hold in our epoch, and the place we knew it by
// goes (routing on it would send Packages into another term's
// coordinates), rather than staying beside a position we cannot check.
func TestPositionOfAnotherTermDropsThePlace(t *testing.T) {
	m := newMesh(t, 3, lineEdges(3), Config{Trees: 1, EpochPeriods: -1}, 9)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	// x: a node with a parent; y: a neighbour of x that knows x's place.
	x, parent, y := -1, -1, -1
	for i := range 3 {
		p, _ := m.trees[i].Current(0)
		pa, ok := p.Addr.Parent()
		if !ok {
			continue
		}
		for j := range 3 {
			if q, _ := m.trees[j].Current(0); q.Addr.Equal(pa) {
				x, parent = i, j
			}
		}
		if x >= 0 {
			break
		}
	}
	for j := range 3 {
		if j != x && m.adj[x][j] {
			y = j
		}
	}
	if x < 0 || y < 0 {
		t.Fatal("no node with a parent and a neighbour")
	}
	ty := m.trees[y].trees[0]
	here, _ := m.trees[x].Current(0)
	ts := here.TreeState
	if !ty.placedIn(m.ep(x), ts) {
		t.Fatalf("node %d does not know node %d's place", y, x)
	}
	other := ty.curTerm()
	other.Start += 16 // another term under the same tree_state byte
	coords := here.Addr.Coords()
	xid := m.id(x)
	c := cert.IssueCert(testIdentity(parent, m.seed), other, ed25519.PublicKey(xid[:]), here.Addr, coords[len(coords)-1])
	pid := m.id(parent)
	rejected := m.trees[y].Stats().Rejected
	ty.onPosition(m.ep(x), &message{typ: MsgPosition, tree: 0, treeState: ts, parent: pid, cert: c})
	if ty.placedIn(m.ep(x), ts) {
		t.Errorf("node %d still routes by node %d's place of the term it left", y, x)
	}
	if m.trees[y].Stats().Rejected == rejected {
		t.Error("the other term's certificate was not counted as rejected")
	}
}
