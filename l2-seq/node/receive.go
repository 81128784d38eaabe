package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"github.com/mycelium-mesh/mycelium/l2-seq/bsig"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/hop"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// receive is the entry point for every datagram a link hands up.
func (n *Node) receive(t *txLink, f link.Frame) {
	if n.closed {
		return
	}
	n.stats.PacketsRecv++
	n.stats.BytesRecv += uint64(len(f.Data))
	key := peer.Endpoint{Link: t.idx, Addr: f.Src}
	if f.Slot != nil {
		n.noteSender(t, key, f.Slot)
	}
	now := f.Time
	if now.IsZero() {
		now = n.clk.Now()
	}
	authed, marked := false, hop.Marked(f.Data)
	if marked {
		if f.Broadcast {
			n.drop(DropMalformed) // nothing broadcast carries a hop tag
			return
		}
		// Tagged by a neighbour we agreed keys with (hopauth.go): checked
		// and stripped before anything reads it.
		b, a, ok := n.openHop(key, f.Data, now)
		if !ok {
			return
		}
		f.Data, authed = b, a
	}
	p := &n.dec
	if err := p.UnmarshalBinary(f.Data); err != nil {
		switch {
		case errors.Is(err, packet.ErrVersion):
			n.drop(DropVersion)
		case errors.Is(err, packet.ErrUnknownSchema):
			n.drop(DropSchema)
		default:
			n.drop(DropMalformed)
		}
		return
	}
	if marked {
		// The marker is the hop trailer's, not the packet's: a packet
		// re-encoded from this one (an ack, a relayed copy) must not
		// claim a trailer it does not have.
		p.Reserved = 0
	}
	if !containsSchema(t.info.Schemas, p.Schema) {
		n.drop(DropSchema) // a LoRa schema on ESP-NOW, say: not for this link
		return
	}
	if err := p.VerifyChecksum(); err != nil {
		n.drop(DropChecksum)
		return
	}
	if !authed && !f.Broadcast {
		refuse, bcast := n.plainVerdict(t, n.endpointAt(key), p, now)
		if refuse {
			return
		}
		f.Broadcast = bcast
	}
	pr := n.peers.ByEndpoint(key)
	var ep *endpoint
	if pr != nil || n.endpointAt(key) != nil {
		ep = n.endpointFor(key)
		ep.lastSeen = now
	}
	if pr != nil {
		// Any frame proves the peer alive, not only its beacons [ours]: on
		// a crowded LoRa mesh four beacons in a row (four hours) can be
		// lost to collisions while the peer talks all the time.
		pr.LastRx = now
		pr.Timeout = peer.DefaultTimeout
		if p.Flags.Throttle() {
			pr.Throttle++
		} else if pr.Throttle > 0 {
			pr.Throttle--
		}
	}
	for _, s := range n.sleep {
		if s.t == t {
			s.earn()
		}
	}
	if ep != nil && ep.wake != nil {
		ep.woke() // any packet from it says it is awake
	}
	if ep != nil && !referenceSchemas[p.Schema] {
		ep.ours = true // reference nodes send only schemas 0, 2, 20, 22
	}
	if enc := p.Flags.Encoded(); pr == nil && !f.Broadcast && (enc == packet.EncNone || enc == packet.EncAsk) && !introduces(p) {
		// Unicast data from a node whose beacon we have not heard: greet it
		// with our beacon, so its response tells us who it is and what it
		// speaks before its transfer needs answers [ours].
		n.greet(t, key, now)
	}
	switch p.Flags.Encoded() {
	case packet.EncRNS:
		n.answerRNS(t, key, pr)
		return
	case packet.EncNIA:
		return // handled above: it is awake
	case packet.EncAck:
		n.receiveAck(key, p)
		return
	case packet.EncRtx:
		n.receiveRtx(key, p)
		return
	}
	s := p.SchemaOf()
	if s.Routed() && n.layer == nil {
		n.drop(DropNotForUs) // no routing layer: we neither deliver nor relay routed traffic
		return
	}
	if p.Flags.Error() && !s.Routed() {
		n.receiveError(key, p)
		return
	}
	if s.Sequenced() {
		ep = n.strangerEndpoint(key, now)
		if ep == nil {
			n.drop(DropBudget)
			return
		}
		ep.lastSeen = now
		if !referenceSchemas[p.Schema] {
			ep.ours = true
		}
		n.receiveChunk(ep, p, f.Broadcast, authed, now)
		return
	}
	n.receiveSingle(key, p, f.Broadcast, now)
}

// receiveSingle handles a Package in one packet.
func (n *Node) receiveSingle(key peer.Endpoint, p *packet.Packet, bcast bool, now time.Time) {
	var pkg packet.Package
	if err := pkg.UnmarshalBinary(p.Body); err != nil {
		n.drop(DropMalformed)
		return
	}
	ask := p.Flags.Ask()
	if err := pkg.Verify(); err != nil {
		n.drop(DropHash)
		if ask {
			n.sendAck(key, p, ErrBadHash, nil)
		}
		return
	}
	if ep := n.endpointAt(key); ep != nil && !bcast {
		// A retransmitted single (its ack was lost) is answered, not delivered twice.
		if ep.rxSingles == nil {
			ep.rxSingles = &singleWindow{hi: p.PacketID - 1}
		}
		if ep.rxSingles.seen(p.PacketID, binary.BigEndian.Uint32(pkg.Hash[:4])) {
			n.drop(DropDuplicate)
			if ask {
				n.sendAck(key, p, nil, nil)
			}
			return
		}
	}
	err := n.deliver(key, p, &pkg, bcast, now)
	if ask {
		n.sendAck(key, p, err, nil)
	}
}

// deliver hands a verified Package to its application, or a routed one,
// decoded once, to the layer above (which delivers it here with
// Bind.Deliver, or passes it on).
func (n *Node) deliver(key peer.Endpoint, p *packet.Packet, pkg *packet.Package, bcast bool, now time.Time) error {
	if p.SchemaOf().Routed() {
		h := RouteHeader{To: p.To, From: p.From, TreeState: p.TreeState, TTL: p.TTL, Mode: p.Flags.Mode(), Error: p.Flags.Error()}
		if !n.proven(key) {
			// Routed traffic only from a proven neighbour, or one the
			// layer answers for (RoutedAdmitter): anything else could be
			// anyone's.
			a, ok := n.layer.(RoutedAdmitter)
			if !ok || !a.AdmitRouted(h, key) {
				n.stats.Trust.UnprovenRouted++
				if ep := n.endpointAt(key); ep != nil && n.xkey != nil {
					// It took our proof; ours of it lapsed (hopauth.go).
					n.challengeLapsed(ep, now)
				}
				return ErrNoRoute
			}
		}
		own := *pkg
		own.Blob = bytes.Clone(pkg.Blob) // it aliased a frame or a reassembly
		n.layer.HandleRouted(h, &own, key, now)
		return nil
	}
	if pkg.AppID == SegmentAppID && !bcast {
		return n.receiveSegment(key, pkg.Blob, now)
	}
	if pkg.AppID == bsig.AppID && !n.cfg.Reference {
		return n.receiveSigned(key, pkg.Blob, bcast, p.Schema, now)
	}
	return n.deliverApp(Message{App: pkg.AppID, Blob: bytes.Clone(pkg.Blob), Via: key, Broadcast: bcast, Schema: p.Schema, Time: now})
}

// deliverApp hands m to its application.
func (n *Node) deliverApp(m Message) error {
	if h := n.checked[m.App]; h != nil {
		if pr := n.peers.ByEndpoint(m.Via); pr != nil && m.Route == nil {
			m.From, m.FromKnown = pr.ID, true
		}
		return h(m)
	}
	h := n.app(m.App)
	if h == nil {
		n.drop(DropUnknownApp)
		return ErrUnknownApp
	}
	if pr := n.peers.ByEndpoint(m.Via); pr != nil && !m.FromKnown {
		m.From, m.FromKnown = pr.ID, true
	}
	n.stats.Delivered++
	n.stats.DeliveredBytes += uint64(len(m.Blob))
	h(m)
	return nil
}

// CheckedHandler receives the Packages of an application that may refuse
// them: its error goes back to the sender (the one-hop ack, or the routing
// layer's report to the origin). End-to-end encryption (l2-seq/e2e) is
// one: a Package that does not authenticate is refused, not delivered.
type CheckedHandler func(m Message) error

// RegisterChecked adds an application whose handler may refuse what it is
// given. It is not announced in beacons.
func (n *Node) RegisterChecked(id packet.AppID, h CheckedHandler) {
	if n.checked == nil {
		n.checked = map[packet.AppID]CheckedHandler{}
	}
	n.checked[id] = h
}

// DeliverLocal hands m to its application on this node, as if it had
// arrived: what an application layer that unwraps Packages (l2-seq/e2e)
// delivers what it unwrapped with. m.From and m.FromKnown are kept when
// set (the unwrapping layer authenticated the sender).
func (n *Node) DeliverLocal(m Message) error { return n.deliverApp(m) }

// sendAck answers packet p: the ack transform of its flags, same ids, an
// empty body (or the error code, with the error flag, or a status).
func (n *Node) sendAck(key peer.Endpoint, p *packet.Packet, err error, status []byte) {
	var a packet.Packet
	packet.AckFor(p, &a)
	switch {
	case err != nil:
		a.Flags |= packet.FlagError
		a.Body = []byte{CodeOf(err)}
	case status != nil:
		a.Body = status
	}
	a.Flags &^= packet.FlagThrottle
	if n.congested() {
		a.Flags |= packet.FlagThrottle
	}
	ep := n.endpointAt(key)
	room := 0
	if ep != nil {
		room = ep.room()
	}
	if s := roomy(a.SchemaOf(), room); len(a.Body) > s.MaxBody {
		a.Body = a.Body[:s.MaxBody]
	}
	b, e := a.AppendSealed(nil)
	if e != nil {
		return
	}
	if ep != nil && !ep.peerFull() && a.SchemaOf().Sequenced() {
		ep.quarantine(a.SeqID, true) // a reference node files this ack as a chunk of a.SeqID
	}
	n.links[key.Link].queueCtrl(outFrame{dst: key.Addr, data: b, ep: ep})
}

// receiveAck routes an ack to the send it answers.
func (n *Node) receiveAck(key peer.Endpoint, p *packet.Packet) {
	ep := n.endpointAt(key)
	if ep == nil {
		n.drop(DropStray)
		return
	}
	if p.SchemaOf().Sequenced() {
		for _, o := range ep.out {
			// A reference node's ack of a copy of the last packet echoes
			// the seq_size 0 the copy carried (refNext).
			if o.started && !o.finished && o.seqID == p.SeqID && (o.count == int(p.SeqSize)+1 ||
				(!o.full && p.SeqSize == 0 && int(p.PacketID) == o.count-1)) {
				o.onAck(p)
				return
			}
		}
		n.drop(DropStray)
		return
	}
	if o := ep.singles[p.PacketID]; o != nil {
		var err error
		if p.Flags.Error() && len(p.Body) > 0 {
			err = &RemoteError{Err: ErrorForCode(p.Body[0]), From: key.Addr.String()}
		}
		o.acked(err)
		return
	}
	n.drop(DropStray)
}

// receiveRtx answers a retransmission request for a sequence being sent. A
// reference node's requests cost nothing but a counter (PROTOCOL 11): they
// come 30 s late, or for a sequence that never existed (it files our acks
// as chunks of their seq_id and asks for the rest), and our sequences to it
// need none: every packet of them is acked before the send ends.
func (n *Node) receiveRtx(key peer.Endpoint, p *packet.Packet) {
	ep := n.endpointAt(key)
	if ep == nil || !ep.peerFull() || !p.SchemaOf().Sequenced() {
		n.drop(DropStray)
		return
	}
	o := n.cache.find(ep, p.SeqID)
	if o == nil || o.count != int(p.SeqSize)+1 {
		n.drop(DropStray)
		return
	}
	o.onRtx(int(p.PacketID))
}

// receiveError handles an error-flagged packet that is not an ack: a
// report about a single packet we sent.
func (n *Node) receiveError(key peer.Endpoint, p *packet.Packet) {
	ep := n.endpointAt(key)
	if ep != nil {
		if o := ep.singles[p.PacketID]; o != nil {
			code := uint8(0)
			if len(p.Body) > 0 {
				code = p.Body[0]
			}
			o.acked(&RemoteError{Err: ErrorForCode(code), From: key.Addr.String()})
			return
		}
	}
	n.drop(DropStray)
}

// introduces reports whether p is a beacon or a neighbour-proof message:
// a stranger that sends one is not greeted. A beacon says who its sender
// is; a challenge is challenged back, and the proof says it (and makes a
// peer of it). Greeted, the challenger of a neighbour meeting it answered
// the greeting too, now that greetings are answered: in the simulator's
// clustered and hubs meshes the beacons' airtime while the trees formed
// rose by a quarter to a half.
func introduces(p *packet.Packet) bool {
	if p.SchemaOf().Sequenced() || len(p.Body) < packet.AppIDSize {
		return false
	}
	app := packet.AppID(p.Body[:packet.AppIDSize])
	return app == beacon.AppID || app == proof.AppID
}

// greet unicasts our beacon to a stranger, at most once a beacon period.
func (n *Node) greet(t *txLink, key peer.Endpoint, now time.Time) {
	ep := n.strangerEndpoint(key, now)
	if ep == nil || (!ep.lastGreet.IsZero() && now.Sub(ep.lastGreet) < n.greetEvery()) {
		return
	}
	ep.lastGreet = now
	for _, m := range beacon.Messages(beacon.OpBeacon, n.nodeID, n.announced(ep.key.Link)) {
		b, _ := m.AppendTo(nil)
		n.sendPlain(ep, beacon.AppID, b)
	}
}

func (n *Node) greetEvery() time.Duration {
	if n.cfg.BeaconPeriod > 0 {
		return n.cfg.BeaconPeriod
	}
	return time.Minute
}
