package node

import (
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// heldLink takes datagrams and completes them only when the test says,
// in whatever order it says.
type heldLink struct {
	info  link.Info
	d     link.Dispatcher
	sent  []heldFrame
	stats link.Stats
}

type heldFrame struct {
	tag link.Tag
	dst link.Addr
}

func (h *heldLink) Info() link.Info          { return h.info }
func (h *heldLink) Attach(d link.Dispatcher) { h.d = d }
func (h *heldLink) Counters() link.Counters  { return h.stats.Snapshot() }
func (h *heldLink) Close() error             { return nil }
func (h *heldLink) Send(dst link.Addr, data []byte, tag link.Tag) error {
	h.sent = append(h.sent, heldFrame{tag, dst})
	return nil
}

// TestTxDoneOutOfOrder: a link that finishes datagrams out of order (a
// BLE link writing to two peers) reports each completion with its tag,
// and the node puts each outcome on the send it belongs to.
func TestTxDoneOutOfOrder(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	hl := &heldLink{info: link.Info{Name: "held", Addr: espnow.MAC{2, 0, 0, 0, 0, 1}, MTU: 250, Bitrate: 1_000_000, Schemas: link.SchemasESPNOW, Caps: link.CapBroadcast, TxQueue: 8}}
	n, err := New(Config{Clock: clk, Identity: identity.FromSeed([32]byte{7}), Links: []link.Link{hl}, BeaconPeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	a, b := espnow.MAC{2, 0, 0, 0, 0, 0xa}, espnow.MAC{2, 0, 0, 0, 0, 0xb}
	// Singles to strangers: each waits for its ack once its datagram has
	// left, and fails at once if the radio could not send it.
	ra := n.SendTo(peer.Endpoint{Addr: a}, testApp, []byte("to a"), nil)
	rb := n.SendTo(peer.Endpoint{Addr: b}, testApp, []byte("to b"), nil)
	clk.RunFor(time.Millisecond)
	if len(hl.sent) != 2 || hl.sent[0].dst != a || hl.sent[1].dst != b {
		t.Fatalf("handed over %+v", hl.sent)
	}
	// b's datagram finishes first, and well; a's second, refused by the
	// radio. In the order sent, a would have taken b's success.
	hl.d.TxDone(hl.sent[1].tag, nil)
	hl.d.TxDone(hl.sent[0].tag, errors.New("the radio refused it"))
	clk.RunFor(time.Millisecond)
	if rb.Finished() {
		t.Fatalf("b's send finished (%v): it left, and waits for its ack", rb.Err())
	}
	if !ra.Finished() || !errors.Is(ra.Err(), ErrLink) {
		t.Fatalf("a's send: finished %v, %v; want ErrLink", ra.Finished(), ra.Err())
	}
	// A completion for a tag the node never handed over is ignored and
	// counted, not pinned on anything.
	hl.d.TxDone(999, nil)
	if st := n.Stats(); st.StrayTxDone != 1 {
		t.Fatalf("stray completions %d", st.StrayTxDone)
	}
}

// TestNoAckBacksOff: a single the radio reports unacknowledged (ErrNoAck,
// after the MAC's own retries) is sent again after a wait that doubles,
// not a frame's airtime later: every hidden neighbour of a busy gateway
// resending at once is what kept the gateway's air collided.
func TestNoAckBacksOff(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	hl := &heldLink{info: link.Info{Name: "held", Addr: espnow.MAC{2, 0, 0, 0, 0, 1}, MTU: 250, Bitrate: 1_000_000, Schemas: link.SchemasESPNOW, Caps: link.CapBroadcast, TxQueue: 8}}
	n, err := New(Config{Clock: clk, Identity: identity.FromSeed([32]byte{7}), Links: []link.Link{hl}, BeaconPeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	res := n.SendTo(peer.Endpoint{Addr: espnow.MAC{2, 0, 0, 0, 0, 0xa}}, testApp, []byte("unheard"), nil)
	var at []time.Time
	for end := clk.Now().Add(time.Minute); !res.Finished() && clk.Now().Before(end); {
		clk.RunFor(100 * time.Microsecond)
		for len(at) < len(hl.sent) {
			at = append(at, clk.Now())
			hl.d.TxDone(hl.sent[len(at)-1].tag, link.ErrNoAck)
		}
	}
	if !res.Finished() || !errors.Is(res.Err(), ErrAbandoned) {
		t.Fatalf("send: finished %v, %v; want ErrAbandoned", res.Finished(), res.Err())
	}
	if len(at) != singleTries {
		t.Fatalf("%d transmissions, want %d", len(at), singleTries)
	}
	// The wait after try k is at least the feedback timeout (2 ms or more)
	// times 2^(k-1); a frame's airtime here is 2.1 ms.
	for k := 1; k < len(at); k++ {
		if gap, least := at[k].Sub(at[k-1]), (2*time.Millisecond)<<(k-1); gap < least {
			t.Errorf("try %d went %v after the one before, want at least %v", k+1, gap, least)
		}
	}
}

// TestNoAckHoldsTheHop: once the radio reports frames to a neighbour
// unacknowledged (after the MAC's own retries), the retries of every send
// to that neighbour wait out one wait of the hop's, which doubles with
// each lost frame in a row, while a new send's first frame and other
// neighbours' sends go as before; the first frame acknowledged ends the
// wait. Each send backing off on its own let a node with a dozen sends
// for a deaf gateway keep a dozen retry streams on its air, each started
// a few milliseconds after its loss (hubs, 300 nodes, seed 10: the
// gateway heard nothing for two minutes).
func TestNoAckHoldsTheHop(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	hl := &heldLink{info: link.Info{Name: "held", Addr: espnow.MAC{2, 0, 0, 0, 0, 1}, MTU: 250, Bitrate: 1_000_000, Schemas: link.SchemasESPNOW, Caps: link.CapBroadcast | link.CapUnicastAck, TxQueue: 8}}
	n, err := New(Config{Clock: clk, Identity: identity.FromSeed([32]byte{7}), Links: []link.Link{hl}, BeaconPeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	deaf, other := espnow.MAC{2, 0, 0, 0, 0, 0xa}, espnow.MAC{2, 0, 0, 0, 0, 0xb}
	count := func(dst link.Addr, from int) int {
		c := 0
		for _, f := range hl.sent[from:] {
			if f.dst == dst {
				c++
			}
		}
		return c
	}
	done := 0
	fail := func() {
		for ; done < len(hl.sent); done++ {
			if hl.sent[done].dst == deaf {
				hl.d.TxDone(hl.sent[done].tag, link.ErrNoAck)
			}
		}
	}
	for i := range 12 {
		n.SendTo(peer.Endpoint{Addr: deaf}, testApp, []byte{byte(i)}, nil)
	}
	clk.RunFor(100 * time.Microsecond)
	fail()
	if got := count(deaf, 0); got != 12 {
		t.Fatalf("%d first frames handed over, want 12", got)
	}
	// A new send's first frame, and another neighbour's send, go at once;
	// a retry waits out the hold the hop was under when its frame was
	// lost (a few milliseconds for the first lost, giveUp/8 = 3.75 s from
	// the eleventh lost in a row).
	mark := len(hl.sent)
	n.SendTo(peer.Endpoint{Addr: other}, testApp, []byte("elsewhere"), nil)
	n.SendTo(peer.Endpoint{Addr: deaf}, testApp, []byte("new"), nil)
	clk.RunFor(100 * time.Microsecond)
	if count(other, mark) != 1 || count(deaf, mark) != 1 {
		t.Fatalf("handed over %d to the other neighbour and %d first frames to the deaf one, want 1 and 1", count(other, mark), count(deaf, mark))
	}
	fail()
	mark = len(hl.sent)
	for range 3500 {
		clk.RunFor(time.Millisecond)
		fail()
	}
	// So within 3.5 s each of the 13 sends is retried at most once (the
	// ones lost early, under a short hold), and then holds for seconds:
	// each send backing off alone retried 26 times in that time here.
	if got := count(deaf, mark); got > 13 {
		t.Fatalf("%d retries to the deaf neighbour within 3.5 s of 13 frames lost in a row, want at most 13", got)
	}
	// The neighbour hears again: an acknowledged frame ends the hold, and
	// the next loss holds it for milliseconds again, not seconds. (The
	// frame acked must be one not yet completed: a second completion of a
	// tag is ignored.)
	ep := n.eps[peer.Endpoint{Addr: deaf}]
	if ep == nil || !ep.lostUntil.After(clk.Now()) {
		t.Fatal("the deaf neighbour is not held after 13 frames lost in a row")
	}
	for range 10_000 {
		if done < len(hl.sent) && hl.sent[len(hl.sent)-1].dst == deaf {
			break
		}
		clk.RunFor(time.Millisecond)
	}
	if done == len(hl.sent) {
		t.Fatal("no retry to the deaf neighbour within 10 s")
	}
	stray := n.stats.StrayTxDone
	hl.d.TxDone(hl.sent[len(hl.sent)-1].tag, nil)
	done = len(hl.sent)
	if n.stats.StrayTxDone != stray || ep.lostRun != 0 || !ep.lostUntil.IsZero() {
		t.Fatalf("an acknowledged frame left the hop held (lost in a row %d, until %v; stray completions %d)", ep.lostRun, ep.lostUntil, n.stats.StrayTxDone-stray)
	}
	n.SendTo(peer.Endpoint{Addr: deaf}, testApp, []byte("heard"), nil)
	clk.RunFor(100 * time.Microsecond)
	if done == len(hl.sent) || hl.sent[len(hl.sent)-1].dst != deaf {
		t.Fatal("a new send's first frame was not handed over at once")
	}
	hl.d.TxDone(hl.sent[len(hl.sent)-1].tag, link.ErrNoAck)
	done = len(hl.sent)
	if h := ep.lostUntil.Sub(clk.Now()); ep.lostRun != 1 || h <= 0 || h > 10*time.Millisecond {
		t.Fatalf("one loss after an acknowledged frame: lost in a row %d, held %v, want 1 and a few milliseconds", ep.lostRun, h)
	}
}
