package node

import (
	"bytes"
	"errors"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/sequence"
)

// SendOptions tune one send; the zero value (or nil) is the default send.
type SendOptions struct {
	// Priority orders sends under memory pressure: the send cache evicts
	// lower priorities first. A send of Priority above zero may also take
	// the last quarter of a neighbour's queue (Budgets.PendingSend), which
	// the default and lower priorities cannot fill (see queueLimit).
	Priority int
	// Deadline: a send still waiting its turn then fails with ErrThrottled.
	Deadline time.Time
	// Links are the links a broadcast goes out on, by index (nil: every
	// link, with one schema common to all).
	Links []int
}

// referenceSchemas are all a reference node understands (PROTOCOL 11).
var referenceSchemas = map[uint8]bool{0: true, 2: true, 20: true, 22: true}

// broadcastable are the schemas a broadcast may use: non-routed, one-byte
// packet_id (PROTOCOL 4.1), and of those only what reference nodes read, as
// a broadcast reaches them too.
var broadcastable = referenceSchemas

// chooseSchema applies PROTOCOL 4.1 over candidate schema ids: keep those
// whose largest Package fits size, take the one with the largest body.
// room bytes are kept free for the hop trailer (hopauth.go): in the
// first packet of a sequence (the one that is authenticated), in the one
// packet of an unsequenced schema (returned with its body that much
// shorter). Bodies are compared as they are with the room taken from
// both: the sequenced schemas' bodies are a few bytes longer than the
// unsequenced ones' (243 and 245 bytes on ESP-NOW, 209 and 211 routed),
// so against an unsequenced body cut short a sequenced one won, and with
// authenticated hops every small Package went as a one-packet sequence:
// a seq_id each (256 per node in 10 s, which a hub spent and then waited
// for), a status ack instead of an ack, a probe after every lost one
// (converging took three times as long on clustered meshes and hub meshes
// did not converge).
func chooseSchema(ids []uint8, allowed func(*packet.Schema) bool, size, room int) (*packet.Schema, error) {
	var best *packet.Schema
	bestBody := 0
	any := false
	for _, id := range ids {
		s, err := packet.Lookup(id)
		if err != nil || !allowed(s) {
			continue
		}
		need, body := size, s.MaxBody-room
		if s.Sequenced() {
			need += room
		} else {
			s = roomy(s, room)
		}
		any = true
		if s.MaxPackage() < need {
			continue
		}
		if best == nil || body > bestBody {
			best, bestBody = s, body
		}
	}
	switch {
	case best != nil:
		return best, nil
	case !any:
		return nil, ErrNoSchema
	default:
		return nil, ErrTooLarge
	}
}

// takes reports whether ep's neighbour takes packets of schema s: those of
// our ESP-NOW v2 family only if it said so on this link.
func (ep *endpoint) takes(s *packet.Schema) bool {
	return s.Family != packet.FamilyESPNOWV2 || ep.v2
}

// peerEndpoint is where a send to the peer with node_id to goes, or the
// Result it fails with at once.
func (n *Node) peerEndpoint(to identity.NodeID) (*endpoint, *Result) {
	if n.closed {
		return nil, failed(ErrClosed)
	}
	p := n.peers.Get(to)
	if p == nil {
		return nil, n.fail(ErrUnknownPeer)
	}
	ep := n.bestEndpoint(p)
	if ep == nil {
		return nil, n.fail(ErrUnknownPeer)
	}
	return ep, nil
}

// bestEndpoint returns the peer's endpoint on its fastest link.
func (n *Node) bestEndpoint(p *peer.Peer) *endpoint {
	var best *endpoint
	for _, e := range p.Endpoints {
		if e.Link >= len(n.links) {
			continue
		}
		if best == nil || n.links[e.Link].info.Bitrate > best.tl.info.Bitrate {
			best = n.endpointFor(e)
		}
	}
	return best
}

// Send sends blob to application app on the peer with node_id to.
func (n *Node) Send(to identity.NodeID, app packet.AppID, blob []byte, opt *SendOptions) *Result {
	ep, fail := n.peerEndpoint(to)
	if fail != nil {
		return fail
	}
	return n.sendTo(ep, app, blob, opt)
}

// SendTo sends blob to application app at a neighbour's link address,
// known as a peer or not.
func (n *Node) SendTo(to peer.Endpoint, app packet.AppID, blob []byte, opt *SendOptions) *Result {
	if n.closed {
		return failed(ErrClosed)
	}
	if to.Link < 0 || to.Link >= len(n.links) || to.Addr == nil || to.Addr.IsBroadcast() {
		return n.fail(ErrUnknownPeer)
	}
	return n.sendTo(n.endpointFor(to), app, blob, opt)
}

func (n *Node) fail(err error) *Result {
	r := newResult()
	n.finishSend(r, err)
	return r
}

func (n *Node) sendTo(ep *endpoint, app packet.AppID, blob []byte, opt *SendOptions) *Result {
	if ep.peerFull() && len(blob)+packet.PackageOverhead > n.segCap(ep)+segHeader+segDigest {
		// More than a segment: a stream, read from blob a segment at a
		// time (the receiver's memory stays bounded, and so does ours).
		return n.sendStream(ep, app, bytes.NewReader(blob), int64(len(blob)), opt)
	}
	pkg := packet.NewPackage(app, blob)
	return n.sendPackage(ep, pkg.AppendTo(make([]byte, 0, pkg.Len())), nil, opt)
}

// RouteHeader is what a routed Package carries besides itself (PROTOCOL 6,
// 7): the addresses, the tree it names, the hop limit and the metric.
type RouteHeader struct {
	To, From  [16]byte
	TreeState uint8
	TTL       uint8
	Mode      bool // common-prefix metric (the mode bit)
	Error     bool // an error report travelling back toward From
}

// sendRouted sends a Package one hop, to neighbour to, in a routed schema
// carrying h (the routing layer's forwarding step; the hop is reliable, and
// the Result reports the neighbour's confirmation). The neighbour must
// speak our protocol: reference nodes carry no routed schemas (PROTOCOL
// 11).
func (n *Node) sendRouted(to peer.Endpoint, h RouteHeader, pkg *packet.Package, opt *SendOptions) *Result {
	if n.closed {
		return failed(ErrClosed)
	}
	if to.Link < 0 || to.Link >= len(n.links) || to.Addr == nil || to.Addr.IsBroadcast() {
		return n.fail(ErrUnknownPeer)
	}
	if !n.proven(to) {
		return n.fail(ErrNoRoute)
	}
	ep := n.endpointFor(to)
	return n.sendPackage(ep, pkg.AppendTo(make([]byte, 0, pkg.Len())), &h, opt)
}

// sendPackage sends a serialized Package to ep: in one packet or a
// sequence, routed when h is given.
func (n *Node) sendPackage(ep *endpoint, data []byte, h *RouteHeader, opt *SendOptions) *Result {
	if opt == nil {
		opt = &SendOptions{}
	}
	full := ep.peerFull()
	routed := h != nil
	allowed := func(s *packet.Schema) bool {
		return s.Routed() == routed && (full || referenceSchemas[s.ID]) && ep.takes(s)
	}
	room, single := ep.room(), ep.singleRoom()
	s, err := chooseSchema(ep.tl.info.Schemas, allowed, len(data), single)
	if errors.Is(err, ErrTooLarge) && single > room {
		// Only a sequence without the room a single keeps takes it.
		s, err = chooseSchema(ep.tl.info.Schemas, allowed, len(data), room)
	}
	if err != nil {
		return n.fail(err)
	}
	if ep.waiting >= n.queueLimit(opt.Priority) {
		return n.fail(ErrBusy)
	}
	res := newResult()
	var tmpl packet.Packet
	if routed {
		tmpl = packet.Packet{To: h.To, From: h.From, TreeState: h.TreeState, TTL: h.TTL}
		if h.Mode {
			tmpl.Flags |= packet.FlagMode
		}
		if h.Error {
			tmpl.Flags |= packet.FlagError
		}
	}
	if !s.Sequenced() {
		n.queueSingle(ep, s, data, &tmpl, res, opt)
		return res
	}
	if !full && len(data)%s.MaxBody == 0 {
		// A reference receiver trims a last chunk that fills its packet to
		// nothing (PROTOCOL 4), so it never delivers such a Package; no
		// cut of it avoids that. Say so now rather than after the retries.
		n.finishSend(res, ErrReferenceLength)
		return res
	}
	if err := n.cache.reserve(len(data), opt.Priority); err != nil {
		n.finishSend(res, err)
		return res
	}
	o := &outSeq{ep: ep, res: res, s: s, pkg: data, tmpl: tmpl, room: room, count: sequence.CountRoom(s, len(data), room), full: full, prio: opt.Priority, deadline: opt.Deadline}
	n.cache.add(o)
	ep.out = append(ep.out, o)
	ep.waiting++
	if !opt.Deadline.IsZero() {
		o.deadlineTmr = n.clk.AfterFunc(opt.Deadline.Sub(n.clk.Now()), func() {
			if !o.started {
				o.finish(ErrThrottled)
			}
		})
	}
	ep.kick() // a neighbour that may sleep is woken first (endpoint.next)
	return res
}

// queueLimit is how many sends may wait for one neighbour when a send of
// priority prio comes: PendingSend for a priority above zero, the rest
// for the others (a quarter, rounded down, is kept). The quarter kept is for
// the sends that finish work already under way — a router's answers to
// lookups, receipts and error reports (l3-route/route: answerPriority) —
// so that new requests, which find the queue mostly full and are refused
// at once as before, cannot crowd out the answers to requests already
// served: with one shared limit, a relay on a chain between two dense
// parts of a mesh had its queue toward its one next hop full of
// registrations and lookups through a round of renewals, and dropped the
// answers and receipts coming back (h34renewtrace: 2,296 of them on
// clustered 1,000 seed 2), so that the work done to find a record or to
// deliver a Package was lost, and tried again from the start.
func (n *Node) queueLimit(prio int) int {
	if prio > 0 {
		return n.bud.PendingSend
	}
	return n.bud.PendingSend - n.bud.PendingSend/4
}

// outSingle is a Package in one packet, waiting for its ack.
type outSingle struct {
	ep    *endpoint
	res   *Result
	data  []byte // the encoded packet
	pid   uint16
	tries int
	first time.Time // the first transmission
	timer interface{ Stop() bool }
	done  bool
}

const singleTries = 5

// queueSingle sends a Package in one packet with ask, and retries until the
// neighbour acks it. Our nodes ack every asked single; so does a reference
// node (PROTOCOL 11: it acks every packet that asks, after waking us with
// RNS if it has not heard us lately), so a single to it is confirmed too,
// never counted delivered merely for being on the air. A reference node
// keeps no record of singles: one sent again because its ack was lost is
// delivered there twice.
func (n *Node) queueSingle(ep *endpoint, s *packet.Schema, pkg []byte, tmpl *packet.Packet, res *Result, opt *SendOptions) {
	p := *tmpl
	p.Schema, p.PacketID, p.Body = s.ID, n.nextPID(), pkg
	o := &outSingle{ep: ep, res: res, pid: p.PacketID}
	p.Flags = p.Flags.WithEncoded(packet.EncAsk)
	if n.congested() {
		p.Flags |= packet.FlagThrottle
	}
	data, err := p.AppendSealed(nil)
	if err != nil {
		n.finishSend(res, err)
		return
	}
	o.data = data
	if ep.singles == nil {
		ep.singles = map[uint16]*outSingle{}
	}
	if old := ep.singles[o.pid]; old != nil {
		old.finish(ErrAbandoned) // its id came round again
	}
	ep.singles[o.pid] = o
	ep.waiting++
	if !opt.Deadline.IsZero() {
		n.clk.AfterFunc(opt.Deadline.Sub(n.clk.Now()), func() {
			if o.tries == 0 {
				o.finish(ErrThrottled)
			}
		})
	}
	o.transmit() // a neighbour that may sleep is woken first (endpoint.next)
}

func (o *outSingle) transmit() {
	if o.done {
		return
	}
	ep := o.ep
	o.tries++
	if o.tries > 1 {
		ep.n.stats.Retransmits++
	} else {
		o.first = ep.n.clk.Now()
	}
	ep.frames = append(ep.frames, outFrame{dst: ep.key.Addr, data: o.data, ep: ep, sent: o.sent})
	ep.kick()
}

func (o *outSingle) sent(err error) {
	if o.done {
		return
	}
	n := o.ep.n
	// ErrNoAck: on the air, unheard even after the MAC's own retries, each
	// behind a doubled contention window. It is waited out like any lost
	// frame (below: a backoff that doubles per try, jittered), not sent
	// again at once: a neighbour that many hidden stations talk to (a
	// gateway) misses frames because they collide, and a resend a frame's
	// airtime later from each of them collides again — on the 802.11 DCF
	// medium, 170 neighbours of one gateway kept its air 96 % collisions.
	if err != nil && !errors.Is(err, link.ErrNoAck) {
		var ce *CodeError
		switch {
		case errors.As(err, &ce):
			o.finish(err) // the node gave up on the peer (asleep, closed)
		case (errors.Is(err, link.ErrBusy) || errors.Is(err, link.ErrDutyCycle)) && !o.spent():
			// Not on the air yet: try again shortly.
			o.timer = n.clk.AfterFunc(o.ep.tl.airMTU, o.transmit)
		default:
			o.finish(ErrLink)
		}
		return
	}
	base := o.ep.fbTimeout()
	if !o.ep.peerFull() {
		base += o.ep.referenceSlack()
	}
	// On a slow half-duplex link the ack has the air to itself: a frame of
	// ours sent while it comes back would lose both (see outSeq.next).
	o.ep.tl.hush(o, base)
	// Jittered: two hidden neighbours that sent at the same instant (both
	// answering one broadcast, say) would otherwise collide at every retry.
	wait := base << min(o.tries-1, 4)
	if o.ep.peerFull() {
		wait = min(wait, o.ep.tl.giveUp/8)
	}
	wait += time.Duration(n.rng.Int64N(int64(wait + o.ep.tl.airMTU)))
	// And behind the hop's own hold (endpoint.hopLost): the other sends
	// to it are failing too. (The later of the two alone was not enough:
	// hubs seed 10 collapsed as on main.) But a send to one of our peers
	// keeps a last try just before giveUp, if the hold is over by then: a
	// send into an outage shorter than giveUp still gets a try after it
	// (TestOutageShorterThanGiveUp).
	if h := o.ep.lostUntil.Sub(n.clk.Now()); h > 0 {
		wait += h
		if o.ep.peerFull() {
			if last := o.first.Add(o.ep.tl.giveUp).Sub(n.clk.Now()) - o.ep.tl.airMTU; wait > last {
				wait = max(last, h)
			}
		}
	}
	o.timer = n.clk.AfterFunc(wait, func() {
		if o.done {
			return
		}
		o.ep.widenRTT() // see outSeq.timeout
		if o.spent() {
			o.finish(ErrAbandoned)
			return
		}
		o.transmit()
	})
}

// spent reports whether the single has had its chances: to one of our
// peers, GiveUp since its first transmission (a burst of loss costs time,
// not the send); to a reference node, singleTries transmissions.
func (o *outSingle) spent() bool {
	if o.ep.peerFull() {
		return o.ep.n.clk.Now().Sub(o.first) >= o.ep.tl.giveUp
	}
	return o.tries >= singleTries
}

// acked is the peer's answer.
func (o *outSingle) acked(err error) {
	o.finish(err)
}

func (o *outSingle) finish(err error) {
	if o.done {
		return
	}
	o.done = true
	o.ep.tl.unhush(o)
	if o.timer != nil {
		o.timer.Stop()
	}
	ep := o.ep
	ep.waiting--
	if ep.singles[o.pid] == o {
		delete(ep.singles, o.pid)
	}
	ep.n.finishSend(o.res, err)
}

// Broadcast sends blob to application app on every neighbour, on the links
// opt.Links names or on all, with a schema common to them (PROTOCOL 4.1).
// It completes when every packet has been transmitted.
func (n *Node) Broadcast(app packet.AppID, blob []byte, opt *SendOptions) *Result {
	if n.closed {
		return failed(ErrClosed)
	}
	links := n.links
	if opt != nil && opt.Links != nil {
		links = make([]*txLink, 0, len(opt.Links))
		for _, i := range opt.Links {
			if i < 0 || i >= len(n.links) {
				return n.fail(ErrNoSchema)
			}
			links = append(links, n.links[i])
		}
	}
	if len(links) == 0 {
		return n.fail(ErrNoSchema)
	}
	// Schemas every chosen link carries.
	common := []uint8{}
	for _, id := range links[0].info.Schemas {
		inAll := true
		for _, t := range links[1:] {
			if !containsSchema(t.info.Schemas, id) {
				inAll = false
			}
		}
		if inAll {
			common = append(common, id)
		}
	}
	pkg := packet.NewPackage(app, blob)
	s, err := chooseSchema(common, func(s *packet.Schema) bool { return broadcastable[s.ID] }, pkg.Len(), 0)
	if err != nil {
		return n.fail(err)
	}
	data := pkg.AppendTo(nil)
	res := newResult()
	var tmpl packet.Packet
	if s.Sequenced() {
		id, ok := n.nextSeqID()
		if !ok {
			return n.fail(ErrBusy)
		}
		tmpl.SeqID = id
	}
	count := sequence.Count(s, len(data))
	left := count * len(links)
	var firstErr error
	done := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = ErrLink
		}
		left--
		if left == 0 {
			n.finishSend(res, firstErr)
		}
	}
	for _, t := range links {
		for i := range count {
			var p packet.Packet
			if s.Sequenced() {
				sequence.Cut(s, data, i, &tmpl, &p)
			} else {
				p = packet.Packet{Schema: s.ID, PacketID: n.nextPID(), Body: data}
			}
			// No asks: a broadcast has no single answerer (PROTOCOL 4.1).
			p.Flags = p.Flags.WithEncoded(packet.EncNone)
			if n.congested() {
				p.Flags |= packet.FlagThrottle
			}
			b, err := p.AppendSealed(nil)
			if err != nil {
				return n.fail(err)
			}
			t.queueBcast(outFrame{dst: link.Broadcast, data: b, sent: done})
		}
		t.lastBcast = n.clk.Now()
	}
	return res
}

func containsSchema(ids []uint8, id uint8) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
