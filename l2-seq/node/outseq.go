package node

import (
	"encoding/binary"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
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
type outSeq struct {
	ep       *endpoint
	res      *Result
	s        *packet.Schema
	pkg      []byte
	tmpl     packet.Packet
	count    int
	full     bool // the receiver speaks our status acks and probes
	prio     int
	deadline time.Time

	started, finished bool
	seqID             uint8

	acked  bitset // confirmed received
	queued bitset // in rq
	rq     []int  // retransmissions, in order
	fresh  int    // next never-sent index
	nAcked int

	sentBurst []uint16 // the burst in which each packet was last sent
	burst     uint16

	waiting   bool // an ask is out: send nothing more until the answer
	needAsk   bool // the next frame must carry ask (an ask frame was refused by the link)
	askAt     time.Time
	timedOut  bool // the current wait already timed out (no RTT sample then)
	fruitless int
	timer     clock.Timer

	deadlineTmr clock.Timer
	lastTries   int // reference receivers: times the last packet went out
}

// maxFruitless is how many feedback rounds may pass without progress before
// a sequence is abandoned.
const maxFruitless = 8

type bitset []uint64

func newBitset(n int) bitset          { return make(bitset, (n+63)/64) }
func (b bitset) has(i int) bool       { return b[i>>6]&(1<<(i&63)) != 0 }
func (b bitset) set(i int)            { b[i>>6] |= 1 << (i & 63) }
func (b bitset) clear(i int)          { b[i>>6] &^= 1 << (i & 63) }
func (o *outSeq) remaining() int      { return len(o.rq) + o.count - o.fresh }
func (o *outSeq) key() (int, uint8)   { return o.ep.key.Link, o.seqID }
func (o *outSeq) packetLen(i int) int { return min(o.s.MaxBody, len(o.pkg)-i*o.s.MaxBody) }

// start gives the sequence its seq_id and state; false if no seq_id is free.
func (o *outSeq) start() bool {
	id, ok := o.ep.n.nextSeqID()
	if !ok {
		// All 256 ids were used within the linger time: try again soon.
		o.ep.n.clk.AfterFunc(time.Second, o.ep.kick)
		return false
	}
	o.started = true
	o.seqID = id
	o.tmpl.SeqID = id
	o.acked = newBitset(o.count)
	o.queued = newBitset(o.count)
	o.sentBurst = make([]uint16, o.count)
	stopTimer(&o.deadlineTmr)
	return true
}

// next builds the next packet into buf.
func (o *outSeq) next(buf []byte) (outFrame, bool) {
	if o.finished || o.waiting {
		return outFrame{}, false
	}
	i, ask := -1, false
	for len(o.rq) > 0 {
		j := o.rq[0]
		o.rq = o.rq[1:]
		o.queued.clear(j)
		if !o.acked.has(j) {
			i = j
			// The last packet of a burst of retransmissions asks for status.
			ask = len(o.rq) == 0 && o.fresh >= o.count
			o.ep.n.stats.Retransmits++
			break
		}
	}
	if i < 0 {
		if o.fresh >= o.count {
			return outFrame{}, false
		}
		i = o.fresh
		o.fresh++
		ask = sequence.Asks(i, o.count)
	}
	if o.needAsk {
		ask, o.needAsk = true, false
	}
	n := o.ep.n
	var p packet.Packet
	sequence.Cut(o.s, o.pkg, i, &o.tmpl, &p)
	enc := packet.EncNone
	if ask {
		enc = packet.EncAsk
	}
	p.Flags = p.Flags.WithEncoded(enc)
	if n.congested() {
		p.Flags |= packet.FlagThrottle
	}
	b, err := p.AppendTo(buf)
	if err != nil { // cannot happen: sizes were checked at send time
		o.finish(err)
		return outFrame{}, false
	}
	o.sentBurst[i] = o.burst
	if ask {
		o.waiting = true
		o.timedOut = false
		o.burst++
	}
	idx := i
	return outFrame{dst: o.ep.key.Addr, data: b, ep: o.ep, sent: func(err error) { o.sent(idx, ask, err) }}, true
}

// sent is the link finishing packet i.
func (o *outSeq) sent(i int, ask bool, err error) {
	if o.finished {
		return
	}
	if err != nil {
		// Never on the air: queue it again (and its ask).
		if !o.acked.has(i) && !o.queued.has(i) {
			o.rq = append([]int{i}, o.rq...)
			o.queued.set(i)
		}
		if ask {
			o.waiting = false
			o.needAsk = true
		}
		return
	}
	if ask {
		o.askAt = o.ep.n.clk.Now()
		if !o.full && i == o.count-1 {
			o.lastTries++
		}
		o.armTimer(o.ep.fbTimeout())
	}
}

func (o *outSeq) armTimer(d time.Duration) {
	stopTimer(&o.timer)
	o.timer = o.ep.n.clk.AfterFunc(d, o.timeout)
}

// timeout: no answer to the last ask.
func (o *outSeq) timeout() {
	o.timer = nil
	if o.finished || !o.waiting {
		return
	}
	o.timedOut = true
	if !o.full {
		o.referenceTimeout()
		return
	}
	o.fruitless++
	if o.fruitless > maxFruitless {
		o.finish(ErrAbandoned)
		return
	}
	// Probe: an empty ask on the last index asks for the receiver's status.
	n := o.ep.n
	p := packet.Packet{Schema: o.s.ID, PacketID: uint16(o.count - 1), SeqID: o.seqID, SeqSize: uint16(o.count - 1)}
	p.Flags = p.Flags.WithEncoded(packet.EncAsk)
	if n.congested() {
		p.Flags |= packet.FlagThrottle
	}
	b, _ := p.AppendSealed(nil)
	backoff := o.ep.fbTimeout() << min(o.fruitless, 4)
	o.ep.tl.queueCtrl(outFrame{dst: o.ep.key.Addr, data: b, ep: o.ep, sent: func(err error) {
		if o.finished || !o.waiting {
			return
		}
		o.askAt = n.clk.Now()
		o.armTimer(backoff)
	}})
}

// referenceTimeout handles a silent reference receiver: a middle ask just
// moves on; the last packet is sent again a few times, then the send fails.
func (o *outSeq) referenceTimeout() {
	o.waiting = false
	if o.fresh < o.count {
		o.ep.kick()
		return
	}
	if o.lastTries >= 3 {
		o.finish(ErrAbandoned)
		return
	}
	last := o.count - 1
	o.rq = append(o.rq, last)
	o.queued.set(last)
	o.ep.kick()
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
	if o.waiting && !o.timedOut {
		o.ep.sampleRTT(n.clk.Now().Sub(o.askAt))
	}
	wasWaiting := o.waiting
	if len(p.Body) == 0 {
		// A plain ack (a reference receiver): packet p.PacketID arrived.
		if i := int(p.PacketID); i < o.count && !o.acked.has(i) {
			o.acked.set(i)
			o.nAcked++
		}
		if !o.full && int(p.PacketID) == o.count-1 {
			o.finish(nil)
			return
		}
		o.resume()
		return
	}
	progress := o.applyStatus(p.Body, wasWaiting)
	if o.finished {
		return
	}
	if progress {
		o.fruitless = 0
	}
	o.resume()
}

// resume ends a wait and lets the sender go on.
func (o *outSeq) resume() {
	o.waiting = false
	o.timedOut = false
	stopTimer(&o.timer)
	if o.nAcked == o.count && o.full {
		o.finish(nil)
		return
	}
	o.ep.kick()
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
			if !o.acked.has(i) {
				o.acked.set(i)
				o.nAcked++
			}
		}
		o.finish(nil)
		return true
	case stUnknown, stEmpty:
		// The receiver has nothing (it restarted, or freed the sequence):
		// everything sent so far goes again.
		for i := 0; i < o.fresh; i++ {
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
		if i < o.count && !o.acked.has(i) {
			o.acked.set(i)
			o.nAcked++
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
	if base <= hi {
		o.requeueIf(base, answered)
	}
	for j := 0; j < 8*len(bm); j++ {
		i := base + 1 + j
		if i > hi {
			break
		}
		if bm[j>>3]&(0x80>>(j&7)) != 0 {
			o.requeueIf(i, answered)
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
}

// onRtx answers a retransmission request (a reference receiver's, or any
// wire-format rtx): send packet p.PacketID again.
func (o *outSeq) onRtx(i int) {
	if i >= o.count {
		return
	}
	if o.finished {
		// Finished but still cached (a reference receiver asks late).
		o.ep.frames = append(o.ep.frames, o.frameFor(i))
		o.ep.kick()
		return
	}
	o.requeue(i)
	if !o.waiting {
		o.ep.kick()
	}
}

// frameFor builds packet i as a standalone frame (no ask).
func (o *outSeq) frameFor(i int) outFrame {
	var p packet.Packet
	sequence.Cut(o.s, o.pkg, i, &o.tmpl, &p)
	p.Flags = p.Flags.WithEncoded(packet.EncNone)
	b, _ := p.AppendTo(nil)
	o.ep.n.stats.Retransmits++
	return outFrame{dst: o.ep.key.Addr, data: b, ep: o.ep}
}

// finish ends the send. A sequence to a reference receiver stays in the
// send cache for late retransmission requests; ours is freed at once.
func (o *outSeq) finish(err error) {
	if o.finished {
		return
	}
	o.finished = true
	stopTimer(&o.timer)
	stopTimer(&o.deadlineTmr)
	n := o.ep.n
	o.ep.waiting--
	n.finishSend(o.res, err)
	if o.full || !o.started || err != nil {
		n.cache.remove(o)
	} else {
		n.cache.retire(o, n.clk.Now().Add(n.bud.CacheTTL))
	}
	o.rq = nil
	o.ep.kick()
}
