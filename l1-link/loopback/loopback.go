// Package loopback is the in-process link: applications on one node, or
// several nodes in one test, exchange datagrams through a Hub with no radio
// in between. It carries every schema.
package loopback

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// MTU is the largest datagram a loopback link takes.
const MTU = 65535

// TxQueue is how many datagrams may be in flight from one endpoint.
const TxQueue = 1024

// Bitrate is the nominal rate loopback links declare (it ranks them above
// every radio).
const Bitrate = 1_000_000_000

// Network is the kind of a loopback address.
const Network = "loop"

// Addr is an endpoint number on a loopback hub; 0 is broadcast.
type Addr uint32

// Network returns "loop".
func (Addr) Network() string { return Network }

// String formats the endpoint number.
func (a Addr) String() string { return "loop:" + strconv.Itoa(int(a)) }

// IsBroadcast reports a == 0.
func (a Addr) IsBroadcast() bool { return a == 0 }

// ParseAddr parses "loop:N" or "N".
func ParseAddr(s string) (Addr, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "loop:"), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("loopback: bad address %q", s)
	}
	return Addr(n), nil
}

func init() {
	link.RegisterNetwork(Network, func(s string) (link.Addr, error) { return ParseAddr(s) })
}

// Hub connects loopback links; a broadcast reaches every other link on it.
type Hub struct {
	clk  clock.Clock
	mu   sync.Mutex
	eps  map[Addr]*Link
	next Addr
}

// NewHub returns an empty hub whose links deliver on clk's loop.
func NewHub(clk clock.Clock) *Hub {
	return &Hub{clk: clk, eps: map[Addr]*Link{}, next: 1}
}

// NewLink adds an endpoint to the hub.
func (h *Hub) NewLink() *Link {
	h.mu.Lock()
	defer h.mu.Unlock()
	port := link.NewPort(h.clk, 0)
	l := &Link{Base: port.Base(), port: port, hub: h, addr: h.next}
	h.next++
	h.eps[l.addr] = l
	return l
}

// Link is one endpoint of a Hub.
type Link struct {
	link.Base
	port     *link.Port
	hub      *Hub
	addr     Addr
	mu       sync.Mutex
	inflight int
}

// Info describes the endpoint.
func (l *Link) Info() link.Info {
	return link.Info{
		Name: "loopback", Addr: l.addr, MTU: MTU, Bitrate: Bitrate,
		Schemas: link.SchemasAll, Caps: link.CapBroadcast, TxQueue: TxQueue,
	}
}

// Send delivers a copy of data to dst (or every other endpoint) on the
// hub's loop.
func (l *Link) Send(dst link.Addr, data []byte, tag link.Tag) error {
	to, _, err := link.Dest[Addr](dst) // a broadcast leaves to 0, the hub's broadcast
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.port.Closed() {
		return net.ErrClosed
	}
	if len(data) > MTU {
		l.port.Drop(link.DropOversize)
		return link.ErrTooBig
	}
	if l.inflight >= TxQueue {
		l.port.Drop(link.DropQueueFull)
		return link.ErrBusy
	}
	l.inflight++
	buf := append([]byte(nil), data...)
	l.port.Tx(len(buf), 0)
	l.hub.clk.AfterFunc(0, func() { l.hub.deliver(l, to, buf, tag) })
	return nil
}

func (h *Hub) deliver(from *Link, to Addr, buf []byte, tag link.Tag) {
	h.mu.Lock()
	var dsts []*Link
	if to == 0 {
		for a, ep := range h.eps {
			if a != from.addr {
				dsts = append(dsts, ep)
			}
		}
		// Map order is random; deliver in address order so runs repeat.
		sortLinks(dsts)
	} else if ep, ok := h.eps[to]; ok {
		dsts = append(dsts, ep)
	}
	h.mu.Unlock()
	now := h.clk.Now()
	for _, ep := range dsts {
		ep.port.Deliver(link.Frame{Src: from.addr, Broadcast: to == 0, Data: buf, Time: now})
	}
	from.mu.Lock()
	from.inflight--
	from.mu.Unlock()
	from.port.CompleteNow(tag, nil)
}

func sortLinks(ls []*Link) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].addr < ls[j-1].addr; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

// Close removes the endpoint from the hub.
func (l *Link) Close() error {
	l.mu.Lock()
	ok := l.port.SetClosed()
	l.mu.Unlock()
	if !ok {
		return net.ErrClosed
	}
	l.hub.mu.Lock()
	delete(l.hub.eps, l.addr)
	l.hub.mu.Unlock()
	return nil
}
