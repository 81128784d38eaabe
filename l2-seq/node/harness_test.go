package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

var testApp = packet.NewAppID("test", "node tests", 1)

// mesh is a set of nodes on one simulated medium (a simnet.Net).
type mesh struct {
	t      testing.TB
	net    *simnet.Net
	clk    *clock.Virtual
	m      *sim.Medium
	radios []*sim.Radio
	nodes  []*Node
	got    [][]Message
}

// emptyMesh is a network with one medium of phy and no nodes yet.
func emptyMesh(t testing.TB, phy sim.PHY, seed uint64) *mesh {
	net := simnet.New()
	return &mesh{t: t, net: net, clk: net.Clock, m: net.AddMedium("m", phy, seed)}
}

// add puts a node on a new station at pos; c's Clock and Links are filled
// in, then adjust (if any) may change them.
func (me *mesh) add(pos sim.Position, c Config, adjust ...func(*Config)) *Node {
	me.t.Helper()
	i := me.net.AddStation(pos, "m")
	me.radios = append(me.radios, me.net.Radio(i, "m"))
	c.Clock, c.Links = me.clk, me.net.Links(i)
	for _, f := range adjust {
		f(&c)
	}
	nd, err := New(c)
	if err != nil {
		me.t.Fatal(err)
	}
	me.got = append(me.got, nil)
	nd.Register(testApp, func(m Message) { me.got[i] = append(me.got[i], m) })
	me.nodes = append(me.nodes, nd)
	return nd
}

// connect joins nodes a and b with loss both ways.
func (me *mesh) connect(a, b int, loss sim.Loss) { me.net.Connect("m", a, b, loss, loss) }

// newMesh builds n nodes on phy joined in a line; cfg adjusts each node's
// configuration.
func newMesh(t testing.TB, n int, phy sim.PHY, loss sim.Loss, seed uint64, cfg func(i int, c *Config)) *mesh {
	me := emptyMesh(t, phy, seed)
	for i := range n {
		c := Config{Identity: identity.FromSeed([32]byte{byte(i + 1), byte(seed)}), Seed: seed*1000 + uint64(i)}
		me.add(sim.Position{}, c, func(c *Config) {
			if cfg != nil {
				cfg(i, c)
			}
		})
	}
	for i := 1; i < n; i++ {
		me.connect(i-1, i, loss)
	}
	return me
}

func (me *mesh) start() {
	for _, n := range me.nodes {
		n.Start()
	}
}

// discover runs until every node knows its graph neighbours.
func (me *mesh) discover() {
	me.t.Helper()
	ok := me.clk.RunWhile(me.clk.Now().Add(10*time.Minute), func() bool {
		for i, r := range me.radios {
			if me.nodes[i].peers.Len() < len(r.Neighbors()) {
				return true
			}
		}
		return false
	})
	if !ok {
		for i, n := range me.nodes {
			me.t.Logf("node %d knows %d peers", i, n.peers.Len())
		}
		me.t.Fatal("peers not discovered in 10 minutes")
	}
}

// wait runs until r completes (or the deadline passes) and returns its error.
func (me *mesh) wait(r *Result, d time.Duration) error {
	me.t.Helper()
	me.clk.RunWhile(me.clk.Now().Add(d), func() bool { return !r.Finished() })
	if !r.Finished() {
		me.t.Fatalf("send did not finish within %v", d)
	}
	return r.Err()
}

func blob(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

func TestSmallAndLargeSend(t *testing.T) {
	me := newMesh(t, 2, phys.ESPNOW(), sim.Loss{}, 1, nil)
	me.start()
	me.discover()
	a, b := me.nodes[0], me.nodes[1]
	if p := a.Peer(b.ID()); p == nil || !p.Full {
		t.Fatalf("a's view of b: %+v", p)
	}
	for _, size := range []int{0, 10, 212, 213, 500, 62207 - 32, 100000} {
		data := blob(size, byte(size))
		before := len(me.got[1])
		r := a.Send(b.ID(), testApp, data, nil)
		if err := me.wait(r, time.Minute); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if len(me.got[1]) != before+1 || !bytes.Equal(me.got[1][before].Blob, data) {
			t.Fatalf("size %d: not delivered exactly once", size)
		}
		m := me.got[1][before]
		if !m.FromKnown || m.From != a.ID() {
			t.Fatalf("size %d: from %v", size, m.From)
		}
	}
	t.Logf("a stats: %+v", a.Stats())
}
