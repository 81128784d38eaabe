package udp_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
	"github.com/mycelium-mesh/mycelium/l1-link/udp"
)

var _ link.Link = (*udp.Link)(nil)

// patience bounds every wait on real sockets.
const patience = 5 * time.Second

// runLoop starts a real-time clock loop for the test.
func runLoop(t *testing.T) *clock.Loop {
	loop := clock.NewLoop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return loop
}

// waitFor checks cond on the loop every millisecond until it holds or
// patience runs out.
func waitFor(loop *clock.Loop, cond func() bool) bool {
	res := make(chan bool, 1)
	deadline := time.Now().Add(patience)
	var check func()
	check = func() {
		switch {
		case cond():
			res <- true
		case time.Now().After(deadline):
			res <- false
		default:
			loop.AfterFunc(time.Millisecond, check)
		}
	}
	loop.AfterFunc(0, check)
	return <-res
}

// settle lets in-flight datagrams land: real sockets give no event for
// "nothing more is coming", so this is a wall-clock grace period, measured
// on the loop (which also runs every delivery already handed to it).
func settle(loop *clock.Loop) {
	done := make(chan struct{})
	loop.AfterFunc(50*time.Millisecond, func() { close(done) })
	<-done
}

// envOf wraps opened links as a conformance environment.
func envOf(t *testing.T, loop *clock.Loop, links []*udp.Link) *linktest.Env {
	e := &linktest.Env{
		Wait:   func(cond func() bool) bool { return waitFor(loop, cond) },
		Settle: func() { settle(loop) },
	}
	for _, l := range links {
		e.Links = append(e.Links, l)
		t.Cleanup(func() { l.Close() })
	}
	return e
}

// freePort returns a UDP port free on 127.0.0.1 right now.
func freePort(t *testing.T) uint16 {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
}

// TestConformanceLoopback runs the suite on 127.0.0.1 with no privileges:
// three links on their own ports, broadcasting to 127.255.255.255, which the
// kernel delivers to every socket bound to it, the sender's included (so
// this also checks that a link ignores its own broadcasts by address).
func TestConformanceLoopback(t *testing.T) {
	linktest.Run(t, func(t *testing.T) *linktest.Env {
		loop := runLoop(t)
		group := netip.AddrPortFrom(netip.MustParseAddr("127.255.255.255"), freePort(t))
		var links []*udp.Link
		for range 3 {
			l, err := udp.Open(udp.Config{Clock: loop, Listen: netip.MustParseAddrPort("127.0.0.1:0"), Group: group})
			if err != nil {
				t.Fatal(err)
			}
			links = append(links, l)
		}
		return envOf(t, loop, links)
	})
}

// recorder keeps frames. The link calls it on the loop; the test reads it
// from its own goroutine, so it locks.
type recorder struct {
	mu   sync.Mutex
	fs   []link.Frame
	done []error
}

func (r *recorder) DeliverFrame(f link.Frame) {
	f.Data = bytes.Clone(f.Data)
	r.mu.Lock()
	r.fs = append(r.fs, f)
	r.mu.Unlock()
}

func (r *recorder) TxDone(_ link.Tag, err error) {
	r.mu.Lock()
	r.done = append(r.done, err)
	r.mu.Unlock()
}

func (r *recorder) frames() []link.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]link.Frame(nil), r.fs...)
}

func openLocal(t *testing.T, loop *clock.Loop) (*udp.Link, *recorder) {
	t.Helper()
	group := netip.AddrPortFrom(netip.MustParseAddr("127.255.255.255"), freePort(t))
	l, err := udp.Open(udp.Config{Clock: loop, Listen: netip.MustParseAddrPort("127.0.0.1:0"), Group: group})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r := &recorder{}
	l.Attach(r)
	return l, r
}

// A datagram from a socket that is no link (a peer we have never heard of)
// arrives with its true source address and port, which is where a reply
// must go; and the reply gets there.
func TestUnknownSender(t *testing.T) {
	loop := runLoop(t)
	l, r := openLocal(t, loop)
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	me := l.Info().Addr.(udp.Addr).AddrPort
	if _, err := stranger.WriteToUDPAddrPort([]byte("hello from nowhere"), me); err != nil {
		t.Fatal(err)
	}
	want := udp.Addr{AddrPort: stranger.LocalAddr().(*net.UDPAddr).AddrPort()}
	var got link.Frame
	if !waitFor(loop, func() bool {
		if fs := r.frames(); len(fs) == 1 {
			got = fs[0]
			return true
		}
		return false
	}) {
		t.Fatal("nothing arrived")
	}
	if got.Src != want || string(got.Data) != "hello from nowhere" || got.Broadcast {
		t.Fatalf("frame %+v, want from %v, unicast", got, want)
	}
	if err := l.Send(got.Src, []byte("reply"), 0); err != nil {
		t.Fatal(err)
	}
	stranger.SetReadDeadline(time.Now().Add(patience))
	buf := make([]byte, 100)
	n, from, err := stranger.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "reply" || from != me {
		t.Fatalf("reply %q from %v: %v (want from %v)", buf[:n], from, err, me)
	}
}

// The reader survives datagrams of every size: empty and oversize ones are
// counted drops, the largest legal one and the smallest arrive intact.
func TestGarbageSizes(t *testing.T) {
	loop := runLoop(t)
	l, r := openLocal(t, loop)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me := l.Info().Addr.(udp.Addr).AddrPort
	sizes := []int{0, 1, udp.MTU, udp.MTU + 1, 9000, 65507, 0, 17}
	for i, n := range sizes {
		b := bytes.Repeat([]byte{byte(i + 1)}, n)
		if _, err := c.WriteToUDPAddrPort(b, me); err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
	}
	if !waitFor(loop, func() bool { return len(r.frames()) == 3 }) {
		t.Fatalf("got %d frames, want 3", len(r.frames()))
	}
	fs := r.frames()
	for i, want := range []int{1, udp.MTU, 17} {
		if len(fs[i].Data) != want {
			t.Fatalf("frame %d has %d bytes, want %d", i, len(fs[i].Data), want)
		}
	}
	cs := l.Counters()
	if cs.Drops[link.DropOversize] != 3 || cs.Drops[link.DropMalformed] != 2 || cs.RxFrames != 3 {
		t.Fatalf("counters %+v", cs)
	}
	// Still alive after all that.
	if _, err := c.WriteToUDPAddrPort([]byte("still here"), me); err != nil {
		t.Fatal(err)
	}
	if !waitFor(loop, func() bool { fs := r.frames(); return len(fs) == 4 && string(fs[3].Data) == "still here" }) {
		t.Fatal("reader died")
	}
}

// Send refuses destinations it cannot reach by kind or family.
func TestSendAddressChecks(t *testing.T) {
	loop := runLoop(t)
	l, _ := openLocal(t, loop)
	for _, dst := range []link.Addr{
		otherKind{},
		udp.Addr{AddrPort: netip.MustParseAddrPort("[fd00::1]:4242")},
		udp.Addr{AddrPort: netip.MustParseAddrPort("127.0.0.1:0")},
		udp.Addr{},
		nil,
	} {
		if err := l.Send(dst, []byte("x"), 0); !errors.Is(err, link.ErrAddr) {
			t.Errorf("send to %v: %v, want ErrAddr", dst, err)
		}
	}
	// The generic broadcast and our own group are both broadcasts; an IPv4
	// address written as IPv4-in-IPv6 is still IPv4.
	for _, dst := range []link.Addr{link.Broadcast, udp.Addr{AddrPort: l.Group()},
		udp.Addr{AddrPort: netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), 9)}} {
		if err := l.Send(dst, []byte("x"), 0); err != nil {
			t.Errorf("send to %v: %v", dst, err)
		}
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	for name, cfg := range map[string]udp.Config{
		"no clock":       {Listen: netip.MustParseAddrPort("127.0.0.1:0")},
		"mixed families": {Clock: clk, Listen: netip.MustParseAddrPort("[::1]:0"), Group: udp.DefaultGroup},
		"v6 broadcast":   {Clock: clk, Listen: netip.MustParseAddrPort("[::1]:0"), Group: netip.MustParseAddrPort("[fd00::ff]:4242")},
		"v6 group no if": {Clock: clk, Listen: netip.MustParseAddrPort("[::1]:0"), Group: udp.DefaultGroup6},
		"group port 0":   {Clock: clk, Group: netip.MustParseAddrPort("239.255.77.77:0")},
		"no such iface":  {Clock: clk, Interface: "nonexistent0"},
	} {
		if l, err := udp.Open(cfg); !errors.Is(err, udp.ErrConfig) {
			if l != nil {
				l.Close()
			}
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// Close releases the port: another link can bind it at once.
func TestCloseReleasesPort(t *testing.T) {
	loop := runLoop(t)
	l, _ := openLocal(t, loop)
	addr := l.Info().Addr.(udp.Addr).AddrPort
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := udp.Open(udp.Config{Clock: loop, Listen: addr, Group: l.Group()})
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	l2.Close()
}

// A stalled loop does not make the link buffer without limit: past
// RxBacklog waiting datagrams, the reader drops and counts.
func TestRxBacklogBounded(t *testing.T) {
	clk := clock.NewVirtual(time.Time{}) // not run until the end: the loop is "stalled"
	group := netip.AddrPortFrom(netip.MustParseAddr("127.255.255.255"), freePort(t))
	l, err := udp.Open(udp.Config{Clock: clk, Listen: netip.MustParseAddrPort("127.0.0.1:0"), Group: group})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := &recorder{}
	l.Attach(r)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me := l.Info().Addr.(udp.Addr).AddrPort
	const n = udp.RxBacklog + 100
	taken := func() int { return clk.Pending() + int(l.Counters().Drops[link.DropQueueFull]) }
	for i := range n {
		if _, err := c.WriteToUDPAddrPort([]byte{byte(i), byte(i >> 8)}, me); err != nil {
			t.Fatal(err)
		}
		if i%64 == 63 || i == n-1 {
			// Pace the sender so the kernel's socket buffer never
			// overflows: wait until the reader has taken everything.
			deadline := time.Now().Add(patience)
			for taken() < i+1 {
				if time.Now().After(deadline) {
					t.Fatalf("reader took %d of %d", taken(), i+1)
				}
				runtime.Gosched()
			}
		}
	}
	if got := l.Counters().Drops[link.DropQueueFull]; got != n-udp.RxBacklog {
		t.Fatalf("dropped %d, want %d", got, n-udp.RxBacklog)
	}
	clk.RunFor(time.Second)
	if got := len(r.frames()); got != udp.RxBacklog {
		t.Fatalf("delivered %d, want %d", got, udp.RxBacklog)
	}
}

// otherKind is an address of another kind of link.
type otherKind struct{}

func (otherKind) Network() string   { return "other" }
func (otherKind) String() string    { return "other" }
func (otherKind) IsBroadcast() bool { return false }
