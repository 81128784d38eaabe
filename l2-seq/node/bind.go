package node

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/sequence"
)

// Layer is what the layer above a node implements (l3-route's router, or
// its trees alone) to run on it, as wireguard-go's device runs on a
// conn.Bind: the node calls it on its loop. Routed Packages travel hop by
// hop: each hop is a reliable transfer between neighbours in a routed
// schema (5–10, 25–30), reassembled and verified before the layer sees it,
// so a Package can change link family (ESP-NOW to LoRa) at any hop, re-cut
// into the next link's schema.
type Layer interface {
	// HandleMessage is given each Package a neighbour sent us directly
	// (one hop) for one of the apps the layer attached with.
	HandleMessage(m Message)
	// HandleRouted is given each routed Package a neighbour (at via)
	// handed us, decoded once; pkg is the layer's to keep. The layer
	// delivers it here (Bind.Deliver), passes it on (Bind.SendRouted), or
	// reports an error back toward its origin.
	HandleRouted(h RouteHeader, pkg *packet.Package, via peer.Endpoint, at time.Time)
	// PeerChanged hears of peers: up when one is added (or turns out to
	// speak our protocol), down when it is dropped (timed out or said
	// goodbye).
	PeerChanged(p *peer.Peer, up bool)
}

// RoutedAdmitter is implemented by a Layer that answers for some
// neighbours that cannot prove a key: the node takes a routed Package from
// an unproven neighbour only if AdmitRouted says so (l3-route: a keyless
// leaseholder, sending from the lease its proxy bound to it).
type RoutedAdmitter interface {
	AdmitRouted(h RouteHeader, via peer.Endpoint) bool
}

// ErrAttached: a node carries one layer above it.
var ErrAttached = errors.New("node: a layer is already attached")

// Attach makes l the layer above the node, owning the applications apps
// (their one-hop Packages go to l.HandleMessage, and beacons announce
// them), and returns the handle through which l reaches the node. Call it
// before Start, on the node's loop.
func (n *Node) Attach(l Layer, apps ...packet.AppID) (*Bind, error) {
	if n.layer != nil {
		return nil, ErrAttached
	}
	n.layer = l
	for _, a := range apps {
		n.Register(a, l.HandleMessage)
	}
	return &Bind{n: n}, nil
}

// Bind is a layer's handle on its node: the one way the layer above reaches
// it. Its methods are called on the node's loop.
type Bind struct{ n *Node }

// SendRouted sends pkg one hop, to the neighbour at to, in a routed schema
// carrying h; the hop is reliable and the Result reports the neighbour's
// confirmation. The neighbour must be a full peer, proven (ErrNoRoute
// otherwise: reference nodes carry no routed schemas, PROTOCOL 11, and
// unproven ones are not trusted with them).
func (b *Bind) SendRouted(to peer.Endpoint, h RouteHeader, pkg *packet.Package, opt *SendOptions) *Result {
	return b.n.sendRouted(to, h, pkg, opt)
}

// Deliver hands a routed Package addressed to this node, with the header it
// came with, to its application (the Message's Route); ErrUnknownApp if
// there is none (the layer reports it back to the sender).
func (b *Bind) Deliver(h RouteHeader, pkg *packet.Package, via peer.Endpoint, at time.Time) error {
	return b.n.deliverApp(Message{App: pkg.AppID, Blob: pkg.Blob, Via: via, Route: &h, Time: at})
}

// SpeaksOurs reports whether the neighbour at ep is a full peer: it speaks
// the whole protocol (routed schemas included) and has proven its node_id
// at that address (the neighbour proof). Only such a neighbour may be
// given or give tree positions and carry routed traffic; any other is
// reference-grade.
func (b *Bind) SpeaksOurs(ep peer.Endpoint) bool { return b.n.proven(ep) }

// Airtime is how long the link of ep is busy carrying a Package with an
// n-byte blob to ep in one hop, as the node would send it: the schema it
// would choose, every packet's header, the link's own framing. A broadcast
// endpoint (Addr link.Broadcast) asks for a broadcast on that link. It is
// 0 for an endpoint on no link of ours, or a Package no schema carries.
func (b *Bind) Airtime(ep peer.Endpoint, n int) time.Duration {
	if ep.Link < 0 || ep.Link >= len(b.n.links) {
		return 0
	}
	t := b.n.links[ep.Link]
	size := n + packet.PackageOverhead
	allowed := func(s *packet.Schema) bool { return broadcastable[s.ID] }
	if ep.Addr != nil && !ep.Addr.IsBroadcast() {
		full := b.n.speaksOurs(ep)
		v2 := b.n.endpointAt(ep) != nil && b.n.endpointAt(ep).v2
		allowed = func(s *packet.Schema) bool {
			return !s.Routed() && (full || referenceSchemas[s.ID]) && (v2 || s.Family != packet.FamilyESPNOWV2)
		}
	}
	s, err := chooseSchema(t.info.Schemas, allowed, size, 0)
	if err != nil {
		return 0
	}
	count := sequence.Count(s, size)
	d := time.Duration(count-1) * link.Airtime(t.l, s.MaxPacket())
	return d + link.Airtime(t.l, s.HeaderSize+size-(count-1)*s.MaxBody)
}

// TxAirtime is the time the node's radios have spent transmitting since
// they opened (every frame, the MAC's retries included, as the links
// count it: link.Counters.TxAirtime; a link that does not know adds
// nothing). A layer that budgets its own traffic against the air it
// shares with its neighbours reads it (tree.QueryAirShare).
func (b *Bind) TxAirtime() time.Duration {
	var d time.Duration
	for _, t := range b.n.links {
		d += t.l.Counters().TxAirtime
	}
	return d
}

// Send sends blob to application app at the neighbour at to, one hop (a
// layer's own messages between neighbours).
func (b *Bind) Send(to peer.Endpoint, app packet.AppID, blob []byte, opt *SendOptions) *Result {
	return b.n.SendTo(to, app, blob, opt)
}

// Broadcast sends blob to application app on every neighbour, on the links
// opt names (nil: all).
func (b *Bind) Broadcast(app packet.AppID, blob []byte, opt *SendOptions) *Result {
	return b.n.Broadcast(app, blob, opt)
}

// PeerAt returns the peer reachable at ep (nil if none).
func (b *Bind) PeerAt(ep peer.Endpoint) *peer.Peer { return b.n.peers.ByEndpoint(ep) }

// AirBusy reports whether we, or a neighbour of ours, miss much of what
// our neighbours send (busy.go; peer.Peer.Busy): a busy neighbour hears
// what we send to anyone, and what we ask of our own neighbours is
// answered into the air we miss, so the layers above slow their
// deferrable control traffic (not data, acks or answers) while it holds.
func (b *Bind) AirBusy() bool { return b.n.busy || b.n.neighbourBusy() }

// Peers returns the peer table's entries, ordered by node_id.
func (b *Bind) Peers() []*peer.Peer { return b.n.peers.All() }

// PeerCount is len(Peers()), without making the list.
func (b *Bind) PeerCount() int { return b.n.peers.Len() }

// Links is the number of the node's links (endpoints name them by index).
func (b *Bind) Links() int { return len(b.n.links) }

// LinkName is the driver name of link i ("espnow", "rylr998"...).
func (b *Bind) LinkName(i int) string {
	if i < 0 || i >= len(b.n.links) {
		return ""
	}
	return b.n.links[i].info.Name
}

// Signer signs on the node's behalf; the private key stays in the node.
func (b *Bind) Signer() identity.Signer { return b.n.id }

// ID returns the node's node_id.
func (b *Bind) ID() identity.NodeID { return b.n.nodeID }

// Seed seeds the layer's own random choices (jitter): derived from the
// node's Config.Seed and its node_id, so a simulation repeats from its
// seed and no two nodes draw alike. The node's own random source stays
// its own.
func (b *Bind) Seed() uint64 {
	return b.n.cfg.Seed*0x9e3779b97f4a7c15 ^ binary.BigEndian.Uint64(b.n.nodeID[:8])
}

// Clock returns the node's clock: the layer's timers run on it.
func (b *Bind) Clock() clock.Clock { return b.n.clk }
