package tree

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// beaconPeriod is the nodes' beacon period in these tests (node's default).
const beaconPeriod = 60 * time.Second

// mesh is a simulated mesh of tree nodes: one ESP-NOW radio each on a
// sim.Medium, explicit edges, a virtual clock. Everything runs on the
// test's goroutine (the clock only moves when the test runs it).
type mesh struct {
	t      testing.TB
	seed   uint64
	net    *simnet.Net
	clk    *clock.Virtual
	med    *sim.Medium
	memo   *cert.Memo
	radios []*sim.Radio
	nodes  []*node.Node
	trees  []*Trees
	adj    [][]bool // current radio edges
	linked [][]bool // edges that ever were (a node's peer table keeps dead neighbours)
	dead   []bool
}

// newMesh builds n tree nodes joined by edges (pairs of indices), lossless.
// Node i's identity is identity.FromSeed({i, i>>8, seed}): reproducible.
func newMesh(t testing.TB, n int, edges [][2]int, cfg Config, seed uint64) *mesh {
	t.Helper()
	return newMeshOutside(t, n, edges, cfg, seed)
}

// newMeshOutside is newMesh with the nodes listed in outside taking no
// part in the trees (a node and its link layer only, as our boards:
// m.trees[i] is nil).
func newMeshOutside(t testing.TB, n int, edges [][2]int, cfg Config, seed uint64, outside ...int) *mesh {
	t.Helper()
	net := simnet.New()
	clk := net.Clock
	m := &mesh{t: t, seed: seed, net: net, clk: clk, med: net.AddMedium("espnow", phys.ESPNOW(), seed), memo: cert.NewMemo()}
	if cfg.Memo == nil {
		cfg.Memo = m.memo
	}
	m.adj = make([][]bool, n)
	m.linked = make([][]bool, n)
	m.dead = make([]bool, n)
	for i := range n {
		m.adj[i] = make([]bool, n)
		m.linked[i] = make([]bool, n)
		net.AddStation(sim.Position{X: float64(i)}, "espnow")
		r := net.Radio(i, "espnow")
		nd, err := node.New(node.Config{Clock: clk, Links: net.Links(i), Identity: testIdentity(i, seed), Seed: seed*1000 + uint64(i), BeaconPeriod: beaconPeriod})
		if err != nil {
			t.Fatal(err)
		}
		m.radios = append(m.radios, r)
		m.nodes = append(m.nodes, nd)
		if slices.Contains(outside, i) {
			m.trees = append(m.trees, nil)
			continue
		}
		tr, err := Attach(nd, cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.trees = append(m.trees, tr)
	}
	for _, e := range edges {
		m.connect(e[0], e[1])
	}
	return m
}

func testIdentity(i int, seed uint64) identity.Identity {
	return identity.FromSeed([32]byte{byte(i), byte(i >> 8), byte(seed)})
}

func (m *mesh) start() {
	for i, n := range m.nodes {
		n.Start()
		if m.trees[i] != nil {
			m.trees[i].Start()
		}
	}
}

func (m *mesh) connect(a, b int) {
	m.net.Connect("espnow", a, b, sim.Independent(0), sim.Independent(0))
	m.adj[a][b], m.adj[b][a] = true, true
	m.linked[a][b], m.linked[b][a] = true, true
}

func (m *mesh) disconnect(a, b int) {
	m.net.Disconnect("espnow", a, b)
	m.adj[a][b], m.adj[b][a] = false, false
}

// kill crashes node i: its node closes, its radio goes off the air at once
// (its goodbye never gets out), so neighbours learn of it only by silence.
func (m *mesh) kill(i int) {
	for j := range m.adj[i] {
		if m.adj[i][j] {
			m.disconnect(i, j)
		}
	}
	m.nodes[i].Close()
	if err := m.radios[i].Close(); err != nil {
		m.t.Fatal(err)
	}
	m.dead[i] = true
}

// rootNode is the node that holds the root's place in tree k's current
// epoch (-1: none).
func (m *mesh) rootNode(k int) int {
	root := -1
	for i := range m.trees {
		if p, ok := m.trees[i].Current(k); ok && p.Root {
			root = i
		}
	}
	return root
}

// alive lists the live nodes.
func (m *mesh) alive() []int {
	var out []int
	for i, d := range m.dead {
		if !d {
			out = append(out, i)
		}
	}
	return out
}

func (m *mesh) id(i int) identity.NodeID { return m.nodes[i].ID() }

// index returns the node whose key pk is (-1 if none).
func (m *mesh) index(pk []byte) int {
	for i, n := range m.nodes {
		id := n.ID()
		if bytes.Equal(id[:], pk) {
			return i
		}
	}
	return -1
}

// ep is the endpoint at which node from hears node to.
func (m *mesh) ep(to int) peer.Endpoint {
	return peer.Endpoint{Link: 0, Addr: m.radios[to].Addr()}
}

// converged reports whether, in tree k, every node of group has a place in
// one epoch of one live root that is a member of the group, and knows the
// place of each live neighbour.
func (m *mesh) converged(k int, group []int) bool {
	var root ed25519.PublicKey
	var ts uint8
	if len(group) > 0 {
		r, _ := m.trees[group[0]].Root(k)
		if !slices.Contains(group, m.index(r)) {
			return false
		}
	}
	for n, i := range group {
		p, ok := m.trees[i].Current(k)
		if !ok {
			return false
		}
		r, alive := m.trees[i].Root(k)
		if !alive {
			return false
		}
		if n == 0 {
			root, ts = r, p.TreeState
		} else if !bytes.Equal(root, r) || p.TreeState != ts {
			return false
		}
		known := 0
		for _, nb := range m.trees[i].Neighbors(k, ts) {
			if j := m.index(nb.ID[:]); j >= 0 && m.adj[i][j] && !m.dead[j] {
				known++
			}
		}
		want := 0
		for j, e := range m.adj[i] {
			if e && !m.dead[j] {
				want++
			}
		}
		if known < want {
			return false
		}
	}
	return true
}

// allConverged is converged for every tree and every group.
func (m *mesh) allConverged(groups ...[]int) bool {
	for k := range m.trees[0].Count() {
		for _, g := range groups {
			if !m.converged(k, g) {
				return false
			}
		}
	}
	return true
}

// runUntil runs the clock in steps of a second until cond holds, for at
// most limit; it returns how long that took and whether cond held.
// (Checking between events would cost more than the simulation.)
func (m *mesh) runUntil(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := m.clk.Now()
	for !cond() {
		if m.clk.Now().Sub(start) >= limit {
			return m.clk.Now().Sub(start), false
		}
		m.clk.RunFor(time.Second)
	}
	return m.clk.Now().Sub(start), true
}

// waitConverged runs until every group has converged in every tree, or
// fails the test after limit.
func (m *mesh) waitConverged(limit time.Duration, groups ...[]int) time.Duration {
	m.t.Helper()
	if len(groups) == 0 {
		groups = [][]int{m.alive()}
	}
	took, ok := m.runUntil(limit, func() bool { return m.allConverged(groups...) })
	if !ok {
		m.dump()
		m.t.Fatalf("not converged after %v", limit)
	}
	return took
}

// dump logs every live node's positions (for a failing test).
func (m *mesh) dump() {
	for _, i := range m.alive() {
		for k := range m.trees[i].Count() {
			p, ok := m.trees[i].Current(k)
			r, alive := m.trees[i].Root(k)
			var missing []int
			for j, e := range m.adj[i] {
				if !e || m.dead[j] {
					continue
				}
				known := false
				for _, nb := range m.trees[i].Neighbors(k, p.TreeState) {
					known = known || m.index(nb.ID[:]) == j
				}
				if !known {
					missing = append(missing, j)
				}
			}
			m.t.Logf("node %2d tree %d: placed %v %+v root %v alive %v; neighbours' places unknown: %v", i, k, ok, p, m.index(r), alive, missing)
		}
	}
}

// treeShape is what checkTree found.
type treeShape struct {
	root   int
	ts     uint8
	depth  map[int]int
	parent map[int]int // -1 for the root
}

// checkTree checks tree k over group thoroughly: one live root known to
// all, one epoch; each node's chain verifies with a fresh Verifier (no
// cache, no memo), is held by the node itself, proves its Current
// address, and was issued by a neighbour of the group whose own address is
// the parent of ours; addresses are unique.
func (m *mesh) checkTree(k int, group []int) treeShape {
	m.t.Helper()
	return m.checkTreeEdges(k, group, true)
}

// checkChains is checkTree without the demand that each node's parent be
// a live neighbour in the group: within an epoch a node keeps its address
// when its parent goes (or is cut off).
func (m *mesh) checkChains(k int, group []int) treeShape {
	m.t.Helper()
	return m.checkTreeEdges(k, group, false)
}

func (m *mesh) checkTreeEdges(k int, group []int, edges bool) treeShape {
	m.t.Helper()
	sh := treeShape{root: -1, depth: map[int]int{}, parent: map[int]int{}}
	r0, _ := m.trees[group[0]].Root(k)
	sh.root = m.index(r0)
	if !slices.Contains(group, sh.root) {
		m.t.Fatalf("tree %d: root %d is not in the group %v", k, sh.root, group)
	}
	rp, ok := m.trees[sh.root].Current(k)
	if !ok || !rp.Root || rp.Depth != 0 || !rp.Addr.Equal(addr.Long{}) {
		m.t.Fatalf("tree %d: root %d's position %+v (placed %v)", k, sh.root, rp, ok)
	}
	sh.ts = rp.TreeState
	v := cert.NewVerifier(nil)
	seen := map[addr.Long]int{}
	for _, i := range group {
		p, ok := m.trees[i].Current(k)
		if !ok {
			m.t.Fatalf("tree %d: node %d has no position", k, i)
		}
		r, alive := m.trees[i].Root(k)
		if !alive || m.index(r) != sh.root {
			m.t.Fatalf("tree %d: node %d's root is %d (alive %v), want %d", k, i, m.index(r), alive, sh.root)
		}
		if p.TreeState != sh.ts || p.Term != rp.Term || int(p.Tree) != k || TreeOf(p.TreeState) != k {
			m.t.Fatalf("tree %d: node %d in epoch %d term %d tree %d, root's is %d term %d", k, i, p.TreeState, p.Term, p.Tree, sh.ts, rp.Term)
		}
		ch, ok := m.trees[i].Chain(k)
		if !ok {
			m.t.Fatalf("tree %d: node %d has a position but no chain", k, i)
		}
		id := m.id(i)
		if err := ch.CheckHolder(id[:]); err != nil {
			m.t.Fatalf("tree %d: node %d: %v", k, i, err)
		}
		if !bytes.Equal(ch.Claim.Root[:], r0) || ch.Claim.Term() != (cert.Term{Tree: uint8(k), TreeState: sh.ts, Root: [32]byte(r0), Start: rp.Term}) {
			m.t.Fatalf("tree %d: node %d's chain is of another term", k, i)
		}
		a, err := v.Verify(&ch)
		if err != nil {
			m.t.Fatalf("tree %d: node %d's chain does not verify: %v", k, i, err)
		}
		if !a.Equal(p.Addr) || p.Depth != ch.Depth() || p.Addr.Depth() != p.Depth {
			m.t.Fatalf("tree %d: node %d at %v depth %d, its chain proves %v depth %d", k, i, p.Addr, p.Depth, a, ch.Depth())
		}
		if j, dup := seen[a]; dup {
			m.t.Fatalf("tree %d: nodes %d and %d share address %v", k, j, i, a)
		}
		seen[a] = i
		sh.depth[i] = p.Depth
		if i == sh.root {
			sh.parent[i] = -1
			continue
		}
		if p.Root {
			m.t.Fatalf("tree %d: node %d says it is the root", k, i)
		}
		issuer := ch.Claim.Root[:]
		if n := len(ch.Certs); n > 1 {
			issuer = ch.Certs[n-2].Child[:]
		}
		j := m.index(issuer)
		if j < 0 {
			m.t.Fatalf("tree %d: node %d's parent is no node of the mesh", k, i)
		}
		if !edges {
			sh.parent[i] = j
			continue
		}
		if !slices.Contains(group, j) || !m.adj[i][j] {
			m.t.Fatalf("tree %d: node %d's parent %d is not a live neighbour", k, i, j)
		}
		pp, ok := m.trees[j].Current(k)
		want, hasParent := p.Addr.Parent()
		if !ok || !hasParent || !pp.Addr.Equal(want) || pp.TreeState != sh.ts {
			m.t.Fatalf("tree %d: node %d at %v, its parent %d at %v (placed %v)", k, i, p.Addr, j, pp.Addr, ok)
		}
		sh.parent[i] = j
	}
	// What each node believes of its neighbours' places in this epoch is
	// true (routing trusts it for the whole epoch).
	for _, i := range group {
		for _, nb := range m.trees[i].Neighbors(k, sh.ts) {
			j := m.index(nb.ID[:])
			if !slices.Contains(group, j) {
				continue
			}
			if p, _ := m.trees[j].Current(k); !p.Addr.Equal(nb.Addr) {
				m.t.Fatalf("tree %d: node %d believes neighbour %d is at %v; it is at %v", k, i, j, nb.Addr, p.Addr)
			}
		}
	}
	return sh
}

// hopsFrom is the breadth-first hop distance from root over the current
// edges among live nodes (-1: unreachable).
func (m *mesh) hopsFrom(root int) []int {
	d := make([]int, len(m.nodes))
	for i := range d {
		d[i] = -1
	}
	d[root] = 0
	q := []int{root}
	for len(q) > 0 {
		i := q[0]
		q = q[1:]
		for j, e := range m.adj[i] {
			if e && !m.dead[j] && d[j] < 0 {
				d[j] = d[i] + 1
				q = append(q, j)
			}
		}
	}
	return d
}

// components splits the live nodes into the groups that can hear each
// other (through others), each in index order, the largest first.
func (m *mesh) components() [][]int {
	var out [][]int
	seen := make([]bool, len(m.nodes))
	for _, i := range m.alive() {
		if seen[i] {
			continue
		}
		var c []int
		for j, d := range m.hopsFrom(i) {
			if d >= 0 {
				seen[j] = true
				c = append(c, j)
			}
		}
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b []int) int { return len(b) - len(a) })
	return out
}

// bestScore is the node of group with the lowest score in tree k: the one
// that must win its election. A node of one neighbour is not a candidate
// while the group has another (leafElection).
func (m *mesh) bestScore(k int, group []int) int {
	best, worstLeaf := -1, -1
	var bs, wls [32]byte
	for _, i := range group {
		s := cert.Score(m.nodes[i].Signer().Public(), uint8(k))
		if m.degree(i) == 1 {
			if worstLeaf < 0 || cert.Less(wls, s) {
				worstLeaf, wls = i, s
			}
			continue
		}
		if best < 0 || cert.Less(s, bs) {
			best, bs = i, s
		}
	}
	if best < 0 {
		// All leaves: two nodes joined only to each other. The better
		// holds at a cold start, its neighbour being worse, and the worse
		// stands when its delay ends (leafElection).
		return worstLeaf
	}
	return best
}

// degree is how many radio neighbours node i has had, dead or alive (its
// peer table's count).
func (m *mesh) degree(i int) int {
	d := 0
	for _, e := range m.linked[i] {
		if e {
			d++
		}
	}
	return d
}

// Graphs.

func lineEdges(n int) [][2]int {
	var e [][2]int
	for i := 1; i < n; i++ {
		e = append(e, [2]int{i - 1, i})
	}
	return e
}

func starEdges(leaves int) [][2]int {
	var e [][2]int
	for i := 1; i <= leaves; i++ {
		e = append(e, [2]int{0, i})
	}
	return e
}

func gridEdges(w, h int) [][2]int {
	var e [][2]int
	for y := range h {
		for x := range w {
			i := y*w + x
			if x+1 < w {
				e = append(e, [2]int{i, i + 1})
			}
			if y+1 < h {
				e = append(e, [2]int{i, i + w})
			}
		}
	}
	return e
}

// randomEdges is a random geometric graph of n nodes in a 100 m square
// joined within radius, made connected by joining each stray component to
// its nearest node outside it. Deterministic from seed.
func randomEdges(n int, radius float64, seed uint64) [][2]int {
	r := rand.New(rand.NewPCG(seed, 0x74726565))
	pos := make([]sim.Position, n)
	for i := range pos {
		pos[i] = sim.Position{X: r.Float64() * 100, Y: r.Float64() * 100}
	}
	var e [][2]int
	adj := make([][]bool, n)
	for i := range adj {
		adj[i] = make([]bool, n)
	}
	add := func(a, b int) {
		e = append(e, [2]int{a, b})
		adj[a][b], adj[b][a] = true, true
	}
	for i := range n {
		for j := i + 1; j < n; j++ {
			if pos[i].Dist(pos[j]) < radius {
				add(i, j)
			}
		}
	}
	for {
		comp := make([]bool, n)
		comp[0] = true
		q := []int{0}
		for len(q) > 0 {
			i := q[0]
			q = q[1:]
			for j := range n {
				if adj[i][j] && !comp[j] {
					comp[j] = true
					q = append(q, j)
				}
			}
		}
		ba, bb, bd := -1, -1, 0.0
		for i := range n {
			for j := range n {
				if comp[i] && !comp[j] && (ba < 0 || pos[i].Dist(pos[j]) < bd) {
					ba, bb, bd = i, j, pos[i].Dist(pos[j])
				}
			}
		}
		if ba < 0 {
			return e
		}
		add(ba, bb)
	}
}

// positions is every live node's position in every tree, as text (for
// comparing runs).
func (m *mesh) positions() []string {
	var out []string
	for i := range m.nodes {
		for k := range m.trees[i].Count() {
			p, ok := m.trees[i].Current(k)
			out = append(out, fmt.Sprintf("node %d tree %d: %v %+v %v", i, k, ok, p, p.Addr))
		}
	}
	return out
}

// childAndParent returns the last node (by index) placed in tree 0 whose
// position satisfies want, and its parent there; -1, -1 if there is none.
func (m *mesh) childAndParent(want func(Position) bool) (child, parent int) {
	child, parent = -1, -1
	for i := range m.nodes {
		p, ok := m.trees[i].Current(0)
		if !ok || !want(p) {
			continue
		}
		pa, _ := p.Addr.Parent()
		for j := range m.nodes {
			if q, ok := m.trees[j].Current(0); ok && q.Addr.Equal(pa) {
				child, parent = i, j
			}
		}
	}
	return child, parent
}
