package route

import (
	"errors"
	"fmt"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

// ErrStaleView: a decision took a neighbour's potential to be lower than
// it is (the neighbour has left an epoch we still saw it in). The bound
// the Package carries rules out a loop all the same; a measurement counts
// these apart from loops.
var ErrStaleView = errors.New("route: a neighbour's potential was lower in our view than in truth")

// Check holds a routing decision against the truth, as a measurement or a
// test sees it (router returns the router of a node, by node_id; nil for
// one it does not know). It returns why the decision could let a Package
// loop, or nil:
//
//   - in a path header, the bound must fall (the neighbour's potential,
//     which it carries on, below both ours and the bound we got), and ours
//     must be true; the neighbour's should be no higher than we took it to
//     be (its addresses are verified and fixed for their epochs), and an
//     error wrapping ErrStaleView says it was (it left an epoch we still
//     saw it in: no loop, the bound still falls);
//   - a plain Package must get strictly closer by its metric, to a
//     neighbour that really is at the address we took it to be.
func (h *Hop) Check(router func(identity.NodeID) *Router) error {
	if h.Delivered || h.Proxy || h.Error {
		return nil
	}
	self, next := router(h.Self), router(h.Next)
	if self == nil || next == nil {
		return fmt.Errorf("a decision between unknown nodes")
	}
	if h.Path {
		if h.NextPot >= h.BoundIn || h.NextPot >= h.SelfPot {
			return fmt.Errorf("bound %#x, own potential %#x, next %#x: no fall", h.BoundIn, h.SelfPot, h.NextPot)
		}
		if p, ok := self.Potential(h.Dst, h.Phase, h.Mode); !ok || p != h.SelfPot {
			return fmt.Errorf("own potential %#x, truly %#x (%v)", h.SelfPot, p, ok)
		}
		if p, ok := next.Potential(h.Dst, h.Phase, h.Mode); ok && p > h.NextPot {
			return fmt.Errorf("%w: next's potential taken as %#x, truly %#x", ErrStaleView, h.NextPot, p)
		}
		return nil
	}
	m := addr.MetricTree
	if h.Mode {
		m = addr.MetricCPL
	}
	a, okA := self.Position(h.TreeState)
	b, okB := next.Position(h.TreeState)
	if !okA {
		return fmt.Errorf("epoch %d: no position of our own", h.TreeState)
	}
	if okB && !b.Addr.SameHolder(h.NextAddr) {
		return fmt.Errorf("epoch %d: next taken to be at %v, is at %v", h.TreeState, h.NextAddr, b.Addr)
	}
	if m.RouteKey(h.NextAddr, h.To) >= m.RouteKey(a.Addr, h.To) {
		return fmt.Errorf("epoch %d: %v to %v toward %v: no progress", h.TreeState, a.Addr, h.NextAddr, h.To)
	}
	return nil
}
