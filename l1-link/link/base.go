package link

import (
	"sync/atomic"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
)

// DefaultRxBacklog bounds the received frames a Port lets wait for the
// clock's loop when its driver names no other bound.
const DefaultRxBacklog = 1024

// Port is the part of a driver every driver shares, written once: the
// Dispatcher, the bounded hand-off of received frames to the clock's loop,
// transmit completions, the counters and the closed state. A driver keeps
// its Port in an unexported field and embeds the Port's Base, which gives
// the driver its Attach and Counters methods.
//
// The rules it keeps for every driver: frames reach the Dispatcher only on
// the clock's loop; at most the backlog of frames waits for the loop (a
// flood past it is counted as DropQueueFull, never queued without limit);
// nothing is delivered after Close (a detached link counts DropNoHandler);
// every completion is delivered on the loop, after Close too.
type Port struct {
	clk     clock.Clock
	backlog int32
	stats   Stats
	d       atomic.Pointer[dispatcherBox]
	rxWait  atomic.Int32
	closed  atomic.Bool
}

type dispatcherBox struct{ d Dispatcher }

// NewPort returns a driver's Port on clk, letting at most rxBacklog
// received frames wait for the loop (0: DefaultRxBacklog).
func NewPort(clk clock.Clock, rxBacklog int) *Port {
	if rxBacklog <= 0 {
		rxBacklog = DefaultRxBacklog
	}
	return &Port{clk: clk, backlog: int32(min(rxBacklog, 1<<30))}
}

// Base returns the methods a driver embeds.
func (p *Port) Base() Base { return Base{p} }

// Base is what a driver embeds to implement Link.Attach and Link.Counters
// with its Port.
type Base struct{ p *Port }

// Attach sets the receiver of frames and completions (nil detaches).
func (b Base) Attach(d Dispatcher) { b.p.attach(d) }

// Counters returns a snapshot of the link's counters.
func (b Base) Counters() Counters { return b.p.stats.Snapshot() }

func (p *Port) attach(d Dispatcher) {
	if d == nil {
		p.d.Store(nil)
		return
	}
	p.d.Store(&dispatcherBox{d})
}

// Clock returns the clock the port calls its Dispatcher on.
func (p *Port) Clock() clock.Clock { return p.clk }

// Dispatcher returns the attached dispatcher (nil if none).
func (p *Port) Dispatcher() Dispatcher {
	if b := p.d.Load(); b != nil {
		return b.d
	}
	return nil
}

// HandUp passes a received frame to the loop, from any goroutine (a
// driver's reader). f.Data must belong to the frame: copy it out of a
// reused buffer first. Past the backlog the frame is dropped and counted
// (DropQueueFull); HandUp reports whether it was taken.
func (p *Port) HandUp(f Frame) bool {
	if p.rxWait.Add(1) > p.backlog {
		p.rxWait.Add(-1)
		p.stats.Drop(DropQueueFull)
		return false
	}
	p.clk.AfterFunc(0, func() {
		p.rxWait.Add(-1)
		p.Deliver(f)
	})
	return true
}

// Deliver hands f to the dispatcher now; call it on the loop only (the
// simulated medium, the loopback hub). It counts the frame, or the drop.
func (p *Port) Deliver(f Frame) {
	if p.closed.Load() {
		return
	}
	d := p.Dispatcher()
	if d == nil {
		p.stats.Drop(DropNoHandler)
		return
	}
	p.stats.Rx(len(f.Data))
	d.DeliverFrame(f)
}

// Complete reports the completion of the datagram Send took with tag, on
// the loop, from any goroutine.
func (p *Port) Complete(tag Tag, err error) {
	p.clk.AfterFunc(0, func() { p.CompleteNow(tag, err) })
}

// CompleteNow reports a completion now; call it on the loop only.
func (p *Port) CompleteNow(tag Tag, err error) {
	if d := p.Dispatcher(); d != nil {
		d.TxDone(tag, err)
	}
}

// Tx counts one transmitted datagram of n bytes taking airtime d.
func (p *Port) Tx(n int, d time.Duration) { p.stats.Tx(n, d) }

// Rx counts one received datagram of n bytes that did not go through
// Deliver.
func (p *Port) Rx(n int) { p.stats.Rx(n) }

// Drop counts one drop.
func (p *Port) Drop(r DropReason) { p.stats.Drop(r) }

// SetClosed marks the link closed; it reports false if it already was (the
// driver's Close then returns net.ErrClosed).
func (p *Port) SetClosed() bool { return p.closed.CompareAndSwap(false, true) }

// Closed reports whether SetClosed was called.
func (p *Port) Closed() bool { return p.closed.Load() }
