package udp_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
	"github.com/mycelium-mesh/mycelium/l1-link/udp"
)

// A LAN of three hosts: network namespaces n1..n3, each with an interface
// eth0 (10.77.0.i/24, fd77::i/64, default route) plugged into a bridge in a
// fourth namespace. The default namespace is never touched, and the bridge
// floods multicast (snooping off) like a plain switch.
type lan struct {
	hosts []*host
}

type host struct {
	ns  string
	fd  *os.File
	ip4 netip.Addr
	ip6 netip.Addr
}

var nsSeq atomic.Int32

func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command (CI has it)")
	}
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newLAN(t *testing.T) *lan {
	needNetns(t)
	id := fmt.Sprintf("mycudp%d-%d", os.Getpid(), nsSeq.Add(1))
	hub := id + "-hub"
	ipCmd(t, "netns", "add", hub)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", hub).Run() })
	ipCmd(t, "-n", hub, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	ipCmd(t, "-n", hub, "link", "set", "br0", "up")
	l := &lan{}
	for i := 1; i <= 3; i++ {
		ns := fmt.Sprintf("%s-n%d", id, i)
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		port := fmt.Sprintf("p%d", i)
		ipCmd(t, "-n", hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		ipCmd(t, "-n", hub, "link", "set", port, "master", "br0", "up")
		// No IPv6 link-local address: the ULA below is then the only
		// source the kernel can pick, even for link-local-scope groups.
		ipCmd(t, "-n", ns, "link", "set", "eth0", "addrgenmode", "none")
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
		h := &host{ns: ns, ip4: netip.AddrFrom4([4]byte{10, 77, 0, byte(i)}), ip6: netip.MustParseAddr(fmt.Sprintf("fd77::%d", i))}
		ipCmd(t, "-n", ns, "addr", "add", h.ip4.String()+"/24", "dev", "eth0")
		ipCmd(t, "-n", ns, "-6", "addr", "add", h.ip6.String()+"/64", "dev", "eth0", "nodad")
		ipCmd(t, "-n", ns, "link", "set", "eth0", "up")
		ipCmd(t, "-n", ns, "route", "add", "default", "dev", "eth0")
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		h.fd = f
		l.hosts = append(l.hosts, h)
	}
	return l
}

// open opens a link inside the host's namespace, from a goroutine locked to
// a thread that enters the namespace and leaves it again; the sockets stay
// in the namespace they were made in.
func (h *host) open(cfg udp.Config) (*udp.Link, error) {
	type res struct {
		l   *udp.Link
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		back, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer back.Close()
		if err := unix.Setns(int(h.fd.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, fmt.Errorf("setns %s: %w", h.ns, err)}
			return
		}
		l, err := udp.Open(cfg)
		ch <- res{l, err}
		if unix.Setns(int(back.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread() // else the thread dies with the goroutine
		}
	}()
	r := <-ch
	return r.l, r.err
}

// runOnLAN runs the conformance suite with one link per host, all made by
// cfg(host).
func runOnLAN(t *testing.T, cfg func(*host, clock.Clock) udp.Config) {
	lan := newLAN(t)
	linktest.Run(t, func(t *testing.T) *linktest.Env {
		loop := runLoop(t)
		var links []*udp.Link
		for _, h := range lan.hosts {
			l, err := h.open(cfg(h, loop))
			if err != nil {
				t.Fatal(err)
			}
			links = append(links, l)
		}
		return envOf(t, loop, links)
	})
}

// IPv4 multicast with nothing configured but the clock: listen on
// 0.0.0.0:4242, group 239.255.77.77:4242, interface by route. This is the
// "two Linux machines on one LAN" case. The kernel does not loop our own
// multicast back (MulticastLoop off).
func TestConformanceIPv4MulticastDefaults(t *testing.T) {
	runOnLAN(t, func(h *host, clk clock.Clock) udp.Config {
		return udp.Config{Clock: clk}
	})
}

// IPv4 multicast with the loop on, as several nodes on one host need: our
// own datagrams come back and are recognised by source address and port.
func TestConformanceIPv4MulticastLoop(t *testing.T) {
	runOnLAN(t, func(h *host, clk clock.Clock) udp.Config {
		return udp.Config{Clock: clk, Interface: "eth0", MulticastLoop: true}
	})
}

// IPv6 multicast to a link-local group on a named interface, listening on a
// specific address: unicast and group traffic then use separate sockets.
func TestConformanceIPv6Multicast(t *testing.T) {
	runOnLAN(t, func(h *host, clk clock.Clock) udp.Config {
		return udp.Config{
			Clock:     clk,
			Listen:    netip.AddrPortFrom(h.ip6, 4242),
			Group:     udp.DefaultGroup6,
			Interface: "eth0",
		}
	})
}

// Subnet broadcast (SO_BROADCAST to 10.77.0.255), listening on the wildcard.
// Linux always loops a broadcast back to the sender's own socket, so this
// checks suppression by our own address and port.
func TestConformanceSubnetBroadcast(t *testing.T) {
	runOnLAN(t, func(h *host, clk clock.Clock) udp.Config {
		return udp.Config{Clock: clk, Group: netip.MustParseAddrPort("10.77.0.255:4242")}
	})
}
