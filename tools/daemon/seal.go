package daemon

import (
	"github.com/mycelium-mesh/mycelium/l2-seq/e2e"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// sealingRouter is what the stream application sends through when
// [node] e2e is on: every Package to another node of ours goes sealed end
// to end (l2-seq/e2e, whose own messages the router carries), so relays see
// only ciphertext. A reference board next to us is spoken to in clear (it
// has no key); to any other destination there is no clear fallback: a
// failed handshake fails the send with node.ErrHandshake.
type sealingRouter struct {
	r    *route.Router
	e    *e2e.Layer
	n    *node.Node
	mode bool
}

// clear reports a destination spoken to in clear: ourselves (the Package
// never leaves the node), a reference board in range, or a keyless node.
func (s *sealingRouter) clear(to identity.NodeID) bool {
	if to == s.n.ID() || keyless(to) {
		return true
	}
	p := s.n.Peer(to)
	return p != nil && !p.Full
}

// keyless reports a node_id that is no Ed25519 public key (a board without
// an identity, as our MicroPython firmware and the reference boards draw
// theirs): no one holds a key for it, so nothing can be sealed to it, and
// speaking to it in clear downgrades no node that has one.
func keyless(id identity.NodeID) bool {
	_, err := identity.X25519Public(id)
	return err != nil
}

// Send seals blob for to (or sends it in clear to a board).
func (s *sealingRouter) Send(to identity.NodeID, app packet.AppID, blob []byte, opt *route.Options) *node.Result {
	if s.clear(to) {
		return s.r.Send(to, app, blob, opt)
	}
	return s.e.Send(to, app, blob)
}

// SendTo seals blob for d's node (the router finds its addresses again,
// from its cache).
func (s *sealingRouter) SendTo(d route.Destination, app packet.AppID, blob []byte, opt *route.Options) *node.Result {
	if s.clear(d.ID) {
		return s.r.SendTo(d, app, blob, opt)
	}
	return s.e.Send(d.ID, app, blob)
}

// replyTo is the e2e layer's Config.Reply: blob back to the origin address
// a routed Package carried, sent once and unconfirmed (a cookie for a
// message 1 the layer had no budget for: its sender's node_id is still
// sealed in it). Nothing is sent for a Package with no origin address.
func (s *sealingRouter) replyTo(m node.Message, app packet.AppID, blob []byte) {
	h := m.Route
	if h == nil || h.From == ([16]byte{}) {
		return
	}
	ta := route.TreeAddr{Tree: uint8(tree.TreeOf(h.TreeState)), TreeState: h.TreeState, Addr: addr.Address(h.From).Long()}
	s.r.Notify([]route.TreeAddr{ta}, h.Mode, app, blob)
}

// carry is the e2e layer's transport: the router, by node_id.
func (s *sealingRouter) carry(to identity.NodeID, app packet.AppID, blob []byte) *node.Result {
	return s.r.Send(to, app, blob, &route.Options{Mode: s.mode})
}

// sealedOnly wraps an application's handler so that, with e2e on, it takes
// only sealed Packages, or clear ones from ourselves, from a reference
// board in range or from a keyless node (which cannot seal): a clear
// Package from anyone else would be a downgrade (or a forgery).
func (s *sealingRouter) sealedOnly(h node.Handler, refused *uint64) node.Handler {
	return func(m node.Message) {
		board := m.FromKnown && m.From != s.n.ID() && (m.Route == nil && s.clear(m.From) || keyless(m.From))
		if !m.Sealed && !own(m) && !board {
			*refused++
			return
		}
		h(m)
	}
}

// own reports a Package routed to ourselves, never on the air.
func own(m node.Message) bool { return m.Route != nil && m.Via.Addr == nil }

// sendSealed sends blob to to sealed end to end, whatever [node] e2e says
// and even to a reference board (which then cannot take it): for what must
// never travel in clear (remote admin). Only a Package to ourselves goes
// unsealed; it never leaves the node.
func (s *sealingRouter) sendSealed(to identity.NodeID, app packet.AppID, blob []byte) *node.Result {
	if to == s.n.ID() {
		return s.r.Send(to, app, blob, &route.Options{Mode: s.mode})
	}
	return s.e.Send(to, app, blob)
}

// sealedStrict wraps a handler to take only sealed Packages, or ones from
// ourselves: no clear exception for reference boards.
func sealedStrict(h node.Handler, refused *uint64) node.Handler {
	return func(m node.Message) {
		if !m.Sealed && !own(m) {
			*refused++
			return
		}
		h(m)
	}
}
