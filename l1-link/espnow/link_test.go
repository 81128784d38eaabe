package espnow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
)

// patience bounds every wait on real-time goroutines.
const patience = 10 * time.Second

// waitFor polls cond until it holds or patience runs out.
func waitFor(cond func() bool) bool {
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// runLoop starts a real-time clock loop for the test.
func runLoop(t *testing.T) *clock.Loop {
	loop := clock.NewLoop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = loop.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return loop
}

// flushLoop waits until every callback already queued on loop has run.
func flushLoop(t *testing.T, loop clock.Clock) {
	t.Helper()
	ch := make(chan struct{})
	loop.AfterFunc(0, func() { close(ch) })
	select {
	case <-ch:
	case <-time.After(patience):
		t.Fatal("clock loop stuck")
	}
}

// fakeConn stands in for the packet socket.
type fakeConn struct {
	in      chan []byte
	readErr chan error
	out     chan []byte
	gate    chan struct{} // when non-nil, each write waits for a token
	closed  chan struct{}
	once    sync.Once
}

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan []byte, 64), readErr: make(chan error, 1), out: make(chan []byte, 64), closed: make(chan struct{})}
}

func (c *fakeConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case f := <-c.in:
		return copy(b, f), nil, nil
	case err := <-c.readErr:
		return 0, nil, err
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *fakeConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	c.out <- bytes.Clone(b)
	return len(b), nil
}

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// errRecorder is a Dispatcher that keeps frames and completion errors.
type errRecorder struct {
	linktest.Recorder
	mu   sync.Mutex
	errs []error
}

func (r *errRecorder) TxDone(tag link.Tag, err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	r.Recorder.TxDone(tag, err)
}

func (r *errRecorder) Errs() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func newFakeLink(t *testing.T, cfg Config) (*Link, *fakeConn, *clock.Loop) {
	t.Helper()
	loop := runLoop(t)
	cfg.Clock = loop
	if cfg.MAC == (MAC{}) {
		cfg.MAC = macA
	}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	c := newFakeConn()
	l := newLink(cfg, c)
	t.Cleanup(func() { _ = l.Close() })
	return l, c, loop
}

func TestLinkInfo(t *testing.T) {
	l, _, _ := newFakeLink(t, Config{})
	in := l.Info()
	if id := in.ID(); in.Name != "espnow" || in.MTU != 250 || in.Addr != macA || in.TxQueue != DefaultTxQueue ||
		in.Caps != link.CapBroadcast || id != [4]byte{0x26, 0xbf, 0x5f, 0xf6} {
		t.Fatalf("info %+v id %x", in, id)
	}
	if got := link.Airtime(l, 250); got != 2536*time.Microsecond {
		t.Fatalf("airtime %v", got)
	}
	l2, _, _ := newFakeLink(t, Config{ActiveMonitor: true, Rate: Rate6M, TxQueue: 3})
	if in := l2.Info(); !in.Caps.Has(link.CapBroadcast|link.CapUnicastAck) || in.TxQueue != 3 || l2.Airtime(0) != Airtime(0, 6000) {
		t.Fatalf("active monitor info %+v", in)
	}
}

func TestConfigCheck(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	for _, c := range []Config{
		{MAC: macA},
		{MAC: macA, Clock: clk, Rate: 3000},
		{MAC: macA, Clock: clk, TxQueue: -1},
		{MAC: macA, Clock: clk, Channel: -1},
		{MAC: BroadcastMAC, Clock: clk},
		{MAC: macA, Clock: clk, Channel: 14, Rate: Rate6M},
	} {
		if err := c.check(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	ok := Config{MAC: macA, Clock: clk, Channel: 14, Rate: Rate11M}
	if err := ok.check(); err != nil {
		t.Errorf("11 Mbit/s on channel 14: %v", err)
	}
	// The channel is set before the socket opens; a failure stops Open.
	var called []string
	_, err := Open(Config{Interface: "lo", MAC: macA, Clock: clk, Channel: 6, SetChannel: func(iface string, ch int) error {
		called = append(called, fmt.Sprint(iface, " ", ch))
		return errors.New("no radio")
	}})
	if err == nil || len(called) != 1 || called[0] != "lo 6" {
		t.Errorf("SetChannel: %v, called %v", err, called)
	}
	if err := SetChannelIW("no-such-if0", 1); err == nil {
		t.Error("iw on a missing interface succeeded")
	}
	if _, err := Open(Config{Clock: clk}); err == nil {
		t.Error("Open without an interface")
	}
	if _, err := Open(Config{Interface: "no-such-if0", Clock: clk}); err == nil {
		t.Error("Open of a missing interface")
	}
}

func TestLinkSend(t *testing.T) {
	l, c, _ := newFakeLink(t, Config{})
	r := &errRecorder{}
	l.Attach(r)
	payload := []byte("mesh packet")
	if err := l.Send(macB, payload, 0); err != nil {
		t.Fatal(err)
	}
	payload[0] = 'X' // the link copied it
	if err := l.Send(link.Broadcast, []byte("to all"), 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(BroadcastMAC, []byte("to all, by MAC"), 0); err != nil {
		t.Fatal(err)
	}
	var got [3]Frame
	for i := range got {
		b := <-c.out
		if err := Parse(b, &got[i]); err != nil {
			t.Fatal(err)
		}
		if got[i].Src != macA || got[i].Version != Version || got[i].Seq != uint16(i) {
			t.Fatalf("frame %d: %+v", i, got[i])
		}
	}
	if got[0].Dst != macB || string(got[0].Body) != "mesh packet" || got[1].Dst != BroadcastMAC || string(got[2].Body) != "to all, by MAC" {
		t.Fatalf("frames %+v", got)
	}
	if got[0].Random == got[1].Random || got[1].Random == got[2].Random {
		t.Fatalf("random bytes repeat: %x %x %x", got[0].Random, got[1].Random, got[2].Random)
	}
	if !waitFor(func() bool { return r.TxDoneCount() == 3 }) {
		t.Fatalf("%d TxDone", r.TxDoneCount())
	}
	for _, err := range r.Errs() {
		if err != nil {
			t.Fatal(err)
		}
	}
	cs := l.Counters()
	if cs.TxFrames != 3 || cs.TxBytes != uint64(len("mesh packet")+len("to all")+len("to all, by MAC")) ||
		cs.TxAirtime != Airtime(11, 1000)+Airtime(6, 1000)+Airtime(14, 1000) {
		t.Fatalf("counters %+v", cs)
	}

	// Addresses of another kind, even broadcast ones, are refused.
	for _, a := range []link.Addr{otherKind(0), otherKind(1), nil} {
		if err := l.Send(a, []byte("x"), 0); !errors.Is(err, link.ErrAddr) {
			t.Fatalf("send to %v: %v", a, err)
		}
	}
	if err := l.Send(macB, make([]byte, MTU+1), 0); !errors.Is(err, link.ErrTooBig) || l.Counters().Drops[link.DropOversize] != 1 {
		t.Fatalf("oversize: %v", err)
	}
}

func TestLinkSendOptions(t *testing.T) {
	l, c, _ := newFakeLink(t, Config{Rate: Rate12M, NoAck: true})
	if err := l.Send(macB, []byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	b := <-c.out
	// Radiotap: rate 12 Mbit/s = 24 half-megabits, TX flags NOACK|NOSEQ.
	if b[8] != 24 || b[10] != 0x18 {
		t.Fatalf("radiotap %x", b[:TxRadiotapLen])
	}
}

func TestLinkQueueFull(t *testing.T) {
	l, c, _ := newFakeLink(t, Config{TxQueue: 2})
	c.gate = make(chan struct{})
	r := &errRecorder{}
	l.Attach(r)
	for i := range 2 {
		if err := l.Send(macB, []byte{byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Send(macB, []byte{2}, 0); !errors.Is(err, link.ErrBusy) {
		t.Fatalf("third send: %v", err)
	}
	if l.Counters().Drops[link.DropQueueFull] != 1 {
		t.Fatalf("counters %+v", l.Counters())
	}
	c.gate <- struct{}{}
	if !waitFor(func() bool { return r.TxDoneCount() == 1 }) {
		t.Fatal("no TxDone")
	}
	// A completion frees a slot.
	if err := l.Send(macB, []byte{3}, 0); err != nil {
		t.Fatal(err)
	}
	c.gate <- struct{}{}
	c.gate <- struct{}{}
	if !waitFor(func() bool { return r.TxDoneCount() == 3 }) {
		t.Fatalf("%d TxDone", r.TxDoneCount())
	}
}

func TestLinkClose(t *testing.T) {
	l, c, _ := newFakeLink(t, Config{TxQueue: 4})
	c.gate = make(chan struct{})
	r := &errRecorder{}
	l.Attach(r)
	for range 3 {
		if err := l.Send(macB, []byte("pending"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(macB, []byte("x"), 0); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	// Every accepted datagram is still answered, with net.ErrClosed.
	if !waitFor(func() bool { return len(r.Errs()) == 3 }) {
		t.Fatalf("TxDone after close: %v", r.Errs())
	}
	for _, err := range r.Errs() {
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("TxDone(%v)", err)
		}
	}
	if l.Counters().Drops[link.DropTxError] != 0 {
		t.Fatal("close counted as transmit errors")
	}
}

func TestLinkReceive(t *testing.T) {
	l, c, loop := newFakeLink(t, Config{Channel: 14})
	r := &errRecorder{}
	l.Attach(r)
	build := func(f Frame) []byte {
		return mustBuild(t, &f, TxOptions{})
	}
	macC := MAC{2, 0, 0, 0, 0, 3}
	bcast := build(Frame{Dst: BroadcastMAC, Src: macB, Random: [4]byte{1}, Body: []byte("hello all")})
	uni := cat(rtChanSignal, withFCS(dot11Of(build(Frame{Dst: macA, Src: macB, Random: [4]byte{2}, Body: []byte("hello A")}))))
	sameRandom := build(Frame{Dst: BroadcastMAC, Src: macB, Random: [4]byte{1}, Body: []byte("different body")})
	frames := [][]byte{
		bcast,
		bcast, // a retransmission
		uni,
		build(Frame{Dst: macC, Src: macB, Random: [4]byte{3}, Body: []byte("for C")}),
		build(Frame{Dst: BroadcastMAC, Src: macA, Random: [4]byte{4}, Body: []byte("our own")}),
		[]byte("garbage"),
		sameRandom,
		build(Frame{Dst: BroadcastMAC, Src: macC, Random: [4]byte{1}, Body: []byte("hello all")}), // same random, other sender
	}
	for _, f := range frames {
		c.in <- f
	}
	if !waitFor(func() bool { return len(r.Frames()) == 4 }) {
		t.Fatalf("frames %+v", r.Frames())
	}
	// The reader has handled everything; let queued deliveries run.
	if !waitFor(func() bool { return l.Counters().Dropped() == 3 && l.Echoes() == 1 }) {
		t.Fatalf("counters %+v echoes %d", l.Counters(), l.Echoes())
	}
	flushLoop(t, loop)
	got := r.Frames()
	if len(got) != 4 {
		t.Fatalf("frames %+v", got)
	}
	want := []struct {
		src       MAC
		data      string
		bcast     bool
		ch, rssi  int
		hasSignal bool
	}{
		{macB, "hello all", true, 14, 0, false}, // channel from the config when radiotap has none
		{macB, "hello A", false, 14, -42, true},
		{macB, "different body", true, 14, 0, false},
		{macC, "hello all", true, 14, 0, false},
	}
	for i, w := range want {
		f := got[i]
		if f.Src != w.src || string(f.Data) != w.data || f.Broadcast != w.bcast || f.Channel != w.ch || f.RSSI != w.rssi || f.HasSignal != w.hasSignal || f.Time.IsZero() {
			t.Errorf("frame %d: %+v", i, f)
		}
	}
	cs := l.Counters()
	if cs.Drops[link.DropDuplicate] != 1 || cs.Drops[link.DropNotForUs] != 1 || cs.Drops[link.DropMalformed] != 1 ||
		cs.RxFrames != 4 || cs.RxBytes != uint64(len("hello all")*2+len("hello A")+len("different body")) {
		t.Fatalf("counters %+v", cs)
	}

	// Detached: counted, not delivered.
	l.Attach(nil)
	c.in <- build(Frame{Dst: BroadcastMAC, Src: macB, Random: [4]byte{9}, Body: []byte("nobody")})
	if !waitFor(func() bool { return l.Counters().Drops[link.DropNoHandler] == 1 }) {
		t.Fatalf("counters %+v", l.Counters())
	}
}

func TestLinkDedupBounded(t *testing.T) {
	var d dedup
	f := Frame{Src: macB, Body: []byte("x")}
	for i := range 10 * dedupSize {
		f.Random = [4]byte{byte(i), byte(i >> 8)}
		if d.seen(keyOf(&f)) {
			t.Fatalf("frame %d reported as duplicate", i)
		}
		if !d.seen(keyOf(&f)) {
			t.Fatalf("frame %d not remembered", i)
		}
	}
	// The oldest are forgotten, the recent kept.
	f.Random = [4]byte{0, 0}
	if d.seen(keyOf(&f)) {
		t.Fatal("first frame still remembered after a flood")
	}
	last := 10*dedupSize - 1
	f.Random = [4]byte{byte(last), byte(last >> 8)}
	if !d.seen(keyOf(&f)) {
		t.Fatal("last frame forgotten")
	}
}

func TestLinkReadErrorRetries(t *testing.T) {
	l, c, _ := newFakeLink(t, Config{})
	r := &errRecorder{}
	l.Attach(r)
	c.readErr <- errors.New("network is down")
	c.in <- mustBuild(t, &Frame{Dst: BroadcastMAC, Src: macB, Body: []byte("after")}, TxOptions{})
	if !waitFor(func() bool { return len(r.Frames()) == 1 }) {
		t.Fatal("reader did not recover")
	}
	if l.ReadErrors() != 1 {
		t.Fatalf("%d read errors", l.ReadErrors())
	}
}

func TestCaptureFrame(t *testing.T) {
	l, _, _ := newFakeLink(t, Config{})
	b := l.CaptureFrame(link.Broadcast, macA, []byte("payload"))
	var f Frame
	if err := Parse(b, &f); err != nil || f.Dst != BroadcastMAC || f.Src != macA || string(f.Body) != "payload" {
		t.Fatalf("%+v %v", f, err)
	}
	if l.CaptureLinkType() != 127 {
		t.Fatal(l.CaptureLinkType())
	}
	if l.CaptureFrame(macB, macA, make([]byte, MaxBodyV2+1)) != nil {
		t.Fatal("oversized capture frame")
	}
}

var _ link.Link = (*Link)(nil)
var _ link.AirtimeEstimator = (*Link)(nil)

// otherKind is an address of another kind of link; 0 is its broadcast.
type otherKind uint8

func (otherKind) Network() string     { return "other" }
func (otherKind) String() string      { return "other" }
func (k otherKind) IsBroadcast() bool { return k == 0 }

// With Config.V2 the link carries datagrams up to 1,470 bytes, as ESP-NOW
// v2 frames; without, 250.
func TestLinkV2(t *testing.T) {
	l, c, _ := newFakeLink(t, Config{V2: true})
	if l.Info().MTU != MaxBodyV2 || len(l.Info().Schemas) != 22 {
		t.Fatalf("MTU %d", l.Info().MTU)
	}
	var r linktest.Recorder
	l.Attach(&r)
	body := bytes.Repeat([]byte{0x42}, MaxBodyV2)
	if _, err := r.Send(l, macB, body); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Send(l, macB, append(body, 1)); !errors.Is(err, link.ErrTooBig) {
		t.Fatalf("1,471 bytes: %v", err)
	}
	var f Frame
	select {
	case b := <-c.out:
		if err := Parse(b, &f); err != nil || !bytes.Equal(f.Body, body) || f.Version != VersionV2 {
			t.Fatalf("%v: body of %d, version %d", err, len(f.Body), f.Version)
		}
	case <-time.After(patience):
		t.Fatal("nothing written")
	}
	v1, _, _ := newFakeLink(t, Config{})
	if err := v1.Send(macB, make([]byte, MaxBody+1), 1); !errors.Is(err, link.ErrTooBig) {
		t.Fatalf("251 bytes on a v1 link: %v", err)
	}
}
