package route

import (
	"errors"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
)

// A node switched off closes its router with it (Close): what was pending
// ends with node.ErrClosed there and then, what is asked later ends at
// once, and the router and its trees do no more work however long the
// clock runs (before Close, a dead node's timers went on registering,
// refreshing and, cut off, starting terms of its own trees).
func TestClosedRouterStops(t *testing.T) {
	me := registeredRing(t)
	const v = 2
	rt := me.rts[v]
	var pending []error
	stranger := identity.FromSeed([32]byte{0xee}).ID()
	rt.Lookup(stranger, func(_ Destination, err error) { pending = append(pending, err) })
	me.clk.RunFor(10 * time.Millisecond) // asked, not answered yet
	if len(pending) != 0 {
		t.Fatalf("the lookup ended before Close: %v", pending)
	}

	rt.Close()
	me.nodes[v].Close()
	for _, nb := range me.radios[v].Neighbors() {
		me.m.Disconnect(me.radios[v], nb)
	}
	if len(pending) != 1 || !errors.Is(pending[0], node.ErrClosed) {
		t.Fatalf("a lookup pending at Close ended with %v, want node.ErrClosed", pending)
	}
	var later []error
	rt.Lookup(me.nodes[0].ID(), func(_ Destination, err error) { later = append(later, err) })
	rt.LookupName("anyone", func(_ identity.NodeID, err error) { later = append(later, err) })
	rt.Trace(Destination{ID: me.nodes[0].ID(), Addrs: me.rts[0].Addrs()}, nil, func(_ []TraceHop, err error) { later = append(later, err) })
	res := rt.Send(me.nodes[0].ID(), testApp, []byte("after"), nil)
	rt.Close()

	before, trees := rt.Stats(), rt.Trees().Stats()
	me.clk.RunFor(30 * rt.Trees().Config().ClaimPeriod)
	for i, err := range later {
		if !errors.Is(err, node.ErrClosed) {
			t.Errorf("request %d after Close ended with %v, want node.ErrClosed", i, err)
		}
	}
	if len(later) != 3 {
		t.Errorf("%d of 3 requests after Close ended", len(later))
	}
	if !res.Finished() || !errors.Is(res.Err(), node.ErrClosed) {
		t.Errorf("a send after Close: finished %v, %v; want node.ErrClosed", res.Finished(), res.Err())
	}
	// The counters themselves, not only the Stats frozen at Close.
	now := rt.stats
	now.Failed = maps.Clone(now.Failed)
	if !reflect.DeepEqual(now, before) {
		t.Errorf("the router kept working after Close:\n%+v\nthen\n%+v", before, now)
	}
	if s := rt.Trees().Stats(); s != trees {
		t.Errorf("the trees kept working after Close: %+v, then %+v", trees, s)
	}
}
