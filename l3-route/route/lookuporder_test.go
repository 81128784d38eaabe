package route

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// TestRecordsInTreesOfTwoRoots: where trees 0 and 1 share their root (on
// small meshes they mostly do: their salts agree in 7 bits), records are
// stored in two trees under different roots, never in both 0 and 1: two
// lookup trees under one root are one tree twice, and the nodes too far
// from that root for a place in it (a line of 200, README) could find no
// record of the nodes placed there. A lookup finds them.
func TestRecordsInTreesOfTwoRoots(t *testing.T) {
	me := lineMesh(t, 5, 3, 2)
	r0, _ := me.nodes[0].tr.Root(0)
	r1, _ := me.nodes[0].tr.Root(1)
	r2, _ := me.nodes[0].tr.Root(2)
	if !bytes.Equal(r0, r1) || bytes.Equal(r0, r2) {
		t.Fatalf("want trees 0 and 1 under one root and tree 2 under another (the case tested); roots %x %x %x", r0[:4], r1[:4], r2[:4])
	}
	// From the tree the node_id picks, round, the tree under 0's and 1's
	// root that comes second goes last.
	want := map[int][]int{0: {0, 2, 1}, 1: {1, 2, 0}, 2: {2, 0, 1}}
	for i, hn := range me.nodes {
		for j, other := range me.nodes {
			id := other.n.ID()
			w := want[lookupFirst(id[:], 3)]
			if got := hn.rt.lookupOrder(id[:]); !slices.Equal(got, w) {
				t.Fatalf("node %d: lookup order of node %d's record %v, want %v", i, j, got, w)
			}
		}
	}
	// Registered while the roots were settling, a record may have gone
	// to tree 1; a change of the trees records go to has it stored again
	// (staleHomes), within a registration's wait.
	me.run(3*time.Minute, func() bool { return false })
	for i, owner := range me.nodes {
		// (A home keeps one record a node: where one node is the home in
		// both trees, it holds one copy. Where each went is the owner's.)
		id := owner.n.ID()
		w := want[lookupFirst(id[:], 3)][:2]
		_, a := owner.rt.homes[w[0]]
		_, b := owner.rt.homes[w[1]]
		if len(owner.rt.homes) != 2 || !a || !b {
			t.Errorf("node %d: its record registered in trees %v, want %v", i, owner.rt.homes, w)
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

// TestRecordsSpreadOverTrees: the records of a mesh are stored in every
// tree, not in the first two whatever the node. In one fixed order every
// registration went to the homes of trees 0 and 1, by ways that meet round
// their roots, and at 2,000 nodes the relays there refused what they were
// to pass on (their queues toward the next hop full) and the lost
// registrations were sent again (README, "10,000 nodes"). Here, six trees:
// each node's record is in the tree its node_id picks first, the homes of
// most trees hold records, and a lookup of each node finds it.
func TestRecordsSpreadOverTrees(t *testing.T) {
	me := lineMesh(t, 12, 6, 4)
	held := map[int]int{} // records each tree's homes were sent
	for i, owner := range me.nodes {
		if len(owner.rt.homes) != 2 {
			t.Fatalf("node %d: its record registered in trees %v, want two", i, owner.rt.homes)
		}
		id := owner.n.ID()
		first := lookupFirst(id[:], 6)
		if _, ok := owner.rt.homes[first]; !ok {
			t.Errorf("node %d: its record registered in trees %v, not in tree %d, its first", i, owner.rt.homes, first)
		}
		for k := range owner.rt.homes {
			held[k]++
		}
	}
	if len(held) < 4 {
		t.Errorf("the records of 12 nodes are in %d trees (%v), want at least 4 of 6", len(held), held)
	}
	src := me.nodes[0]
	for j, dst := range me.nodes[1:] {
		var got Destination
		var lerr error
		done := false
		src.rt.Lookup(dst.n.ID(), func(d Destination, err error) { got, lerr, done = d, err, true })
		if !me.run(lookupPatience, func() bool { return done }) || lerr != nil || got.ID != dst.n.ID() {
			t.Fatalf("lookup of node %d: done %v, %v", j+1, done, lerr)
		}
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

	setRecord(r, append(r.Addrs(), left))
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
	setRecord(r, lacking)
	if r.Registered() {
		t.Errorf("a record naming no address in tree %d is counted registered", m)
	}
	r.scheduleRegister()
	if r.regTmr == nil {
		t.Errorf("a record naming no address in tree %d is not stored again", m)
	}
}

// setRecord makes addrs the record of r's registered last and the one at
// each of its homes.
func setRecord(r *Router, addrs []TreeAddr) {
	r.registered = addrs
	for k, h := range r.homes {
		h.addrs = addrs
		r.homes[k] = h
	}
}

// TestNewTermMovesOneHome: a lookup tree's new term sends our record to
// that tree's new home alone; the other lookup tree's home keeps the
// record it has (its address in the renewed tree is of the previous
// epoch, which still routes), until its own tree's term. Sending it to
// every home at each lookup tree's new term registered every record twice
// a cycle in each tree, and on clustered meshes the relays of the chains
// between towns spent most of their air on it (docs/routing-notes.md,
// "h39onehome"). Lookups still find every node through the renewals.
func TestNewTermMovesOneHome(t *testing.T) {
	me := lineMesh(t, 6, 3, 5)
	type seen struct {
		ts uint8
		at time.Time
	}
	last := make([]map[int]seen, len(me.nodes))
	for i, hn := range me.nodes {
		last[i] = map[int]seen{}
		for k, h := range hn.rt.homes {
			last[i][k] = seen{h.ts, h.at}
		}
	}
	moved, kept := 0, 0 // new records at a home with a new epoch; homes that kept theirs across another's
	var bad []string
	cycle := time.Duration(tree.DefaultEpochPeriods) * me.nodes[0].tr.Config().ClaimPeriod
	me.run(2*cycle, func() bool {
		for i, hn := range me.nodes {
			changed := map[int]bool{}
			for k, h := range hn.rt.homes {
				s, ok := last[i][k]
				if !ok || s.at.Equal(h.at) {
					continue
				}
				changed[k] = true
				switch {
				case h.ts != s.ts:
					moved++
				case h.at.Sub(s.at) < hn.rt.homeAge():
					bad = append(bad, fmt.Sprintf("node %d: tree %d's home sent a new record in the same epoch %#02x, %v after the last", i, k, h.ts, h.at.Sub(s.at)))
				}
				last[i][k] = seen{h.ts, h.at}
			}
			if len(changed) == 1 {
				kept++
			}
		}
		return false
	})
	for _, b := range bad {
		t.Error(b)
	}
	if moved < len(me.nodes) || kept == 0 {
		t.Fatalf("%d homes moved with a new term, %d records kept at the other home: no renewal made the case", moved, kept)
	}
	src := me.nodes[0]
	for j, dst := range me.nodes[1:] {
		var lerr error
		done := false
		src.rt.cache = map[identity.NodeID]*cachedRecord{}
		src.rt.Lookup(dst.n.ID(), func(_ Destination, err error) { lerr, done = err, true })
		if !me.run(lookupPatience, func() bool { return done }) || lerr != nil {
			t.Errorf("lookup of node %d after the renewals: done %v, %v", j+1, done, lerr)
		}
	}
}

// TestLookupAsksNewestHomeFirst: a lookup asks first the home of the
// lookup tree whose term started last, which got the record of that
// term, not the first tree of the fixed order, whose home keeps a record
// naming the renewed tree's previous epoch (a record naming most trees'
// previous epochs routes longer on dense meshes: docs/routing-notes.md,
// "h39onehome"). Whenever a destination's two homes hold records of
// different terms, the lookup's answer names its current epoch in the
// tree that renewed last.
func TestLookupAsksNewestHomeFirst(t *testing.T) {
	me := lineMesh(t, 8, 3, 5)
	src := me.nodes[0]
	cycle := time.Duration(tree.DefaultEpochPeriods) * src.tr.Config().ClaimPeriod
	checked := 0
	for step := time.Duration(0); step < 2*cycle; step += 10 * time.Second {
		me.run(10*time.Second, func() bool { return false })
		for j := 2; j < len(me.nodes); j++ {
			dst := me.nodes[j].rt
			id := dst.self
			order := dst.lookupOrder(id[:])[:2]
			first, second := order[0], order[1]
			p1, ok1 := src.rt.current(first)
			p2, ok2 := src.rt.current(second)
			h1, okh1 := dst.homes[first]
			h2, okh2 := dst.homes[second]
			if !ok1 || !ok2 || !okh1 || !okh2 || p2.Term <= p1.Term {
				continue // the fixed order asks the newest first anyway
			}
			if h1.ts != p1.TreeState || h2.ts != p2.TreeState || dst.regs[regKey{id, first}] != nil || dst.regs[regKey{id, second}] != nil {
				continue // a record on its way
			}
			if slices.ContainsFunc(h1.addrs, func(a TreeAddr) bool { return int(a.Tree) == second && a.TreeState == p2.TreeState }) {
				continue // the first home's record names the renewed epoch too
			}
			src.rt.cache = map[identity.NodeID]*cachedRecord{}
			var got Destination
			var lerr error
			done := false
			src.rt.Lookup(id, func(d Destination, err error) { got, lerr, done = d, err, true })
			if !me.run(lookupPatience, func() bool { return done }) || lerr != nil {
				t.Fatalf("lookup of node %d: done %v, %v", j, done, lerr)
			}
			checked++
			if !slices.ContainsFunc(got.Addrs, func(a TreeAddr) bool { return int(a.Tree) == second && a.TreeState == p2.TreeState }) {
				t.Errorf("lookup of node %d: its record names no address in tree %d's epoch %#02x, which renewed last (its home holds one that does)", j, second, p2.TreeState)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no destination's homes held records of different terms: the case is not made")
	}
}
