package node

import (
	"errors"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/sequence"
)

// Sending a sequence to a reference receiver (PROTOCOL 11) [ours].
//
// A reference node acks every packet that carries ask, with an empty body,
// and that is all it says: it sends no status, answers no retransmission
// request, and its own requests come 30 s late or never. Its reassembly is
// fragile too: it is keyed by seq_id alone; it stores our acks and requests
// as empty chunks of their seq_id; and it trims its buffer every time the
// last packet arrives, so a second copy of the last packet before the
// Package is complete truncates it, and the Package fails its hash there,
// silently, while every packet has been acked. So the sender:
//
//   - asks on every packet, and counts a packet received only when its ack
//     comes: the Package is confirmed when every packet is acked, which is
//     the reference holding them all;
//   - keeps at most refWindow packets unacked, so as not to overrun a board
//     that reads one datagram per pass of its loop from a driver buffer of
//     two frames;
//   - sends the last packet alone, after every other one is acked, so that
//     any copy of it the board gets after the first finds the Package
//     already delivered; copies go with seq_size 0, so that one that comes
//     after the Package was delivered leaves nothing behind (refNext);
//   - takes a packet whose ack does not come within the feedback timeout
//     (or that was overtaken by a later packet's ack: the board answers in
//     order) as lost, and sends it again, waking the board first when it
//     has been quiet (endpoint.next);
//   - never uses seq_id 0 (the reference sends all its unicast sequences as
//     0, and our acks to them leave stray chunks there) nor a seq_id we left
//     stray chunks under lately (quarantine), choosing among the others at
//     random, so that two of our nodes rarely pick one a board holds stray
//     chunks under, or send to one board at once under the same seq_id.
//
// A send that cannot finish so fails with a typed error: ErrPeerAsleep when
// the board stops answering RNS, ErrAbandoned after maxSilent+1 rounds
// without an ack, or refMaxQuiet.

// refWindow is how many packets to a reference receiver may be unacked at
// once: two keep a board busy while one is in the air (its loop reads one
// datagram per pass), and two full frames is what the MicroPython ESP-NOW
// driver buffers by default. On a slow half-duplex link, one: its ack must
// have the air to itself.
func (o *outSeq) refWindow() int {
	if o.ep.tl.slow() {
		return 1
	}
	return 2
}

// refMaxQuiet bounds the time a sequence to a reference receiver goes
// without an ack: a board drops a reassembly two minutes after its last
// chunk, and a send still going after that would have its first packets
// acked into a reassembly that is gone.
const (
	refMaxQuiet = 60 * time.Second
	refMaxRTO   = 2 * time.Second
)

// How long a reference node may keep a stray reassembly: one whose request
// timer runs asks for the missing chunks 30 s after the last one came and
// gives up after the fourth round (120 s), plus a margin; one whose timer
// was cancelled stays until the board restarts, which we cannot see, so an
// hour.
const (
	refSlotLife = 130 * time.Second
	refSlotLong = time.Hour
)

// refState is what a sequence to a reference receiver keeps per packet.
type refState struct {
	flight  bitset          // sent, ack awaited
	nFlight int             // packets in flight
	txn     []uint32        // the order in which each packet was last sent
	txCount uint32          // packets sent so far
	txEnd   []time.Duration // when each packet last left the radio, from t0
	tries   []uint8         // times each packet went on the air
	t0      time.Time
	heard   time.Time // the last ack that brought progress (or the start)
}

func (r *refState) init(count int, now time.Time) {
	r.flight = newBitset(count)
	r.txn = make([]uint32, count)
	r.txEnd = make([]time.Duration, count)
	r.tries = make([]uint8, count)
	r.t0, r.heard = now, now
}

// refPick returns the index the next packet would carry, or -1 (nothing may
// go now). It changes nothing.
func (o *outSeq) refPick() int {
	if o.ref.nFlight >= o.refWindow() {
		return -1
	}
	for _, j := range o.rq {
		if !o.acked.has(j) && !o.ref.flight.has(j) {
			return j
		}
	}
	last := o.count - 1
	if o.fresh < last || (o.fresh == last && o.nAcked == last) {
		return o.fresh
	}
	return -1
}

func (o *outSeq) refReady() bool { return o.refPick() >= 0 }

// refNext builds the next packet to a reference receiver into buf.
func (o *outSeq) refNext(buf []byte) (outFrame, bool) {
	i := o.refPick()
	if i < 0 {
		return outFrame{}, false
	}
	if i == o.fresh {
		o.fresh++
	} else {
		// Take i out of the retransmission queue (with the entries before
		// it, which are acked or in flight: nothing to send for them).
		for len(o.rq) > 0 {
			j := o.rq[0]
			o.rq = o.rq[1:]
			o.queued.clear(j)
			if !o.acked.has(j) {
				o.rqLive--
			}
			if j == i {
				break
			}
		}
	}
	n := o.ep.n
	r := &o.ref
	if r.tries[i] > 0 {
		n.stats.Retransmits++
	}
	var p packet.Packet
	sequence.Cut(o.s, o.pkg, i, &o.tmpl, &p)
	p.Flags = p.Flags.WithEncoded(packet.EncAsk)
	if i == o.count-1 && r.tries[i] > 0 {
		// The last packet again: its ack was lost, or it was. If it was,
		// the board still has the reassembly, which keeps its own count
		// and takes the packet whatever its seq_size says. If only the
		// ack was, the board has delivered the Package, and a copy would
		// start a stray reassembly that, from a second copy on, may never
		// go (its request timer cancels itself): with seq_size 0 the copy
		// makes a one-packet sequence instead, complete at once, whose
		// Package fails its hash and is gone.
		p.SeqSize = 0
	}
	b, ok := o.encode(&p, buf)
	if !ok {
		return outFrame{}, false
	}
	if r.tries[i] < 255 {
		r.tries[i]++
	}
	r.flight.set(i)
	r.nFlight++
	r.txCount++
	r.txn[i] = r.txCount
	o.ep.tl.hush(o, o.ep.tl.airMTU+o.feedbackTimeout())
	gen := o.gen
	return outFrame{dst: o.ep.key.Addr, data: b, ep: o.ep, sent: func(err error) {
		if gen == o.gen {
			o.refSent(i, err)
		}
	}}, true
}

// refSent is the link finishing packet i.
func (o *outSeq) refSent(i int, err error) {
	if o.finished {
		return
	}
	r := &o.ref
	if err != nil && r.flight.has(i) {
		r.flight.clear(i)
		r.nFlight--
	}
	if errors.Is(err, link.ErrNoAck) {
		// On the air, and the board's radio never acknowledged it (asleep,
		// or the frame lost every retry): lost. It goes again, behind a
		// wake-up when the board has been quiet (endpoint.next); left out
		// of flight with no timer it would wait for ever.
		r.txEnd[i] = o.ep.n.clk.Now().Sub(r.t0)
		o.requeue(i)
		o.ep.kick()
		return
	}
	if !o.linkDone(i, err) {
		return
	}
	r.txEnd[i] = o.ep.n.clk.Now().Sub(r.t0)
	if o.timer == nil && r.flight.has(i) {
		o.timer = o.ep.n.clk.AfterFunc(o.refRTO(), o.refTimeout)
	}
	o.ep.tl.hush(o, o.feedbackTimeout())
}

// refAck is the reference receiver acking packet p.PacketID.
func (o *outSeq) refAck(p *packet.Packet) {
	i := int(p.PacketID)
	if i >= o.count {
		return
	}
	n := o.ep.n
	r := &o.ref
	if r.flight.has(i) {
		r.flight.clear(i)
		r.nFlight--
		if r.tries[i] == 1 && r.txEnd[i] > 0 {
			// Sent once: the ack answers that transmission (Karn).
			o.ep.sampleRTT(n.clk.Now().Sub(r.t0.Add(r.txEnd[i])))
		}
	}
	progress := o.confirm(i)
	if r.tries[i] == 1 {
		// The board answers in the order it hears: what we sent before i
		// and is still unanswered was lost (or its ack was).
		for j := 0; j < o.count && r.nFlight > 0; j++ {
			if r.flight.has(j) && r.txn[j] < r.txn[i] {
				r.flight.clear(j)
				r.nFlight--
				o.requeue(j)
			}
		}
	}
	if o.nAcked == o.count {
		o.finish(nil)
		return
	}
	if progress {
		o.silent = 0
		r.heard = n.clk.Now()
		clock.Stop(&o.timer)
		if r.nFlight > 0 {
			o.timer = n.clk.AfterFunc(o.refRTO(), o.refTimeout)
		}
	}
	o.ep.tl.unhush(o)
	o.ep.kick()
}

// refRTO is how long an ack may take: the feedback timeout (which counts
// the board's slowness, endpoint.referenceSlack), doubled for each silent round in a
// row, up to eight times, and never over refMaxRTO. The estimate itself is left as it is (widening it,
// as outSeq.timeout does, would stretch the gap timers of what the board
// sends us): a board is slow by a steady amount, and every retry after a
// silence goes behind a wake-up anyway.
func (o *outSeq) refRTO() time.Duration {
	return min(o.feedbackTimeout()<<min(o.silent, 3), refMaxRTO)
}

// refTimeout: no ack within the feedback timeout. Every packet in flight is
// taken as lost and goes again, in the order it went (after a wake-up if
// the board has been quiet).
func (o *outSeq) refTimeout() {
	o.timer = nil
	r := &o.ref
	if o.finished || r.nFlight == 0 {
		return
	}
	o.ep.tl.unhush(o)
	o.silent++
	if o.silent > maxSilent || o.ep.n.clk.Now().Sub(r.heard) > refMaxQuiet {
		o.finish(ErrAbandoned)
		return
	}
	lost := make([]int, 0, r.nFlight)
	for j := 0; j < o.count; j++ {
		if r.flight.has(j) {
			r.flight.clear(j)
			lost = append(lost, j)
		}
	}
	r.nFlight = 0
	slices.SortFunc(lost, func(a, b int) int { return int(r.txn[a]) - int(r.txn[b]) })
	for _, j := range lost {
		o.requeue(j)
	}
	o.ep.kick()
}

// refFinish records the seq_id under which the board may now hold a stray
// reassembly: that of a send that failed once packets had gone.
func (o *outSeq) refFinish(err error) {
	if err != nil && slices.ContainsFunc(o.ref.tries, func(t uint8) bool { return t > 0 }) {
		o.ep.quarantine(o.seqID, true)
	}
}

// quarantine keeps seq_id id from our next sequences to this reference
// neighbour while it may hold stray chunks under it (our acks and requests
// are stored there as empty chunks; a late copy of a packet starts a
// reassembly of its own; a send that failed leaves its chunks), which would
// corrupt a new Package with that id. A stray of one chunk is dropped
// after refSlotLife; one of more may never be: the board's request timer
// is cancelled by every other chunk, and without it the stray stays until
// the board restarts (lasting: refSlotLong).
func (ep *endpoint) quarantine(id uint8, lasting bool) {
	if ep.refSlots == nil {
		ep.refSlots = map[uint8]time.Time{}
	}
	d := refSlotLife
	if lasting {
		d = refSlotLong
	}
	until := ep.n.clk.Now().Add(d)
	if until.After(ep.refSlots[id]) {
		ep.refSlots[id] = until
	}
}

// refSeqID picks the seq_id of a sequence to a reference neighbour: at
// random among 1..255 less those in quarantine; if all are, the one whose
// quarantine ends first (a node that left 255 strays on one board within
// refSlotLong has nothing better).
func (ep *endpoint) refSeqID() (uint8, bool) {
	now := ep.n.clk.Now()
	var free [255]uint8
	k := 0
	oldest := uint8(1)
	for id := 1; id < 256; id++ {
		until, ok := ep.refSlots[uint8(id)]
		if ok && now.Before(until) {
			if until.Before(ep.refSlots[oldest]) {
				oldest = uint8(id)
			}
			continue
		}
		delete(ep.refSlots, uint8(id))
		free[k] = uint8(id)
		k++
	}
	if k == 0 {
		return oldest, true
	}
	return free[ep.n.rng.IntN(k)], true
}
