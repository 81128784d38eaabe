package daemon

import (
	"crypto/rand"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// TestSealedStrict: remote admin takes only sealed Packages or the node's
// own; a clear one, whether from a neighbour (a reference board included)
// or routed from afar, is refused and counted.
func TestSealedStrict(t *testing.T) {
	var got int
	var refused uint64
	h := sealedStrict(func(node.Message) { got++ }, &refused)
	air := peer.Endpoint{Addr: airAddr{}}
	for _, c := range []struct {
		name string
		m    node.Message
		take bool
	}{
		{"sealed, routed", node.Message{Sealed: true, Route: &node.RouteHeader{}, Via: air, FromKnown: true}, true},
		{"own, never on the air", node.Message{Route: &node.RouteHeader{}}, true},
		{"clear, routed from afar", node.Message{Route: &node.RouteHeader{}, Via: air}, false},
		{"clear, from a neighbour", node.Message{Via: air, FromKnown: true}, false},
	} {
		before, refusedBefore := got, refused
		h(c.m)
		if took := got > before; took != c.take || (refused > refusedBefore) == c.take {
			t.Errorf("%s: taken %v (want %v), refused %d", c.name, took, c.take, refused-refusedBefore)
		}
	}
}

// airAddr is a neighbour's link address: the Package came over the air.
type airAddr struct{}

func (airAddr) Network() string   { return "udp" }
func (airAddr) String() string    { return "127.0.0.1:9" }
func (airAddr) IsBroadcast() bool { return false }

// A node_id that is no Ed25519 point (a board's) is keyless: spoken to in
// clear, its clear Packages taken; a real identity's never is.
func TestKeyless(t *testing.T) {
	var board identity.NodeID
	board[0] = 2 // y = 2: no x on the curve (an invalid point encoding)
	if !keyless(board) {
		t.Fatal("an id that is no Ed25519 point is not keyless")
	}
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if keyless(id.ID()) {
		t.Fatal("a real identity's node_id taken as keyless: its Packages would go in clear")
	}
}
