package lab

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// rawSocket is an AF_PACKET socket on one interface of a lab namespace,
// opened from the test process: a packet socket stays in the namespace it
// was made in, so the test can capture and inject on the lab's veths
// without running a helper inside the namespace.
type rawSocket struct {
	fd int
	ix int
}

// openRaw opens a packet socket on ifname in the named namespace (every
// ethertype, every direction).
func openRaw(netns, ifname string) (*rawSocket, error) {
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer self.Close()
	target, err := os.Open("/var/run/netns/" + netns)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("setns %s: %w", netns, err)
	}
	s, err := func() (*rawSocket, error) {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return nil, err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return nil, err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return nil, err
		}
		// A read wakes every 100 ms so that a closed socket's reader ends.
		tv := unix.Timeval{Usec: 100000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return nil, err
		}
		return &rawSocket{fd: fd, ix: ifi.Index}, nil
	}()
	if err2 := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err2 != nil {
		// The thread is left in the lab's namespace: keep it locked so the
		// runtime discards it when this goroutine ends.
		if s != nil {
			s.close()
		}
		return nil, fmt.Errorf("setns back: %w", err2)
	}
	runtime.UnlockOSThread()
	return s, err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read returns the next frame and whether the interface sent it (true) or
// received it; ok is false on the read timeout.
func (s *rawSocket) read(buf []byte) (frame []byte, outgoing, ok bool, err error) {
	n, from, err := unix.Recvfrom(s.fd, buf, 0)
	if err == unix.EAGAIN || err == unix.EINTR {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, err
	}
	ll, _ := from.(*unix.SockaddrLinklayer)
	return buf[:n], ll != nil && ll.Pkttype == unix.PACKET_OUTGOING, true, nil
}

// write sends a frame out of the interface.
func (s *rawSocket) write(frame []byte) error {
	return unix.Sendto(s.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: s.ix})
}

func (s *rawSocket) close() { unix.Close(s.fd) }
