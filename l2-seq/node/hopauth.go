package node

// Authenticated hops [ours] (package hop): the neighbour proof gives each
// direction of a pair of our neighbours a key, with no message more than
// the proof exchange (main's challenge and proof, each way). When we accept
// a neighbour's proof of our nonce, we send to it under the key of that
// nonce; when we answer a neighbour's challenge, we keep its nonce, and
// open what it sends us under the key of whichever nonce it proved. Every
// unicast frame between the two then carries a counter and a tag; once a
// frame from a proven address has verified, a frame from it without a tag,
// or with a wrong tag, or with a counter seen before, is refused. A
// spoofer of a proven neighbour's address can no longer inject acks,
// status reports, tree messages, routed Packages or anything else one hop.
// Broadcasts go as they are (beacons, claims and goodbyes carry signatures
// of their own), and so does the neighbour-proof exchange, which is how
// keys are agreed again after a restart.

import (
	"crypto/ecdh"
	"errors"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/hop"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// HopStats counts authenticated hops.
type HopStats struct {
	Sealed          uint64 // frames sent with a tag
	Opened          uint64 // frames whose tag and counter verified
	BadTag          uint64 // marked frames from a proven neighbour whose tag did not verify (forged, or a key we no longer hold)
	Replayed        uint64 // marked frames whose counter was seen before
	Unverified      uint64 // marked frames from an address not proven to us: taken, trailer stripped, as its plain frames are
	Unauthenticated uint64 // frames without a tag from a proven neighbour whose frames come tagged
	Rekeys          uint64 // rekey challenges sent: frames from a proven neighbour failed, and none verified lately
	Lapsed          uint64 // challenges sent to a neighbour not proven to us that routed to us (it took our proof), no challenge of ours to it being alive
	Recut           uint64 // sequences started again with room for the tag: their first packet, cut before the neighbour was known, was to go again untagged
}

// Timing of hop keys.
const (
	// prevKeyLife is how long the key a neighbour sent under before its
	// last new one still opens its frames: frames under the old one may
	// still be on the air, or queued, when the first under the new one
	// arrives.
	prevKeyLife = 5 * time.Second
	// rekeyQuiet: frames that do not verify make us ask the neighbour to
	// agree keys again (it may have restarted, or we did), but only when
	// nothing from it verified for this long, and at most once a
	// nonceLife (a rekey's challenge is retried within it), so a spoofer
	// cannot make a busy pair prove itself over and over.
	rekeyQuiet = 2 * time.Second
	// maxAnswered bounds the nonces kept per neighbour of the challenges
	// we answered: the neighbour sends under the one whose proof it
	// accepted, which may not be the last we answered (a spoofer's
	// challenge from its address, a retry crossing a new one).
	maxAnswered = 4
)

// hopState is an endpoint's key state (in proofState).
type hopState struct {
	// send is the key we send to it under: that of the last proof of our
	// nonce it gave us, for node sendID.
	send   *hop.Key
	sendID identity.NodeID

	// What it sends us: the key that verified last (cur), the one before
	// (prev, until prevUntil), and the nonces of the challenges we
	// answered, whose keys it may send under next; all for node id.
	id        identity.NodeID
	cur, prev *hop.Key
	prevUntil time.Time
	answered  [maxAnswered]answeredNonce
	next      int       // the answered slot to fill next
	lastGood  time.Time // last frame that verified
	lastRekey time.Time // last rekey challenge
	// back: our challenges ask it to challenge us again (proof.TypeRekey):
	// it sends under a key we do not hold.
	back bool
	// lastBack: when a Rekey of its made us challenge it back, though
	// proven (a Rekey under its address costs it a proof: one in
	// rekeyQuiet).
	lastBack time.Time

	secret              hop.Secret // X25519 with secretID
	secretID            identity.NodeID
	secretSet, secretOK bool
}

// keyed reports whether the state holds hop keys, or nonces that
// become keys (answered challenges).
func (hs *hopState) keyed() bool {
	if hs.send != nil || hs.cur != nil {
		return true
	}
	for i := range hs.answered {
		if hs.answered[i].set {
			return true
		}
	}
	return false
}

// answeredNonce is the nonce of a challenge we answered, and the key of
// its direction once derived (for node keyFor).
type answeredNonce struct {
	nonce  proof.Nonce
	set    bool
	key    *hop.Key
	keyFor identity.NodeID
}

// hopSchemas are the unsequenced schemas as senders use them towards a
// neighbour of ours, and the bounds of status acks: bodies hop.Overhead
// bytes shorter, so that the frame has room for the trailer, keyed yet or
// not (a Package queued before the agreement goes authenticated after
// it). A sequence keeps the room in its first packet only
// (sequence.CutRoom).
var hopSchemas [256]*packet.Schema

func init() {
	for id := range 256 {
		s, err := packet.Lookup(uint8(id))
		if err != nil {
			continue
		}
		c := *s
		c.MaxBody -= hop.Overhead
		hopSchemas[id] = &c
	}
}

// room is what a sender leaves free in every packet to ep: the hop
// trailer for a neighbour of ours that can hold keys, nothing for a
// reference node or a keyless one (our board firmware speaks the whole
// protocol but has no key, and places a sequence's chunks at fixed
// offsets).
//
// A neighbour we hold a key for gets the room whatever our peer table
// says (unless it gives the address to another node): it proved our
// nonce, and takes only tagged frames from us. A
// gateway of the simulator (hubs 300 seed 8) cut the first packets of
// sequences to neighbours it held keys for without room while its peer
// table held no full entry for them: untagged, they were refused 1,923
// times in one run.
func (ep *endpoint) room() int {
	if ep.n.xkey == nil {
		return 0 // it will not seal
	}
	p := ep.n.peers.ByEndpoint(ep.key)
	if hs := &ep.pf.hop; hs.send != nil && (p == nil || p.ID == hs.sendID) {
		return hop.Overhead
	}
	if ep.n.cfg.Reference || !ep.peerFull() {
		return 0
	}
	if p == nil || !ep.keyable(p.ID) {
		return 0
	}
	return hop.Overhead
}

// singleRoom is the room a Package sent to ep in one packet keeps free:
// ep.room(), and the trailer's too for an address we know nothing of
// (no peer entry, no key), which may be one of our nodes. A single is
// encoded once, when it is queued: cut full for a stranger that proved
// itself before it went again (and took only tagged frames from us from
// then on), it had no room for the tag and was refused every time it
// went, until the send was abandoned. A Package too long for
// the shorter single goes as a sequence instead, whose first packet is
// cut again with room should it have to go again to a neighbour we now
// tag for (outSeq.next, Recut). A peer we know as reference-grade or
// keyless gets none: it takes no tag.
func (ep *endpoint) singleRoom() int {
	if r := ep.room(); r > 0 || ep.n.xkey == nil || ep.n.cfg.Reference {
		return r
	}
	if ep.n.peers.ByEndpoint(ep.key) != nil {
		return 0
	}
	return hop.Overhead
}

// keyable reports whether node id has a key (is an Ed25519 point), and
// so may agree hop keys; remembered per endpoint.
func (ep *endpoint) keyable(id identity.NodeID) bool {
	k := &ep.pf.keyOf
	if !k.set || k.id != id {
		_, err := identity.X25519Public(id)
		*k = keyOf{set: true, id: id, ok: err == nil}
	}
	return k.ok
}

// keyOf caches whether a node_id has a key.
type keyOf struct {
	set, ok bool
	id      identity.NodeID
}

// roomy returns s with room bytes kept free in its bodies.
func roomy(s *packet.Schema, room int) *packet.Schema {
	if room == 0 || s == nil {
		return s
	}
	return hopSchemas[s.ID]
}

// initHop derives the node's X25519 key for hop keys (Config.HopAuth);
// without it the node neither seals nor opens.
func (n *Node) initHop() {
	if n.cfg.Reference || !n.cfg.HopAuth {
		return
	}
	priv, _ := n.id.X25519()
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		panic("node: X25519 key: " + err.Error()) // 32 bytes are always a key
	}
	n.xkey = k
}

// secretWith returns the X25519 secret with node id, computed once per
// endpoint and node; false if id has no key.
func (n *Node) secretWith(ep *endpoint, id identity.NodeID) (*hop.Secret, bool) {
	hs := &ep.pf.hop
	if !hs.secretSet || hs.secretID != id {
		s, err := hop.Agree(n.xkey, n.nodeID, id)
		hs.secret, hs.secretID, hs.secretSet, hs.secretOK = s, id, true, err == nil
		if err != nil {
			n.log.Debug("no hop key with a proven neighbour", "via", ep.key.Addr, "err", err)
		}
	}
	return &hs.secret, hs.secretOK
}

// provedOurs is called when ep's neighbour, node id, proved our nonce:
// from now on we send to it under that nonce's key, which it derives
// from the nonce it signed (answeredChallenge).
func (n *Node) provedOurs(ep *endpoint, id identity.NodeID, nonce proof.Nonce) {
	hs := &ep.pf.hop
	hs.back = false
	if n.xkey == nil {
		return
	}
	s, ok := n.secretWith(ep, id)
	if !ok {
		hs.send = nil
		return
	}
	hs.send, hs.sendID = s.Key(n.nodeID, id, nonce), id
}

// answeredChallenge keeps the nonce of a challenge we answered: its key is
// the one ep's neighbour sends under if it takes our proof.
func (n *Node) answeredChallenge(ep *endpoint, nonce proof.Nonce) {
	if n.xkey == nil {
		return
	}
	hs := &ep.pf.hop
	for i := range hs.answered {
		if hs.answered[i].set && hs.answered[i].nonce == nonce {
			return // a retry of one we keep
		}
	}
	hs.answered[hs.next] = answeredNonce{nonce: nonce, set: true}
	hs.next = (hs.next + 1) % maxAnswered
}

// resetHop forgets the keys of what ep's neighbour sends (it is proven for
// another node now); what we send it, and the nonces we answered, stay
// (derived for a node, they are of no use for another).
func (hs *hopState) resetRecv(id identity.NodeID) {
	hs.id, hs.cur, hs.prev, hs.lastGood = id, nil, nil, time.Time{}
}

// armed reports whether frames from ep come authenticated: a frame from
// its proven neighbour verified under a key we hold. From then on its
// plain frames are refused (plainVerdict).
func (n *Node) armed(ep *endpoint) bool {
	return ep != nil && ep.pf.hop.cur != nil && ep.pf.hop.id == ep.pf.id && n.proven(ep.key)
}

// sealFor authenticates an outgoing frame for the neighbour at dst on t,
// when we hold its key and the frame has room. It returns the frame to
// send (in t's buffer when sealed).
func (t *txLink) sealFor(f *outFrame) []byte {
	n := t.n
	if n.xkey == nil || f.clear || f.dst == nil || f.dst.IsBroadcast() {
		return f.data
	}
	ep := f.ep
	if ep == nil || ep.key.Link != t.idx {
		ep = n.endpointAt(peer.Endpoint{Link: t.idx, Addr: f.dst})
	}
	if ep == nil || ep.pf.hop.send == nil || !hasRoom(t, f.data) {
		return f.data
	}
	b, err := ep.pf.hop.send.Seal(t.hbuf[:0], f.data)
	if err != nil {
		// The counter space is spent (2³² frames): prove it again for a
		// new key.
		ep.pf.hop.send = nil
		n.challenge(ep, n.clk.Now())
		return f.data
	}
	t.hbuf = b[:0]
	n.stats.Hop.Sealed++
	return b
}

// hasRoom reports whether frame takes a trailer within both the link's MTU
// and its schema family's datagram limit (a v1 ESP-NOW device takes 250
// bytes whatever our link's MTU). Frames without room go as they are: a
// sequence's later packets (see plainVerdict).
func hasRoom(t *txLink, frame []byte) bool {
	if len(frame) < packet.HeaderSize {
		return false
	}
	s, err := packet.Lookup(frame[2])
	if err != nil {
		return false
	}
	n := len(frame) + hop.Overhead
	return n <= t.info.MTU && n <= s.MaxPacket()
}

// openHop checks a marked frame from key and returns the packet in it,
// and whether it was authenticated; ok false if it is refused. A marked
// frame from an address not proven to us is what its plain frames are
// (taken from a reference-grade peer): its trailer is stripped. It is not
// challenged for it: its proof is under way (it took ours first), or will
// be asked for as main asks (its beacons), or when it routes to us
// (challengeLapsed); challenged more, a neighbour busy sending to us on a
// half-duplex link (LoRa) lost its proofs and our data alike (a 10 KiB
// transfer took twice as long in the bench). Should its frames still fail
// once it is proven, rekey asks it for a key we hold.
func (n *Node) openHop(key peer.Endpoint, data []byte, now time.Time) (b []byte, authed, ok bool) {
	ep := n.endpointAt(key)
	if ep == nil || n.xkey == nil || !n.proven(key) {
		n.stats.Hop.Unverified++
		return hop.Packet(data), false, true
	}
	hs := &ep.pf.hop
	id := ep.pf.id
	if hs.id != id {
		hs.resetRecv(id)
	}
	err := hop.ErrTag
	if hs.cur != nil {
		b, err = hs.cur.Open(data)
	}
	if errors.Is(err, hop.ErrTag) && hs.prev != nil && now.Before(hs.prevUntil) {
		b, err = hs.prev.Open(data)
	}
	for k := range maxAnswered {
		if !errors.Is(err, hop.ErrTag) {
			break
		}
		// Newest first.
		a := &hs.answered[(hs.next+maxAnswered-1-k)%maxAnswered]
		if !a.set {
			continue
		}
		if a.key == nil || a.keyFor != id {
			s, ok := n.secretWith(ep, id)
			if !ok {
				break
			}
			a.key, a.keyFor = s.Key(id, n.nodeID, a.nonce), id
		}
		if b, err = a.key.Open(data); err == nil {
			// It took our proof of this nonce: its key is the one now.
			if hs.cur != nil {
				hs.prev, hs.prevUntil = hs.cur, now.Add(prevKeyLife)
			}
			hs.cur = a.key
			*a = answeredNonce{}
		}
	}
	switch {
	case err == nil:
		n.stats.Hop.Opened++
		hs.lastGood = now
		return b, true, true
	case errors.Is(err, hop.ErrReplayed):
		n.stats.Hop.Replayed++
	default:
		n.stats.Hop.BadTag++
		n.rekey(ep, now)
	}
	return nil, false, false
}

// challengeLapsed challenges ep's neighbour, which routes to us (it took
// our proof) though it is not proven to us, when no challenge of ours to
// it is alive: its answers to the last were lost (on a busy receiver's air
// every answer to a round of challenges comes at once), and until its next
// beacon (a minute on ESP-NOW, an hour on LoRa) each routed Package it
// sends us would be refused, costing its sender a "no route" and a pause.
// At most one nonce per nonceLife, with its retries: never more than a
// beacon asks. (Challenging on any tagged frame from an unproven address
// instead left a clustered mesh of the simulator unconverged after 30
// minutes on one seed of four.)
func (n *Node) challengeLapsed(ep *endpoint, now time.Time) {
	pf := &ep.pf
	if !pf.drawn.IsZero() && now.Sub(pf.drawn) <= nonceLife {
		return // a challenge is alive (or its retries are spent: the nonce's life bounds them)
	}
	n.stats.Hop.Lapsed++
	n.challenge(ep, now)
}

// plainVerdict says what becomes of an unmarked packet from ep that the
// link did not flag a broadcast. Once ep's frames come authenticated
// (armed), everything it sends us comes tagged but the neighbour-proof
// exchange (a neighbour that restarted has lost its key and proves itself
// again) and a sequence's later packets: anything else is refused. On a
// link that cannot tell a broadcast from a unicast (link.CapNoRxDest:
// LoRa, UDP with peers), a packet that could be one of its broadcasts is
// taken as a broadcast: delivered flagged so, never acknowledged, never
// routed.
func (n *Node) plainVerdict(t *txLink, ep *endpoint, p *packet.Packet, now time.Time) (refuse, bcast bool) {
	if !n.armed(ep) {
		// Nothing from it verified yet: what it sends is taken as main
		// takes it.
		return false, false
	}
	s := p.SchemaOf()
	enc := p.Flags.Encoded()
	if s.Sequenced() && p.PacketID > 0 && len(p.Body) > 0 && (enc == packet.EncNone || enc == packet.EncAsk) && !p.Flags.Error() {
		// A sequence's later packets go as they are: the first one,
		// authenticated, carries the Package's hash, which the whole is
		// checked against before anything is delivered (and the routed
		// header is taken from it). A forged later packet can spoil a
		// reassembly — what jamming does — never pass for ours.
		return false, false
	}
	plain := !s.Routed() && enc == packet.EncNone && !p.Flags.Error()
	if plain && !s.Sequenced() && len(p.Body) >= packet.AppIDSize && packet.AppID(p.Body[:packet.AppIDSize]) == proof.AppID {
		return false, false
	}
	if plain && broadcastable[p.Schema] && t.info.Caps.Has(link.CapNoRxDest) {
		return false, true
	}
	n.stats.Hop.Unauthenticated++
	n.rekey(ep, now)
	return true, false
}

// backDue reports whether a Rekey from a proven neighbour is to be
// answered with a challenge now (and notes it).
func (hs *hopState) backDue(now time.Time) bool {
	if !hs.lastBack.IsZero() && now.Sub(hs.lastBack) < rekeyQuiet {
		return false
	}
	hs.lastBack = now
	return true
}

// rekey asks ep's neighbour to prove itself again and to challenge us
// again (proof.TypeRekey) when frames from it fail and none verified
// lately: it holds a key for us that we do not (we restarted, or lost
// the endpoint), or none (it restarted).
func (n *Node) rekey(ep *endpoint, now time.Time) {
	hs := &ep.pf.hop
	if n.xkey == nil || now.Sub(hs.lastGood) < rekeyQuiet || !hs.lastRekey.IsZero() && now.Sub(hs.lastRekey) < nonceLife {
		return
	}
	hs.lastRekey, hs.back = now, true
	n.stats.Hop.Rekeys++
	n.challenge(ep, now)
}
