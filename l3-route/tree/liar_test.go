package tree

import (
	"bytes"
	"slices"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// What a node that lies about its distance to the root can and cannot do.
//
// The hop count a claim carries is a hint, not signed (it cannot be: it
// changes at every hop). A neighbour that passes claims on with hops 0
// looks one hop from the root, and its neighbours ask it first for a
// place, and tell their own neighbours they are two hops away.
//
// It can:
//   - attract requests: an honest node asks it, and (if it runs no tree)
//     waits a claim period for nothing before it tries another, and only
//     a neighbour as near the root as the lie makes it think it is; so the
//     lie delays the places of the nodes around it by claim periods (the
//     depth a node accepts grows a level per period), and its neighbours
//     pass the low count on;
//   - if it runs the tree honestly otherwise, gather its neighbours as
//     children under its real address: a deeper tree (longer routes) and
//     more traffic through it.
//
// (Without the fix in the report, the lie did more: a node whose only
// honest neighbours had placed themselves before it entered the epoch
// dropped their positions, and, unplaced, never asked for them again,
// while the low hop counts made every neighbour but the liar unacceptable
// as a parent: it stayed without a place the whole epoch.)
//
// It cannot:
//   - give anyone an address that does not verify, nor one shallower
//     than its own real depth + 1: an address is its chain of signed
//     certificates, and depth is the chain's length;
//   - make itself anyone's parent without a place of its own;
//   - take another node's place: positions and chains are checked
//     against the key of the neighbour that sends them.
func TestDistanceLiar(t *testing.T) {
	edges := gridEdges(5, 5)
	cfg := Config{Trees: 1}

	// The honest run, for comparison.
	h := newMesh(t, 25, edges, cfg, 31)
	h.start()
	honestTook := h.waitConverged(10 * beaconPeriod)
	hsh := h.checkTree(0, h.alive())

	m := newMesh(t, 25, edges, cfg, 31)
	// The liar sits next to the nodes farthest from the root.
	root := m.bestScore(0, m.alive())
	hops := m.hopsFrom(root)
	far := 0
	for i, d := range hops {
		if d > hops[far] {
			far = i
		}
	}
	var victims []int
	for j, e := range m.adj[far] {
		if e {
			victims = append(victims, j)
		}
	}
	victims = append(victims, far)
	rg := m.addRogue(2, victims...)
	passed := map[int64]bool{}
	rg.onClaim = func(c cert.Claim, _ uint8) {
		if !passed[c.Time] {
			passed[c.Time] = true
			rg.n.Broadcast(AppID, appendClaim(nil, &c, 0), nil)
		}
	}
	m.start()
	took := m.waitConverged(10 * beaconPeriod)
	sh := m.checkTree(0, m.alive()) // every address verifies; parents are honest neighbours
	if sh.root != root {
		t.Errorf("root %d, want %d", sh.root, root)
	}
	for _, i := range m.alive() {
		ch, _ := m.trees[i].Chain(0)
		for _, c := range ch.Certs {
			if bytes.Equal(c.Child[:], rg.pk()) {
				t.Errorf("node %d's chain runs through the liar", i)
			}
		}
	}
	deeper, hdeeper := 0, 0
	for _, i := range m.alive() {
		deeper += sh.depth[i] - hops[i]
		hdeeper += hsh.depth[i] - hops[i]
	}
	t.Logf("liar next to %v (%d hops from root %d): converged in %v (honest mesh: %v); levels beyond breadth-first: %d (honest: %d)",
		victims, hops[far], root, took, honestTook, deeper, hdeeper)
	if took <= honestTook {
		t.Logf("note: the lie did not slow formation down in this run")
	}

	// Its false positions: it replays what it heard its neighbours
	// announce, to the others.
	replays := 0
	for _, msg := range rg.heard {
		var owner []byte
		var b []byte
		switch msg.typ {
		case MsgPosition:
			owner, b = msg.cert.Child[:], appendPositionMsg(&msg)
		case MsgNotify:
			owner, b = msg.chain.Holder(), appendNotify(nil, &msg.chain)
		default:
			continue
		}
		j := m.index(owner)
		if j < 0 || msg.treeState != sh.ts && msg.chain.Claim.TreeState() != sh.ts {
			continue // an older epoch's
		}
		for _, v := range victims {
			if v == j {
				continue
			}
			before := m.trees[v].Stats().Rejected
			rg.send(v, b)
			if got := m.trees[v].Stats().Rejected - before; got != 1 {
				t.Errorf("node %d: the liar's replay of %d's position counted %d rejections, want 1", v, j, got)
			}
			replays++
		}
	}
	if replays == 0 {
		t.Fatal("the liar heard no position to replay")
	}
	for _, v := range victims {
		for _, nb := range m.trees[v].Neighbors(0, sh.ts) {
			if nb.Via == rg.ep() || nb.ID == identity.NodeID(rg.pk()) {
				t.Errorf("node %d believes the liar is at %v", v, nb.Addr)
			}
		}
	}
	m.checkTree(0, m.alive())
	t.Logf("%d replayed positions rejected", replays)
}

// appendPositionMsg re-encodes a decoded position as it came.
func appendPositionMsg(m *message) []byte {
	b := append([]byte{MsgPosition, m.tree, m.treeState}, m.parent[:]...)
	b = m.cert.AppendTo(b)
	return append(b, m.depth)
}

// TestDistanceLiarInTree: a liar that otherwise runs the tree honestly,
// halfway out from the root, gathers children (those beyond it ask it
// first), but every address under it verifies and is one level below its
// own real place, and nobody is left without a place.
func TestDistanceLiarInTree(t *testing.T) {
	h := newMesh(t, 25, gridEdges(5, 5), Config{Trees: 1}, 33)
	h.start()
	honestTook := h.waitConverged(10 * beaconPeriod)

	m := newMesh(t, 25, gridEdges(5, 5), Config{Trees: 1}, 33)
	root := m.bestScore(0, m.alive())
	hops := m.hopsFrom(root)
	farthest := slices.Max(hops)
	// The node halfway out with the most neighbours farther out.
	liar, beyond := -1, 0
	for i, d := range hops {
		n := 0
		for j, e := range m.adj[i] {
			if e && hops[j] > d {
				n++
			}
		}
		if d == farthest/2 && n > beyond {
			liar, beyond = i, n
		}
	}
	tr := m.trees[liar]
	passed := map[int64]bool{}
	m.nodes[liar].Register(AppID, func(msg node.Message) {
		tr.HandleMessage(msg)
		var mm message
		if mm.decode(msg.Blob) == nil && mm.typ == MsgClaim && !passed[mm.claim.Time] {
			passed[mm.claim.Time] = true
			m.nodes[liar].Broadcast(AppID, appendClaim(nil, &mm.claim, 0), nil)
		}
	})
	m.start()
	took := m.waitConverged(10 * beaconPeriod)
	sh := m.checkTree(0, m.alive())
	var children []int
	for i, p := range sh.parent {
		if p == liar {
			children = append(children, i)
			if sh.depth[i] != sh.depth[liar]+1 {
				t.Errorf("the liar's child %d at depth %d, the liar at %d", i, sh.depth[i], sh.depth[liar])
			}
		}
	}
	if sh.depth[liar] < hops[liar] {
		t.Errorf("the liar holds depth %d, %d hops from the root", sh.depth[liar], hops[liar])
	}
	slices.Sort(children)
	deeper := 0
	for _, i := range m.alive() {
		deeper += sh.depth[i] - hops[i]
	}
	t.Logf("liar %d (%d hops from the root, depth %d) has children %v; converged in %v (honest mesh: %v); levels beyond breadth-first: %d",
		liar, hops[liar], sh.depth[liar], children, took, honestTook, deeper)
}
