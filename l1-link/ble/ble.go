// Package ble is the Bluetooth Low Energy link (PROTOCOL 9): mesh packets
// travel over GATT connections, one packet per write without response
// (central to peripheral) or per notification (peripheral to central), sized
// to the connection's negotiated ATT MTU. Nothing is added to a packet.
//
// A node can be a central (it scans for peers advertising ServiceUUID and
// connects to them), a peripheral (it advertises ServiceUUID and accepts
// centrals such as phones), or both; which roles it plays is the
// Transport's configuration. Between two nodes that are both, one
// connection is kept: the one whose central has the lower address (both
// sides apply the same rule, so they agree which to drop).
//
// BLE has no broadcast on a connection: a broadcast is written to every
// connected peer. Connections are refused below a minimum MTU (Config.MinMTU),
// so Info().MTU is a guarantee that holds for every peer, and the family of
// schemas follows from it.
//
// Threading: all of the link's state is owned by the clock's loop; the
// Transport's events are handed to the loop with AfterFunc(0), so under a
// virtual clock (the tests' in-memory air) a run is deterministic. Send,
// Info, Counters, Events, Peers, Attach and Close may be called from any
// goroutine.
package ble

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// Defaults for a zero Config.
const (
	// DefaultMinMTU is the smallest ATT MTU the link accepts: 253 carries a
	// 250-byte payload, the ESP-NOW family's packet size, so a BLE link
	// carries the same packets as ESP-NOW with no re-encoding. Linux and
	// Android centrals negotiate 517; see the docs for phones that stop at
	// 185.
	DefaultMinMTU = 253
	// DefaultBitrate is the nominal rate of the LE 1M PHY. The throughput
	// of a GATT connection is far lower (a few packets per connection
	// interval), but links are ranked and identified by nominal rates.
	DefaultBitrate = 1_000_000
	// Bitrate2M is the nominal rate of the LE 2M PHY, for Config.Bitrate
	// when the controllers use it.
	Bitrate2M = 2_000_000
	// DefaultTxQueue is the transmit queue capacity in datagrams.
	DefaultTxQueue = 64
	// DefaultBackoff is the first redial delay after a lost connection or
	// a failed dial; it doubles up to DefaultMaxBackoff.
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = time.Minute
	// DefaultDialTimeout bounds a connection attempt (BlueZ's own is
	// longer and tinygo waits without limit).
	DefaultDialTimeout = 30 * time.Second
	// DefaultForget: a peer not seen advertising, and not connected, for
	// this long is no longer redialed.
	DefaultForget = 5 * time.Minute
	// RxBacklog bounds received packets waiting for the loop.
	RxBacklog = 1024
)

// Config configures a BLE link.
type Config struct {
	Clock     clock.Clock // the loop the link runs on (required)
	Transport Transport   // the radio (required); the link closes it on Close
	// MinMTU is the smallest negotiated ATT MTU a connection may have; the
	// link refuses (disconnects) any below it. Info().MTU is MinMTU − 3.
	// At least 243 (a 240-byte payload, the LoRa family), at most 517.
	// 0: DefaultMinMTU.
	MinMTU int
	// Bitrate is the nominal bit rate in Info (0: DefaultBitrate).
	Bitrate int
	// TxQueue is the transmit queue capacity (0: DefaultTxQueue).
	TxQueue int
	// Backoff and MaxBackoff bound the redial delay (0: defaults).
	Backoff, MaxBackoff time.Duration
	// DialTimeout bounds one connection attempt (0: DefaultDialTimeout).
	DialTimeout time.Duration
	// Forget is how long an unseen, unconnected peer is still redialed
	// (0: DefaultForget).
	Forget time.Duration
}

// Events counts connection events, for diagnostics and tests.
type Events struct {
	Connects     uint64 // connections accepted
	Disconnects  uint64 // accepted connections lost or closed
	Refused      uint64 // connections refused (MTU below the minimum)
	Duplicates   uint64 // second connections to a peer, closed
	Dials        uint64 // connection attempts started
	DialFailures uint64 // attempts that failed or timed out
}

// Link is a BLE link. Create it with Open.
type Link struct {
	link.Base
	port *link.Port
	clk  clock.Clock
	tr   Transport
	cfg  Config
	info link.Info
	self Addr

	connects, disconnects, refused, duplicates, dials, dialFailures atomic.Uint64

	mu       sync.Mutex // guards closed and inflight
	closed   bool
	inflight int

	peerMu  sync.Mutex
	peerSet []Addr // connected peers, for Peers()

	// Owned by the clock's loop.
	conns map[Addr]Conn
	peers map[Addr]*peer
}

// peer is what the link remembers about a peripheral it may dial.
type peer struct {
	seen    time.Time     // last advertisement
	dialing bool          // a Dial is outstanding
	backoff time.Duration // the next redial delay
	timer   clock.Timer   // pending redial or dial timeout
}

// Open starts a link over cfg.Transport.
func Open(cfg Config) (*Link, error) {
	if cfg.Clock == nil || cfg.Transport == nil {
		return nil, fmt.Errorf("%w: clock and transport are required", ErrConfig)
	}
	if cfg.MinMTU == 0 {
		cfg.MinMTU = DefaultMinMTU
	}
	if cfg.MinMTU > MaxATTMTU {
		return nil, fmt.Errorf("%w: MinMTU %d above the ATT maximum %d", ErrConfig, cfg.MinMTU, MaxATTMTU)
	}
	mtu := Payload(cfg.MinMTU)
	schemas, err := SchemasFor(mtu)
	if err != nil {
		return nil, err
	}
	if cfg.Bitrate <= 0 {
		cfg.Bitrate = DefaultBitrate
	}
	if cfg.TxQueue <= 0 {
		cfg.TxQueue = DefaultTxQueue
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.Backoff)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Forget <= 0 {
		cfg.Forget = DefaultForget
	}
	port := link.NewPort(cfg.Clock, RxBacklog)
	l := &Link{
		Base: port.Base(), port: port,
		clk: cfg.Clock, tr: cfg.Transport, cfg: cfg, self: cfg.Transport.Addr(),
		conns: map[Addr]Conn{}, peers: map[Addr]*peer{},
	}
	l.info = link.Info{
		Name: "ble", Addr: l.self, MTU: mtu, Bitrate: cfg.Bitrate, Schemas: schemas,
		Caps: link.CapBroadcast, TxQueue: cfg.TxQueue,
	}
	if err := l.tr.Start(events{l}); err != nil {
		l.tr.Close()
		return nil, fmt.Errorf("ble: start: %w", err)
	}
	return l, nil
}

// SchemasFor returns the family of schemas a link whose every connection
// carries at least payload bytes can declare: the ESP-NOW family (0–10)
// from 250 bytes, the LoRa family (20–30) from 240. Below 240 no family's
// packets fit.
func SchemasFor(payload int) ([]uint8, error) {
	switch {
	case payload >= 250:
		return link.SchemasESPNOW, nil
	case payload >= 240:
		return link.SchemasLoRa, nil
	}
	return nil, fmt.Errorf("%w: a %d-byte payload carries no family of schemas (need 240 or more)", ErrConfig, payload)
}

// Info describes the link; MTU is the payload every accepted connection
// carries.
func (l *Link) Info() link.Info { return l.info }

// Events returns the connection event counters.
func (l *Link) Events() Events {
	return Events{
		Connects: l.connects.Load(), Disconnects: l.disconnects.Load(), Refused: l.refused.Load(),
		Duplicates: l.duplicates.Load(), Dials: l.dials.Load(), DialFailures: l.dialFailures.Load(),
	}
}

// Peers returns the addresses of the connected peers, in order.
func (l *Link) Peers() []Addr {
	l.peerMu.Lock()
	defer l.peerMu.Unlock()
	return slices.Clone(l.peerSet)
}

// Send queues one datagram for a connected peer (a Addr) or for
// every connected peer (link.Broadcast). A unicast to a peer that is not
// connected is accepted and fails in TxDone with ErrNotConnected (counted
// as DropTxError): whether it is connected is known only on the loop.
//
// Completions come back as each write finishes: writes to different peers
// finish in any order, and the tags say which datagram each one ends.
// Counters count a broadcast as one transmitted datagram however many peers
// it was written to.
func (l *Link) Send(dst link.Addr, data []byte, tag link.Tag) error {
	to, bcast, err := link.Dest[Addr](dst)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return net.ErrClosed
	}
	if len(data) > l.info.MTU {
		l.port.Drop(link.DropOversize)
		return link.ErrTooBig
	}
	if l.inflight >= l.cfg.TxQueue {
		l.port.Drop(link.DropQueueFull)
		return link.ErrBusy
	}
	l.inflight++
	buf := bytes.Clone(data)
	l.clk.AfterFunc(0, func() { l.transmit(to, bcast, buf, tag) })
	return nil
}

// transmit runs on the loop: it writes buf to one peer or to all.
func (l *Link) transmit(to Addr, bcast bool, buf []byte, tag link.Tag) {
	if l.port.Closed() {
		l.finish(tag, net.ErrClosed)
		return
	}
	var targets []Conn
	if bcast {
		for _, a := range l.sortedPeers() {
			targets = append(targets, l.conns[a])
		}
	} else if c := l.conns[to]; c != nil {
		targets = append(targets, c)
	}
	if len(targets) == 0 {
		if bcast {
			// Nobody to reach: nothing left the radio, nothing failed.
			l.finish(tag, nil)
			return
		}
		l.port.Drop(link.DropTxError)
		l.finish(tag, fmt.Errorf("%w: %v", ErrNotConnected, to))
		return
	}
	left, sent := len(targets), 0
	var firstErr error
	for _, c := range targets {
		if len(buf) > Payload(c.MTU()) {
			// Cannot happen for an accepted connection (MTU ≥ MinMTU);
			// kept so that a transport misreporting its MTU cannot make
			// the link hand it a packet it must truncate.
			l.port.Drop(link.DropOversize)
			left--
			if firstErr == nil {
				firstErr = link.ErrTooBig
			}
			continue
		}
		c.Send(buf, bcast, func(err error) {
			l.clk.AfterFunc(0, func() {
				if err != nil {
					l.port.Drop(link.DropTxError)
					if firstErr == nil {
						firstErr = err
					}
				} else {
					sent++
				}
				left--
				if left == 0 {
					l.completed(buf, sent, firstErr, tag)
				}
			})
		})
	}
	if left == 0 {
		l.completed(buf, sent, firstErr, tag)
	}
}

// completed ends a transmission: it succeeded if it reached anyone.
func (l *Link) completed(buf []byte, sent int, err error, tag link.Tag) {
	if sent > 0 {
		l.port.Tx(len(buf), link.Airtime(l, len(buf)))
		err = nil
	}
	l.finish(tag, err)
}

// finish frees the queue slot and reports the completion (on the loop).
func (l *Link) finish(tag link.Tag, err error) {
	l.mu.Lock()
	l.inflight--
	l.mu.Unlock()
	l.port.CompleteNow(tag, err)
}

func (l *Link) sortedPeers() []Addr {
	as := make([]Addr, 0, len(l.conns))
	for a := range l.conns {
		as = append(as, a)
	}
	slices.SortFunc(as, func(a, b Addr) int { return bytes.Compare(a[:], b[:]) })
	return as
}

func (l *Link) publishPeers() {
	ps := l.sortedPeers()
	l.peerMu.Lock()
	l.peerSet = ps
	l.peerMu.Unlock()
}

// Close disconnects every peer and closes the transport. Datagrams still
// queued get TxDone with an error.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return net.ErrClosed
	}
	l.closed = true
	l.port.SetClosed()
	l.mu.Unlock()
	err := l.tr.Close()
	l.clk.AfterFunc(0, func() {
		for _, p := range l.peers {
			if p.timer != nil {
				p.timer.Stop()
			}
		}
		clear(l.peers)
		clear(l.conns)
		l.publishPeers()
	})
	return err
}

// events is the link's Handler: it copies what it must and hands every event
// to the loop.
type events struct{ l *Link }

func (e events) Found(addr Addr)  { e.l.clk.AfterFunc(0, func() { e.l.found(addr) }) }
func (e events) Connected(c Conn) { e.l.clk.AfterFunc(0, func() { e.l.connected(c) }) }
func (e events) DialFailed(addr Addr, err error) {
	e.l.clk.AfterFunc(0, func() { e.l.dialFailed(addr, err) })
}
func (e events) Disconnected(c Conn, err error) {
	e.l.clk.AfterFunc(0, func() { e.l.disconnected(c, err) })
}
func (e events) Received(c Conn, p []byte, bcast bool) {
	l := e.l
	switch n := len(p); {
	case n > Payload(c.MTU()) || n > MaxPayload:
		// A peer (or a stack) handing us more than the connection can
		// carry is misbehaving; what it sent is no packet of ours.
		l.port.Drop(link.DropOversize)
		return
	case n == 0:
		l.port.Drop(link.DropMalformed)
		return
	}
	l.port.HandUp(link.Frame{Src: c.Peer(), Broadcast: bcast, Data: bytes.Clone(p), Time: l.clk.Now()})
}

// found: a peer advertises the mesh service. Dial it unless connected or
// already trying. A peer with a lower address is the preferred central of
// the pair, so give it a head start (one backoff) to dial us first.
func (l *Link) found(addr Addr) {
	if l.port.Closed() || addr == l.self {
		return
	}
	p := l.peers[addr]
	if p == nil {
		p = &peer{backoff: l.cfg.Backoff}
		l.peers[addr] = p
	}
	p.seen = l.clk.Now()
	if l.conns[addr] != nil || p.dialing || p.timer != nil {
		return
	}
	if bytes.Compare(addr[:], l.self[:]) < 0 {
		l.schedule(addr, p, l.cfg.Backoff)
		return
	}
	l.dial(addr, p)
}

func (l *Link) dial(addr Addr, p *peer) {
	p.dialing = true
	l.dials.Add(1)
	p.timer = l.clk.AfterFunc(l.cfg.DialTimeout, func() {
		p.timer = nil
		l.dialFailed(addr, fmt.Errorf("ble: dial %v timed out", addr))
	})
	l.tr.Dial(addr)
}

// schedule redials addr after d, unless it connects (or is forgotten)
// meanwhile.
func (l *Link) schedule(addr Addr, p *peer, d time.Duration) {
	if p.timer != nil {
		p.timer.Stop()
	}
	p.timer = l.clk.AfterFunc(d, func() {
		p.timer = nil
		if l.port.Closed() || l.conns[addr] != nil || p.dialing {
			return
		}
		if l.clk.Now().Sub(p.seen) > l.cfg.Forget {
			delete(l.peers, addr)
			return
		}
		l.dial(addr, p)
	})
}

func (l *Link) dialFailed(addr Addr, _ error) {
	p := l.peers[addr]
	if p == nil || !p.dialing {
		return // a late report of an attempt already given up on
	}
	p.dialing = false
	l.dialFailures.Add(1)
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if l.port.Closed() {
		return
	}
	l.schedule(addr, p, p.backoff)
	p.backoff = min(2*p.backoff, l.cfg.MaxBackoff)
}

// centralOf is the address of the central of c.
func (l *Link) centralOf(c Conn) Addr {
	if c.Central() {
		return l.self
	}
	return c.Peer()
}

// connected decides whether to keep a new connection.
func (l *Link) connected(c Conn) {
	if l.port.Closed() {
		c.Close()
		return
	}
	addr := c.Peer()
	p := l.peers[addr]
	if p != nil && (c.Central() || !p.dialing) {
		// Our dial came through, or the peer dialed us: stop the dial
		// timeout or pending redial. (A dial of ours still outstanding
		// when the peer dials us may yet connect: a duplicate, resolved
		// below when it does.)
		if c.Central() {
			p.dialing = false
		}
		if p.timer != nil {
			p.timer.Stop()
			p.timer = nil
		}
	}
	if Payload(c.MTU()) < l.info.MTU {
		l.refused.Add(1)
		c.Close()
		if p != nil && c.Central() {
			// It will not get better by redialing soon.
			p.backoff = l.cfg.MaxBackoff
			l.schedule(addr, p, p.backoff)
		}
		return
	}
	if old := l.conns[addr]; old != nil {
		l.duplicates.Add(1)
		// Keep the connection whose central has the lower address, as the
		// peer does; of two with the same central the newer (the older one
		// is a link the stack has not yet reported dead).
		oc, nc := l.centralOf(old), l.centralOf(c)
		if bytes.Compare(oc[:], nc[:]) < 0 {
			c.Close()
			return
		}
		delete(l.conns, addr) // its Disconnected is then ignored
		old.Close()
	}
	l.conns[addr] = c
	l.connects.Add(1)
	if p != nil {
		p.backoff = l.cfg.Backoff
	}
	l.publishPeers()
}

// disconnected forgets a lost connection and, if we were its central,
// redials after the backoff. A peer that was our central redials us.
func (l *Link) disconnected(c Conn, _ error) {
	addr := c.Peer()
	if l.conns[addr] != c {
		return // refused, duplicate, or already replaced
	}
	delete(l.conns, addr)
	l.disconnects.Add(1)
	l.publishPeers()
	if l.port.Closed() || !c.Central() {
		return
	}
	p := l.peers[addr]
	if p == nil {
		p = &peer{backoff: l.cfg.Backoff, seen: l.clk.Now()}
		l.peers[addr] = p
	}
	if p.dialing || p.timer != nil {
		return
	}
	l.schedule(addr, p, p.backoff)
	p.backoff = min(2*p.backoff, l.cfg.MaxBackoff)
}
