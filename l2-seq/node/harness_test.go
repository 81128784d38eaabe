package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

var testApp = packet.NewAppID("test", "node tests", 1)

// mesh is a set of nodes on one simulated medium.
type mesh struct {
	t      testing.TB
	clk    *clock.Virtual
	m      *sim.Medium
	radios []*sim.Radio
	nodes  []*Node
	got    [][]Message
}

// newMesh builds n nodes on phy; connect decides the graph (nil: a line).
func newMesh(t testing.TB, n int, phy sim.PHY, loss sim.Loss, seed uint64, cfg func(i int, c *Config)) *mesh {
	clk := clock.NewVirtual(time.Time{})
	me := &mesh{t: t, clk: clk, m: sim.NewMedium(clk, phy, seed), got: make([][]Message, n)}
	for i := range n {
		r := me.m.AddRadio(sim.Position{})
		me.radios = append(me.radios, r)
		c := Config{Clock: clk, Identity: identity.FromSeed([32]byte{byte(i + 1), byte(seed)}), Links: []link.Link{r}, Seed: seed*1000 + uint64(i)}
		if cfg != nil {
			cfg(i, &c)
		}
		nd, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		i := i
		nd.Register(testApp, func(m Message) { me.got[i] = append(me.got[i], m) })
		me.nodes = append(me.nodes, nd)
	}
	for i := 1; i < n; i++ {
		me.m.Connect(me.radios[i-1], me.radios[i], loss, loss)
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
