package route

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

func hoodSeeds() [][]byte {
	deep, _ := addr.EncodeLong([]uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 2, 3, 4, 5})
	two := appendHood(nil, 0x21, []hoodEntry{{tag: 0x0102, addr: addr.MustEncode(1, 2).Long()}, {tag: 0xfffe, addr: deep}})
	full := appendHood(nil, 0x10, make([]hoodEntry, (hoodBytes-hoodMin)/3)) // entries of 3 bytes: one frame, just
	return [][]byte{
		full,
		appendHood(nil, 0x10, make([]hoodEntry, (hoodBytes-hoodMin)/3+1)), // a byte over one frame
		appendHood(nil, 0x10, nil),
		appendHood(nil, 0x10, []hoodEntry{{tag: 7, addr: addr.Long{}}}),
		two,
		two[:len(two)-1],             // truncated
		append(bytes.Clone(two), 0),  // a byte past the list
		{msgHood, 0x10, 1, 0, 7, 65}, // a compact address longer than a Long
		{msgHood, 0x10},
	}
}

// FuzzHood: a neighbourhood list decodes to what encodes to the same bytes
// (one form only) and fits one frame, or fails with ErrControl.
func FuzzHood(f *testing.F) {
	for _, s := range hoodSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || data[0] != msgHood {
			return
		}
		ts, es, err := decodeHood(data[1:])
		if err != nil {
			if !errors.Is(err, ErrControl) {
				t.Fatalf("decode error of no known kind: %v", err)
			}
			return
		}
		if len(data) > hoodBytes {
			t.Fatalf("a list of %d bytes taken (one frame is %d)", len(data), hoodBytes)
		}
		if got := appendHood(nil, ts, es); !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", data, got)
		}
	})
}

// TestHoodKept: on a line 0–1–2, the middle node holds each end's list
// for each tree, naming itself at its address; a list is kept from a peer
// only, replaced by a newer one, and forgotten when the peer goes.
func TestHoodKept(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 2}, 3)
	for range 3 {
		me.add(hspec{})
	}
	me.edges([][2]int{{0, 1}, {1, 2}})
	me.start()
	me.mustConverge(10 * time.Minute)
	me.run(me.nodes[0].tr.Config().ClaimPeriod, func() bool { return false })
	mid := me.nodes[1]
	r := mid.rt
	id := mid.n.ID()
	for _, end := range []int{0, 2} {
		for k := range 2 {
			pe := me.pos(end, k)
			var h *hood
			for _, nb := range r.t.Neighbors(k, me.pos(1, k).TreeState) {
				if nb.ID == me.nodes[end].n.ID() {
					h = r.hood.heard[nb.Via]
				}
			}
			if h == nil || !h.has[k] || h.ts[k] != pe.TreeState || len(h.lists[k]) != 1 {
				t.Fatalf("node 1 holds no list of node %d in tree %d: %+v", end, k, h)
			}
			if e := h.lists[k][0]; e.tag != uint16(id[0])<<8|uint16(id[1]) || !e.addr.Equal(me.pos(1, k).Addr) {
				t.Errorf("node %d's list in tree %d: %+v, want node 1 at %v", end, k, e, me.pos(1, k).Addr)
			}
		}
	}

	var ep peer.Endpoint
	for _, nb := range r.t.Neighbors(0, me.pos(1, 0).TreeState) {
		if nb.ID == me.nodes[0].n.ID() {
			ep = nb.Via
		}
	}
	list := appendHood(nil, me.pos(1, 0).TreeState, []hoodEntry{{tag: 1, addr: addr.MustEncode(1).Long()}})
	stranger := peer.Endpoint{Link: 5, Addr: ep.Addr} // no peer there
	r.receiveOneHop(node.Message{App: ControlApp, Blob: list, Via: stranger, Broadcast: true})
	if r.hood.heard[stranger] != nil {
		t.Fatal("a stranger's list kept")
	}
	newer := appendHood(nil, me.pos(1, 0).TreeState^0x10, []hoodEntry{{tag: 1, addr: addr.MustEncode(1).Long()}, {tag: 2, addr: addr.MustEncode(2).Long()}})
	r.receiveOneHop(node.Message{App: ControlApp, Blob: newer, Via: ep, Broadcast: true})
	h := r.hood.heard[ep]
	if h.ts[0] != me.pos(1, 0).TreeState^0x10 || len(h.lists[0]) != 2 {
		t.Fatalf("a newer epoch's list did not replace the old: %+v", h)
	}
	before := r.stats.Malformed
	r.receiveOneHop(node.Message{App: ControlApp, Blob: append(bytes.Clone(newer), 0), Via: ep, Broadcast: true})
	if r.stats.Malformed != before+1 || len(h.lists[0]) != 2 {
		t.Fatalf("a malformed list: malformed %d → %d, list %+v", before, r.stats.Malformed, h)
	}
	r.hoodPeer(r.b.PeerAt(ep), false)
	if r.hood.heard[ep] != nil {
		t.Fatal("a gone peer's list kept")
	}
}

// TestHoodBounded: a proven neighbour's list is its word, not a
// certificate; what it can make a relay believe is bounded by what the
// relay verified. On a line 0–1–…–9 (one tree), node 1 sends toward a
// node j three or more hops off through node 2; node 0 (a dead end) lists
// a neighbour at j's very address. Before the bound that drew node 1's
// Package to node 0 (its neighbour "next to" the destination, a
// sinkhole); now no entry counts nearer than an address within hoodSlack
// levels of the lister's certified depth could be (node 0 ranks at the
// difference of depths, exactly), and node 1 keeps to node 2. A list from a peer
// that has not proven its key (a reference node) is held apart and ranks
// nothing; one held for a peer is taken when that peer proves, and only
// if it is the node that sent it.
func TestHoodBounded(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 1}, 5)
	for range 10 {
		me.add(hspec{})
	}
	ref := me.add(hspec{ref: true})
	me.edges(append(line(10), [2]int{1, ref}))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.run(me.nodes[0].tr.Config().ClaimPeriod, func() bool { return false })
	r := me.nodes[1].rt
	ts := me.pos(1, 0).TreeState
	liar := me.pos(0, 0)
	j := -1
	for i := 4; i < 10; i++ {
		if d := me.pos(i, 0).Addr.Depth() - liar.Addr.Depth(); d > hoodSlack || d < -hoodSlack {
			j = i
			break
		}
	}
	if j < 0 {
		t.Fatalf("no destination over %d levels from node 0 (depth %d)", hoodSlack, liar.Addr.Depth())
	}
	epOf := func(i int) peer.Endpoint {
		for _, nb := range r.t.Neighbors(0, ts) {
			if nb.ID == me.nodes[i].n.ID() {
				return nb.Via
			}
		}
		t.Fatalf("node 1 has no neighbour %d in the tree", i)
		return peer.Endpoint{}
	}
	lie := appendHood(nil, ts, []hoodEntry{{tag: 0x4c49, addr: me.pos(j, 0).Addr}})
	ph := &pathHeader{bound: noBound, dst: []TreeAddr{{Tree: 0, TreeState: ts, Addr: me.pos(j, 0).Addr}}}
	decide := func() identity.NodeID {
		t.Helper()
		nb, _, _, _, ok := r.pathNext(ph, false, nil)
		if !ok {
			t.Fatal("node 1 found no way")
		}
		return nb.ID
	}

	r.receiveOneHop(node.Message{App: ControlApp, Blob: lie, Via: epOf(0), From: me.nodes[0].n.ID(), FromKnown: true, Broadcast: true})
	if h := r.hood.heard[epOf(0)]; h == nil || len(h.lists[0]) != 1 {
		t.Fatalf("the proven neighbour's list was not kept: %+v", h)
	}
	if got := decide(); got != me.nodes[2].n.ID() {
		t.Fatalf("node 1 passed the Package for node %d to node %d, not node 2: node 0's list (depth %d) named a neighbour at depth %d",
			j, me.index(got), liar.Addr.Depth(), me.pos(j, 0).Addr.Depth())
	}
	// It ranks, through its lie, exactly as near as its certified depth
	// allows: one hop beyond a node a level nearer the destination than
	// it (the floor is tight), never nearer.
	c := &cand{nb: tree.Neighbor{ID: me.nodes[0].n.ID(), Via: epOf(0)}, placed: 1, depth: [tree.MaxTrees]uint8{uint8(liar.Addr.Depth())}}
	want := me.pos(j, 0).Addr.Depth() - liar.Addr.Depth()
	if want < 0 {
		want = -want
	}
	if got := r.hoodPot(c, ph, addr.MetricTree) >> 24 & math.MaxUint32; got != uint64(want) {
		t.Errorf("node 0's lie ranks it at least distance %d, want %d (the difference of depths)", got, want)
	}
	// A reference node's list is held apart: it never proves.
	var refEP peer.Endpoint
	for _, p := range r.b.Peers() {
		if p.ID == me.nodes[ref].n.ID() {
			refEP = p.Endpoints[0]
		}
	}
	if r.b.PeerAt(refEP) == nil || r.b.SpeaksOurs(refEP) {
		t.Fatalf("the reference node is no unproven peer of node 1 (%v)", refEP)
	}
	r.receiveOneHop(node.Message{App: ControlApp, Blob: lie, Via: refEP, Broadcast: true})
	if r.hood.heard[refEP] != nil || r.hood.unproven[refEP] == nil {
		t.Fatalf("a reference node's list: heard %+v, held %+v", r.hood.heard[refEP], r.hood.unproven[refEP])
	}
	r.hoodPeer(r.b.PeerAt(refEP), true) // it came, still unproven
	if r.hood.heard[refEP] != nil {
		t.Fatal("a list held for an unproven peer was taken")
	}

	// Held for a peer that then proves: taken, if it is the node that
	// sent it.
	ep2 := epOf(2)
	p2 := r.b.PeerAt(ep2)
	delete(r.hood.heard, ep2)
	r.hood.unproven = map[peer.Endpoint]*hood{ep2: {id: p2.ID, has: [tree.MaxTrees]bool{true}, ts: [tree.MaxTrees]uint8{ts}}}
	r.hoodPeer(p2, true)
	if h := r.hood.heard[ep2]; h == nil || h.id != p2.ID || r.hood.unproven[ep2] != nil {
		t.Fatalf("a list held for a peer that proved was not taken: %+v", h)
	}
	// One held while it proved again (a restart) replaces the list taken
	// before.
	newer := []hoodEntry{{tag: 9, addr: me.pos(3, 0).Addr}}
	r.hood.unproven[ep2] = &hood{id: p2.ID, has: [tree.MaxTrees]bool{true}, ts: [tree.MaxTrees]uint8{ts}, lists: [tree.MaxTrees][]hoodEntry{newer}}
	r.hoodPeer(p2, true)
	if h := r.hood.heard[ep2]; h == nil || len(h.lists[0]) != 1 || h.lists[0][0].tag != 9 {
		t.Fatalf("a list held since the proof did not replace the older: %+v", h)
	}
	delete(r.hood.heard, ep2)
	r.hood.unproven[ep2] = &hood{id: me.nodes[5].n.ID(), has: [tree.MaxTrees]bool{true}, ts: [tree.MaxTrees]uint8{ts}}
	r.hoodPeer(p2, true)
	if r.hood.heard[ep2] != nil {
		t.Fatal("a list another node sent from that endpoint was taken")
	}
}

// TestHoodFloor: hoodFloor is the least key either metric gives, toward a
// destination, any address within hoodSlack levels of a lister's depth
// (every address of coordinates 1 and 2 up to depth 7, against
// destinations on both branches): a liar's entry counts no nearer than
// the nearest address it could truly name, and an honest entry within
// the slack is never floored above its true key.
func TestHoodFloor(t *testing.T) {
	var all []addr.Long
	var grow func(cs []uint8)
	grow = func(cs []uint8) {
		a, err := addr.EncodeLong(cs)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, a)
		if len(cs) == 7 {
			return
		}
		for _, c := range []uint8{1, 2} {
			grow(append(cs[:len(cs):len(cs)], c))
		}
	}
	grow(nil)
	for _, m := range []addr.Metric{addr.MetricTree, addr.MetricCPL} {
		for _, dst := range []addr.Long{all[0], addr.MustEncode(2).Long(), addr.MustEncode(1, 2, 1, 1).Long(), addr.MustEncode(2, 2, 2, 2, 2, 1).Long()} {
			for own := range 7 {
				least := uint32(math.MaxUint32)
				for _, a := range all {
					if d := a.Depth(); d >= own-hoodSlack && d <= own+hoodSlack {
						least = min(least, m.PathKey(a, dst))
					}
				}
				if got := hoodFloor(m, dst.Depth(), own); got != least {
					t.Errorf("mode %d, destination %v, lister at depth %d: floor %#x, nearest address within %d levels %#x", m, dst, own, got, hoodSlack, least)
				}
			}
		}
	}
}

// TestHoodLandmark: in mode 0 a liar's entry counts no nearer than the
// largest of its trees' floors, not the least: each tree's root is a
// landmark, and a difference of hop counts from any root bounds the graph
// distance, which bounds the least tree distance. A neighbour certified at
// depth 3 in both trees, toward a destination at depth 4 in tree 0 and 9
// in tree 1 (so at least 6 hops away), that lists the destination's very
// addresses ranks at least 6 (five hops beyond a node at least five off),
// not 1. In mode 1 (no such bound) each tree's floor holds alone.
func TestHoodLandmark(t *testing.T) {
	d0 := addr.MustEncode(1, 1, 1, 1).Long()
	d1 := addr.MustEncode(2, 2, 2, 2, 2, 2, 2, 2, 2).Long()
	ts0, ts1 := uint8(0x10), uint8(0x21)
	ep := peer.Endpoint{Link: 1}
	id := identity.NodeID{0x4c, 0x49}
	r := &Router{}
	r.hood.heard = map[peer.Endpoint]*hood{ep: {
		id:    id,
		ts:    [tree.MaxTrees]uint8{ts0, ts1},
		has:   [tree.MaxTrees]bool{true, true},
		lists: [tree.MaxTrees][]hoodEntry{{{tag: 7, addr: d0}}, {{tag: 7, addr: d1}}},
	}}
	c := &cand{nb: tree.Neighbor{ID: id, Via: ep}, placed: 3, depth: [tree.MaxTrees]uint8{3, 3}}
	ph := &pathHeader{bound: noBound, dst: []TreeAddr{{Tree: 0, TreeState: ts0, Addr: d0}, {Tree: 1, TreeState: ts1, Addr: d1}}}
	if got := uint32(r.hoodPot(c, ph, addr.MetricTree) >> 24); got != 6 {
		t.Errorf("mode 0: the liar ranks at least distance %d, want 6 (9 − 3 levels in tree 1)", got)
	}
	// Mode 1: tree 0's floor is 0 (depth 4 is a level from 3), tree 1's
	// the key of d1's ancestor at depth 4.
	if got, want := uint32(r.hoodPot(c, ph, addr.MetricCPL)>>24), uint32(1); got != want {
		t.Errorf("mode 1: the liar ranks at least distance %#x, want %#x", got, want)
	}
	// Placed in tree 0 only, it is bounded by tree 0 alone.
	c.placed = 1
	if got := uint32(r.hoodPot(c, ph, addr.MetricTree) >> 24); got != 1 {
		t.Errorf("placed in tree 0 only: least %d, want 1", got)
	}
}
