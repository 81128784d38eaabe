package clock

import (
	"container/heap"
	"sync"
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
type Virtual struct {
	mu    sync.Mutex
	start time.Time
	now   time.Time
	seq   uint64
	q     eventQueue
	ran   uint64
}

// NewVirtual returns a virtual clock standing at start (Epoch if zero).
func NewVirtual(start time.Time) *Virtual {
	if start.IsZero() {
		start = Epoch
	}
	return &Virtual{start: start, now: start}
}

type vtimer struct {
	c     *Virtual
	at    time.Time
	key   int64 // at as nanoseconds since the clock's start: the heap compares these, not time.Time
	seq   uint64
	f     func()
	index int // in the heap; -1 when not pending
}

func (t *vtimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.q, t.index)
	t.f = nil
	return true
}

// Now returns the virtual time.
func (c *Virtual) Now() time.Time {
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
	at := c.now.Add(d)
	t := &vtimer{c: c, at: at, key: int64(at.Sub(c.start)), seq: c.seq, f: f}
	c.seq++
	heap.Push(&c.q, t)
	return t
}

// Step runs the next due callback, moving time to it. It reports false when
// nothing is scheduled.
func (c *Virtual) Step() bool {
	c.mu.Lock()
	if len(c.q) == 0 {
		c.mu.Unlock()
		return false
	}
	t := heap.Pop(&c.q).(*vtimer)
	if t.at.After(c.now) {
		c.now = t.at
	}
	f := t.f
	t.f = nil
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
		if len(c.q) == 0 || c.q[0].at.After(t) {
			if t.After(c.now) {
				c.now = t
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
		if len(c.q) == 0 || c.q[0].at.After(deadline) {
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
	return len(c.q)
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
	if len(c.q) == 0 {
		return time.Time{}, false
	}
	return c.q[0].at, true
}

type eventQueue []*vtimer

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].key != q[j].key {
		return q[i].key < q[j].key
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *eventQueue) Push(x any) {
	t := x.(*vtimer)
	t.index = len(*q)
	*q = append(*q, t)
}
func (q *eventQueue) Pop() any {
	old := *q
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*q = old[:n-1]
	return t
}
