package tree

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// TestEndpointOrderMACs: endpointOrder compares two MACs by their bytes
// and gives the order of their text, as before (the order of a sorted
// list of endpoints decides which neighbour is asked first); a MAC
// against another kind of address still compares by text.
func TestEndpointOrderMACs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	mac := func() espnow.MAC {
		var m espnow.MAC
		for i := range m {
			m[i] = byte(rng.Uint32() >> 28 << 4) // few values: equal bytes are frequent
			if rng.IntN(2) == 0 {
				m[i] |= byte(rng.Uint32() >> 28)
			}
		}
		return m
	}
	sign := func(x int) int { return min(max(x, -1), 1) }
	for range 20000 {
		a, b := peer.Endpoint{Addr: mac()}, peer.Endpoint{Addr: mac()}
		if rng.IntN(8) == 0 {
			b = a
		}
		want := strings.Compare(a.Addr.String(), b.Addr.String())
		if got := endpointOrder(a, b); sign(got) != want {
			t.Fatalf("endpointOrder(%v, %v) = %d, want the sign %d", a.Addr, b.Addr, got, want)
		}
	}
	a, b := peer.Endpoint{Addr: espnow.MAC{0xff}}, peer.Endpoint{Addr: link.Broadcast}
	if got, want := sign(endpointOrder(a, b)), strings.Compare(a.Addr.String(), b.Addr.String()); got != want {
		t.Fatalf("a MAC against %v: %d, want %d", b.Addr, got, want)
	}
}
