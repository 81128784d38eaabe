package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// keptLink takes one datagram at a time and keeps what it was handed.
type keptLink struct {
	heldLink
	data [][]byte
}

func (k *keptLink) Send(dst link.Addr, data []byte, tag link.Tag) error {
	k.data = append(k.data, bytes.Clone(data))
	return k.heldLink.Send(dst, data, tag)
}

// TestUrgentBroadcastFirst: a node whose queue holds broadcasts and
// unicasts to many neighbours sends an urgent broadcast (a root's claim)
// at the link's next turn, not after every neighbour's turn and every
// broadcast queued before it: a hub's queue held a root's claims for a
// minute, and every node buried the live root.
func TestUrgentBroadcastFirst(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	kl := &keptLink{heldLink: heldLink{info: link.Info{Name: "held", Addr: espnow.MAC{2, 0, 0, 0, 0, 1}, MTU: 250, Bitrate: 1_000_000, Schemas: link.SchemasESPNOW, Caps: link.CapBroadcast, TxQueue: 1}}}
	n, err := New(Config{Clock: clk, Identity: identity.FromSeed([32]byte{9}), Links: []link.Link{kl}, BeaconPeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	for i := range 8 {
		n.Broadcast(testApp, []byte{'b', byte(i)}, nil)
		n.SendTo(peer.Endpoint{Addr: espnow.MAC{2, 0, 0, 0, 1, byte(i)}}, testApp, []byte{'u', byte(i)}, nil)
	}
	claim := []byte("urgent claim")
	n.Broadcast(testApp, claim, &SendOptions{Urgent: true})
	clk.RunFor(time.Millisecond)
	if len(kl.sent) != 1 {
		t.Fatalf("handed over %d frames, want 1 (the link takes one at a time)", len(kl.sent))
	}
	kl.d.TxDone(kl.sent[0].tag, nil)
	clk.RunFor(time.Millisecond)
	if len(kl.sent) != 2 {
		t.Fatalf("handed over %d frames, want 2", len(kl.sent))
	}
	if kl.sent[1].dst != link.Broadcast || !bytes.Contains(kl.data[1], claim) {
		t.Fatalf("the second frame handed over is %x to %v, not the urgent broadcast", kl.data[1], kl.sent[1].dst)
	}
}
