// Package loopback is the in-process link: applications on one node, or
// several nodes in one test, exchange datagrams through a Hub with no radio
// in between. It carries every schema.
package loopback

import (
	"net"
	"sync"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// MTU is the largest datagram a loopback link takes.
const MTU = 65535

// TxQueue is how many datagrams may be in flight from one endpoint.
const TxQueue = 1024

// Hub connects loopback links; a broadcast reaches every other link on it.
type Hub struct {
	clk  clock.Clock
	mu   sync.Mutex
	eps  map[link.LoopAddr]*Link
	next link.LoopAddr
}

// NewHub returns an empty hub whose links deliver on clk's loop.
func NewHub(clk clock.Clock) *Hub {
	return &Hub{clk: clk, eps: map[link.LoopAddr]*Link{}, next: 1}
}

// NewLink adds an endpoint to the hub.
func (h *Hub) NewLink() *Link {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := &Link{hub: h, addr: h.next}
	h.next++
	h.eps[l.addr] = l
	return l
}

// Link is one endpoint of a Hub.
type Link struct {
	hub      *Hub
	addr     link.LoopAddr
	stats    link.Stats
	mu       sync.Mutex
	d        link.Dispatcher
	inflight int
	closed   bool
}

// Info describes the endpoint.
func (l *Link) Info() link.Info {
	return link.Info{
		Name: "loopback", Addr: l.addr, MTU: MTU, Bitrate: link.BitrateLoopback,
		Schemas: link.SchemasAll, Caps: link.CapBroadcast, TxQueue: TxQueue,
	}
}

// Attach sets the dispatcher.
func (l *Link) Attach(d link.Dispatcher) {
	l.mu.Lock()
	l.d = d
	l.mu.Unlock()
}

// Send delivers a copy of data to dst (or every other endpoint) on the
// hub's loop.
func (l *Link) Send(dst link.Addr, data []byte) error {
	var to link.LoopAddr
	switch a := dst.(type) {
	case link.LoopAddr:
		to = a
	default:
		if dst == nil || !dst.IsBroadcast() {
			return link.ErrAddr
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return net.ErrClosed
	}
	if len(data) > MTU {
		l.stats.Drop(link.DropOversize)
		return link.ErrTooBig
	}
	if l.inflight >= TxQueue {
		l.stats.Drop(link.DropQueueFull)
		return link.ErrBusy
	}
	l.inflight++
	buf := append([]byte(nil), data...)
	l.stats.Tx(len(buf), 0)
	l.hub.clk.AfterFunc(0, func() { l.hub.deliver(l, to, buf) })
	return nil
}

func (h *Hub) deliver(from *Link, to link.LoopAddr, buf []byte) {
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
		ep.receive(link.Frame{Src: from.addr, Broadcast: to == 0, Data: buf, Time: now})
	}
	from.mu.Lock()
	from.inflight--
	d := from.d
	from.mu.Unlock()
	if d != nil {
		d.TxDone(nil)
	}
}

func (l *Link) receive(f link.Frame) {
	l.mu.Lock()
	d, closed := l.d, l.closed
	l.mu.Unlock()
	switch {
	case closed:
	case d == nil:
		l.stats.Drop(link.DropNoHandler)
	default:
		l.stats.Rx(len(f.Data))
		d.DeliverFrame(f)
	}
}

func sortLinks(ls []*Link) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].addr < ls[j-1].addr; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

// Counters returns the endpoint's counters.
func (l *Link) Counters() link.Counters { return l.stats.Snapshot() }

// Close removes the endpoint from the hub.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return net.ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	l.hub.mu.Lock()
	delete(l.hub.eps, l.addr)
	l.hub.mu.Unlock()
	return nil
}
