package clock

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Epoch is where virtual clocks start unless told otherwise: a fixed instant,
// so simulations print the same times on every run.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Virtual is a discrete-event clock: time stands still until the owner runs
// it, then jumps from one due callback to the next. Callbacks due at the same
// instant run in the order they were scheduled, so a run is deterministic.
// The methods are safe for concurrent use, but determinism needs every
// AfterFunc to come from the loop itself (or before Run).
//
// Pending callbacks wait in a radix heap of (time, sequence) keys held
// inline (radixQ), so ordering them reads no timer; a stopped one stays
// there, marked, until it comes first or the queue is compacted (a
// simulation stops most of the timers it sets: retries, receipts, probes,
// every neighbour's backoff when a frame goes on the air), which costs
// O(1).
type Virtual struct {
	mu    sync.Mutex
	start time.Time
	now   time.Time
	// nowKey is now as nanoseconds since start, for Now to read without
	// the lock (notCanonical when now is not exactly start plus that: a
	// RunUntil to a time of another location, say). Every timer, frame
	// and message asks the time: taking the lock for it was 2-3 % of the
	// CPU of a 2,000-node `sim route`.
	nowKey atomic.Int64
	seq    uint64
	q      radixQ
	live   int // entries of q not stopped
	ran    uint64
}

// NewVirtual returns a virtual clock standing at start (Epoch if zero).
func NewVirtual(start time.Time) *Virtual {
	if start.IsZero() {
		start = Epoch
	}
	return &Virtual{start: start, now: start}
}

// notCanonical in Virtual.nowKey sends Now to the lock.
const notCanonical = math.MinInt64

// setNow moves now to t. Called with c.mu held.
func (c *Virtual) setNow(t time.Time) {
	c.now = t
	// == on purpose: Now must return t itself (its location and
	// monotonic reading too), not merely the same instant.
	if d := t.Sub(c.start); d != notCanonical && c.start.Add(d) == t {
		c.nowKey.Store(int64(d))
	} else {
		c.nowKey.Store(notCanonical)
	}
}

// vtimer is a pending callback: f, or ev.Fire when f is nil. An Alarm's
// is armed again and again (keep: f and ev stay when it runs or stops);
// seq is the scheduling order of its pending entry, the one of the queue
// that runs it (qItem.live).
type vtimer struct {
	c       *Virtual
	f       func()
	ev      Event
	seq     uint64
	pending bool
	keep    bool
}

func (t *vtimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stop(t)
}

// stop cancels t's pending entry. Called with c.mu held.
func (c *Virtual) stop(t *vtimer) bool {
	if !t.pending {
		return false
	}
	t.pending = false
	if !t.keep {
		t.f, t.ev = nil, nil
	}
	c.live--
	if n := c.q.len(); n > compactMin && n > 4*c.live {
		c.compact()
	}
	return true
}

// arm schedules t at Now()+d: a new entry, the next in scheduling order,
// so that arming a timer again runs it exactly where stopping it and
// calling AfterFunc would. t must not be pending. Called with c.mu held.
func (c *Virtual) arm(t *vtimer, d time.Duration) {
	if d < 0 {
		d = 0
	}
	t.pending, t.seq = true, c.seq
	c.q.push(qItem{key: c.keyAfter(d), seq: c.seq, t: t})
	c.seq++
	c.live++
}

// keyAfter is the queue key of Now()+d (d >= 0): its nanoseconds since
// start, saturating as time.Time.Sub does. When now is start plus nowKey
// (nearly always) that is nowKey+d, computed without building two
// time.Time values: every attempt, frame end and ACK of a simulation is
// armed here, and the arithmetic of time.Time was a few per cent of a
// 2,000-node run's CPU. Called with c.mu held.
func (c *Virtual) keyAfter(d time.Duration) int64 {
	if k := c.nowKey.Load(); k != notCanonical && k >= 0 {
		if d > time.Duration(math.MaxInt64-k) {
			return math.MaxInt64
		}
		return k + int64(d)
	}
	return int64(c.now.Add(d).Sub(c.start))
}

// Elapsed returns the virtual time as a duration since the clock's start
// (Start), reporting false when Now is not exactly Start().Add of it (a
// RunUntil to a time of another location, say): then Now must be asked.
// It reads no time.Time, for code that keeps its own times as offsets
// (l1-link/sim's medium asks it for every frame and neighbour).
func (c *Virtual) Elapsed() (time.Duration, bool) {
	d := c.nowKey.Load()
	return time.Duration(d), d != notCanonical
}

// Start returns the time the clock started at (NewVirtual).
func (c *Virtual) Start() time.Time { return c.start }

// compactMin is the queue size below which stopped entries are left to
// be dropped in time.
const compactMin = 1024

// compact drops the stopped entries once they are four in five of the
// queue (O(n), so O(1) per Stop amortised). A simulation stops most of
// the timers it sets (a frame on the air freezes every neighbour's
// countdown), and the dead entries of timers set far ahead would
// otherwise stay until their time. The order of what runs is (time,
// sequence), which compacting keeps. Called with c.mu held.
func (c *Virtual) compact() { c.q.compact() }

// Now returns the virtual time.
func (c *Virtual) Now() time.Time {
	if d := c.nowKey.Load(); d != notCanonical {
		return c.start.Add(time.Duration(d))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d.
func (c *Virtual) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &vtimer{c: c, f: f}
	c.arm(t, d)
	return t
}

// head returns the first pending entry (false if none), dropping
// stopped ones. Called with c.mu held.
func (c *Virtual) head() (*qItem, bool) {
	it := c.q.first()
	return it, it != nil
}

func (c *Virtual) at(key int64) time.Time { return c.start.Add(time.Duration(key)) }

// Step runs the next due callback, moving time to it. It reports false when
// nothing is scheduled.
func (c *Virtual) Step() bool {
	c.mu.Lock()
	if _, ok := c.head(); !ok {
		c.mu.Unlock()
		return false
	}
	it := c.q.pop()
	if k := c.nowKey.Load(); k != notCanonical {
		// now is start plus k: the entry is later exactly when its key
		// is, and setNow(c.at(key)) would find it canonical.
		if it.key > k {
			c.now = c.at(it.key)
			c.nowKey.Store(it.key)
		}
	} else if at := c.at(it.key); at.After(c.now) {
		c.setNow(at)
	}
	t := it.t
	f, ev := t.f, t.ev
	t.pending = false
	if !t.keep {
		t.f, t.ev = nil, nil
	}
	c.live--
	c.ran++
	c.mu.Unlock()
	if f != nil {
		f()
	} else {
		ev.Fire()
	}
	return true
}

// RunUntil runs every callback due up to and including t, then leaves the
// clock at t. It returns the number of callbacks run.
func (c *Virtual) RunUntil(t time.Time) int {
	n := 0
	for {
		c.mu.Lock()
		h, ok := c.head()
		if !ok || c.at(h.key).After(t) {
			if t.After(c.now) {
				c.setNow(t)
			}
			c.mu.Unlock()
			return n
		}
		c.mu.Unlock()
		c.Step()
		n++
	}
}

// RunFor runs the clock forward by d (see RunUntil).
func (c *Virtual) RunFor(d time.Duration) int { return c.RunUntil(c.Now().Add(d)) }

// RunWhile runs callbacks while cond() holds and something is scheduled, but
// not past deadline. It reports whether cond became false (true) or the run
// stopped for lack of events or time (false).
func (c *Virtual) RunWhile(deadline time.Time, cond func() bool) bool {
	for cond() {
		c.mu.Lock()
		h, ok := c.head()
		if !ok || c.at(h.key).After(deadline) {
			c.mu.Unlock()
			return false
		}
		c.mu.Unlock()
		c.Step()
	}
	return true
}

// Pending returns the number of scheduled callbacks.
func (c *Virtual) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// Ran returns the number of callbacks run so far.
func (c *Virtual) Ran() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ran
}

// Next returns when the next callback is due (false if none is).
func (c *Virtual) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.head()
	if !ok {
		return time.Time{}, false
	}
	return c.at(h.key), true
}
