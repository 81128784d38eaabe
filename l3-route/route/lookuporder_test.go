package route

import (
	"bytes"
	"testing"
	"time"
)

// TestRecordsInTreesOfTwoRoots: where trees 0 and 1 share their root (on
// small meshes they mostly do: their salts agree in 7 bits), records are
// stored in tree 0 and in the next tree under another root, not tree 1:
// two lookup trees under one root are one tree twice, and the nodes too
// far from that root for a place in it (a line of 200, README) could find
// no record of the nodes placed there. A lookup finds them.
func TestRecordsInTreesOfTwoRoots(t *testing.T) {
	me := lineMesh(t, 5, 3, 2)
	r0, _ := me.nodes[0].tr.Root(0)
	r1, _ := me.nodes[0].tr.Root(1)
	r2, _ := me.nodes[0].tr.Root(2)
	if !bytes.Equal(r0, r1) || bytes.Equal(r0, r2) {
		t.Fatalf("want trees 0 and 1 under one root and tree 2 under another (the case tested); roots %x %x %x", r0[:4], r1[:4], r2[:4])
	}
	for i, hn := range me.nodes {
		if got := hn.rt.lookupOrder(); got[0] != 0 || got[1] != 2 || got[2] != 1 {
			t.Fatalf("node %d: lookup order %v, want [0 2 1]", i, got)
		}
	}
	// Registered while the roots were settling, a record may have gone
	// to tree 1; a change of the trees records go to has it stored again
	// (homesKept), within a registration's wait.
	me.run(3*time.Minute, func() bool { return false })
	for i, owner := range me.nodes {
		// (A home keeps one record a node: where one node is the home in
		// both trees, it holds one copy. Where each went is the owner's.)
		if _, ok := owner.rt.homes[1]; len(owner.rt.homes) != 2 || ok {
			t.Errorf("node %d: its record registered in trees %v, want 0 and 2", i, owner.rt.homes)
		}
	}
	src, dst := me.nodes[0], me.nodes[4]
	var got Destination
	var lerr error
	done := false
	src.rt.Lookup(dst.n.ID(), func(d Destination, err error) { got, lerr, done = d, err, true })
	if !me.run(lookupPatience, func() bool { return done }) || lerr != nil || got.ID != dst.n.ID() {
		t.Fatalf("lookup of node 4: done %v, %v", done, lerr)
	}
}
