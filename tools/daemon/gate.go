package daemon

import (
	"sync/atomic"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// gate is a link as the node sees it, which admin's link_down and link_up
// switch off and on: while off, sends are refused as a sleeping radio's
// (link.ErrAsleep) and frames that arrive are dropped, as if the radio
// were off; the driver itself stays open.
type gate struct {
	link.Link
	down    atomic.Bool
	dropped atomic.Uint64
}

func (g *gate) Send(dst link.Addr, data []byte, tag link.Tag) error {
	if g.down.Load() {
		return link.ErrAsleep
	}
	return g.Link.Send(dst, data, tag)
}

func (g *gate) Attach(d link.Dispatcher) {
	if d == nil {
		g.Link.Attach(nil)
		return
	}
	g.Link.Attach(gateDispatcher{g, d})
}

type gateDispatcher struct {
	g *gate
	link.Dispatcher
}

func (d gateDispatcher) DeliverFrame(f link.Frame) {
	if d.g.down.Load() {
		d.g.dropped.Add(1)
		return
	}
	d.Dispatcher.DeliverFrame(f)
}

// The node looks for a link's optional interfaces (an airtime estimate, a
// receiver it can put to sleep): the gate keeps exactly those the driver
// has.
type (
	gateA  struct{ *gate }
	gateS  struct{ *gate }
	gateAS struct{ *gate }
)

func (g gateA) Airtime(n int) time.Duration  { return g.Link.(link.AirtimeEstimator).Airtime(n) }
func (g gateAS) Airtime(n int) time.Duration { return g.Link.(link.AirtimeEstimator).Airtime(n) }
func (g gateS) SetAwake(on bool)             { g.Link.(link.Sleeper).SetAwake(on) }
func (g gateS) Awake() bool                  { return g.Link.(link.Sleeper).Awake() }
func (g gateAS) SetAwake(on bool)            { g.Link.(link.Sleeper).SetAwake(on) }
func (g gateAS) Awake() bool                 { return g.Link.(link.Sleeper).Awake() }

// gated wraps l in a gate; the returned link has l's optional interfaces.
func gated(l link.Link) (*gate, link.Link) {
	g := &gate{Link: l}
	_, a := l.(link.AirtimeEstimator)
	_, s := l.(link.Sleeper)
	switch {
	case a && s:
		return g, gateAS{g}
	case a:
		return g, gateA{g}
	case s:
		return g, gateS{g}
	}
	return g, g
}
