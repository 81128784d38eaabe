// Package udp is the UDP/IP link (PROTOCOL 9): one mesh packet per UDP
// datagram, nothing added, nothing removed. A broadcast goes to a multicast
// group (IPv4 or IPv6) or to a subnet broadcast address, whichever the
// configuration names; unicast goes to the IP address and port a datagram
// came from. With the defaults, two Linux machines on one LAN find each other
// with no configuration: both listen on 0.0.0.0:4242, both join
// 239.255.77.77, and the mesh's own beacons (sent to link.Broadcast) do the
// rest.
//
// Threading: the link owns a reader goroutine per socket and one writer
// goroutine; the reader copies each datagram and hands it to the clock's
// loop, where the Dispatcher is called. Send, Info, Counters, Attach and
// Close may be called from any goroutine.
package udp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// MTU is the largest datagram the link sends or accepts: 1280 bytes (the
// IPv6 minimum link MTU) less 40 bytes of IPv6 header and 8 of UDP, the same
// figure DNS settled on. A datagram this size crosses any IPv6 path and any
// ordinary IPv4 LAN without fragmentation, so the link never depends on
// fragment reassembly (which loses the whole datagram when one fragment is
// lost on Wi-Fi). The mesh itself never sends more than 250 bytes; the head
// room is for tests and for apps talking over loopback-like LANs.
const MTU = 1232

// DefaultPort is the UDP port the mesh uses when the configuration names
// none, for unicast and for the group alike.
const DefaultPort = 4242

// Default broadcast destinations. The IPv4 group is in the organization-local
// scope (239.255.0.0/16, RFC 2365), so routers at a site boundary keep it in;
// the IPv6 group is link-local scope (ff02::/16) and needs an interface. 4d59
// is "MY" in ASCII.
var (
	DefaultGroup  = netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, 77, 77}), DefaultPort)
	DefaultGroup6 = netip.AddrPortFrom(netip.MustParseAddr("ff02::4d59"), DefaultPort)
)

// Queue sizes used when the configuration leaves them zero.
const (
	DefaultTxQueue = 256
	// RxBacklog bounds how many received datagrams may wait for the clock's
	// loop; past it they are dropped (DropQueueFull) rather than queued
	// without limit behind a stalled loop.
	RxBacklog = 1024
)

// Config configures a UDP link.
type Config struct {
	// Clock is the loop the Dispatcher is called on (required).
	Clock clock.Clock
	// Listen is the unicast address and port. Zero means the wildcard of
	// Group's family on Group's port (0.0.0.0:4242 by default). Port 0 picks
	// a free port (tests; peers still reach it, because they answer the
	// source address of what they heard). A specific IP makes every datagram
	// leave from that IP; group traffic is then received on a second socket
	// bound to the group address.
	Listen netip.AddrPort
	// Group is where broadcasts go: an IPv4 or IPv6 multicast group, or an
	// IPv4 subnet (or limited) broadcast address such as 192.168.1.255:4242.
	// Zero means DefaultGroup. An IPv6 link-local group needs Interface or a
	// zone ([ff02::4d59%eth0]:4242).
	Group netip.AddrPort
	// Interface names the interface multicast is joined on and sent from.
	// Empty: the kernel's choice (the interface of the route to the group),
	// or the group's zone for IPv6.
	Interface string
	// MulticastLoop lets our multicast reach other sockets on this host, so
	// several nodes can share one machine (give each its own Listen port).
	// The link still never hands its own datagrams to its own dispatcher.
	// Default off: the kernel then does not loop our multicast at all.
	MulticastLoop bool
	// Hops is the multicast TTL / hop limit; 0 means 1 (this LAN only).
	Hops int
	// TxQueue is the transmit queue capacity in datagrams (0: DefaultTxQueue).
	TxQueue int
	// NoGroup sends broadcasts to Peers only: no group is joined and no
	// group socket opened (networks without multicast, or a fixed set of
	// neighbours such as a ring of nodes on one host). Group is ignored.
	NoGroup bool
	// Peers are static neighbours: every broadcast is also sent to each of
	// them as a unicast datagram. Received copies cannot be told from
	// unicast, so with peers the link declares link.CapNoRxDest.
	Peers []netip.AddrPort
}

// Bitrate is the nominal rate UDP links declare (it ranks them above the
// radios).
const Bitrate = 100_000_000

// Network is the kind of a UDP address (link.Addr.Network).
const Network = "udp"

// Addr is an IP address and port; it is a link.Addr.
type Addr struct{ netip.AddrPort }

// Network returns "udp".
func (Addr) Network() string { return Network }

// IsBroadcast reports a multicast or limited-broadcast destination: Send
// takes either as a broadcast (to the link's group).
func (a Addr) IsBroadcast() bool {
	ip := a.Addr()
	return ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// ParseAddr parses "ip:port" or "[ipv6]:port".
func ParseAddr(s string) (Addr, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return Addr{}, fmt.Errorf("udp: bad address %q: %w", s, err)
	}
	return Addr{ap}, nil
}

func init() {
	link.RegisterNetwork(Network, func(s string) (link.Addr, error) { return ParseAddr(s) })
}

// Errors Open returns for a configuration it cannot use.
var (
	ErrConfig = errors.New("udp: bad configuration")
)

// Link is a UDP/IP link. Create it with Open.
type Link struct {
	link.Base
	lp    *link.Port
	clk   clock.Clock
	info  link.Info
	group netip.AddrPort
	v6    bool

	uc *sock // unicast socket: every datagram leaves from it
	gc *sock // group receiver, nil when uc receives the group too

	own  *ownAddrs
	port uint16 // uc's local port: our datagrams carry it as source port

	peers atomic.Pointer[[]netip.AddrPort] // static peers, replaced whole by SetPeers

	q          chan txItem
	quit       chan struct{}
	writerDone chan struct{}
	wg         sync.WaitGroup // the readers
	mu         sync.Mutex     // guards closed and the send side of q
	closed     bool
}

type txItem struct {
	dst   netip.AddrPort
	bcast bool // to the group (if any) and every static peer
	data  []byte
	tag   link.Tag
}

// Open creates the sockets, joins the group and starts the link.
func Open(cfg Config) (*Link, error) {
	if cfg.Clock == nil {
		return nil, fmt.Errorf("%w: no clock", ErrConfig)
	}
	var group netip.AddrPort // invalid: no group (NoGroup)
	v6 := cfg.Listen.Addr().Is6() && !cfg.Listen.Addr().Is4In6()
	if !cfg.NoGroup {
		if !cfg.Group.IsValid() {
			cfg.Group = DefaultGroup
			if v6 {
				cfg.Group = DefaultGroup6
			}
		}
		group = netip.AddrPortFrom(cfg.Group.Addr().Unmap(), cfg.Group.Port())
		if group.Port() == 0 {
			return nil, fmt.Errorf("%w: group %v has no port", ErrConfig, group)
		}
		v6 = group.Addr().Is6()
	}
	if !cfg.Listen.IsValid() {
		wild := netip.IPv4Unspecified()
		if v6 {
			wild = netip.IPv6Unspecified()
		}
		port := uint16(DefaultPort)
		if group.IsValid() {
			port = group.Port()
		}
		cfg.Listen = netip.AddrPortFrom(wild, port)
	}
	listen := netip.AddrPortFrom(cfg.Listen.Addr().Unmap(), cfg.Listen.Port())
	if listen.Addr().Is6() != v6 {
		return nil, fmt.Errorf("%w: listen %v and group %v are of different IP families", ErrConfig, listen, group)
	}
	peers, err := checkPeers(cfg.Peers, v6)
	if err != nil {
		return nil, err
	}
	multicast := group.IsValid() && group.Addr().IsMulticast()
	if v6 && group.IsValid() && !multicast {
		return nil, fmt.Errorf("%w: IPv6 has no broadcast; %v is not a multicast group", ErrConfig, group)
	}
	var ifi *net.Interface
	ifname := cfg.Interface
	if ifname == "" && v6 && group.IsValid() {
		ifname = group.Addr().Zone()
	}
	if ifname != "" {
		if ifi, err = net.InterfaceByName(ifname); err != nil {
			return nil, fmt.Errorf("%w: interface %q: %w", ErrConfig, ifname, err)
		}
	}
	if v6 && (group.Addr().IsLinkLocalMulticast() || group.Addr().IsInterfaceLocalMulticast()) && ifi == nil {
		return nil, fmt.Errorf("%w: link-local group %v needs an interface", ErrConfig, group)
	}
	if ifi != nil && v6 && group.Addr().Zone() == "" && group.Addr().IsLinkLocalMulticast() {
		group = netip.AddrPortFrom(group.Addr().WithZone(ifi.Name), group.Port())
	}
	hops := cfg.Hops
	if hops <= 0 {
		hops = 1
	}
	txq := cfg.TxQueue
	if txq <= 0 {
		txq = DefaultTxQueue
	}

	lp := link.NewPort(cfg.Clock, RxBacklog)
	l := &Link{Base: lp.Base(), lp: lp, clk: cfg.Clock, group: group, v6: v6, q: make(chan txItem, txq), quit: make(chan struct{}), writerDone: make(chan struct{})}
	l.peers.Store(&peers)
	ok := false
	defer func() {
		if !ok {
			l.closeSockets()
			if l.own != nil {
				l.own.close()
			}
		}
	}()
	if l.uc, err = listenSock(listen, v6, true); err != nil {
		return nil, err
	}
	l.port = l.uc.local.Port()
	// One socket serves unicast and the group when it is bound to the
	// wildcard on the group's port; otherwise the group needs its own,
	// bound to the group (or broadcast) address so it hears nothing else.
	recv := l.uc
	if group.IsValid() && !(listen.Addr().IsUnspecified() && l.port == group.Port()) {
		if l.gc, err = listenSock(netip.AddrPortFrom(group.Addr(), group.Port()), v6, false); err != nil {
			return nil, err
		}
		recv = l.gc
	}
	if multicast {
		if err := recv.join(ifi, group.Addr()); err != nil {
			return nil, fmt.Errorf("udp: join %v: %w", group.Addr(), err)
		}
		if err := l.uc.multicastOut(ifi, hops, cfg.MulticastLoop); err != nil {
			return nil, fmt.Errorf("udp: multicast options: %w", err)
		}
	}
	if l.own, err = newOwnAddrs(); err != nil {
		return nil, fmt.Errorf("udp: local addresses: %w", err)
	}
	addr := netip.AddrPortFrom(l.uc.local.Addr(), l.port)
	if listen.Addr().IsUnspecified() {
		addr = netip.AddrPortFrom(pickAddr(ifi, v6), l.port)
	}
	caps := link.CapBroadcast
	if len(peers) > 0 || !group.IsValid() {
		caps |= link.CapNoRxDest
	}
	l.info = link.Info{
		Name: "udp", Addr: Addr{addr}, MTU: MTU, Bitrate: Bitrate,
		Schemas: link.SchemasAll, Caps: caps, TxQueue: txq,
	}
	go l.writer()
	for _, s := range []*sock{l.uc, l.gc} {
		if s != nil {
			l.wg.Add(1)
			go l.reader(s, s == l.gc)
		}
	}
	ok = true
	return l, nil
}

// checkPeers validates static peers: addresses with ports, of the link's
// IP family, no duplicates.
func checkPeers(in []netip.AddrPort, v6 bool) ([]netip.AddrPort, error) {
	out := make([]netip.AddrPort, 0, len(in))
	for _, p := range in {
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		switch {
		case !p.Addr().IsValid() || p.Port() == 0:
			return nil, fmt.Errorf("%w: peer %v: want an address and a port", ErrConfig, p)
		case p.Addr().Is6() != v6:
			return nil, fmt.Errorf("%w: peer %v is not of the link's IP family", ErrConfig, p)
		case slices.Contains(out, p):
			return nil, fmt.Errorf("%w: peer %v listed twice", ErrConfig, p)
		}
		out = append(out, p)
	}
	return out, nil
}

// SetPeers replaces the static peers (a configuration reload); broadcasts
// queued already go to the new set.
func (l *Link) SetPeers(peers []netip.AddrPort) error {
	p, err := checkPeers(peers, l.v6)
	if err != nil {
		return err
	}
	l.peers.Store(&p)
	return nil
}

// Peers returns the static peers.
func (l *Link) Peers() []netip.AddrPort { return slices.Clone(*l.peers.Load()) }

// pickAddr chooses the address peers most likely see as our source when we
// listen on the wildcard: the first global-unicast (or private) address of
// the multicast interface, else of any up, non-loopback interface; an IPv6
// link-local address (with its zone) only when nothing better exists. The
// kernel picks the real source per destination, so on a multi-homed host
// this is a best guess; received frames always carry the true source.
func pickAddr(ifi *net.Interface, v6 bool) netip.Addr {
	var ifs []net.Interface
	if ifi != nil {
		ifs = []net.Interface{*ifi}
	} else if all, err := net.Interfaces(); err == nil {
		ifs = all
	}
	var fallback netip.Addr
	for _, in := range ifs {
		if in.Flags&net.FlagUp == 0 || in.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := in.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			if ip.Is6() != v6 {
				continue
			}
			if ip.IsGlobalUnicast() {
				return ip
			}
			if ip.IsLinkLocalUnicast() && !fallback.IsValid() {
				fallback = ip.WithZone(in.Name)
			}
		}
	}
	if fallback.IsValid() {
		return fallback
	}
	if v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// Info describes the link. Addr is the unicast address and port: the listen
// address when it is specific, else the best guess of pickAddr.
func (l *Link) Info() link.Info { return l.info }

// Group returns the group broadcasts are sent to (not valid with NoGroup).
func (l *Link) Group() netip.AddrPort { return l.group }

// Send queues one datagram for dst: an Addr of the link's IP family, or
// link.Broadcast (the group and every static peer, one datagram each and
// one TxDone for all; a multicast or broadcast Addr is a broadcast too).
// It never blocks.
func (l *Link) Send(dst link.Addr, data []byte, tag link.Tag) error {
	a, bcast, err := link.Dest[Addr](dst)
	if err != nil {
		return err
	}
	to := l.group
	if !bcast {
		to = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if !to.Addr().IsValid() || to.Port() == 0 || to.Addr().Is6() != l.v6 {
			return fmt.Errorf("%w: %v is not a %s destination", link.ErrAddr, dst, l.family())
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return net.ErrClosed
	}
	if len(data) > MTU {
		l.lp.Drop(link.DropOversize)
		return link.ErrTooBig
	}
	select {
	case l.q <- txItem{dst: to, bcast: bcast, data: append([]byte(nil), data...), tag: tag}:
		return nil
	default:
		l.lp.Drop(link.DropQueueFull)
		return link.ErrBusy
	}
}

func (l *Link) family() string {
	if l.v6 {
		return "IPv6"
	}
	return "IPv4"
}

// writer drains the transmit queue: one datagram (or one per destination
// of a broadcast), one TxDone. On Close it sends what was accepted before
// (a node's goodbye is the last thing it queues), within flushTimeout.
func (l *Link) writer() {
	defer close(l.writerDone)
	for {
		select {
		case it := <-l.q:
			l.transmit(it)
		case <-l.quit:
			_ = l.uc.c.SetWriteDeadline(time.Now().Add(flushTimeout))
			for {
				select {
				case it := <-l.q:
					l.transmit(it)
				default:
					return
				}
			}
		}
	}
}

// flushTimeout bounds how long Close spends sending what was queued.
const flushTimeout = 500 * time.Millisecond

func (l *Link) transmit(it txItem) {
	if !it.bcast {
		l.lp.Complete(it.tag, l.write(it.data, it.dst))
		return
	}
	// A broadcast succeeds if any destination took it (the group, or a
	// static peer: one unreachable peer must not fail the rest).
	var err error
	sent := 0
	if l.group.IsValid() {
		if err = l.write(it.data, l.group); err == nil {
			sent++
		}
	}
	for _, p := range *l.peers.Load() {
		if e := l.write(it.data, p); e == nil {
			sent++
		} else if err == nil {
			err = e
		}
	}
	if sent > 0 {
		err = nil
	}
	l.lp.Complete(it.tag, err)
}

func (l *Link) write(data []byte, to netip.AddrPort) error {
	_, err := l.uc.c.WriteToUDPAddrPort(data, to)
	if err != nil {
		l.lp.Drop(link.DropTxError)
	} else {
		l.lp.Tx(len(data), 0)
	}
	return err
}

// reader reads datagrams from s until it is closed. It survives any
// datagram: empty ones and ones over the MTU are counted and dropped.
func (l *Link) reader(s *sock, groupOnly bool) {
	defer l.wg.Done()
	l.own.enter()
	buf := make([]byte, 1<<16)
	oob := make([]byte, s.oobSize)
	for {
		n, oobn, flags, src, err := s.c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (an ICMP error surfacing, ENOBUFS): keep reading.
			continue
		}
		now := l.clk.Now()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if src.Port() == l.port && l.own.has(src.Addr()) {
			// Our own broadcast, looped back by the kernel (subnet
			// broadcast always is; multicast when MulticastLoop is on).
			continue
		}
		switch {
		case flags&msgTrunc != 0 || n > MTU:
			l.lp.Drop(link.DropOversize)
			continue
		case n == 0:
			// No mesh packet is empty.
			l.lp.Drop(link.DropMalformed)
			continue
		}
		bcast := groupOnly
		if !bcast {
			if dst, ok := s.dst(oob[:oobn]); ok {
				bcast = l.isBroadcastDst(dst)
			}
		}
		l.lp.HandUp(link.Frame{Src: Addr{src}, Broadcast: bcast, Data: append([]byte(nil), buf[:n]...), Time: now})
	}
}

func (l *Link) isBroadcastDst(dst netip.Addr) bool {
	dst = dst.Unmap()
	return dst.IsMulticast() || dst == l.group.Addr().WithZone("") || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// Close sends the datagrams still queued (within flushTimeout), stops the
// goroutines and releases the sockets; frames not yet delivered are
// dropped.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return net.ErrClosed
	}
	l.closed = true
	close(l.quit)
	l.mu.Unlock()
	<-l.writerDone
	l.lp.SetClosed()
	l.closeSockets()
	l.wg.Wait()
	l.own.close() // only now: the readers used it
	return nil
}

func (l *Link) closeSockets() {
	for _, s := range []*sock{l.uc, l.gc} {
		if s != nil {
			s.c.Close()
		}
	}
}

// ownRefresh is how stale the set of our own addresses may get before a
// datagram from our port re-reads it (DHCP may change an address under a
// running node). Wall-clock by nature: it tracks the host, not the mesh.
const ownRefresh = 5 * time.Second
