package ble_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/ble"
	"github.com/mycelium-mesh/mycelium/l1-link/ble/bletest"
	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
)

var _ link.Link = (*ble.Link)(nil)

func addr(n byte) ble.Addr { return ble.Addr{0xc0, 0, 0, 0, 0, n} }

// net is an air with links on it, all on one virtual clock.
type testNet struct {
	clk   *clock.Virtual
	air   *bletest.Air
	links []*ble.Link
}

func newNet(t *testing.T) *testNet {
	clk := clock.NewVirtual(time.Time{})
	return &testNet{clk: clk, air: bletest.NewAir(clk)}
}

// add opens a link on a new radio.
func (n *testNet) add(t *testing.T, rc bletest.RadioConfig, cfg ble.Config) *ble.Link {
	t.Helper()
	cfg.Clock = n.clk
	cfg.Transport = n.air.NewRadio(rc)
	l, err := ble.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.links = append(n.links, l)
	return l
}

// both is a node playing both roles with a full-size MTU.
func both(a ble.Addr) bletest.RadioConfig {
	return bletest.RadioConfig{Addr: a, Central: true, Peripheral: true}
}

// runUntil runs the clock until cond holds, for at most d of virtual time.
func (n *testNet) runUntil(d time.Duration, cond func() bool) bool {
	return n.clk.RunWhile(n.clk.Now().Add(d), func() bool { return !cond() }) || cond()
}

func (n *testNet) meshed() bool {
	for _, l := range n.links {
		if len(l.Peers()) != len(n.links)-1 {
			return false
		}
	}
	return true
}

func TestConformance(t *testing.T) {
	linktest.Run(t, func(t *testing.T) *linktest.Env {
		n := newNet(t)
		for i := byte(1); i <= 3; i++ {
			n.add(t, both(addr(i)), ble.Config{})
		}
		if !n.runUntil(time.Minute, n.meshed) {
			t.Fatal("the three nodes did not connect")
		}
		e := &linktest.Env{
			Wait:   func(cond func() bool) bool { return n.runUntil(time.Minute, cond) },
			Settle: func() { n.clk.RunFor(time.Second) },
		}
		for _, l := range n.links {
			e.Links = append(e.Links, l)
		}
		return e
	})
}

// Two nodes that are both central and peripheral end up with exactly one
// connection, the one the lower address is central of, however their dials
// interleave.
func TestOneConnectionPerPair(t *testing.T) {
	n := newNet(t)
	a := n.add(t, both(addr(1)), ble.Config{})
	b := n.add(t, both(addr(2)), ble.Config{})
	if !n.runUntil(time.Minute, n.meshed) {
		t.Fatal("no connection")
	}
	n.clk.RunFor(10 * time.Second) // let any second dial play out
	if len(a.Peers()) != 1 || len(b.Peers()) != 1 {
		t.Fatalf("peers %v %v", a.Peers(), b.Peers())
	}
	if ea, eb := a.Events(), b.Events(); ea.Connects != 1 || eb.Connects != 1 || ea.Disconnects != 0 || eb.Disconnects != 0 {
		t.Fatalf("events %+v %+v", ea, eb)
	}
	// The lower address dialed.
	if a.Events().Dials != 1 || b.Events().Dials != 0 {
		t.Fatalf("dials a=%d b=%d", a.Events().Dials, b.Events().Dials)
	}
}

// When both sides of a pair dial at once, both connections come up; both
// sides keep the same one (its central has the lower address) and close the
// other, and the survivor stays up.
func TestSimultaneousDials(t *testing.T) {
	n := newNet(t)
	// A backoff shorter than a connection attempt: b does not wait for a
	// to dial first.
	cfg := ble.Config{Backoff: time.Millisecond}
	a := n.add(t, both(addr(1)), cfg)
	b := n.add(t, both(addr(2)), cfg)
	ra, rb := &rec{}, &rec{}
	a.Attach(ra)
	b.Attach(rb)
	if !n.runUntil(time.Minute, func() bool { return b.Events().Duplicates > 0 && a.Events().Duplicates > 0 }) {
		t.Fatalf("no duplicate arose: %+v %+v", a.Events(), b.Events())
	}
	n.clk.RunFor(10 * time.Second)
	cs := n.air.Conns(addr(1), addr(2))
	if len(cs) != 1 || cs[0].Central != addr(1) {
		t.Fatalf("connections %+v, want one with central %v", cs, addr(1))
	}
	if len(a.Peers()) != 1 || len(b.Peers()) != 1 || a.Events().Disconnects != 0 || b.Events().Disconnects != 0 {
		t.Fatalf("a %v %+v, b %v %+v", a.Peers(), a.Events(), b.Peers(), b.Events())
	}
	if err := b.Send(addr(1), []byte("over the survivor"), 0); err != nil {
		t.Fatal(err)
	}
	if !n.runUntil(time.Second, func() bool { return len(ra.frames) == 1 && len(rb.done) == 1 }) || rb.done[0] != nil {
		t.Fatalf("a got %v, b's completion %v", ra.frames, rb.done)
	}
}

type rec struct {
	frames []link.Frame
	done   []error
}

func (r *rec) DeliverFrame(f link.Frame) {
	f.Data = bytes.Clone(f.Data)
	r.frames = append(r.frames, f)
}
func (r *rec) TxDone(_ link.Tag, err error) { r.done = append(r.done, err) }

// Info follows the minimum MTU: the payload and the schema family.
func TestInfoFollowsMinMTU(t *testing.T) {
	for _, tc := range []struct {
		minMTU, mtu int
		schemas     []uint8
	}{
		{0, 250, link.SchemasESPNOW},
		{253, 250, link.SchemasESPNOW},
		{517, 512, link.SchemasESPNOW},
		{252, 249, link.SchemasLoRa},
		{243, 240, link.SchemasLoRa},
	} {
		n := newNet(t)
		l := n.add(t, both(addr(1)), ble.Config{MinMTU: tc.minMTU})
		in := l.Info()
		if in.MTU != tc.mtu || !bytes.Equal(in.Schemas, tc.schemas) || in.Name != "ble" || in.Bitrate != ble.DefaultBitrate || in.Addr != addr(1) {
			t.Errorf("MinMTU %d: %+v", tc.minMTU, in)
		}
	}
	for _, bad := range []int{242, 185, 23, 518} {
		n := newNet(t)
		if _, err := ble.Open(ble.Config{Clock: n.clk, Transport: n.air.NewRadio(both(addr(1))), MinMTU: bad}); !errors.Is(err, ble.ErrConfig) {
			t.Errorf("MinMTU %d: %v, want ErrConfig", bad, err)
		}
	}
}

// A peer whose connection negotiates less than the minimum MTU (a phone
// stopping at 185) is refused, so every accepted connection carries MTU
// bytes; a peer with exactly the minimum is accepted and carries MTU-size
// packets both ways.
func TestMTUEnforcement(t *testing.T) {
	n := newNet(t)
	a := n.add(t, both(addr(1)), ble.Config{})
	small := n.add(t, bletest.RadioConfig{Addr: addr(2), Central: true, Peripheral: true, MTU: 185}, ble.Config{MinMTU: 185 + 58})
	exact := n.add(t, bletest.RadioConfig{Addr: addr(3), Central: true, Peripheral: true, MTU: 253}, ble.Config{})
	ra, rx := &rec{}, &rec{}
	a.Attach(ra)
	exact.Attach(rx)
	if !n.runUntil(time.Minute, func() bool { return len(a.Peers()) == 1 && len(exact.Peers()) == 1 }) {
		t.Fatal("a and exact did not connect")
	}
	n.clk.RunFor(5 * time.Second)
	if got := a.Peers(); len(got) != 1 || got[0] != addr(3) {
		t.Fatalf("a's peers %v, want only %v", got, addr(3))
	}
	if a.Events().Refused == 0 {
		t.Fatalf("small-MTU connection not refused: %+v", a.Events())
	}
	_ = small
	full := bytes.Repeat([]byte{7}, a.Info().MTU)
	if err := a.Send(addr(3), full, 0); err != nil {
		t.Fatal(err)
	}
	if err := exact.Send(addr(1), full, 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(addr(3), append(full, 0), 0); !errors.Is(err, link.ErrTooBig) {
		t.Fatalf("MTU+1: %v", err)
	}
	if !n.runUntil(time.Minute, func() bool { return len(ra.frames) == 1 && len(rx.frames) == 1 }) {
		t.Fatalf("full-size packets: a got %d, exact got %d", len(ra.frames), len(rx.frames))
	}
	// Unicast to the refused peer fails, counted.
	if err := a.Send(addr(2), []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	n.clk.RunFor(time.Second)
	if last := ra.done[len(ra.done)-1]; !errors.Is(last, ble.ErrNotConnected) {
		t.Fatalf("send to refused peer: %v", last)
	}
	if a.Counters().Drops[link.DropTxError] != 1 {
		t.Fatalf("counters %+v", a.Counters())
	}
}

// A peer that drops out mid-stream: what is in flight and what is sent while
// it is gone fails and is counted; the central redials after the backoff,
// the stream resumes, and the backoff grows while the peer stays away.
func TestReconnect(t *testing.T) {
	n := newNet(t)
	a := n.add(t, both(addr(1)), ble.Config{})
	b := n.add(t, both(addr(2)), ble.Config{})
	ra, rb := &rec{}, &rec{}
	a.Attach(ra)
	b.Attach(rb)
	if !n.runUntil(time.Minute, n.meshed) {
		t.Fatal("no connection")
	}
	for i := range 5 {
		if err := a.Send(addr(2), []byte{byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Let two packets land, then cut the connection and keep b out of range.
	if !n.runUntil(time.Second, func() bool { return len(rb.frames) == 2 }) {
		t.Fatalf("b got %d frames", len(rb.frames))
	}
	n.air.SetInRange(addr(1), addr(2), false)
	if n.air.Disconnect(addr(1), addr(2)) != 1 {
		t.Fatal("no connection to drop")
	}
	if !n.runUntil(time.Second, func() bool { return len(ra.done) == 5 }) {
		t.Fatalf("%d TxDone of 5", len(ra.done))
	}
	failed := 0
	for _, err := range ra.done {
		if err != nil {
			failed++
		}
	}
	if len(rb.frames) != 2 || failed != 3 || a.Counters().Drops[link.DropTxError] != 3 {
		t.Fatalf("b got %d, %d failed, counters %+v", len(rb.frames), failed, a.Counters())
	}
	if len(a.Peers()) != 0 || len(b.Peers()) != 0 {
		t.Fatal("peers still listed after the drop")
	}
	if err := a.Send(addr(2), []byte("while away"), 0); err != nil {
		t.Fatal(err)
	}
	n.clk.RunFor(time.Millisecond)
	if !errors.Is(ra.done[5], ble.ErrNotConnected) {
		t.Fatalf("send while away: %v", ra.done[5])
	}
	// Out of range: redials fail, spaced by a doubling backoff.
	start := n.clk.Now()
	if !n.runUntil(time.Minute, func() bool { return a.Events().DialFailures >= 4 }) {
		t.Fatalf("events %+v", a.Events())
	}
	// 1+2+4 s of backoff before the fourth failure at least.
	if el := n.clk.Now().Sub(start); el < 7*time.Second {
		t.Fatalf("four failed dials in %v: backoff not growing", el)
	}
	n.air.SetInRange(addr(1), addr(2), true)
	if !n.runUntil(2*time.Minute, n.meshed) {
		t.Fatal("did not reconnect")
	}
	if err := a.Send(addr(2), []byte("back"), 0); err != nil {
		t.Fatal(err)
	}
	if !n.runUntil(time.Second, func() bool { return len(rb.frames) == 3 && string(rb.frames[2].Data) == "back" }) {
		t.Fatal("stream did not resume")
	}
	if e := a.Events(); e.Connects != 2 || e.Disconnects != 1 {
		t.Fatalf("events %+v", e)
	}
}

// A misbehaving peer notifies more than the connection's MTU allows, or
// nothing at all: counted drops, no panic, and the link goes on.
func TestOversizeNotification(t *testing.T) {
	n := newNet(t)
	a := n.add(t, both(addr(1)), ble.Config{})
	n.add(t, bletest.RadioConfig{Addr: addr(2), Central: true, Peripheral: true, MTU: 253}, ble.Config{})
	ra := &rec{}
	a.Attach(ra)
	if !n.runUntil(time.Minute, n.meshed) {
		t.Fatal("no connection")
	}
	for _, p := range [][]byte{make([]byte, 251), make([]byte, 600), make([]byte, 70000), {}} {
		if !n.air.Inject(addr(2), addr(1), p, false) {
			t.Fatal("no connection to inject on")
		}
	}
	n.air.Inject(addr(2), addr(1), []byte("fine"), true)
	if !n.runUntil(time.Second, func() bool { return len(ra.frames) == 1 }) {
		t.Fatal("good packet lost")
	}
	f := ra.frames[0]
	if string(f.Data) != "fine" || !f.Broadcast || f.Src != addr(2) {
		t.Fatalf("frame %+v", f)
	}
	c := a.Counters()
	if c.Drops[link.DropOversize] != 3 || c.Drops[link.DropMalformed] != 1 || c.RxFrames != 1 {
		t.Fatalf("counters %+v", c)
	}
}

// A broadcast reaches every connected peer once, as one transmitted
// datagram; with nobody connected it completes without error.
func TestBroadcastToEveryPeer(t *testing.T) {
	n := newNet(t)
	lone := n.add(t, bletest.RadioConfig{Addr: addr(9), Central: true}, ble.Config{})
	rl := &rec{}
	lone.Attach(rl)
	if err := lone.Send(link.Broadcast, []byte("anyone?"), 0); err != nil {
		t.Fatal(err)
	}
	n.clk.RunFor(time.Millisecond)
	if len(rl.done) != 1 || rl.done[0] != nil || lone.Counters().TxFrames != 0 {
		t.Fatalf("lonely broadcast: %v %+v", rl.done, lone.Counters())
	}
}

// Central-only and peripheral-only nodes (a phone-like central and a
// sensor-like peripheral) work with nodes of both roles.
func TestRoles(t *testing.T) {
	n := newNet(t)
	hub := n.add(t, both(addr(5)), ble.Config{})
	phone := n.add(t, bletest.RadioConfig{Addr: addr(9), Central: true}, ble.Config{})
	sensor := n.add(t, bletest.RadioConfig{Addr: addr(1), Peripheral: true}, ble.Config{})
	rp, rs := &rec{}, &rec{}
	phone.Attach(rp)
	sensor.Attach(rs)
	hub.Attach(&rec{})
	if !n.runUntil(time.Minute, func() bool {
		return len(hub.Peers()) == 2 && len(phone.Peers()) == 2 && len(sensor.Peers()) == 2
	}) {
		t.Fatalf("peers hub %v phone %v sensor %v", hub.Peers(), phone.Peers(), sensor.Peers())
	}
	if err := hub.Send(link.Broadcast, []byte("all"), 0); err != nil {
		t.Fatal(err)
	}
	if !n.runUntil(time.Second, func() bool { return len(rp.frames) == 1 && len(rs.frames) == 1 }) {
		t.Fatal("broadcast did not reach both")
	}
	if !rp.frames[0].Broadcast || !rs.frames[0].Broadcast || rp.frames[0].Src != addr(5) {
		t.Fatalf("frames %+v %+v", rp.frames[0], rs.frames[0])
	}
}

// Close disconnects the peers, who notice and drop the connection.
func TestCloseDisconnects(t *testing.T) {
	n := newNet(t)
	a := n.add(t, both(addr(1)), ble.Config{})
	b := n.add(t, both(addr(2)), ble.Config{})
	if !n.runUntil(time.Minute, n.meshed) {
		t.Fatal("no connection")
	}
	ra := &rec{}
	a.Attach(ra)
	if err := a.Send(addr(2), []byte("last words"), 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	n.clk.RunFor(time.Second)
	if len(ra.done) != 1 || ra.done[0] == nil {
		t.Fatalf("queued datagram's completion: %v", ra.done)
	}
	if len(b.Peers()) != 0 {
		t.Fatalf("b still connected to %v", b.Peers())
	}
	if cs := n.air.Conns(addr(1), addr(2)); len(cs) != 0 {
		t.Fatal("connection survived Close")
	}
}
