package node

import (
	"errors"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// A queue toward a neighbour crowded with bulk sends (SendOptions.Bulk:
// refreshable traffic, such as the routing layer's registrations) refuses
// more of them with ErrBusy once Budgets.PendingBulk wait, and still takes
// other sends up to PendingSend: the room kept is for sends that complete
// an exchange (receipts, answers, errors), which a chain relay's queue
// full of registrations refused (docs/routing-notes.md, "h18clust").
func TestBulkSendsLeaveRoomForOthers(t *testing.T) {
	rp := newRefPeer(t)
	m := beacon.Message{Op: beacon.OpResponse, NodeID: rp.id, Apps: []packet.AppID{beacon.AppID, beacon.CapabilitiesID}}
	b, _ := m.AppendTo(nil)
	rp.send(packet.Packet{Schema: 0, PacketID: 1, Body: packet.NewPackage(beacon.AppID, b).AppendTo(nil)})
	if p := rp.n.Peer(rp.id); p == nil || !p.Full {
		t.Fatal("peer not known as full")
	}
	bud := rp.n.bud
	if bud.PendingBulk <= 0 || bud.PendingBulk >= bud.PendingSend {
		t.Fatalf("default PendingBulk %d, PendingSend %d: no room kept", bud.PendingBulk, bud.PendingSend)
	}
	bulk := &SendOptions{Bulk: true}
	// Nobody acks: every send stays waiting.
	for i := range bud.PendingBulk {
		if res := rp.n.Send(rp.id, testApp, blob(40, byte(i)), bulk); res.Finished() {
			t.Fatalf("bulk send %d refused at once: %v", i, res.Err())
		}
	}
	if err := rp.n.Send(rp.id, testApp, blob(40, 0xf0), bulk).Err(); !errors.Is(err, ErrBusy) {
		t.Fatalf("bulk send past PendingBulk: %v, want ErrBusy", err)
	}
	for i := bud.PendingBulk; i < bud.PendingSend; i++ {
		if res := rp.n.Send(rp.id, testApp, blob(40, byte(i)), nil); res.Finished() {
			t.Fatalf("send %d (not bulk) refused behind %d bulk sends: %v", i, bud.PendingBulk, res.Err())
		}
	}
	if err := rp.n.Send(rp.id, testApp, blob(40, 0xf1), nil).Err(); !errors.Is(err, ErrBusy) {
		t.Fatalf("send past PendingSend: %v, want ErrBusy", err)
	}
}
