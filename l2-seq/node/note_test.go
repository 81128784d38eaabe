package node

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// TestSenderNoteAgainstMaps: the note a node keeps in a link's slot for
// each sender answers as its maps do, through strangers made and
// forgotten (maxStrangers) and peers added, moved and removed: after
// noteSender, endpointAt and ByEndpoint give what eps and the peers'
// endpoints hold, checked each step. Fails when a change to eps leaves a
// note standing (epForget without epGen).
func TestSenderNoteAgainstMaps(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	fl := newFakeLink(clk, "espnow", espnow.MAC{2, 0, 0, 0, 0, 1}, link.SchemasESPNOW, espnow.Bitrate, time.Millisecond, link.CapBroadcast)
	n, err := New(Config{Clock: clk, Links: []link.Link{fl}, BeaconPeriod: -1, Identity: identity.FromSeed([32]byte{1})})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	const senders = maxStrangers + 16
	at := func(i int) peer.Endpoint {
		return peer.Endpoint{Addr: espnow.MAC{0x24, 0, 0, 0, byte(i >> 8), byte(i)}}
	}
	slots := make([]link.Slot, senders)
	var stray link.Slot // another link's note in the same slot
	stray.V = &senderNote{t: &txLink{}}
	rng := rand.New(rand.NewPCG(11, 12))
	now := clk.Now()
	tl := n.links[0]
	for i := range 20000 {
		now = now.Add(time.Second)
		k := rng.IntN(senders)
		switch rng.IntN(6) {
		case 0, 1:
			if ep := n.strangerEndpoint(at(k), now); ep != nil {
				ep.lastSeen = now
			}
		case 2:
			n.peers.Refresh(identity.NodeID{byte(rng.IntN(8))}, at(k), now)
		case 3:
			n.peers.Remove(identity.NodeID{byte(rng.IntN(8))})
		}
		k = rng.IntN(senders)
		s := &slots[k]
		if i%97 == 0 {
			s = &stray
		}
		n.noteSender(tl, at(k), s)
		if got, want := n.endpointAt(at(k)), n.eps[at(k)]; got != want {
			t.Fatalf("step %d: sender %d's endpoint %p, eps holds %p", i, k, got, want)
		}
		var want *peer.Peer
		for _, p := range n.peers.All() {
			if slices.Contains(p.Endpoints, at(k)) {
				want = p
			}
		}
		if got := n.peers.ByEndpoint(at(k)); got != want {
			t.Fatalf("step %d: sender %d's peer %p, the table holds %p", i, k, got, want)
		}
	}
}
