package sim

import (
	"math"
	"net"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// transmission is one frame on the air: a datagram (f set) or an 802.11
// ACK (acks set).
type transmission struct {
	from  *Radio
	dst   link.Addr // nil: broadcast
	data  []byte
	f     *macFrame     // the datagram's MAC state
	acks  *transmission // an ACK: the frame it answers
	rate  int
	start instant
	end   instant
	// nav is the frame's Duration field: how long after its end the
	// medium stays reserved (SIFS + ACK for a unicast frame).
	nav       time.Duration
	wait      time.Duration // idle time its sender counted before it
	backoff   int           // the backoff slots drawn for it, from 0..cw
	cw        int
	receivers []reception
	delivered bool // the addressee decoded it
	// alarm runs what comes next for the frame (next): its end, the
	// addressee's ACK, or the sender's ACK timeout, one after another and
	// never two at once. One alarm in the frame, armed again for each,
	// instead of a Timer and a closure for each (a third of what the
	// clock allocated).
	alarm clock.Alarm
	next  txStep
	acker *Radio // the addressee that answers with an ACK (ackStep)
}

// txStep is what a transmission's alarm does when it fires.
type txStep uint8

const (
	endStep        txStep = iota // the frame ends (Medium.finish)
	ackStep                      // its addressee sends the ACK (Medium.sendAck)
	ackTimeoutStep               // no ACK came (Medium.ackTimedOut)
)

// Fire is the transmission's alarm going off.
func (tx *transmission) Fire() {
	m := tx.from.m
	switch tx.next {
	case endStep:
		m.finish(tx)
	case ackStep:
		m.sendAck(tx.acker, tx)
	case ackTimeoutStep:
		m.ackTimedOut(tx)
	}
}

// after arms tx's alarm to take step next in d.
func (tx *transmission) after(d time.Duration, next txStep) {
	tx.next = next
	tx.alarm.Arm(d)
}

// reception is one radio hearing one transmission.
type reception struct {
	tx        *transmission
	at        *Radio
	edge      *edge
	corrupted bool // overlapped another frame, or the receiver transmitted
	asleep    bool // the receiver slept through part of it
	slot      int  // its index in at.active while in progress
}

// delivery is a frame to hand to a radio once the lock is released.
type delivery struct {
	to *Radio
	f  link.Frame
}

// completion is a TxDone owed once the lock is released.
type completion struct {
	r   *Radio
	tag link.Tag
	err error
}

// unlockFlush releases the lock, then hands over the deliveries and
// completions the events under it produced, in that order. The buffers
// go back to the medium for the next event (every frame's end comes
// here: allocating them anew each time was a share of the collector's
// work).
func (m *Medium) unlockFlush() {
	out, done := m.out, m.done
	m.out, m.done = m.spareOut, m.spareDone
	m.spareOut, m.spareDone = nil, nil
	m.mu.Unlock()
	if len(out) == 0 && len(done) == 0 {
		m.recycle(out, done)
		return
	}
	for _, dl := range out {
		dl.to.port.Deliver(dl.f)
	}
	for _, c := range done {
		c.r.port.CompleteNow(c.tag, c.err)
	}
	clear(out)
	clear(done)
	m.recycle(out, done)
}

// recycle keeps emptied buffers for the next unlockFlush.
func (m *Medium) recycle(out []delivery, done []completion) {
	m.mu.Lock()
	if m.spareOut == nil {
		m.spareOut = out[:0]
	}
	if m.spareDone == nil {
		m.spareDone = done[:0]
	}
	m.mu.Unlock()
}

// transmit puts r's current frame on the air. Called with m.mu held.
func (m *Medium) transmit(r *Radio, nowT time.Time, now instant) {
	f := r.cur
	if f.n > 0 && f.tries >= f.n {
		f.rate = f.then
	}
	f.tries++
	air := m.airtime(len(f.data), f.rate)
	tx := &transmission{from: r, dst: f.dst, data: f.data, f: f, rate: f.rate, start: now, end: now.add(air), wait: r.waited}
	tx.alarm.Init(m.clk, tx)
	if !r.immediate {
		tx.backoff, tx.cw = r.drawn, r.drawnCW
	}
	r.waited, r.immediate, r.drawn, r.drawnCW = 0, false, 0, 0
	if d := m.phy.DCF; d != nil && f.dst != nil {
		tx.nav = d.SIFS + d.AckAirtime(f.rate)
	}
	m.stats.Transmissions++
	if f.tries > 1 {
		m.stats.Retries++
	}
	if m.monitor != nil {
		m.monitor(nowT, r, f.dst, f.data)
	}
	r.port.Tx(len(f.data), air)
	m.put(tx)
}

// put starts tx on the air: its sender stops hearing (half-duplex), every
// radio in range starts receiving it, and frames that overlap at a
// receiver corrupt each other.
func (m *Medium) put(tx *transmission) {
	r := tx.from
	r.txing = tx
	d := m.phy.DCF
	if d != nil {
		r.freeze(tx.start, true)
	}
	for _, rx := range r.active {
		rx.corrupted = true
	}
	// One allocation holds every reception of the frame, and it is
	// reused once the frame has ended (recycleReceivers).
	tx.receivers = m.receivers(len(r.edges))
	for i, e := range r.edges {
		to := e.to
		rx := &tx.receivers[i]
		*rx = reception{tx: tx, at: to, edge: e, corrupted: to.txing != nil, asleep: !to.awake}
		switch len(to.active) {
		case 0:
		case 1:
			// Overlap at this receiver: neither frame survives.
			rx.corrupted = true
			to.active[0].corrupted = true
		default:
			// Frames that already overlap here are corrupted already.
			rx.corrupted = true
		}
		rx.slot = len(to.active)
		to.active = append(to.active, rx)
		if d != nil {
			to.freeze(tx.start, false)
		}
	}
	m.stats.Airtime += tx.end.sub(tx.start)
	tx.after(tx.end.sub(tx.start), endStep)
}

// finish ends a transmission: every receiver decides what it heard, the
// addressee of a unicast 802.11 frame answers with an ACK, and the sender
// learns how it fared.
func (m *Medium) finish(tx *transmission) {
	m.mu.Lock()
	nowT := m.clk.Now()
	now := m.now() // nowT as an instant
	r := tx.from
	r.txing = nil
	r.lastOwn = now
	var acker *Radio
	acked := false
	for i := range tx.receivers {
		rx := &tx.receivers[i]
		to := rx.at
		to.removeActive(rx)
		to.lastHeard = now
		if to.closed {
			continue
		}
		if tx.acks != nil {
			if to == tx.acks.from {
				acked = m.hearAck(rx, now)
			} else {
				to.overhear(rx, now)
			}
			continue
		}
		if m.hear(rx, nowT, now) && tx.dst != nil && m.phy.DCF != nil {
			acker = to
		}
	}
	switch {
	case tx.acks != nil:
		// r answered; the frame's sender now knows.
		if acked {
			m.succeed(tx.acks, now)
		} else {
			m.fail(tx.acks, now)
		}
		// (The sender may no longer hear r: arm it here.)
		tx.acks.from.arm()
	case tx.dst != nil && m.phy.DCF != nil:
		r.awaiting = tx
		d := m.phy.DCF
		if acker != nil {
			tx.acker = acker
			tx.after(d.SIFS, ackStep)
		} else {
			r.ackTx = tx
			tx.after(d.AckTimeout(tx.rate), ackTimeoutStep)
		}
	default:
		m.done = append(m.done, completion{r, tx.f.tag, nil})
		m.logAttempt(tx, now, false)
		r.cur = nil
		if m.phy.DCF != nil {
			r.postBackoff(tx.rate, now)
		}
	}
	r.arm()
	// Radios that deferred for this frame may count down again.
	for i := range tx.receivers {
		tx.receivers[i].at.arm()
	}
	m.recycleReceivers(tx)
	m.unlockFlush()
}

// receivers returns n zeroed receptions, reused from a frame that ended
// when one of that size is free: a frame's receptions were a tenth of
// what a route simulation allocates. Called with m.mu held.
func (m *Medium) receivers(n int) []reception {
	if n < len(m.rxFree) {
		if l := m.rxFree[n]; len(l) > 0 {
			rs := l[len(l)-1]
			l[len(l)-1] = nil
			m.rxFree[n] = l[:len(l)-1]
			return rs
		}
	}
	return make([]reception, n)
}

// maxFreeReceivers bounds the free lists (per size): a burst of frames on
// the air at once is what they need to hold.
const maxFreeReceivers = 64

// recycleReceivers keeps tx's receptions for another frame: once a frame
// has ended nothing reads them (each was taken off its radio's active
// list; a unicast frame waiting for its ACK keeps only tx). Called with
// m.mu held.
func (m *Medium) recycleReceivers(tx *transmission) {
	rs := tx.receivers
	tx.receivers = nil
	n := len(rs)
	if n == 0 {
		return
	}
	if n >= len(m.rxFree) {
		if n > 4096 {
			return // a hub's: rare, not worth keeping
		}
		m.rxFree = append(m.rxFree, make([][][]reception, n+1-len(m.rxFree))...)
	}
	if len(m.rxFree[n]) >= maxFreeReceivers {
		return
	}
	clear(rs)
	m.rxFree[n] = append(m.rxFree[n], rs)
}

// hear decides a datagram's reception at rx.at and queues its delivery;
// it reports whether the addressee of a unicast frame decoded it.
func (m *Medium) hear(rx *reception, nowT time.Time, now instant) bool {
	tx, to := rx.tx, rx.at
	heard := !rx.asleep && to.awake
	if tx.dst != nil && tx.dst != to.addr {
		to.overhear(rx, now)
		return false
	}
	switch {
	case !heard:
		m.stats.Asleep++
		to.port.Drop(link.DropAsleep)
		return false
	case rx.corrupted:
		m.stats.Collisions++
		to.port.Drop(link.DropCollision)
		to.garbled(now)
		return false
	}
	// The loss model steps for every frame meant for this receiver.
	if rx.edge.loss.lost(m.rng) || m.errs(tx, to, len(tx.data)) {
		m.stats.Losses++
		to.port.Drop(link.DropLoss)
		to.garbled(now)
		return false
	}
	to.eifs = false
	if tx.dst != nil {
		tx.delivered = true
		if m.phy.DCF != nil {
			// The receiving MAC drops a retry of a frame it already has
			// (same transmitter, same sequence number); it still ACKs it.
			var last uint16
			var seen bool
			if e := rx.edge; !e.dropped {
				last, seen = e.lastSeq, e.seqSeen
				e.lastSeq, e.seqSeen = tx.f.seq, true
			} else {
				// (Disconnected while the frame was on the air.)
				last, seen = to.lastSeq[tx.from]
				to.setLastSeq(tx.from, tx.f.seq)
			}
			if seen && last == tx.f.seq && tx.f.tries > 1 {
				m.stats.Duplicates++
				return true
			}
		}
	}
	if len(tx.data) > to.mtu() {
		// A v1 device drops a v2 frame it cannot hold (it still ACKs it:
		// the 802.11 MAC below ESP-NOW received it).
		to.port.Drop(link.DropOversize)
		return tx.dst != nil
	}
	if to.port.Dispatcher() == nil {
		to.port.Drop(link.DropNoHandler)
		return tx.dst != nil
	}
	m.stats.Deliveries++
	f := link.Frame{Src: tx.from.addr, Broadcast: tx.dst == nil, Data: tx.data, Time: nowT, Slot: &rx.edge.slot}
	if tx.from.pos != (Position{}) || to.pos != (Position{}) {
		f.HasSignal = true
		f.RSSI = rssi(tx.from.pos.Dist(to.pos))
		f.SNR = min(max(f.RSSI-m.phy.NoiseFloor, -20), m.phy.MaxSNR)
	}
	m.out = append(m.out, delivery{to, f})
	return tx.dst != nil
}

// garbled notes a frame r received in error.
func (r *Radio) garbled(now instant) {
	r.eifs = true
	r.errAt = now
}

// overhear is a radio hearing a frame meant for another: decoded, its
// Duration field sets the NAV; garbled, EIFS follows.
func (r *Radio) overhear(rx *reception, now instant) {
	if rx.asleep || !r.awake {
		return
	}
	if rx.corrupted {
		r.garbled(now)
		return
	}
	r.eifs = false
	if end := now.add(rx.tx.nav); end > r.nav {
		r.nav = end
	}
}

// hearAck decides whether the sender waiting for an ACK decoded it (a
// radio waiting for its ACK listens, even one in modem sleep).
func (m *Medium) hearAck(rx *reception, now instant) bool {
	to := rx.at
	if to.awaiting != rx.tx.acks {
		return false
	}
	if rx.corrupted || rx.edge.loss.lost(m.rng) || m.errs(rx.tx, to, -1) {
		to.garbled(now)
		return false
	}
	to.eifs = false
	return true
}

// errs reports whether the PHY's error rate loses a frame of n bytes (-1:
// an ACK) from tx's sender at to, given the SNR their distance gives.
func (m *Medium) errs(tx *transmission, to *Radio, n int) bool {
	if m.phy.PER == nil || (tx.from.pos == (Position{}) && to.pos == (Position{})) {
		return false
	}
	d := max(tx.from.pos.Dist(to.pos), 1)
	snr := max(20-40-27*math.Log10(d)-float64(m.phy.NoiseFloor), m.phy.FloorSNR)
	p := m.phy.PER(tx.rate, n, snr)
	return p > 0 && m.rng.Float64() < p
}

// sendAck puts the ACK for frame data on the air from its addressee r,
// SIFS after data ended.
func (m *Medium) sendAck(r *Radio, data *transmission) {
	m.mu.Lock()
	d := m.phy.DCF
	sender := data.from
	if r.closed || r.txing != nil || sender.awaiting != data {
		if sender.awaiting == data {
			sender.ackTx = data
			data.after(d.AckTimeout(data.rate)-d.SIFS, ackTimeoutStep)
		}
		m.unlockFlush()
		return
	}
	now := m.now()
	rate := data.rate
	if d.AckRate != nil {
		rate = d.AckRate(data.rate)
	}
	ack := &r.ackBuf
	*ack = transmission{from: r, dst: sender.addr, acks: data, rate: rate, start: now, end: now.add(d.AckAirtime(data.rate))}
	ack.alarm.Init(m.clk, ack)
	m.stats.Acks++
	m.put(ack)
	m.unlockFlush()
}

// ackTimedOut: no ACK began within the ACK timeout.
func (m *Medium) ackTimedOut(tx *transmission) {
	m.mu.Lock()
	tx.from.ackTx = nil
	if tx.from.awaiting == tx {
		m.fail(tx, m.now())
		tx.from.arm()
	}
	m.unlockFlush()
}

// settle ends tx's wait for its ACK, logs how it fared, and returns its
// frame.
func (m *Medium) settle(tx *transmission, now instant, acked bool) *macFrame {
	r := tx.from
	r.awaiting = nil
	if r.ackTx != nil {
		r.ackTx.alarm.Stop()
		r.ackTx = nil
	}
	m.logAttempt(tx, now, acked)
	return r.cur
}

// succeed: the sender heard the ACK for tx.
func (m *Medium) succeed(tx *transmission, now instant) {
	r := tx.from
	f := m.settle(tx, now, true)
	r.cur = nil
	r.report(f, true)
	r.postBackoff(f.rate, now)
	m.done = append(m.done, completion{r, f.tag, nil})
}

// fail: no ACK for tx. The sender tries again with a doubled contention
// window, or, at its retry limit, gives the frame up.
func (m *Medium) fail(tx *transmission, now instant) {
	r := tx.from
	f := m.settle(tx, now, false)
	d := m.phy.DCF
	switch {
	case r.closed:
		r.cur = nil
		m.done = append(m.done, completion{r, f.tag, net.ErrClosed})
	case f.tries >= d.RetryLimit:
		m.stats.NoAcks++
		r.port.Drop(link.DropTxError)
		r.report(f, false)
		r.cur = nil
		r.postBackoff(f.rate, now)
		m.done = append(m.done, completion{r, f.tag, link.ErrNoAck})
	default:
		f.cw = min(2*f.cw+1, d.CWMax)
		r.backoff(f.cw)
		r.boFloor = now
	}
}

// logAttempt tells the attempt log how tx fared.
func (m *Medium) logAttempt(tx *transmission, done instant, acked bool) {
	if m.attempts == nil {
		return
	}
	// One Attempt, reused: the log is called for every transmission, and
	// one allocated each time (the call escapes) was a twentieth of what
	// a route simulation allocates.
	a := &m.attempt
	*a = Attempt{
		From: tx.from, Dst: tx.dst, Data: tx.data, Rate: tx.rate, Try: tx.f.tries, Wait: tx.wait, Backoff: tx.backoff, CW: tx.cw,
		Start: m.timeAt(tx.start), End: m.timeAt(tx.end), Done: m.timeAt(done), Delivered: tx.delivered, Acked: acked,
	}
	m.attempts(a)
	*a = Attempt{}
}

func (r *Radio) removeActive(rx *reception) {
	// Swap-remove by the slot the reception keeps: O(1) however many
	// frames overlap here.
	i, last := rx.slot, len(r.active)-1
	if i > last || r.active[i] != rx {
		return
	}
	r.active[i] = r.active[last]
	r.active[i].slot = i
	r.active[last] = nil
	r.active = r.active[:last]
}
