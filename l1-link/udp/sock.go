package udp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// msgTrunc is the recvmsg flag for a datagram longer than the buffer.
const msgTrunc = unix.MSG_TRUNC

// sock is one UDP socket of either IP family, with the family's control
// messages: the destination address of each datagram (IP_PKTINFO /
// IPV6_RECVPKTINFO) tells a broadcast from a unicast.
type sock struct {
	c       *net.UDPConn
	local   netip.AddrPort
	p4      *ipv4.PacketConn
	p6      *ipv6.PacketConn
	oobSize int
}

// listenSock binds addr. SO_REUSEADDR lets several links on one host share a
// group socket (each gets a copy of every group datagram); SO_BROADCAST lets
// the unicast socket send to a subnet broadcast address. An IPv6 unicast
// socket takes SO_REUSEADDR too: Linux refuses to bind an IPv6 group address
// on the port of a specific unicast address (EADDRINUSE) unless both sockets
// allow reuse. IPv4 unicast sockets do not, so two links cannot silently
// share one unicast address and port.
func listenSock(addr netip.AddrPort, v6, sender bool) (*sock, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if !sender || v6 {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}
			if serr == nil && sender && !v6 {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
			}
			if serr == nil {
				setRcvBuf(int(fd))
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		return nil, fmt.Errorf("udp: listen %v: %w", addr, err)
	}
	c := pc.(*net.UDPConn)
	s := &sock{c: c, local: c.LocalAddr().(*net.UDPAddr).AddrPort()}
	if v6 {
		s.p6 = ipv6.NewPacketConn(c)
		err = s.p6.SetControlMessage(ipv6.FlagDst, true)
		s.oobSize = len(ipv6.NewControlMessage(ipv6.FlagDst))
	} else {
		s.p4 = ipv4.NewPacketConn(c)
		err = s.p4.SetControlMessage(ipv4.FlagDst, true)
		s.oobSize = len(ipv4.NewControlMessage(ipv4.FlagDst))
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("udp: packet info on %v: %w", addr, err)
	}
	return s, nil
}

// rcvBuf is the receive buffer a socket asks for. A burst of a few
// thousand datagrams (a sequence, a relay passing one on) arrives faster
// than a busy host's reader may be scheduled; the kernel's default (208
// KiB, a few hundred datagrams once its per-datagram overhead is counted)
// would lose most of it, and the sequence would crawl through its
// retransmission rounds.
const rcvBuf = 4 << 20

// setRcvBuf asks for rcvBuf: forced past net.core.rmem_max where the
// process may (CAP_NET_ADMIN), else as much as rmem_max allows. Best
// effort: a smaller buffer only costs retransmissions.
func setRcvBuf(fd int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
}

// join joins the multicast group on ifi (nil: the kernel's choice).
func (s *sock) join(ifi *net.Interface, group netip.Addr) error {
	ga := &net.UDPAddr{IP: group.AsSlice()}
	if s.p6 != nil {
		return s.p6.JoinGroup(ifi, ga)
	}
	return s.p4.JoinGroup(ifi, ga)
}

// multicastOut sets where our multicast goes, how far, and whether the host's
// other sockets hear it.
func (s *sock) multicastOut(ifi *net.Interface, hops int, loop bool) error {
	if s.p6 != nil {
		if ifi != nil {
			if err := s.p6.SetMulticastInterface(ifi); err != nil {
				return err
			}
		}
		if err := s.p6.SetMulticastHopLimit(hops); err != nil {
			return err
		}
		return s.p6.SetMulticastLoopback(loop)
	}
	if ifi != nil {
		if err := s.p4.SetMulticastInterface(ifi); err != nil {
			return err
		}
	}
	if err := s.p4.SetMulticastTTL(hops); err != nil {
		return err
	}
	return s.p4.SetMulticastLoopback(loop)
}

// dst returns the destination address of a datagram from its control
// message, if the kernel supplied one.
func (s *sock) dst(oob []byte) (netip.Addr, bool) {
	if len(oob) == 0 {
		return netip.Addr{}, false
	}
	var ip net.IP
	if s.p6 != nil {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) != nil {
			return netip.Addr{}, false
		}
		ip = cm.Dst
	} else {
		var cm ipv4.ControlMessage
		if cm.Parse(oob) != nil {
			return netip.Addr{}, false
		}
		ip = cm.Dst
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}
