package udp_test

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
	"github.com/mycelium-mesh/mycelium/l1-link/udp"
)

// openStatic opens n links on 127.0.0.1 with no group, each with every
// other as a static peer (set after all are open: their ports are the
// kernel's choice).
func openStatic(t *testing.T, loop *clock.Loop, n int) []*udp.Link {
	t.Helper()
	var links []*udp.Link
	for range n {
		l, err := udp.Open(udp.Config{Clock: loop, Listen: netip.MustParseAddrPort("127.0.0.1:0"), NoGroup: true})
		if err != nil {
			t.Fatal(err)
		}
		links = append(links, l)
	}
	for i, l := range links {
		var peers []netip.AddrPort
		for j, o := range links {
			if j != i {
				peers = append(peers, o.Info().Addr.(udp.Addr).AddrPort)
			}
		}
		if err := l.SetPeers(peers); err != nil {
			t.Fatal(err)
		}
	}
	return links
}

// With no group, a broadcast reaches every static peer (one datagram each)
// and nobody else; the link declares it cannot tell broadcasts on receipt.
func TestConformanceStaticPeers(t *testing.T) {
	linktest.Run(t, func(t *testing.T) *linktest.Env {
		loop := runLoop(t)
		return envOf(t, loop, openStatic(t, loop, 3))
	})
}

// A broadcast goes to the static peers (with no peers, to nobody), and one
// TxDone answers the whole broadcast.
func TestStaticPeersOnly(t *testing.T) {
	loop := runLoop(t)
	links := openStatic(t, loop, 2)
	defer links[0].Close()
	defer links[1].Close()
	a, b := links[0], links[1]
	if !a.Info().Caps.Has(link.CapNoRxDest | link.CapBroadcast) {
		t.Fatalf("caps %b: want broadcast and no-rx-dest", a.Info().Caps)
	}
	if a.Group().IsValid() {
		t.Fatalf("group %v with NoGroup", a.Group())
	}
	ra, rb := &recorder{}, &recorder{}
	a.Attach(ra)
	b.Attach(rb)
	if err := a.Send(link.Broadcast, []byte("hello peers"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(loop, func() bool { return len(rb.frames()) == 1 }) {
		t.Fatal("peer did not get the broadcast")
	}
	if !waitFor(loop, func() bool {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		return len(ra.done) == 1 && ra.done[0] == nil
	}) {
		t.Fatal("no single successful TxDone for the broadcast")
	}
	f := rb.frames()[0]
	if string(f.Data) != "hello peers" || f.Broadcast || f.Src.String() != a.Info().Addr.String() {
		t.Fatalf("frame %+v", f)
	}
	// Peers replaced: the old one hears nothing more.
	if err := a.SetPeers(nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(link.Broadcast, []byte("to nobody"), 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(b.Info().Addr, []byte("unicast"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(loop, func() bool { return len(rb.frames()) == 2 }) {
		t.Fatal("unicast after SetPeers(nil) lost")
	}
	if got := string(rb.frames()[1].Data); got != "unicast" {
		t.Fatalf("second frame %q: the broadcast to no peers went somewhere", got)
	}
}

// Close sends what was queued before it (a node's goodbye), then stops.
func TestCloseFlushesQueue(t *testing.T) {
	loop := runLoop(t)
	links := openStatic(t, loop, 2)
	defer links[1].Close()
	a, b := links[0], links[1]
	rb := &recorder{}
	b.Attach(rb)
	for i := range 20 {
		if err := a.Send(link.Broadcast, []byte{byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(loop, func() bool { return len(rb.frames()) == 20 }) {
		t.Fatalf("%d of 20 queued datagrams sent before close", len(rb.frames()))
	}
	if err := a.Send(link.Broadcast, []byte{1}, 0); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestBadPeers(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	for name, peers := range map[string][]netip.AddrPort{
		"no port":    {netip.MustParseAddrPort("127.0.0.1:0")},
		"v6 peer":    {netip.MustParseAddrPort("[::1]:4000")},
		"twice":      {netip.MustParseAddrPort("127.0.0.1:4000"), netip.MustParseAddrPort("127.0.0.1:4000")},
		"no address": {{}},
	} {
		l, err := udp.Open(udp.Config{Clock: clk, Listen: netip.MustParseAddrPort("127.0.0.1:0"), NoGroup: true, Peers: peers})
		if !errors.Is(err, udp.ErrConfig) {
			if l != nil {
				l.Close()
			}
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	l, err := udp.Open(udp.Config{Clock: clk, Listen: netip.MustParseAddrPort("127.0.0.1:0"), NoGroup: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:4001")}
	if err := l.SetPeers(append(want, netip.MustParseAddrPort("[::1]:1"))); !errors.Is(err, udp.ErrConfig) {
		t.Fatalf("SetPeers with a v6 peer on a v4 link: %v", err)
	}
	if err := l.SetPeers(want); err != nil || !slices.Equal(l.Peers(), want) {
		t.Fatalf("SetPeers: %v, peers %v", err, l.Peers())
	}
}
