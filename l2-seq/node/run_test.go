package node_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/udp"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

var wallApp = packet.NewAppID("wall", "two nodes on the wall clock", 1)

// patience bounds every wait on the wall clock; the test fails past it.
const patience = 30 * time.Second

// wallBeacon is the nodes' beacon period.
const wallBeacon = 2 * time.Second

// TestMain checks that no test of the package leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wallNode is a node running on its own wall-clock loop over a real UDP
// link on 127.0.0.1.
type wallNode struct {
	n     *node.Node
	l     *udp.Link
	got   chan node.Message
	peers chan peerEvent
	stop  context.CancelFunc
	ran   chan error
}

type peerEvent struct {
	id identity.NodeID
	up bool
}

// The test is the layer above each node: it hears the node's peer events
// and its app's Packages through the same seam a router uses.
func (w *wallNode) HandleMessage(m node.Message) { w.got <- m }
func (w *wallNode) HandleRouted(node.RouteHeader, *packet.Package, peer.Endpoint, time.Time) {
}
func (w *wallNode) PeerChanged(p *peer.Peer, up bool) { w.peers <- peerEvent{p.ID, up} }

// peer waits, at most limit, for w to hear that id came (up) or went.
func (w *wallNode) peer(t *testing.T, id identity.NodeID, up bool, limit time.Duration) {
	t.Helper()
	timeout := time.After(limit)
	for {
		select {
		case e := <-w.peers:
			if e.id == id && e.up == up {
				return
			}
		case <-timeout:
			t.Fatalf("never heard peer %v up=%v", id.Short(), up)
		}
	}
}

func freePort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

func startWall(t *testing.T, seed byte, group netip.AddrPort) *wallNode {
	t.Helper()
	loop := clock.NewLoop()
	l, err := udp.Open(udp.Config{Clock: loop, Listen: netip.MustParseAddrPort("127.0.0.1:0"), Group: group})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{Clock: loop, Identity: identity.FromSeed([32]byte{seed}), Links: []link.Link{l}, Seed: uint64(seed), BeaconPeriod: wallBeacon})
	if err != nil {
		t.Fatal(err)
	}
	w := &wallNode{n: n, l: l, got: make(chan node.Message, 16), peers: make(chan peerEvent, 64), ran: make(chan error, 1)}
	if _, err := n.Attach(w, wallApp); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	go func() { w.ran <- n.Run(ctx) }()
	return w
}

// do runs f on w's loop and waits for it.
func (w *wallNode) do(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	w.n.Do(func() { f(); close(done) })
	select {
	case <-done:
	case <-time.After(patience):
		t.Fatal("node loop stuck")
	}
}

// send sends blob from w to the node to and waits for the confirmation.
func (w *wallNode) send(t *testing.T, to identity.NodeID, blob []byte) {
	t.Helper()
	var r *node.Result
	w.do(t, func() { r = w.n.Send(to, wallApp, blob, nil) })
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		var st node.Stats
		w.do(t, func() { st = w.n.Stats() })
		t.Fatalf("send of %d bytes: %v\nstats %+v\nlink %+v", len(blob), err, st, w.l.Counters())
	}
}

func (w *wallNode) receive(t *testing.T, blob []byte, from identity.NodeID) {
	t.Helper()
	select {
	case m := <-w.got:
		if !bytes.Equal(m.Blob, blob) || !m.FromKnown || m.From != from {
			t.Fatalf("got %d bytes from %v (known %v), want %d from %v", len(m.Blob), m.From.Short(), m.FromKnown, len(blob), from.Short())
		}
	case <-time.After(patience):
		var st node.Stats
		w.do(t, func() { st = w.n.Stats() })
		t.Fatalf("%d bytes never arrived\nstats %+v\nlink %+v", len(blob), st, w.l.Counters())
	}
}

// TestTwoNodesWallClock runs two nodes as they run in the field: each on
// its own wall-clock loop (Run), over a real UDP socket on 127.0.0.1. They
// find each other by beacons, exchange a single packet and a 100 KiB
// sequence each way, and shut down cleanly: the goodbye reaches the peer
// (it drops us at once), and no goroutine is left behind.
func TestTwoNodesWallClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	group := netip.AddrPortFrom(netip.MustParseAddr("127.255.255.255"), freePort(t))
	a, b := startWall(t, 1, group), startWall(t, 2, group)
	ida, idb := a.n.ID(), b.n.ID()

	// Beacons: each learns the other.
	a.peer(t, idb, true, patience)
	b.peer(t, ida, true, patience)

	small := []byte("a single packet")
	a.send(t, idb, small)
	b.receive(t, small, ida)

	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	a.send(t, idb, big)
	b.receive(t, big, ida)
	big[0]++
	b.send(t, ida, big)
	a.receive(t, big, idb)

	// a leaves: its goodbye makes b drop it at once (no timeout).
	a.stop()
	if err := <-a.ran; err != nil {
		t.Fatalf("a's Run: %v", err)
	}
	if c := a.l.Counters(); c.TxFrames == 0 {
		t.Fatalf("a sent nothing? %+v", c)
	}
	// Without the goodbye b would drop a only after four silent beacon
	// periods (8 s); within one period it can only be the goodbye.
	b.peer(t, ida, false, wallBeacon)
	b.do(t, func() {
		if b.n.Peer(ida) != nil {
			t.Error("b still holds a after its goodbye")
		}
	})
	b.stop()
	if err := <-b.ran; err != nil {
		t.Fatalf("b's Run: %v", err)
	}
	for _, w := range []*wallNode{a, b} {
		if err := w.l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// goleak.VerifyNone: the loops, the links' readers and writers, every
	// timer callback: all gone.
}

// TestRunNeedsALoop: a node on a virtual clock has no Run (its owner runs
// the clock), and a node without a clock is refused at once.
func TestRunNeedsALoop(t *testing.T) {
	if _, err := node.New(node.Config{}); err != node.ErrNoClock {
		t.Fatalf("New without a clock: %v", err)
	}
	n, err := node.New(node.Config{Clock: clock.NewVirtual(time.Time{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(context.Background()); err != node.ErrNotLoop {
		t.Fatalf("Run on a virtual clock: %v", err)
	}
}
