package route

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

var testApp = packet.NewAppID("test", "route tests", 1)

type tmesh struct {
	t      testing.TB
	net    *simnet.Net
	clk    *clock.Virtual
	m      *sim.Medium
	radios []*sim.Radio
	nodes  []*node.Node
	trees  []*tree.Trees
	rts    []*Router
	got    [][]node.Message
}

// newTMesh builds n routing nodes; edges lists the graph (pairs of indices).
func newTMesh(t testing.TB, n int, edges [][2]int, loss float64, tcfg tree.Config, seed uint64) *tmesh {
	net := simnet.New()
	clk := net.Clock
	me := &tmesh{t: t, net: net, clk: clk, m: net.AddMedium("espnow", phys.ESPNOW(), seed), got: make([][]node.Message, n)}
	if tcfg.Memo == nil {
		tcfg.Memo = cert.NewMemo()
	}
	for i := range n {
		net.AddStation(sim.Position{X: float64(i)}, "espnow")
		me.radios = append(me.radios, net.Radio(i, "espnow"))
		nd, err := node.New(node.Config{Clock: clk, Links: net.Links(i), Identity: identity.FromSeed([32]byte{byte(i), byte(i >> 8), byte(seed)}), Seed: seed*1000 + uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		i := i
		nd.Register(testApp, func(m node.Message) { me.got[i] = append(me.got[i], m) })
		rt, err := Attach(nd, tcfg, Config{})
		if err != nil {
			t.Fatal(err)
		}
		me.nodes = append(me.nodes, nd)
		me.trees = append(me.trees, rt.Trees())
		me.rts = append(me.rts, rt)
	}
	l := sim.Independent(loss)
	for _, e := range edges {
		net.Connect("espnow", e[0], e[1], l, l)
	}
	return me
}

func (me *tmesh) start() {
	for i, n := range me.nodes {
		n.Start()
		me.trees[i].Start()
	}
}

// converged reports whether every node has a current position in every
// tree, with the same root, and knows its neighbours' positions.
func (me *tmesh) converged() bool {
	for k := range me.trees[0].Count() {
		var root []byte
		for i, t := range me.trees {
			p, ok := t.Current(k)
			if !ok {
				return false
			}
			r, alive := t.Root(k)
			if !alive {
				return false
			}
			if i == 0 {
				root = r
			} else if string(root) != string(r) {
				return false
			}
			if len(t.Neighbors(k, p.TreeState)) < len(me.radios[i].Neighbors()) {
				return false
			}
		}
	}
	return true
}

func (me *tmesh) runUntilConverged(limit time.Duration) time.Duration {
	me.t.Helper()
	start := me.clk.Now()
	if !me.clk.RunWhile(start.Add(limit), func() bool { return !me.converged() }) && !me.converged() {
		for i, t := range me.trees {
			for k := range t.Count() {
				p, ok := t.Current(k)
				me.t.Logf("node %d tree %d: %v %v", i, k, ok, p)
			}
		}
		me.t.Fatalf("not converged after %v", limit)
	}
	return me.clk.Now().Sub(start)
}

func line(n int) [][2]int {
	var e [][2]int
	for i := 1; i < n; i++ {
		e = append(e, [2]int{i - 1, i})
	}
	return e
}

func TestLineConvergesAndRoutes(t *testing.T) {
	me := newTMesh(t, 6, line(6), 0, tree.Config{Trees: 2}, 1)
	me.start()
	took := me.runUntilConverged(10 * time.Minute)
	t.Logf("converged in %v", took)
	src, dst := me.rts[0], me.rts[5]
	res := src.Send(me.nodes[5].ID(), testApp, []byte("hello over five hops"), nil)
	me.clk.RunWhile(me.clk.Now().Add(time.Minute), func() bool { return !res.Finished() })
	if err := res.Err(); err != nil || !res.Finished() {
		t.Fatalf("send: finished %v err %v", res.Finished(), err)
	}
	if len(me.got[5]) != 1 || string(me.got[5][0].Blob) != "hello over five hops" || me.got[5][0].Route == nil {
		t.Fatalf("delivered %+v", me.got[5])
	}
	_ = dst
}
