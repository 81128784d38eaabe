package sim

import (
	"slices"
	"time"
)

// dcfState is a radio's channel access state (see DCF), guarded by m.mu.
type dcfState struct {
	bo        int           // backoff slots left to count (-1: none drawn)
	segStart  instant       // when the current countdown's first slot began
	segIFS    time.Duration // the inter-frame space before it, counted as waiting
	waited    time.Duration // idle time counted before the coming attempt
	boFloor   instant       // the countdown starts no earlier (own outcome)
	drawn     int           // the backoff drawn for the coming attempt (slots)
	drawnCW   int           // from 0..drawnCW
	errAt     instant       // when it ended
	immediate bool          // the pending attempt goes without backoff
	eifs      bool          // the last frame r heard was received in error
}

// backoff draws a backoff of 0..cw slots for r to count down.
func (r *Radio) backoff(cw int) {
	r.bo = r.m.rng.IntN(max(cw, 0) + 1)
	r.drawn, r.drawnCW = r.bo, cw
}

// busyEnd is when the medium last stopped being busy for r, as far as r
// knows: the end of the last frame it heard or sent, or of its NAV.
func (r *Radio) busyEnd() instant {
	return max(r.lastHeard, r.lastOwn, r.nav)
}

// senses reports whether r, deciding at t, knows the medium is busy with a
// frame on the air now: a frame is sensed one slot after it starts.
func (r *Radio) senses(t instant) bool {
	slot := r.m.phy.DCF.Slot
	for _, rx := range r.active {
		if rx.tx.start.add(slot) <= t {
			return true
		}
	}
	return false
}

// take makes the head of the queue the MAC's current frame, choosing its
// rate; false if there is none.
func (r *Radio) take() bool {
	if r.cur != nil {
		return true
	}
	if len(r.queue) == 0 {
		return false
	}
	q := r.queue[0]
	r.queue[0] = queued{}
	r.queue = r.queue[1:]
	r.curBuf = macFrame{queued: q, seq: r.seq}
	f := &r.curBuf
	r.chainFor(f)
	f.rate = f.first
	r.seq = (r.seq + 1) & 0xfff
	if d := r.m.phy.DCF; d != nil {
		f.cw = d.CWMin(f.rate)
	}
	r.cur = f
	return true
}

// chainFor sets f's rates: the rate control's chain for a unicast frame
// (if it names the PHY's rates), else r's rate for every attempt.
func (r *Radio) chainFor(f *macFrame) {
	f.first, f.then, f.n = r.rate, r.rate, 0
	if r.rc == nil || f.dst == nil {
		return
	}
	first, n, then := r.rc.Rate(f.dst)
	if !slices.Contains(r.m.phy.Rates, first) {
		return
	}
	f.first, f.then = first, first
	if n > 0 && slices.Contains(r.m.phy.Rates, then) {
		f.n, f.then = n, then
	}
}

// report tells the rate control how frame f fared after its attempts.
func (r *Radio) report(f *macFrame, acked bool) {
	if r.rc == nil || f.dst == nil {
		return
	}
	if f.n == 0 || f.tries <= f.n {
		r.rc.Report(f.dst, f.first, f.tries, acked)
		return
	}
	r.rc.Report(f.dst, f.first, f.n, false)
	r.rc.Report(f.dst, f.then, f.tries-f.n, acked)
}

// arm arranges r's next transmit attempt (or the rest of its
// post-backoff), if it is free to contend and has nothing pending. Called
// with m.mu held, whenever something r waits for has happened: a frame
// queued, a frame it heard or sent ended, its own exchange finished.
func (r *Radio) arm() {
	if r.closed || r.txing != nil || r.awaiting != nil || r.attemptOn {
		return
	}
	m := r.m
	d := m.phy.DCF
	now := m.now()
	has := r.take()
	if d == nil {
		if has {
			r.schedule(now)
		}
		return
	}
	if !has && r.bo < 0 {
		return
	}
	ifs := d.DIFS()
	if r.eifs && r.lastOwn <= r.errAt {
		// EIFS follows a frame received in error while nothing since
		// (a frame decoded, or one of r's own) has ended.
		ifs = d.EIFS
	}
	busy := r.busyEnd()
	idleAt := busy.add(ifs)
	if r.bo < 0 {
		// A frame and no backoff pending: it goes at once if the medium
		// has been idle for the inter-frame space.
		if now >= idleAt && !r.senses(now) {
			r.immediate = true
			r.schedule(now)
			return
		}
		r.backoff(r.cur.cw)
	}
	seg := max(idleAt, r.boFloor)
	at := seg.add(time.Duration(r.bo) * d.Slot)
	if r.senses(at) {
		// A frame on the air will be sensed before the countdown ends:
		// wait for it (its end arms r again).
		return
	}
	r.segStart = seg
	// The inter-frame space counts as waiting only where it follows r's
	// own last exchange (an ACK timeout already waited through it).
	from := max(busy, r.boFloor)
	r.segIFS = min(ifs, max(seg.sub(from), 0))
	r.schedule(max(at, now))
}

// schedule sets r's attempt for time at.
func (r *Radio) schedule(at instant) {
	r.attemptAt = at
	r.attemptOn = true
	r.attempt.Arm(at.sub(r.m.now()))
}

// stopAttempt cancels r's pending attempt. Called with m.mu held.
func (r *Radio) stopAttempt() {
	if r.attemptOn {
		r.attemptOn = false
		r.attempt.Stop()
	}
}

// freeze stops r's countdown because a frame started at start: r keeps
// the slots not yet counted. An attempt due before r can sense the frame
// (within its first slot) goes ahead, and collides, unless the frame is
// r's own (own). Called with m.mu held.
func (r *Radio) freeze(start instant, own bool) {
	if !r.attemptOn {
		return
	}
	d := r.m.phy.DCF
	if !own && r.attemptAt < start.add(d.Slot) {
		return
	}
	r.stopAttempt()
	if r.immediate {
		// It was about to go at once; it defers now, with a backoff.
		r.immediate = false
		r.backoff(r.cur.cw)
		return
	}
	if start > r.segStart {
		k := int(start.sub(r.segStart) / d.Slot)
		r.waited += r.segIFS + time.Duration(k)*d.Slot
		r.bo = max(r.bo-k, 0)
	}
}

// try is r's attempt coming due: it transmits its frame, or ends its
// post-backoff.
func (r *Radio) try() {
	m := r.m
	m.mu.Lock()
	r.attemptOn = false
	if r.closed || r.txing != nil || r.awaiting != nil {
		m.mu.Unlock()
		return
	}
	nowT := m.clk.Now()
	now := m.now() // nowT as an instant
	if d := m.phy.DCF; d != nil {
		if r.senses(now) {
			// Defensive: freeze should have stopped this attempt.
			if r.immediate || r.bo < 0 {
				r.immediate = false
				if r.take() {
					r.backoff(r.cur.cw)
				}
			}
			m.mu.Unlock()
			return
		}
		if !r.immediate {
			r.waited += r.segIFS + now.sub(r.segStart)
		}
		r.bo, r.boFloor = -1, never
		if !r.take() {
			// The post-backoff ran out with nothing to send.
			r.waited, r.drawn, r.drawnCW = 0, 0, 0
			m.mu.Unlock()
			return
		}
	}
	if r.cur == nil && !r.take() {
		m.mu.Unlock()
		return
	}
	m.transmit(r, nowT, now)
	m.unlockFlush()
}

// postBackoff draws the backoff every 802.11 frame is followed by, counted
// from when its sender learned how it fared.
func (r *Radio) postBackoff(rate int, now instant) {
	d := r.m.phy.DCF
	r.backoff(d.CWMin(rate))
	r.boFloor = now
	r.immediate = false
	r.waited = 0
}
