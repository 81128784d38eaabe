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
// Pending callbacks wait in a 4-ary heap of (time, sequence) keys held
// inline, so ordering them reads no timer; a stopped one stays in the heap,
// marked, until its time comes (a simulation stops most of the timers it
// sets: retries, receipts, probes), which costs O(1) instead of a sift.
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
	q      []qItem
	live   int // entries of q not stopped
	ran    uint64
}

// qItem is one pending callback in the heap.
type qItem struct {
	key int64  // due time, nanoseconds since the clock's start
	seq uint64 // scheduling order, for ties
	t   *vtimer
}

func (a *qItem) before(b *qItem) bool {
	return a.key < b.key || a.key == b.key && a.seq < b.seq
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

type vtimer struct {
	c       *Virtual
	f       func()
	pending bool
}

func (t *vtimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.pending {
		return false
	}
	t.pending = false
	t.f = nil
	c.live--
	if len(c.q) > compactMin && len(c.q) > 4*c.live {
		c.compact()
	}
	return true
}

// compactMin is the heap size below which stopped entries are left to be
// popped in time.
const compactMin = 1024

// compact drops the stopped entries once they are four in five of the
// heap, and rebuilds it from the live ones (O(n), so O(1) per Stop
// amortised). A simulation stops most of the timers it sets (a frame on
// the air freezes every neighbour's countdown), and a heap grown with
// dead entries costs every pop a deeper sift through memory the cache no
// longer holds. The order of what runs is (time, sequence), not the heap's
// shape: compacting changes nothing a run does. Called with c.mu held.
func (c *Virtual) compact() {
	live := c.q[:0]
	for _, it := range c.q {
		if it.t.pending {
			live = append(live, it)
		}
	}
	clear(c.q[len(live):])
	c.q = live
	for i := (len(live) - 2) / 4; i >= 0; i-- {
		c.down(i)
	}
}

// down sifts the entry at i towards the leaves.
func (c *Virtual) down(i int) {
	n := len(c.q)
	it := c.q[i]
	for {
		first := 4*i + 1
		if first >= n {
			break
		}
		m := first
		for j := first + 1; j < first+4 && j < n; j++ {
			if c.q[j].before(&c.q[m]) {
				m = j
			}
		}
		if !c.q[m].before(&it) {
			break
		}
		c.q[i] = c.q[m]
		i = m
	}
	c.q[i] = it
}

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
	if d < 0 {
		d = 0
	}
	t := &vtimer{c: c, f: f, pending: true}
	c.push(qItem{key: int64(c.now.Add(d).Sub(c.start)), seq: c.seq, t: t})
	c.seq++
	c.live++
	return t
}

// push adds it to the heap.
func (c *Virtual) push(it qItem) {
	c.q = append(c.q, it)
	i := len(c.q) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !it.before(&c.q[p]) {
			break
		}
		c.q[i] = c.q[p]
		i = p
	}
	c.q[i] = it
}

// pop removes and returns the heap's first entry.
func (c *Virtual) pop() qItem {
	top := c.q[0]
	n := len(c.q) - 1
	last := c.q[n]
	c.q[n] = qItem{}
	c.q = c.q[:n]
	if n > 0 {
		c.q[0] = last
		c.down(0)
	}
	return top
}

// head drops stopped entries from the top of the heap and returns the
// first pending one (false if none). Called with c.mu held.
func (c *Virtual) head() (*qItem, bool) {
	for len(c.q) > 0 {
		if c.q[0].t.pending {
			return &c.q[0], true
		}
		c.pop()
	}
	return nil, false
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
	it := c.pop()
	if at := c.at(it.key); at.After(c.now) {
		c.setNow(at)
	}
	t := it.t
	f := t.f
	t.f, t.pending = nil, false
	c.live--
	c.ran++
	c.mu.Unlock()
	f()
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
