package node

import (
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// Beacon timing (PROTOCOL 5.2).
const (
	BeaconBurst   = 4
	BeaconSpacing = 36 * time.Millisecond
)

// announced is the app list our beacons on link idx carry: with the
// capabilities, and on a link that takes ESP-NOW v2 frames, that it does.
func (n *Node) announced(idx int) []packet.AppID {
	apps := slices.Clone(n.appOrder)
	if !n.cfg.Reference {
		apps = append(apps, beacon.CapabilitiesID)
		if n.cfg.Sleep && len(n.sleep) > 0 {
			apps = append(apps, beacon.SleepsID)
		}
		if idx < len(n.links) && n.links[idx].v2() {
			apps = append(apps, beacon.ESPNOWV2ID)
		}
		if n.busy {
			apps = append(apps, beacon.BusyID)
		}
	}
	return apps
}

// v2 reports whether the link carries our ESP-NOW v2 schemas.
func (t *txLink) v2() bool { return containsSchema(t.info.Schemas, 40) }

// burstLen is how many beacons a burst sends on a link: four where airtime
// is cheap; one on a link with a duty-cycle budget, or where a beacon takes
// more than a quarter of the burst's spacing (LoRa at any setting) [ours].
// Four beacons 36 ms apart are for a board that listens 40 ms in 130: they
// cover its cycle only if each is short beside the spacing; on LoRa they go
// back to back, and four would take the channel a tenth of the time at a
// 2 s period (the virtual rack's SF7/BW500 pair lost a board's five tries
// to them) for nothing, since a LoRa module listens all the time or not at
// all.
func (t *txLink) burstLen() int {
	if t.info.Caps.Has(link.CapDutyCycle) || link.Airtime(t.l, beaconAirSize) > BeaconSpacing/4 {
		return 1
	}
	return BeaconBurst
}

// beaconAirSize is about a beacon frame's size on the air (the packet around
// a message of ten app_ids): what burstLen weighs against the spacing.
const beaconAirSize = 160

// sendBursts sends a burst of beacons on every link, spaced by
// BeaconSpacing, and returns the longest burst's length.
func (n *Node) sendBursts() (longest int) {
	for _, t := range n.links {
		k := t.burstLen()
		longest = max(longest, k)
		for i := range k {
			n.clk.AfterFunc(time.Duration(i)*BeaconSpacing, func() { n.SendBeacon(t.idx, beacon.OpBeacon) })
		}
	}
	return longest
}

// peerBurst is the burst length counted peer p sends on the link we share
// with it (its first endpoint's), false if we share none.
func (n *Node) peerBurst(p *peer.Peer) (int, bool) {
	if len(p.Endpoints) == 0 || p.Endpoints[0].Link >= len(n.links) {
		return 0, false
	}
	return n.links[p.Endpoints[0].Link].burstLen(), true
}

// beaconBurst sends one burst on every link, then counts peers down.
func (n *Node) beaconBurst() {
	if n.closed {
		return
	}
	longest := n.sendBursts()
	n.clk.AfterFunc(time.Duration(longest)*BeaconSpacing, func() {
		n.weighHearing()
		n.armQuick()
		for _, p := range n.peers.Tick() {
			n.log.Debug("peer timed out", "peer", p.ID.Short())
			n.forgetProofs(p)
			n.peerEvent(p, false)
		}
		n.nodes.Expire(n.clk.Now())
	})
	// The period wanders by up to ±10 % [ours; the reference keeps exactly
	// 60 s]: two neighbours whose bursts collide once do not collide every
	// minute for ever (LoRa has no carrier sense).
	p := n.cfg.BeaconPeriod
	jitter := time.Duration(n.rng.Int64N(int64(p/5)+1)) - p/10
	n.beaconTmr = n.clk.AfterFunc(p+jitter, n.beaconBurst)
}

// SendBeacon broadcasts our beacon messages (op) on link idx.
func (n *Node) SendBeacon(idx int, op beacon.Op) {
	if n.closed || n.byeSent {
		return
	}
	for _, m := range beacon.Messages(op, n.nodeID, n.announced(idx)) {
		b, _ := m.AppendTo(nil)
		n.Broadcast(beacon.AppID, b, &SendOptions{Links: []int{idx}})
	}
}

// sendDisconnect broadcasts our goodbye on every link, twice (the second
// copy a gap later, see goodbyeGap); the Results complete when each copy
// has left. From here on the node sends no beacon, beacon response or
// neighbour proof: anything that would make a neighbour take us back after
// our goodbye stays unsaid.
func (n *Node) sendDisconnect() []*Result {
	n.byeSent = true
	m := beacon.Message{Op: beacon.OpDisconnect, NodeID: n.nodeID}
	b, _ := m.AppendTo(nil)
	if !n.cfg.Reference {
		// Signed for this run, so that only we can say we left [ours].
		b = proof.AppendGoodbyeTail(b, n.id, n.boot)
	}
	var rs []*Result
	for _, t := range n.links {
		opt := &SendOptions{Links: []int{t.idx}}
		first := n.Broadcast(beacon.AppID, b, opt)
		// The goodbye is one unacknowledged broadcast: a collision or a
		// neighbour's full receive queue loses it, and the neighbour
		// then keeps us for a whole beacon timeout. A second copy, a
		// gap after the first left, is cheap insurance [ours; the
		// reference sends one].
		again := newResult()
		first.OnDone(func(error) {
			n.clk.AfterFunc(goodbyeGap(t), func() {
				n.Broadcast(beacon.AppID, b, opt).OnDone(again.complete)
			})
		})
		rs = append(rs, first, again)
	}
	return rs
}

// goodbyeGap is the wait between a goodbye's two copies on t: two full
// frames' airtime (so one collision or a burst of noise does not take
// both), and at least 20 ms where airtime is nothing (UDP), so that a
// neighbour whose loop was busy has drained its queue.
func goodbyeGap(t *txLink) time.Duration {
	return max(2*t.airMTU, 20*time.Millisecond)
}

// receiveBeacon is the Beacon application.
func (n *Node) receiveBeacon(m Message) {
	// Decoded into the node's own message, its app list's array reused:
	// nothing below keeps bm.Apps (its ids are copied into the peer's
	// lists) nor reads it after calling out (challenge, peerEvent,
	// respondBeacon). A list for each beacon heard was 4 % of what a
	// route simulation allocates.
	bm := &n.beaconIn
	if err := bm.UnmarshalBinary(m.Blob); err != nil {
		n.drop(DropBeacon)
		return
	}
	id := identity.NodeID(bm.NodeID)
	if id == n.nodeID {
		return
	}
	now := n.clk.Now()
	ep := n.strangerEndpoint(m.Via, now)
	if ep == nil {
		n.drop(DropBudget)
		return
	}
	op := bm.Op
	switch op {
	case beacon.OpDisconnect:
		n.receiveGoodbye(m.Via, id, m.Blob[beacon.HeaderSize:])
		return
	case beacon.OpBeacon, beacon.OpResponse:
	default:
		n.drop(DropBeacon)
		return
	}
	caps := slices.Contains(bm.Apps, beacon.CapabilitiesID)
	if ep.pf.proven && ep.pf.id != id || !ep.pf.proven && n.peers.Get(id) != nil && n.peers.Get(id).Proven {
		// An address proven for another node claims this id, or an
		// unproven address claims a proven node's id: the claim counts
		// once proven, not before (a forged beacon must not add the
		// forger's address to its victim's entry, nor take a proven
		// address from its owner).
		n.stats.Trust.ClaimsRefused++
		if caps {
			n.challenge(ep, now)
		}
		return
	}
	p, isNew := n.peers.Refresh(id, m.Via, now)
	// A burst may span several messages (more than ten apps): a message
	// that comes within a second of the previous one adds to its list.
	info := n.nodes.Get(id, now)
	first := info == nil || now.Sub(info.Updated) > time.Second
	n.nodes.Update(id, bm.Apps, first, now)
	wasFull := p.Full
	if first {
		p.Apps = p.Apps[:0]
		p.Full, p.Sleeps, p.Busy = false, false, false
		ep.v2 = false
	}
	for _, a := range bm.Apps {
		switch a {
		case beacon.CapabilitiesID:
			p.Full = true
		case beacon.SleepsID:
			p.Sleeps = true
		case beacon.BusyID:
			p.Busy = true
		case beacon.ESPNOWV2ID:
			// It takes v2 frames on the link this beacon came on.
			ep.v2 = ep.tl.v2()
		}
		if !slices.Contains(p.Apps, a) {
			p.Apps = append(p.Apps, a)
		}
	}
	if caps && !n.proven(m.Via) {
		// It says it speaks the whole protocol: it will be trusted as
		// such once it proves its key here.
		n.challenge(ep, now)
	}
	ep.lastSeen = now
	if op == beacon.OpBeacon {
		p.Heard++
		if p.Counted && n.quickOn {
			n.quickHeard++ // (the quick weigh's slice under way: busy.go)
		}
	}
	if isNew || (p.Full && !wasFull) {
		n.peerEvent(p, true)
	}
	if op == beacon.OpBeacon {
		// A beacon unicast to us is a greeting (greet in receive.go): its
		// sender does not know us. A link that cannot tell (CapNoRxDest:
		// LoRa) has none to tell apart.
		greeting := !m.Broadcast && !ep.tl.info.Caps.Has(link.CapNoRxDest)
		n.respondBeacon(ep, isNew, greeting, now)
	}
}

// receiveGoodbye handles a disconnect beacon: a full peer's counts only
// signed by its key for the run it proved itself in; a reference-grade
// peer's (which cannot sign) only from one of its own addresses, and only
// for that address.
func (n *Node) receiveGoodbye(from peer.Endpoint, id identity.NodeID, tail []byte) {
	p := n.peers.Get(id)
	if p == nil {
		return
	}
	if p.Proven {
		var boot proof.Boot
		for _, k := range p.Endpoints {
			if ep := n.endpointAt(k); ep.provenFor(id) {
				boot = ep.pf.boot
				break
			}
		}
		if err := proof.VerifyGoodbye(id, boot, tail); err != nil {
			n.stats.Trust.ForgedGoodbyes++
			n.log.Debug("goodbye refused", "peer", id.Short(), "via", from.Addr, "err", err)
			return
		}
		n.forgetProofs(p)
		n.peers.Remove(id)
		n.peerEvent(p, false)
		return
	}
	if !p.HasEndpoint(from) {
		n.stats.Trust.ForgedGoodbyes++
		return
	}
	if n.peers.RemoveEndpoint(id, from) {
		n.peerEvent(p, false)
	}
}

// respondBeacon answers a beacon after a random delay of a few airtimes, so
// that neighbours who heard the same beacon do not all answer at once. It
// answers a node new to us at once (it wants to be known), and one we know
// only every eighth beacon period: it hears our own beacons too, and any
// frame of ours keeps us in its table; on a crowded LoRa channel
// answering every beacon of every neighbour would take more air than the
// beacons themselves [ours; the reference answers every beacon at once].
// Nor does it answer one we know when it broadcast within the last beacon
// period on that link: every frame of ours refreshes us in our neighbours'
// tables, and its beacon's sender heard that one (on LoRa the responses
// had cost as much air as the beacons).
//
// A greeting (a beacon unicast to us by a neighbour that got a frame of
// ours without knowing us) is answered whatever those rules say, at most
// twice a beacon period per address: its sender did not hear the beacons
// and frames those rules count on (a busy node's air loses them), and
// until it knows us it neither challenges us nor takes what we route to
// it. The greeter sends at most one a beacon period (greet).
func (n *Node) respondBeacon(ep *endpoint, isNew, greeting bool, now time.Time) {
	if n.byeSent {
		return
	}
	switch {
	case greeting && !isNew:
		if !ep.lastGreetResp.IsZero() && now.Sub(ep.lastGreetResp) < n.greetEvery()/2 {
			return
		}
		ep.lastGreetResp = now
	case !isNew && !ep.lastResp.IsZero() && now.Sub(ep.lastResp) < 8*n.cfg.BeaconPeriod:
		return
	case !isNew && !ep.tl.lastBcast.IsZero() && now.Sub(ep.tl.lastBcast) < n.cfg.BeaconPeriod:
		return
	}
	ep.lastResp = now
	resp := beacon.Messages(beacon.OpResponse, n.nodeID, n.announced(ep.key.Link))
	window := 8 * link.Airtime(ep.tl.l, 160)
	delay := time.Duration(0)
	if window > 0 {
		delay = time.Duration(n.rng.Int64N(int64(window)))
	}
	n.clk.AfterFunc(delay, func() {
		for _, m := range resp {
			b, _ := m.AppendTo(nil)
			n.sendPlain(ep, beacon.AppID, b)
		}
	})
}

// sendPlain sends a Package in one packet of the link's plainest schema
// with flags 0 and no ack expected (beacon responses, PROTOCOL 5.2).
// Neighbour-proof messages go without a hop tag.
func (n *Node) sendPlain(ep *endpoint, app packet.AppID, blob []byte) {
	if n.byeSent {
		// After our goodbye: a response or a proof would make the
		// neighbour take us back (sendDisconnect).
		return
	}
	if app != proof.AppID || len(blob) == 0 || blob[0] != proof.TypeChallenge && blob[0] != proof.TypeRekey {
		n.sendOne(ep, app, blob, app == proof.AppID)
		return
	}
	f, ok := n.frame(ep, app, blob, true)
	if !ok {
		return
	}
	// A challenge still waiting in the endpoint's queue is of no use once
	// a newer one is queued: it carries the same nonce, or one we no
	// longer hold, whose proof would be refused as stale. Left queued,
	// challenges piled up on a busy core node's slow turns to a neighbour
	// (one queued each retry or beacon, up to 194 deep on h22quiet's
	// dense seed 4, 12 minutes' wait), each went with a nonce long
	// replaced and was answered with a proof refused as stale: pairs of
	// core nodes never proved each other (h23proof). The newer challenge
	// takes the older one's place in the queue (not the tail), so that a
	// run of them does not keep pushing the challenge back.
	f.challenge = true
	for i := range ep.frames {
		if ep.frames[i].challenge {
			ep.frames[i] = f
			n.stats.Trust.Superseded++
			return
		}
	}
	ep.frames = append(ep.frames, f)
	ep.kick() // a neighbour that may sleep is woken first (endpoint.next)
}

func (n *Node) sendOne(ep *endpoint, app packet.AppID, blob []byte, clear bool) {
	f, ok := n.frame(ep, app, blob, clear)
	if !ok {
		return
	}
	ep.frames = append(ep.frames, f)
	ep.kick() // a neighbour that may sleep is woken first (endpoint.next)
}

// frame builds the datagram carrying blob to app for ep's neighbour; it
// reports false if there is none to send (the node closed, or the packet
// would not encode).
func (n *Node) frame(ep *endpoint, app packet.AppID, blob []byte, clear bool) (outFrame, bool) {
	if n.closed {
		return outFrame{}, false
	}
	pkg := packet.NewPackage(app, blob)
	p := packet.Packet{Schema: ep.tl.defaultSchema(), PacketID: n.nextPID(), Body: pkg.AppendTo(nil)}
	if n.congested() {
		p.Flags |= packet.FlagThrottle
	}
	b, err := p.AppendSealed(nil)
	if err != nil {
		return outFrame{}, false
	}
	return outFrame{dst: ep.key.Addr, data: b, ep: ep, clear: clear}, true
}
