package route

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// hmesh is a richer harness than tmesh: several media (a node may carry a
// radio on each, as a gateway does), reference nodes (no tree, no router,
// beacons without the capabilities app_id: PROTOCOL 11), leaves, a router
// configuration per node, chosen identities, and a log of every routing
// decision any router made, in the order they were made.
type hmesh struct {
	t     testing.TB
	seed  uint64
	net   *simnet.Net
	clk   *clock.Virtual
	tcfg  tree.Config
	media map[string]*sim.Medium
	nodes []*hnode
	hops  []hopAt
}

// hnode is one node of an hmesh.
type hnode struct {
	idx    int
	n      *node.Node
	tr     *tree.Trees // nil for a reference node
	rt     *Router     // nil for a reference node
	radios map[string]*sim.Radio
	got    []node.Message
	ref    bool
	leaf   bool
}

// hopAt is one routing decision, with who made it and when.
type hopAt struct {
	Hop
	node int
	at   time.Time
}

// hspec describes a node to add.
type hspec struct {
	media []string // a radio on each named medium, in link order (default: "espnow")
	ref   bool     // a reference node
	leaf  bool     // a leaf: its trees are never started; SetLeaf at start
	// leafTreeApp leaves a leaf's tree application registered. By default
	// the harness unregisters it: trees that were never started still
	// answer claims, stand for election and take places (see
	// TestLeafStaysOutOfTrees), so a leaf would join them.
	leafTreeApp bool
	rcfg        Config
	id          *identity.Identity // default: derived from the index and the seed
	beacon      time.Duration      // the node's beacon period (default: the node's)
	giveUp      time.Duration      // the node's give-up on a neighbour (default: the node's)
}

func newHMesh(t testing.TB, tcfg tree.Config, seed uint64) *hmesh {
	if tcfg.Memo == nil {
		tcfg.Memo = cert.NewMemo()
	}
	net := simnet.New()
	return &hmesh{t: t, seed: seed, net: net, clk: net.Clock, tcfg: tcfg, media: map[string]*sim.Medium{}}
}

// medium adds a medium named name.
func (me *hmesh) medium(name string, phy sim.PHY) *sim.Medium {
	m := me.net.AddMedium(name, phy, me.seed*7+uint64(len(me.media)))
	me.media[name] = m
	return m
}

// hid is the identity the harness gives node i by default.
func hid(i int, seed uint64) identity.Identity {
	return identity.FromSeed([32]byte{byte(i), byte(i >> 8), byte(seed), 0x68})
}

// add builds a node (not started) and returns its index.
func (me *hmesh) add(s hspec) int {
	i := len(me.nodes)
	if len(s.media) == 0 {
		s.media = []string{"espnow"}
	}
	if _, ok := me.media["espnow"]; !ok && slices.Contains(s.media, "espnow") {
		me.medium("espnow", phys.ESPNOW())
	}
	hn := &hnode{idx: i, radios: map[string]*sim.Radio{}, ref: s.ref, leaf: s.leaf}
	for _, name := range s.media {
		if me.media[name] == nil {
			me.t.Fatalf("no medium %q", name)
		}
	}
	me.net.AddStation(sim.Position{X: float64(i)}, s.media...)
	for _, name := range s.media {
		hn.radios[name] = me.net.Radio(i, name)
	}
	links := me.net.Links(i)
	id := hid(i, me.seed)
	if s.id != nil {
		id = *s.id
	}
	n, err := node.New(node.Config{Clock: me.clk, Links: links, Identity: id, Seed: me.seed*1000 + uint64(i), Reference: s.ref, BeaconPeriod: s.beacon, GiveUp: s.giveUp})
	if err != nil {
		me.t.Fatal(err)
	}
	hn.n = n
	n.Register(testApp, func(m node.Message) { hn.got = append(hn.got, m) })
	if !s.ref {
		rt, err := Attach(n, me.tcfg, s.rcfg)
		if err != nil {
			me.t.Fatal(err)
		}
		hn.rt, hn.tr = rt, rt.Trees()
		hn.rt.Observe(func(h Hop) {
			me.hops = append(me.hops, hopAt{Hop: h, node: i, at: me.clk.Now()})
			// Every decision of every test holds the invariant that makes
			// loops impossible.
			if err := h.Check(me.router); err != nil {
				me.t.Errorf("node %d: %v", i, err)
			}
		})
		if s.leaf && !s.leafTreeApp {
			n.Unregister(tree.AppID)
		}
	}
	me.nodes = append(me.nodes, hn)
	return i
}

// connect links nodes a and b on the named medium, without loss.
func (me *hmesh) connect(medium string, a, b int) {
	if me.nodes[a].radios[medium] == nil || me.nodes[b].radios[medium] == nil {
		me.t.Fatalf("nodes %d and %d do not both have a radio on %q", a, b, medium)
	}
	me.net.Connect(medium, a, b, sim.Independent(0), sim.Independent(0))
}

// edges connects pairs on ESP-NOW.
func (me *hmesh) edges(es [][2]int) {
	for _, e := range es {
		me.connect("espnow", e[0], e[1])
	}
}

func (me *hmesh) start() {
	for _, hn := range me.nodes {
		hn.n.Start()
		if hn.tr != nil && !hn.leaf {
			hn.tr.Start()
		}
	}
	for _, hn := range me.nodes {
		if hn.leaf {
			hn.rt.SetLeaf()
		}
	}
}

// full reports whether node i takes part in the trees.
func (me *hmesh) full(i int) bool { return !me.nodes[i].ref && !me.nodes[i].leaf }

// neighbours returns the nodes within radio reach of i, on any medium.
func (me *hmesh) neighbours(i int) []int { return me.net.Neighbors(i) }

// converged reports whether every full node has a position in every tree
// under one live root and knows the positions of all its full neighbours.
func (me *hmesh) converged() bool {
	var k0 *tree.Trees
	for i, hn := range me.nodes {
		if !me.full(i) {
			continue
		}
		if k0 == nil {
			k0 = hn.tr
		}
		for k := range hn.tr.Count() {
			p, ok := hn.tr.Current(k)
			if !ok {
				return false
			}
			r, alive := hn.tr.Root(k)
			r0, _ := k0.Root(k)
			if !alive || !bytes.Equal(r, r0) {
				return false
			}
			nbrs := hn.tr.Neighbors(k, p.TreeState)
			for _, j := range me.neighbours(i) {
				if !me.full(j) {
					continue
				}
				if !slices.ContainsFunc(nbrs, func(nb tree.Neighbor) bool { return nb.ID == me.nodes[j].n.ID() }) {
					return false
				}
			}
		}
	}
	return true
}

// run runs the mesh until cond holds or limit passes; it reports cond.
func (me *hmesh) run(limit time.Duration, cond func() bool) bool { return me.net.RunUntil(limit, cond) }

func (me *hmesh) mustConverge(limit time.Duration) time.Duration {
	me.t.Helper()
	start := me.clk.Now()
	if !me.run(limit, me.converged) {
		for i, hn := range me.nodes {
			if !me.full(i) {
				continue
			}
			for k := range hn.tr.Count() {
				p, ok := hn.tr.Current(k)
				me.t.Logf("node %d tree %d: %v %v", i, k, ok, p)
			}
		}
		me.t.Fatalf("not converged after %v", limit)
	}
	return me.clk.Now().Sub(start)
}

// mustRegister waits until the name record of every full node (but those
// in skip) is stored and confirmed.
func (me *hmesh) mustRegister(limit time.Duration, skip ...int) {
	me.t.Helper()
	ok := me.run(limit, func() bool {
		for i, hn := range me.nodes {
			if me.full(i) && !slices.Contains(skip, i) && !hn.rt.Registered() {
				return false
			}
		}
		return true
	})
	if !ok {
		me.t.Fatalf("records not registered after %v", limit)
	}
}

// wait runs the mesh until res finishes (fatal after limit) and returns
// its error.
func (me *hmesh) wait(res *node.Result, limit time.Duration) error {
	me.t.Helper()
	if !me.run(limit, res.Finished) {
		me.t.Fatalf("send not finished after %v", limit)
	}
	return res.Err()
}

// dest is node i's destination as its own router knows it.
func (me *hmesh) dest(i int) Destination {
	return Destination{ID: me.nodes[i].n.ID(), Addrs: me.nodes[i].rt.Addrs()}
}

// router returns the router of the node with node_id id (nil if none).
func (me *hmesh) router(id identity.NodeID) *Router {
	if i := me.index(id); i >= 0 {
		return me.nodes[i].rt
	}
	return nil
}

// index returns the node with node_id id (-1 if none).
func (me *hmesh) index(id identity.NodeID) int {
	for i, hn := range me.nodes {
		if hn.n.ID() == id {
			return i
		}
	}
	return -1
}

// pos is node i's current position in tree k.
func (me *hmesh) pos(i, k int) tree.Position {
	me.t.Helper()
	p, ok := me.nodes[i].tr.Current(k)
	if !ok {
		me.t.Fatalf("node %d has no position in tree %d", i, k)
	}
	return p
}

// path returns the nodes that routed the Package with hash h, in order,
// and whether it was delivered; it checks that each hop's Next is the node
// that decided next.
func (me *hmesh) path(h [16]byte) (nodes []int, delivered bool) {
	me.t.Helper()
	var prevNext identity.NodeID
	for _, ha := range me.hops {
		if ha.Hash != h {
			continue
		}
		if len(nodes) > 0 && ha.Self != prevNext {
			me.t.Errorf("hop at node %d follows a hop to %d", ha.node, me.index(prevNext))
		}
		nodes = append(nodes, ha.node)
		prevNext = ha.Next
		if ha.Delivered {
			delivered = true
		}
	}
	return nodes, delivered
}

// pkgHash is the hash of the Package carrying blob for testApp.
func pkgHash(blob []byte) [16]byte { return packet.NewPackage(testApp, blob).Hash }

// metricOf is the metric a routed Package's mode bit selects.
func metricOf(mode bool) addr.Metric {
	if mode {
		return addr.MetricCPL
	}
	return addr.MetricTree
}
