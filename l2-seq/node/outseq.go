package node

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/sequence"
)

// outSeq sends one Package as a sequence to one neighbour and sees it
// through to the end.
//
// The sender streams the packets in order, with ask on the first, middle and
// last (PROTOCOL 4). After each ask it pauses until the receiver answers or
// a feedback timeout passes: on a half-duplex radio (LoRa) an answer sent
// while we transmit would be lost, and the pause costs one short airtime.
// Our receivers answer with a status ack (which packets are missing, as a
// bitmap); the sender queues the missing packets again, marks the last of
// each such burst with ask, and repeats until the receiver reports the
// Package complete. A timeout sends a probe (an empty-bodied ask, which a
// receiver never mistakes for data: every real chunk has at least one byte)
// and backs off; after maxFruitless rounds without progress the send fails
// with ErrAbandoned. Everything is measured in airtimes of the link
// (feedback delay is estimated from the answers themselves), not seconds.
// Toward a reference receiver, which has no status to give, it works
// otherwise: every packet asks and is sent until acked (refseq.go).
type outSeq struct {
	ep       *endpoint
	res      *Result
	s        *packet.Schema
	pkg      []byte
	tmpl     packet.Packet
	count    int
	room     int  // bytes the first packet keeps free (the hop trailer)
	gen      int  // restarts so far (restart): link reports of earlier ones are stale
	full     bool // the receiver speaks our status acks and probes
	prio     int
	deadline time.Time

	started, finished bool
	seqID             uint8
	// liveID: seqID is the node's, held until this send of it ends
	// (Node.releaseSeqID).
	liveID bool

	acked  bitset // confirmed received
	queued bitset // in rq
	rq     []int  // retransmissions, in order
	rqLive int    // entries of rq not confirmed since queued
	fresh  int    // next never-sent index
	nAcked int

	sentBurst []uint16 // the burst in which each packet was last sent
	burst     uint16

	waiting  bool // an ask is out: send nothing more until the answer
	lastAsk  int  // the packet_id our latest ask (or probe) carried
	askOut   bool // an ask frame is with the link, not yet on the air
	needAsk  bool // the next frame must carry ask (an ask frame was refused by the link)
	askAt    time.Time
	timedOut bool      // the current wait already timed out (no RTT sample then)
	silent   int       // feedback timeouts in a row with no answer at all (reference receivers)
	progress time.Time // when a packet was last newly confirmed (or the start)
	timer    clock.Timer

	deadlineTmr clock.Timer

	ref refState // toward a reference receiver (refseq.go)
}

// A sequence to one of our receivers is abandoned only when it has made no
// progress (no packet newly confirmed) for Config.GiveUp: neither silence
// nor answers that bring nothing end it while there is time, so a burst of
// loss, however long its frames go unanswered, costs time and no transfer
// [ours; it used to count rounds]. Toward a reference receiver, and for a
// reference sender's reassembly, maxSilent rounds still count.
const maxSilent = 12

// DefaultGiveUp is Config.GiveUp's default.
const DefaultGiveUp = 30 * time.Second

type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) has(i int) bool { return b[i>>6]&(1<<(i&63)) != 0 }
func (b bitset) set(i int)      { b[i>>6] |= 1 << (i & 63) }
func (b bitset) clear(i int)    { b[i>>6] &^= 1 << (i & 63) }

// start gives the sequence its seq_id and state; false if no seq_id is free.
func (o *outSeq) start() bool {
	var id uint8
	var ok bool
	if o.full {
		id, ok = o.ep.n.nextSeqID()
		if ok {
			o.ep.n.seqLive[id] = true
			o.liveID = true
		}
	} else {
		id, ok = o.ep.refSeqID()
	}
	if !ok {
		// All 256 ids were used within the linger time: try again soon,
		// once. Every kick that found none scheduled one more, and each
		// of those, finding none either, another: around a gateway that
		// sent to 159 neighbours at once they took a simulation of 300
		// nodes past 3 GB (hundreds of MB of pending timers).
		if !o.ep.idWait {
			o.ep.idWait = true
			o.ep.n.clk.AfterFunc(time.Second, func() {
				o.ep.idWait = false
				o.ep.kick()
			})
		}
		return false
	}
	if !o.full && o.ep.peerFull() {
		// Queued when the neighbour was a stranger, it has since said it
		// is one of ours.
		o.full = true
	}
	if o.full {
		// The room is the receiver's as it is now, not as it was when
		// the send was queued (a neighbour not yet known as a peer gets
		// none, and a first packet without room goes untagged, which a
		// receiver that has our frames authenticated refuses).
		o.room = o.roomNow()
		o.count = sequence.CountRoom(o.s, len(o.pkg), o.room)
	}
	o.started = true
	o.progress = o.ep.n.clk.Now()
	o.seqID = id
	o.tmpl.SeqID = id // the routed fields, if any, were set at send time
	o.acked = newBitset(o.count)
	o.queued = newBitset(o.count)
	if o.full {
		o.sentBurst = make([]uint16, o.count)
	} else {
		o.ref.init(o.count, o.ep.n.clk.Now())
	}
	clock.Stop(&o.deadlineTmr)
	return true
}

// ready reports whether next would send a packet now (without building it).
func (o *outSeq) ready() bool {
	switch {
	case o.finished:
		return false
	case !o.started:
		return true
	case !o.full:
		return o.refReady()
	}
	return !o.waiting && (len(o.rq) > 0 || o.fresh < o.count)
}

// next builds the next packet into buf.
func (o *outSeq) next(buf []byte) (outFrame, bool) {
	if o.finished {
		return outFrame{}, false
	}
	if o.started && o.room == 0 && !o.acked.has(0) && (!o.full || !o.waiting && o.firstNext()) && o.ep.pf.hop.send != nil && o.roomNow() > 0 {
		// The first packet, cut without room for the hop trailer (the
		// neighbour was a stranger when the sequence started), is to go
		// again to a neighbour we now authenticate to: untagged, it would
		// be refused (a sequence's first packet carries the hash the
		// whole is checked against) until the send was abandoned. The
		// sequence starts again with room, under a new seq_id.
		o.ep.n.stats.Hop.Recut++
		if !o.restart() {
			return outFrame{}, false
		}
	}
	if !o.full {
		return o.refNext(buf)
	}
	if o.waiting {
		return outFrame{}, false
	}
	i, ask := -1, false
	for len(o.rq) > 0 {
		j := o.rq[0]
		o.rq = o.rq[1:]
		o.queued.clear(j)
		if !o.acked.has(j) {
			o.rqLive--
			i = j
			// The last packet of a burst of retransmissions asks for status.
			ask = o.fresh >= o.count && !o.moreQueued()
			o.ep.n.stats.Retransmits++
			break
		}
	}
	if i < 0 {
		if o.fresh >= o.count {
			// Nothing left to send, and no ask out (the queue's last entries
			// were confirmed meanwhile): wait, and probe if nothing comes.
			o.waiting = true
			if o.timer == nil && !o.askOut {
				o.askAt = o.ep.n.clk.Now()
				o.timedOut = true
				o.armTimer(o.feedbackTimeout())
			}
			return outFrame{}, false
		}
		i = o.fresh
		o.fresh++
		ask = o.asks(i)
	}
	if o.needAsk {
		ask, o.needAsk = true, false
	}
	var p packet.Packet
	sequence.CutRoom(o.s, o.pkg, i, o.room, &o.tmpl, &p)
	enc := packet.EncNone
	if ask {
		enc = packet.EncAsk
	}
	p.Flags = p.Flags.WithEncoded(enc)
	b, ok := o.encode(&p, buf)
	if !ok {
		return outFrame{}, false
	}
	o.sentBurst[i] = o.burst
	// After the last packet (of the sequence, or of a burst of
	// retransmissions) the sender waits for the answer. After the first and
	// middle asks it streams on, unless the link is slow and half-duplex:
	// there an answer sent while we transmit would be lost, and the pause
	// costs one short airtime; on a fast link it would cost a round trip
	// per ask, and the answer finds the air anyway (carrier sense).
	wait := ask && (i == o.count-1 || o.fresh >= o.count || o.ep.tl.slow())
	if ask {
		o.waiting = wait
		o.askOut = true
		o.timedOut = false
		o.lastAsk = i
		// When it left the radio is known only once the link says so
		// (sent): an answer may come before that (the link reports a
		// frame done after its MAC ack, which a radio retries while the
		// neighbour, which heard the first copy, answers already).
		o.askAt = time.Time{}
		o.burst++
		// On a slow half-duplex link nothing may follow the ask onto the
		// air until its answer has had its chance: hush from now (sent
		// re-arms it from the end of the ask's transmission).
		o.ep.tl.hush(o, o.ep.tl.airMTU+o.feedbackTimeout())
	}
	idx, gen := i, o.gen
	return outFrame{dst: o.ep.key.Addr, data: b, ep: o.ep, sent: func(err error) {
		if gen == o.gen {
			o.sent(idx, ask, err)
		}
	}}, true
}

// restart forgets what was sent of the sequence and starts it again (a new
// seq_id, the room as it is now). What the link still reports of frames
// sent before is ignored (gen).
func (o *outSeq) restart() bool {
	o.gen++
	clock.Stop(&o.timer)
	o.ep.tl.unhush(o)
	o.fresh, o.rq, o.rqLive, o.nAcked, o.burst = 0, nil, 0, 0, 0
	o.askOut, o.needAsk, o.timedOut, o.waiting, o.started = false, false, false, false, false
	o.silent = 0
	o.releaseID(false) // the receiver may hold part of it under the old id
	return o.start()
}

// releaseID gives the node's seq_id back when this send of it ends.
func (o *outSeq) releaseID(confirmed bool) {
	if o.liveID {
		o.liveID = false
		o.ep.n.releaseSeqID(o.seqID, confirmed, o.ep.tl.giveUp)
	}
}

// roomNow is the room the first packet keeps for the hop trailer if cut
// now: the receiver's (endpoint.room), when the Package still fits the
// schema with it; never less than it was (a sequence cut with room
// stays so).
func (o *outSeq) roomNow() int {
	r := o.ep.room()
	if r <= o.room || o.s.MaxPackage() < len(o.pkg)+r {
		return o.room
	}
	return r
}

// firstNext reports whether the next packet to go is the first: first in
// the retransmission queue (ahead of any confirmed since), or the next
// fresh one with nothing queued.
func (o *outSeq) firstNext() bool {
	for _, j := range o.rq {
		if !o.acked.has(j) {
			return j == 0
		}
	}
	return o.fresh == 0
}

// shortSeq: a sequence of fewer packets asks on its last only.
const shortSeq = 16

// asks reports whether fresh packet i asks for status: the last always;
// the first and the middle (the wire's pattern) only in a sequence of
// shortSeq packets or more [ours]: in a short one their answers cost more
// air than they tell (three status acks around five frames of 1 KiB), and
// our receivers take any pattern of asks.
func (o *outSeq) asks(i int) bool {
	return i == o.count-1 || (o.count >= shortSeq && sequence.Asks(i, o.count))
}

// encode appends packet p of the sequence to buf, with the throttle flag
// when we are congested.
func (o *outSeq) encode(p *packet.Packet, buf []byte) ([]byte, bool) {
	if o.ep.n.congested() {
		p.Flags |= packet.FlagThrottle
	}
	b, err := p.AppendTo(buf)
	if err != nil { // cannot happen: sizes were checked at send time
		o.finish(err)
		return nil, false
	}
	return b, true
}

// moreQueued reports whether rq still holds a packet not confirmed.
func (o *outSeq) moreQueued() bool { return o.rqLive > 0 }

// confirm marks packet i received.
func (o *outSeq) confirm(i int) bool {
	if i >= o.count || o.acked.has(i) {
		return false
	}
	o.acked.set(i)
	o.nAcked++
	if o.queued.has(i) {
		o.rqLive--
	}
	return true
}

// sent is the link finishing packet i.
func (o *outSeq) sent(i int, ask bool, err error) {
	if o.finished {
		return
	}
	if ask {
		o.askOut = false
	}
	if !o.linkDone(i, err) {
		if ask && !o.finished {
			// Not on the air: its ask goes with the next packet.
			o.waiting = false
			o.needAsk = true
		}
		return
	}
	if ask {
		o.askAt = o.ep.n.clk.Now()
		o.armTimer(o.feedbackTimeout())
		o.ep.tl.hush(o, o.feedbackTimeout())
	}
}

// linkDone handles what the link said of packet i and reports whether it
// went on the air: a refusal ends the send (ErrLink, or the node's own
// reason: the peer never woke, the node closed); a full queue or an
// exhausted duty cycle puts the packet first in line again.
func (o *outSeq) linkDone(i int, err error) bool {
	if err == nil || errors.Is(err, link.ErrNoAck) {
		// ErrNoAck: on the air, unheard; the receiver's status (or the
		// feedback timeout) asks for it again, as for any loss.
		return true
	}
	if !errors.Is(err, link.ErrBusy) && !errors.Is(err, link.ErrDutyCycle) {
		var ce *CodeError
		if !errors.As(err, &ce) {
			err = ErrLink
		}
		o.finish(err)
		return false
	}
	if !o.acked.has(i) && !o.queued.has(i) {
		o.rq = append([]int{i}, o.rq...)
		o.queued.set(i)
		o.rqLive++
	}
	return false
}

// referenceSlack is added to the feedback timeout for a reference
// receiver: MicroPython on an ESP32 takes milliseconds to tens of
// milliseconds to answer (a pass of its loop, a garbage collection, an RNS
// to us first when it has not heard our beacon lately) where our nodes take
// microseconds. Until an answer was measured, 50 ms; then the estimate
// holds most of it (a sequence to a reference node samples every packet),
// and 10 ms covers the rest.
func (ep *endpoint) referenceSlack() time.Duration {
	if ep.rttOK {
		return 10 * time.Millisecond
	}
	return 50 * time.Millisecond
}

// feedbackTimeout is how long to wait for the answer to an ask.
func (o *outSeq) feedbackTimeout() time.Duration {
	d := o.ep.fbTimeout()
	if !o.full {
		d += o.ep.referenceSlack()
	}
	return d
}

func (o *outSeq) armTimer(d time.Duration) {
	clock.Stop(&o.timer)
	o.timer = o.ep.n.clk.AfterFunc(d, o.timeout)
}

// timeout: no answer to the last ask.
func (o *outSeq) timeout() {
	o.timer = nil
	if o.finished || !o.waiting {
		return
	}
	o.ep.tl.unhush(o)
	o.timedOut = true
	o.silent++
	o.ep.widenRTT()
	if o.givenUp() {
		return
	}
	// Probe: an empty ask on the last index asks for the receiver's status.
	n := o.ep.n
	p := packet.Packet{Schema: o.s.ID, PacketID: uint16(o.count - 1), SeqID: o.seqID, SeqSize: uint16(o.count - 1)}
	o.lastAsk = o.count - 1
	p.Flags = p.Flags.WithEncoded(packet.EncAsk)
	if n.congested() {
		p.Flags |= packet.FlagThrottle
	}
	b, _ := p.AppendSealed(nil)
	backoff := o.ep.fbTimeout() // widened above: it doubles with each silent round
	backoff += time.Duration(n.rng.Int64N(int64(backoff/2 + o.ep.tl.airMTU)))
	o.ep.tl.queueCtrl(outFrame{dst: o.ep.key.Addr, data: b, ep: o.ep, sent: func(err error) {
		if o.finished || !o.waiting {
			return
		}
		o.askAt = n.clk.Now()
		o.armTimer(backoff)
		o.ep.tl.hush(o, backoff)
	}})
}

// onAck handles an ack (or the peer's error report) for this sequence.
func (o *outSeq) onAck(p *packet.Packet) {
	if o.finished {
		return
	}
	n := o.ep.n
	if p.Flags.Error() {
		code := uint8(0)
		if len(p.Body) > 0 {
			code = p.Body[0]
		}
		o.finish(&RemoteError{Err: ErrorForCode(code), From: o.ep.key.Addr.String()})
		return
	}
	if !o.full {
		o.refAck(p)
		return
	}
	// The answer to our latest ask (it carries the ask's packet_id), or a
	// late one to an earlier ask, which tells nothing of what was sent
	// since: packets sent after that ask are not lost for being missing
	// from it, and the time it took is no round trip.
	current := int(p.PacketID) == o.lastAsk
	if o.waiting && !o.timedOut && current && !o.askAt.IsZero() {
		// (An answer before the link said the ask was sent is no
		// round trip: unknown, not the time since the zero time, which
		// overflowed the estimate into a large negative one, and every
		// later ask then timed out at once.)
		o.ep.sampleRTT(n.clk.Now().Sub(o.askAt))
	}
	wasWaiting := o.waiting && current
	if len(p.Body) == 0 {
		// A plain ack (from a receiver that takes us for a reference
		// node): packet p.PacketID arrived, and nothing more is known.
		o.confirm(int(p.PacketID))
		o.resume()
		return
	}
	progress := o.applyStatus(p.Body, wasWaiting)
	if o.finished {
		return
	}
	o.silent = 0
	if progress {
		o.progress = n.clk.Now()
	} else if o.givenUp() {
		return
	}
	o.resume()
}

// givenUp ends the send with ErrAbandoned, reporting true, when it has
// made no progress for the node's GiveUp.
func (o *outSeq) givenUp() bool {
	n := o.ep.n
	if n.clk.Now().Sub(o.progress) < o.ep.tl.giveUp {
		return false
	}
	n.log.Debug("sequence abandoned", "peer", o.ep.key.Addr, "confirmed", o.nAcked, "of", o.count, "silent", o.silent)
	o.finish(ErrAbandoned)
	return true
}

// resume ends a wait and lets the sender go on (and the link talk). With nothing left to send
// and the Package not confirmed (a stale or truncated status), it keeps
// waiting instead, with the timer armed, so that a probe follows: a
// sequence is never left with neither a frame to send nor a timer.
func (o *outSeq) resume() {
	o.ep.tl.unhush(o)
	if o.nAcked == o.count && o.full {
		o.finish(nil)
		return
	}
	if len(o.rq) > 0 || o.fresh < o.count {
		o.waiting = false
		o.timedOut = false
		clock.Stop(&o.timer)
		o.ep.kick()
		return
	}
	o.waiting = true
	if o.timer == nil && !o.askOut {
		o.askAt = o.ep.n.clk.Now()
		o.timedOut = true // no RTT sample from this wait
		o.armTimer(o.ep.fbTimeout())
	}
}

// Status ack body [ours]: state ‖ hi (u16) ‖ base (u16) ‖ bitmap. hi is
// the highest index received; base the first missing one; bit j of the
// bitmap (most significant bit of byte 0 first) set means base+1+j is
// missing too, clear means received.
const (
	stProgress = 0
	stComplete = 1
	stUnknown  = 2 // no such sequence here
	stEmpty    = 3 // known, nothing received yet
)

// applyStatus folds a status into what is known and queues what is missing.
// answered says the status answers our latest ask, so every packet sent
// before it and missing is lost.
func (o *outSeq) applyStatus(b []byte, answered bool) (progress bool) {
	switch b[0] {
	case stComplete:
		for i := range o.count {
			o.confirm(i)
		}
		o.finish(nil)
		return true
	case stUnknown, stEmpty:
		// The receiver has nothing (it restarted, or freed the sequence):
		// everything sent so far goes again, what it confirmed before too,
		// gone with the reassembly (counting it still held would end the
		// send confirmed with the receiver missing those packets).
		for i := 0; i < o.fresh; i++ {
			if o.acked.has(i) {
				o.acked.clear(i)
				o.nAcked--
			}
			o.requeue(i)
		}
		return false
	}
	if len(b) < 5 {
		return false
	}
	hi := int(binary.BigEndian.Uint16(b[1:]))
	base := int(binary.BigEndian.Uint16(b[3:]))
	bm := b[5:]
	if hi >= o.count {
		hi = o.count - 1
	}
	mark := func(i int) {
		if o.confirm(i) {
			progress = true
		}
	}
	for i := 0; i < base && i <= hi; i++ {
		mark(i)
	}
	for j := 0; j < 8*len(bm); j++ {
		i := base + 1 + j
		if i > hi {
			break
		}
		if bm[j>>3]&(0x80>>(j&7)) == 0 {
			mark(i)
		}
	}
	// What the status says the receiver lacks, it lacks, whatever it
	// confirmed before: its reassembly may have gone and begun again (a
	// receiver that took us for a reference node, whose reassemblies it
	// drops after two quiet rounds, had acked packets of the one it
	// dropped). Counting them held would end the send confirmed with
	// packets missing. Statuses come in the order the receiver wrote them.
	lacks := func(i int) {
		if o.unconfirm(i) {
			o.requeue(i) // it had it, and lost it: no ask will bring it back
		} else {
			o.requeueIf(i, answered)
		}
	}
	if base <= hi {
		lacks(base)
	}
	for j := 0; j < 8*len(bm); j++ {
		i := base + 1 + j
		if i > hi {
			break
		}
		if bm[j>>3]&(0x80>>(j&7)) != 0 {
			lacks(i)
		}
	}
	for i := hi + 1; i < o.fresh; i++ {
		if o.unconfirm(i) {
			o.requeue(i)
		}
	}
	// Sent before the ask and above the highest the receiver saw: lost.
	if answered {
		for i := hi + 1; i < o.fresh; i++ {
			o.requeueIf(i, true)
		}
	}
	return progress
}

// unconfirm takes back packet i's confirmation: the receiver says it does
// not hold it. It reports whether i was confirmed.
func (o *outSeq) unconfirm(i int) bool {
	if i >= o.count || !o.acked.has(i) {
		return false
	}
	o.acked.clear(i)
	o.nAcked--
	return true
}

// requeueIf queues i again if it was lost: any packet sent before the ask
// just answered, or (for a status that arrived unasked) one sent in an
// earlier burst.
func (o *outSeq) requeueIf(i int, answered bool) {
	if i >= o.fresh {
		return
	}
	if answered || int(o.sentBurst[i])+1 < int(o.burst) {
		o.requeue(i)
	}
}

func (o *outSeq) requeue(i int) {
	if i >= o.count || o.acked.has(i) || o.queued.has(i) {
		return
	}
	o.queued.set(i)
	o.rq = append(o.rq, i)
	o.rqLive++
}

// onRtx answers a wire-format retransmission request: send packet i again.
// (A reference node's requests are never answered: receiveRtx drops them.)
func (o *outSeq) onRtx(i int) {
	if i >= o.count || o.finished {
		return
	}
	o.requeue(i)
	if !o.waiting {
		o.ep.kick()
	}
}

// finish ends the send and frees its Package: nothing is kept for late
// requests (our receivers confirm a Package before we let go of it, and a
// reference receiver's requests are never answered, PROTOCOL 11).
func (o *outSeq) finish(err error) {
	if o.finished {
		return
	}
	o.finished = true
	o.ep.tl.unhush(o)
	clock.Stop(&o.timer)
	clock.Stop(&o.deadlineTmr)
	n := o.ep.n
	o.ep.waiting--
	if !o.full && o.started {
		o.refFinish(err)
	}
	o.releaseID(err == nil)
	n.finishSend(o.res, err)
	n.cache.remove(o)
	o.rq = nil
	o.ep.kick()
}
