package lab

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// loCapture records the payloads of the UDP datagrams to or from some
// ports on the loopback interface, read from an AF_PACKET socket: what a
// relay between the lab's nodes receives and sends, byte for byte.
type loCapture struct {
	fd    int
	ports map[uint16]bool
	stop  atomic.Bool
	done  chan struct{}
	mu    sync.Mutex
	pkts  [][]byte
}

// captureLoopback starts capturing the UDP payloads to or from addrs
// ("127.0.0.1:port"). It needs CAP_NET_RAW (root: CI runs as root).
func captureLoopback(t *testing.T, addrs ...string) *loCapture {
	t.Helper()
	const ethPAll = 0x0003
	proto := int(ethPAll>>8 | (ethPAll&0xff)<<8) // network byte order
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, proto)
	if errors.Is(err, syscall.EPERM) {
		t.Skip("needs CAP_NET_RAW to capture on the loopback interface (CI runs as root)")
	}
	if err != nil {
		t.Fatal(err)
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: lo.Index}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	// The reader wakes every 100 ms to see whether it should stop.
	tv := syscall.Timeval{Usec: 100_000}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<20)
	c := &loCapture{fd: fd, ports: map[uint16]bool{}, done: make(chan struct{})}
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			syscall.Close(fd)
			t.Fatal(err)
		}
		c.ports[ap.Port()] = true
	}
	go c.read()
	t.Cleanup(func() { c.Stop() })
	return c
}

func (c *loCapture) read() {
	defer close(c.done)
	buf := make([]byte, 1<<16)
	for !c.stop.Load() {
		n, _, err := syscall.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue // the timeout, or an interrupted call
		}
		b := buf[:n]
		// IPv4 (SOCK_DGRAM: no link header), UDP.
		if n < 20 || b[0]>>4 != 4 || b[9] != syscall.IPPROTO_UDP {
			continue
		}
		ihl := int(b[0]&0x0f) * 4
		if n < ihl+8 {
			continue
		}
		src, dst := uint16(b[ihl])<<8|uint16(b[ihl+1]), uint16(b[ihl+2])<<8|uint16(b[ihl+3])
		if !c.ports[src] && !c.ports[dst] {
			continue
		}
		c.mu.Lock()
		c.pkts = append(c.pkts, append([]byte(nil), b[ihl+8:]...))
		c.mu.Unlock()
	}
}

// Stop ends the capture and returns the payloads captured.
func (c *loCapture) Stop() [][]byte {
	if !c.stop.Swap(true) {
		<-c.done
		syscall.Close(c.fd)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pkts
}
