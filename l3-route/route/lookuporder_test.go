package route

import (
	"bytes"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l3-route/tree"
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

// TestRecordOfALeftEpoch: the record we registered counts by the trees it
// names, not by how many addresses. One that names every tree we are in
// and also an epoch we have left (a place lost; it still routes) is
// registered: the old count took it for an incomplete one until the next
// term (a line of 200, seeds 3 and 5). One that names as many addresses but
// no address in a tree we are in (a tree lost, another gained) is stored
// again: the old count took it for complete, and the new tree went
// unregistered until the next term.
func TestRecordOfALeftEpoch(t *testing.T) {
	me := lineMesh(t, 5, 3, 2)
	// Past a new term of every tree: each has a previous epoch.
	me.run(20*time.Minute, func() bool { return false })
	me.mustRegister(5 * time.Minute)
	r := me.nodes[2].rt
	k, prev := -1, tree.Position{}
	for j := range 3 {
		p, ok := r.t.Previous(j)
		if cur, _ := r.t.Current(j); ok && p.TreeState != cur.TreeState {
			k, prev = j, p
			break
		}
	}
	if k < 0 {
		t.Fatal("no tree has a previous epoch: the case is not made")
	}
	left := TreeAddr{Tree: uint8(k), TreeState: prev.TreeState, Addr: prev.Addr}

	r.registered = append(r.Addrs(), left)
	if !r.Registered() {
		t.Errorf("a record naming every tree, and an epoch left that still routes, is not counted registered")
	}

	m := (k + 1) % 3
	var lacking []TreeAddr
	for _, a := range r.Addrs() {
		if int(a.Tree) == m {
			a = left // as many addresses, none in tree m
		}
		lacking = append(lacking, a)
	}
	r.registered = lacking
	if r.Registered() {
		t.Errorf("a record naming no address in tree %d is counted registered", m)
	}
	r.scheduleRegister()
	if r.regTmr == nil {
		t.Errorf("a record naming no address in tree %d is not stored again", m)
	}
}
