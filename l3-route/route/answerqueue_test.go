package route

import (
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// A receipt crosses a relay whose queue toward the next hop is full of
// default-priority sends (what requests and registrations are): the relay
// sends it at answerPriority, which l2-seq lets into the quarter of the
// queue the others cannot fill. With one shared limit the relay was
// refused at once ("too many sends waiting for this peer"), had no other
// way and dropped the receipt of a Package already delivered
// (h34renewtrace); its sender then tried the whole way again.
func TestReceiptCrossesAFullQueue(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 1}, 91)
	for range 3 {
		me.add(hspec{})
	}
	me.edges([][2]int{{0, 1}, {1, 2}})
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	relay, src := me.nodes[1], me.nodes[0]
	blob := []byte("a Package whose receipt comes back through a full queue")
	hash := pkgHash(blob)
	delivered, filled := 0, 0
	relay.rt.Observe(func(h Hop) {
		if h.Hash == hash || h.Next != src.n.ID() || delivered == 0 || filled > 0 {
			return
		}
		// The receipt's hop toward the sender, about to be sent: fill the
		// relay's queue toward it with default sends until it refuses one.
		for {
			r := relay.n.Send(src.n.ID(), testApp, []byte("filler"), nil)
			if r.Finished() && errors.Is(r.Err(), node.ErrBusy) {
				break
			}
			filled++
		}
	})
	me.nodes[2].rt.Observe(func(h Hop) {
		if h.Hash == hash && h.Delivered {
			delivered++
		}
	})
	noRoute := relay.rt.Stats().NoRoute
	if err := me.wait(src.rt.SendTo(me.dest(2), testApp, blob, nil), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if filled == 0 {
		t.Fatal("the relay sent nothing toward the sender after the delivery (no receipt seen)")
	}
	if delivered != 1 || relay.rt.Stats().NoRoute != noRoute {
		t.Errorf("with %d sends waiting at the relay toward the sender: delivered %d times (want 1: the first receipt came back), relay's no-route drops %d", filled, delivered, relay.rt.Stats().NoRoute-noRoute)
	}
}
