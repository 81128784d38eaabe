package node

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// inSeq is one sequence being reassembled. Chunks are stored as they come,
// in a map, so a sequence that claims 65,536 packets costs nothing until
// packets arrive, and every stored byte counts against the budgets.
type inSeq struct {
	id        uint8
	s         *packet.Schema
	count     int
	chunks    map[int][]byte
	hi        int // highest index received (-1: none)
	bytes     int
	bcast     bool
	lastRx    time.Time
	lastGrow  int // chunks held at the last gap check
	fruitless int
	// gapAlarm is the gap timer (armGap), armed again for every chunk:
	// a Timer and a closure for each was 4 % of what a route simulation
	// allocates.
	gapAlarm clock.Alarm
	tmpl     packet.Packet // routed fields, to answer with
	// authed: its first packet came authenticated (hopauth.go), so its
	// hash, which the whole is checked against, is the sender's — or came
	// one hop before we agreed keys with the sender, when the sender was
	// taken for whoever it said it was (as a Package that completed then
	// would have been). A routed one needs the tag: routed traffic is
	// only ever taken from a proven neighbour.
	authed bool
}

// chunkOverhead is what a stored chunk costs beyond its bytes (map entry,
// slice header, allocation rounding), charged to the budgets.
const chunkOverhead = 64

// maxReferenceRtx bounds the retransmission requests sent to a reference
// sender per round: it never answers them (PROTOCOL 11), so they only
// satisfy the wire contract.
const maxReferenceRtx = 8

// receiveChunk stores one packet of a sequence and answers what must be.
func (n *Node) receiveChunk(ep *endpoint, p *packet.Packet, bcast, authed bool, now time.Time) {
	s := p.SchemaOf()
	count := int(p.SeqSize) + 1
	idx := int(p.PacketID)
	ask := p.Flags.Ask() && !bcast
	full := ep.peerFull()
	if len(p.Body) == 0 {
		// No real chunk is empty: an empty ask is a probe for our status;
		// an empty packet without ask is a reference node's stray (it files
		// acks and the like as empty chunks): nothing to keep.
		if ask {
			// Only our nodes probe: the sender speaks our protocol.
			ep.ours = true
			n.answerStatus(ep, p, ep.in[p.SeqID])
		} else {
			n.drop(DropStray)
		}
		return
	}
	if idx >= count && count == 1 {
		// A copy of a sequence's last packet with seq_size 0, as we send
		// to a peer we take for a reference node (refNext): it belongs to
		// the sequence of that id it ends.
		if in := ep.in[p.SeqID]; in != nil && idx == in.count-1 {
			count = in.count
		} else if d, ok := ep.done[p.SeqID]; ok && idx == d.count-1 {
			count = d.count
		}
		p.SeqSize = uint16(count - 1)
	}
	if idx >= count {
		n.drop(DropMalformed)
		return
	}
	if d, ok := ep.done[p.SeqID]; ok && d.count == count && full && now.Sub(d.at) < seqLinger {
		n.drop(DropDuplicate)
		if ask {
			n.answerFinal(ep, p, d.code)
		}
		return
	}
	in := ep.in[p.SeqID]
	if in != nil && (in.count != count || in.s != s) {
		ep.dropIn(p.SeqID) // the id now names another sequence
		in = nil
	}
	if in != nil {
		if old, ok := in.chunks[idx]; ok {
			if bytes.Equal(old, p.Body) {
				n.drop(DropDuplicate)
				if ask {
					n.answerStatus(ep, p, in)
				}
				return
			}
			// Same id, same size, other content: a reference sender reused
			// its seq_id (it sends every unicast sequence as 0). Start over.
			ep.dropIn(p.SeqID)
			in = nil
		}
	}
	if in == nil {
		if (count-1)*s.MaxBody+1 > n.bud.RxPerPeer {
			n.drop(DropBudget)
			if ask || (full && !bcast) {
				n.sendAck(ep.key, p, ErrNoMemory, nil)
			}
			return
		}
		if !n.makeRoomForSequence(ep, now) {
			n.drop(DropBudget)
			return
		}
		in = &inSeq{id: p.SeqID, s: s, count: count, chunks: map[int][]byte{}, hi: -1, bcast: bcast}
		in.gapAlarm.InitFunc(n.clk, func() { n.gap(ep, in) })
		in.tmpl = packet.Packet{TTL: p.TTL, TreeState: p.TreeState, To: p.To, From: p.From}
		if ep.in == nil {
			ep.in = map[uint8]*inSeq{}
		}
		ep.in[p.SeqID] = in
		n.rxSeqs++
	}
	cost := len(p.Body) + chunkOverhead
	if n.rxBytes+cost > n.bud.RxTotal || ep.inBytes+cost > n.bud.RxPerPeer {
		n.drop(DropBudget)
		if ask {
			n.answerStatus(ep, p, in)
		}
		return
	}
	if idx == 0 {
		// The first packet's routed fields are the ones that count: it
		// is the authenticated one between our nodes.
		in.tmpl = packet.Packet{TTL: p.TTL, TreeState: p.TreeState, To: p.To, From: p.From}
		in.authed = authed || !n.armed(ep) && !s.Routed()
	}
	in.chunks[idx] = bytes.Clone(p.Body)
	in.bytes += cost
	ep.inBytes += cost
	n.rxBytes += cost
	if n.rxBytes > n.stats.PeakRxBytes {
		n.stats.PeakRxBytes = n.rxBytes
	}
	in.hi = max(in.hi, idx)
	in.lastRx = now
	if len(in.chunks) == in.count {
		n.completeIn(ep, in, p, full, ask)
		return
	}
	if ask {
		n.answerStatus(ep, p, in)
	}
	n.armGap(ep, in)
}

// makeRoomForSequence enforces the limits on open reassemblies: a stale one
// (quiet for a gap round) of this neighbour, or failing that of anyone, is
// dropped for the newcomer; with none stale the newcomer is refused.
func (n *Node) makeRoomForSequence(ep *endpoint, now time.Time) bool {
	if len(ep.in) < n.bud.RxPerPeerSq && n.rxSeqs < n.bud.RxSequences {
		return true
	}
	stale := n.gapTimeout(ep)
	pick := func(e *endpoint) bool {
		var victim *inSeq
		for _, in := range e.in {
			if now.Sub(in.lastRx) >= stale && (victim == nil || in.lastRx.Before(victim.lastRx)) {
				victim = in
			}
		}
		if victim != nil {
			e.dropIn(victim.id)
			return true
		}
		return false
	}
	if len(ep.in) >= n.bud.RxPerPeerSq {
		return pick(ep) && n.rxSeqs < n.bud.RxSequences
	}
	for _, e := range n.sortedEndpoints() {
		if pick(e) {
			return true
		}
	}
	return false
}

// completeIn assembles, verifies and delivers a finished sequence.
func (n *Node) completeIn(ep *endpoint, in *inSeq, p *packet.Packet, full, ask bool) {
	total := 0
	for _, c := range in.chunks {
		total += len(c)
	}
	buf := make([]byte, 0, total)
	for i := range in.count {
		buf = append(buf, in.chunks[i]...)
	}
	ep.dropIn(in.id)
	var code uint8
	var pkg packet.Package
	switch {
	case pkg.UnmarshalBinary(buf) != nil:
		n.drop(DropMalformed)
		code = CodeOf(ErrBadHash)
	case pkg.Verify() != nil:
		n.drop(DropHash)
		code = CodeOf(ErrBadHash)
	case !in.authed && !in.bcast && n.armed(ep):
		// Nothing vouches for its hash.
		n.stats.Hop.Unauthenticated++
		code = CodeOf(ErrUnauthenticated)
	default:
		q := *p
		q.TTL, q.TreeState, q.To, q.From = in.tmpl.TTL, in.tmpl.TreeState, in.tmpl.To, in.tmpl.From
		if err := n.deliver(ep.key, &q, &pkg, in.bcast, in.lastRx); err != nil {
			code = CodeOf(err)
		}
	}
	if in.bcast {
		return
	}
	if ep.done == nil {
		ep.done = map[uint8]doneSeq{}
	}
	ep.done[in.id] = doneSeq{count: in.count, code: code, at: in.lastRx}
	n.clk.AfterFunc(seqLinger, func() {
		if d, ok := ep.done[in.id]; ok && n.clk.Now().Sub(d.at) >= seqLinger {
			delete(ep.done, in.id)
		}
	})
	// Our peers hear the outcome at once; a reference sender gets its ack.
	if full || ask {
		n.answerFinal(ep, p, code)
	}
}

// answerFinal tells the sender a sequence is complete (or why it failed).
func (n *Node) answerFinal(ep *endpoint, p *packet.Packet, code uint8) {
	if code != 0 {
		n.sendAck(ep.key, p, ErrorForCode(code), nil)
		return
	}
	if !ep.peerFull() {
		n.sendAck(ep.key, p, nil, nil)
		return
	}
	n.sendAck(ep.key, p, nil, []byte{stComplete})
}

// answerStatus answers an ask (or a probe) about sequence in.
func (n *Node) answerStatus(ep *endpoint, p *packet.Packet, in *inSeq) {
	if !ep.peerFull() {
		if in != nil {
			n.sendAck(ep.key, p, nil, nil) // the wire's plain ack
		}
		return
	}
	if in == nil {
		if d, ok := ep.done[p.SeqID]; ok && d.count == int(p.SeqSize)+1 {
			n.answerFinal(ep, p, d.code)
			return
		}
		n.sendAck(ep.key, p, nil, []byte{stUnknown})
		return
	}
	n.sendAck(ep.key, p, nil, in.status(roomy(p.SchemaOf(), ep.room()).MaxBody))
}

// status encodes what in holds: state ‖ hi ‖ base ‖ bitmap (see outseq.go).
func (in *inSeq) status(maxBody int) []byte {
	if in.hi < 0 {
		return []byte{stEmpty}
	}
	base := 0
	for base <= in.hi {
		if _, ok := in.chunks[base]; !ok {
			break
		}
		base++
	}
	b := make([]byte, 5, min(maxBody, 5+(in.hi-base+7)/8))
	b[0] = stProgress
	binary.BigEndian.PutUint16(b[1:], uint16(in.hi))
	binary.BigEndian.PutUint16(b[3:], uint16(base))
	for j := 0; base+1+j <= in.hi && len(b) < maxBody; j += 8 {
		var by byte
		for k := range 8 {
			i := base + 1 + j + k
			if i > in.hi {
				break
			}
			if _, ok := in.chunks[i]; !ok {
				by |= 0x80 >> k
			}
		}
		b = append(b, by)
	}
	return b
}

// gapTimeout is how long a reassembly waits for the sender before acting:
// longer than the sender's own feedback timeout, so the sender (who knows
// what it sent) drives recovery and the receiver only steps in when it
// falls silent.
func (n *Node) gapTimeout(ep *endpoint) time.Duration {
	return 3*ep.fbTimeout() + 2*ep.tl.airMTU
}

// armGap (re)starts the gap timer of a reassembly.
func (n *Node) armGap(ep *endpoint, in *inSeq) {
	d := n.gapTimeout(ep) << min(in.fruitless, 5)
	if ep.peerFull() {
		// Our sender gives up after GiveUp without progress; keep asking
		// often enough to be there when the air clears.
		d = min(d, ep.tl.giveUp/4)
	}
	in.gapAlarm.Arm(d) // replaces any pending arming
}

// gap: the sender has gone quiet with the sequence incomplete.
func (n *Node) gap(ep *endpoint, in *inSeq) {
	if ep.in[in.id] != in {
		return
	}
	if len(in.chunks) == in.lastGrow {
		in.fruitless++
	} else {
		in.fruitless = 0
	}
	in.lastGrow = len(in.chunks)
	full := ep.peerFull()
	switch {
	case in.bcast,
		// Our sender: it gives up after GiveUp without progress; nothing
		// for twice that, and it has.
		full && n.clk.Now().Sub(in.lastRx) >= 2*ep.tl.giveUp,
		// A reference sender never answers: two rounds.
		!full && in.fruitless >= 2:
		ep.dropIn(in.id)
		return
	}
	if !full && (in.fruitless > 1 || n.peers.ByEndpoint(ep.key) == nil) {
		// Strangers get no answers; a reference peer gets one round of
		// requests (it never answers them, PROTOCOL 11).
		n.armGap(ep, in)
		return
	}
	q := packet.Packet{Schema: in.s.ID, SeqID: in.id, SeqSize: uint16(in.count - 1), TTL: in.tmpl.TTL, TreeState: in.tmpl.TreeState, To: in.tmpl.To, From: in.tmpl.From}
	if full {
		// Unasked status: the sender learns what is missing even if its
		// ask was lost.
		q.PacketID = uint16(in.hi)
		q.Flags = q.Flags.WithEncoded(packet.EncAsk)
		n.answerStatus(ep, &q, in)
	} else {
		// The wire's retransmission requests, one per missing index.
		sent := 0
		for i := 0; i < in.count && sent < maxReferenceRtx; i++ {
			if _, ok := in.chunks[i]; ok {
				continue
			}
			r := q
			r.PacketID = uint16(i)
			r.Flags = r.Flags.WithEncoded(packet.EncRtx)
			ep.quarantine(in.id, true) // it files the request as a chunk of in.id
			if b, err := r.AppendSealed(nil); err == nil {
				n.links[ep.key.Link].queueCtrl(outFrame{dst: ep.key.Addr, data: b, ep: ep})
			}
			sent++
		}
	}
	n.armGap(ep, in)
}

// dropIn frees a reassembly.
func (ep *endpoint) dropIn(id uint8) {
	in := ep.in[id]
	if in == nil {
		return
	}
	in.gapAlarm.Stop()
	n := ep.n
	n.rxBytes -= in.bytes
	ep.inBytes -= in.bytes
	n.rxSeqs--
	in.chunks = nil
	delete(ep.in, id)
}
