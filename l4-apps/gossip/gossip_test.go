package gossip

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
)

// mesh is nodes on the simulated ESP-NOW medium (the 802.11 DCF), each
// with gossip, connected as edges say.
type mesh struct {
	t      *testing.T
	clk    *clock.Virtual
	med    *sim.Medium
	radios []*sim.Radio
	nodes  []*node.Node
	svcs   []*Service
	got    [][]Delivery
}

var topic = Topic("test")

func newMesh(t *testing.T, n int, edges [][2]int, loss float64, cfg Config) *mesh {
	t.Helper()
	return newMeshNet(t, n, edges, loss, cfg, false)
}

// newMeshNet is newMesh with each node's broadcasts signed (signed:
// node.Signing) or not.
func newMeshNet(t *testing.T, n int, edges [][2]int, loss float64, cfg Config, signed bool) *mesh {
	t.Helper()
	m := &mesh{t: t, clk: clock.NewVirtual(time.Time{}), got: make([][]Delivery, n)}
	m.med = sim.NewMedium(m.clk, phys.ESPNOW(), 7)
	for i := range n {
		m.radios = append(m.radios, m.med.AddRadio(sim.Position{X: float64(i)}))
	}
	for _, e := range edges {
		m.med.Connect(m.radios[e[0]], m.radios[e[1]], sim.Independent(loss), sim.Independent(loss))
	}
	for i := range n {
		nd, err := node.New(node.Config{Clock: m.clk, Links: []link.Link{m.radios[i]}, Identity: identity.FromSeed([32]byte{byte(i), 0x60}), Seed: uint64(i) + 1})
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.Clock, c.Net, c.Self, c.Seed = m.clk, nd, nd.ID(), uint64(i)+1
		if signed {
			c.Net = node.Signing{Node: nd}
		}
		svc := New(c)
		nd.Register(AppID, svc.Handle)
		svc.Subscribe(topic, func(d Delivery) { m.got[i] = append(m.got[i], d) })
		m.nodes, m.svcs = append(m.nodes, nd), append(m.svcs, svc)
	}
	for i := range n {
		m.nodes[i].Start()
		m.svcs[i].Start()
	}
	m.run(15 * time.Second) // the early hellos
	return m
}

func (m *mesh) run(d time.Duration) { m.clk.RunUntil(m.clk.Now().Add(d)) }

func line(n int) [][2]int {
	var e [][2]int
	for i := 1; i < n; i++ {
		e = append(e, [2]int{i - 1, i})
	}
	return e
}

// A Message published on one end of a line reaches every node once, and
// the hellos taught each node its neighbours and theirs.
func TestLineDelivers(t *testing.T) {
	m := newMesh(t, 6, line(6), 0, Config{})
	for i, s := range m.svcs {
		want := 2
		if i == 0 || i == 5 {
			want = 1
		}
		if got := s.Stats().Neighbours; got != want {
			t.Errorf("node %d knows %d neighbours, want %d", i, got, want)
		}
	}
	id, err := m.svcs[0].Publish(topic, []byte("hello mesh"))
	if err != nil {
		t.Fatal(err)
	}
	m.run(5 * time.Second)
	for i := range m.svcs {
		if len(m.got[i]) != 1 || m.got[i][0].ID != id || string(m.got[i][0].Data) != "hello mesh" {
			t.Fatalf("node %d got %+v", i, m.got[i])
		}
		if m.got[i][0].Local != (i == 0) {
			t.Errorf("node %d: Local %v", i, m.got[i][0].Local)
		}
	}
	// Each inner node relays once; the far end has nobody left to cover.
	var relayed uint64
	for _, s := range m.svcs {
		relayed += s.Stats().Relayed
	}
	if relayed != 4 {
		t.Errorf("%d relays on a line of 6, want 4 (nodes 1 to 4)", relayed)
	}
	if _, err := m.svcs[3].Publish(topic, []byte("hello mesh")); !errors.Is(err, ErrDuplicate) {
		t.Errorf("publishing a Message seen: %v, want ErrDuplicate", err)
	}
}

// With signed broadcasts (node.Signing) every node's Delivery says the
// neighbour that passed the Message on signed it; in clear none does.
func TestSignedDelivers(t *testing.T) {
	for _, signed := range []bool{true, false} {
		m := newMeshNet(t, 4, line(4), 0, Config{}, signed)
		if _, err := m.svcs[0].Publish(topic, []byte("signed, one hop at a time")); err != nil {
			t.Fatal(err)
		}
		m.run(5 * time.Second)
		for i := range m.svcs {
			if len(m.got[i]) != 1 {
				t.Fatalf("signed %v: node %d got %d", signed, i, len(m.got[i]))
			}
			if d := m.got[i][0]; d.Signed != (signed && i != 0) {
				t.Errorf("signed %v: node %d's Delivery.Signed %v", signed, i, d.Signed)
			}
		}
		var verified uint64
		for _, nd := range m.nodes {
			verified += nd.Stats().Broadcasts.Verified
		}
		if signed && verified == 0 || !signed && verified != 0 {
			t.Errorf("signed %v: %d broadcasts verified", signed, verified)
		}
	}
}

// In a clique the publisher's broadcast covers everyone: nobody relays.
func TestCliquePrunes(t *testing.T) {
	var e [][2]int
	for i := range 6 {
		for j := i + 1; j < 6; j++ {
			e = append(e, [2]int{i, j})
		}
	}
	m := newMesh(t, 6, e, 0, Config{})
	m.svcs[2].Publish(topic, []byte("x"))
	m.run(5 * time.Second)
	for i, s := range m.svcs {
		if len(m.got[i]) != 1 {
			t.Errorf("node %d got %d", i, len(m.got[i]))
		}
		if s.Stats().Relayed != 0 {
			t.Errorf("node %d relayed in a clique", i)
		}
	}
}

// A Message too large for one packet goes as a Notification, and every
// node fetches it with a Request.
func TestLargeByNotification(t *testing.T) {
	m := newMesh(t, 4, line(4), 0, Config{})
	data := bytes.Repeat([]byte("large "), 100)
	m.svcs[0].Publish(topic, data)
	m.run(10 * time.Second)
	var notes, reqs uint64
	for i, s := range m.svcs {
		if len(m.got[i]) != 1 || !bytes.Equal(m.got[i][0].Data, data) {
			t.Fatalf("node %d got %d deliveries", i, len(m.got[i]))
		}
		notes += s.Stats().NotificationsSent
		reqs += s.Stats().RequestsSent
	}
	if notes == 0 || reqs != 3 {
		t.Errorf("%d notifications, %d requests; want some, and 3", notes, reqs)
	}
}

// A node cut off while a Message went by gets it from a neighbour's
// repair after it is back: its hello's bloom lacks the id.
func TestRepairAfterPartition(t *testing.T) {
	m := newMesh(t, 4, line(4), 0, Config{HelloPeriod: 20 * time.Second})
	m.med.Disconnect(m.radios[2], m.radios[3])
	m.svcs[0].Publish(topic, []byte("while you were away"))
	m.run(5 * time.Second)
	if len(m.got[3]) != 0 {
		t.Fatal("node 3 got it while cut off")
	}
	m.med.Connect(m.radios[2], m.radios[3], sim.Independent(0), sim.Independent(0))
	m.run(45 * time.Second)
	if len(m.got[3]) != 1 {
		t.Fatalf("node 3 got %d after two hello periods back", len(m.got[3]))
	}
	if m.svcs[2].Stats().Pushed == 0 {
		t.Error("no repair counted")
	}
}

// Under loss, on a grid, every node gets every Message, each once.
func TestGridUnderLoss(t *testing.T) {
	const side = 5
	var e [][2]int
	for i := range side * side {
		if i%side != side-1 {
			e = append(e, [2]int{i, i + 1})
		}
		if i+side < side*side {
			e = append(e, [2]int{i, i + side})
		}
	}
	m := newMesh(t, side*side, e, 0.2, Config{HelloPeriod: 20 * time.Second})
	for k := range 10 {
		m.svcs[(k*7)%len(m.svcs)].Publish(topic, []byte{byte(k), 'm'})
		m.run(time.Second)
	}
	m.run(3 * time.Minute)
	for i := range m.svcs {
		if len(m.got[i]) != 10 {
			t.Errorf("node %d got %d of 10", i, len(m.got[i]))
		}
		seen := map[MessageID]bool{}
		for _, d := range m.got[i] {
			if seen[d.ID] {
				t.Errorf("node %d got %x twice", i, d.ID[:4])
			}
			seen[d.ID] = true
		}
	}
}

// The seen cache and the store stay within their bounds.
func TestBounds(t *testing.T) {
	m := newMesh(t, 2, line(2), 0, Config{SeenMax: 16, StoreBytes: 1000})
	for k := range 100 {
		m.svcs[0].Publish(topic, []byte{byte(k), byte(k >> 8), 'b', 'o', 'u', 'n', 'd'})
		m.run(100 * time.Millisecond)
	}
	for i, s := range m.svcs {
		if len(s.seen) > 16 || len(s.seenQ) > 16 {
			t.Errorf("node %d remembers %d ids, bound 16", i, len(s.seen))
		}
		if s.bytes > 1000 {
			t.Errorf("node %d stores %d bytes, bound 1000", i, s.bytes)
		}
	}
	if len(m.got[1]) != 100 {
		t.Errorf("node 1 got %d of 100", len(m.got[1]))
	}
}

func TestTooLarge(t *testing.T) {
	m := newMesh(t, 2, line(2), 0, Config{MaxMessage: 100})
	if _, err := m.svcs[0].Publish(topic, make([]byte, 100)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("publish over MaxMessage: %v", err)
	}
}
