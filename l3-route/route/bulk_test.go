package route

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// A chain relay whose queue toward the next relay is crowded with
// registrations still passes a receipt and a lookup: registrations are
// bulk (isBulk), refused with node.ErrBusy once the queue holds
// node.Budgets.PendingBulk sends (counted in Stats.BulkRefused), and the
// rest of the queue is kept for what completes an exchange. Before, the
// registrations filled the whole queue (PendingSend) and the receipt and
// the lookup were refused there and lost quietly: on clustered meshes the
// chain relays between towns lost so the receipts of 77 of 1,000 probes
// (docs/routing-notes.md, "h18clust").
func TestChainRelayFullOfRegistrationsPassesReceipts(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 1}, 19)
	for range 4 {
		me.add(hspec{})
	}
	me.edges([][2]int{{0, 1}, {1, 2}, {2, 3}})
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	relay := me.nodes[1].rt
	to := me.pos(3, 0)
	bud := node.DefaultBudgets()
	// More registrations toward node 3 (through node 2) than the whole
	// queue takes, sent at once: none is acked before the next is queued.
	for i := range bud.PendingSend + 8 {
		rec := Record{ID: relay.self, Signer: relay.self, Time: me.clk.Now().UnixNano() + int64(i), Addrs: relay.Addrs()}
		rec.Sign(relay.b.Signer())
		relay.sendControl(to.TreeState, to.Addr, false, rec.AppendTo([]byte{msgRegister}))
	}
	if got, want := relay.Stats().BulkRefused, uint64(bud.PendingSend+8-bud.PendingBulk); got < want {
		t.Errorf("registrations refused at the relay: %d, want %d at least", got, want)
	}
	// Behind them, a receipt and a lookup toward node 3.
	var hash [16]byte
	hash[0] = 0x19
	receipt := relay.appendReceipt(nil, hash, nil)
	id2 := me.nodes[2].n.ID()
	lookup := append([]byte{msgLookup}, id2[:]...)
	lookup = binary.BigEndian.AppendUint32(lookup, 0x1919)
	relay.sendControl(to.TreeState, to.Addr, false, receipt)
	relay.sendControl(to.TreeState, to.Addr, false, lookup)
	arrived := func(msg []byte) bool {
		h := packet.NewPackage(ControlApp, msg).Hash
		for _, hp := range me.hops {
			if hp.node == 3 && hp.Delivered && hp.Hash == h {
				return true
			}
		}
		return false
	}
	me.run(time.Minute, func() bool { return arrived(receipt) && arrived(lookup) })
	if !arrived(receipt) {
		t.Error("the receipt queued behind the registrations never reached node 3")
	}
	if !arrived(lookup) {
		t.Error("the lookup queued behind the registrations never reached node 3")
	}
}
