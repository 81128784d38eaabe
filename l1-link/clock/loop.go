package clock

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Loop is the wall clock with the serial-callback contract: Run executes
// callbacks one at a time on the goroutine that calls it. It is what a node
// runs on in the field.
type Loop struct {
	mu      sync.Mutex
	pending []*loopTimer
	wake    chan struct{}
	running atomic.Bool
}

// ErrRunning: Run was called while the loop already runs (two goroutines
// running one loop would break the serial-callback contract).
var ErrRunning = errors.New("clock: loop already running")

// NewLoop returns a Loop; callbacks run once Run is called.
func NewLoop() *Loop {
	return &Loop{wake: make(chan struct{}, 1)}
}

type loopTimer struct {
	l       *Loop
	t       *time.Timer
	f       func()
	stopped atomic.Bool
	queued  atomic.Bool
}

func (t *loopTimer) Stop() bool {
	if t.stopped.Swap(true) {
		return false
	}
	if t.t != nil && t.t.Stop() {
		return true
	}
	// The wall timer fired: the callback is queued or has run. It was still
	// pending if it has not run yet.
	return t.queued.Load()
}

// Now returns the wall-clock time.
func (l *Loop) Now() time.Time { return time.Now() }

// AfterFunc runs f on the loop after d.
func (l *Loop) AfterFunc(d time.Duration, f func()) Timer {
	t := &loopTimer{l: l, f: f}
	if d <= 0 {
		l.enqueue(t)
		return t
	}
	l.mu.Lock()
	t.t = time.AfterFunc(d, func() { l.enqueue(t) })
	l.mu.Unlock()
	return t
}

func (l *Loop) enqueue(t *loopTimer) {
	t.queued.Store(true)
	l.mu.Lock()
	l.pending = append(l.pending, t)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Running reports whether a goroutine is in Run.
func (l *Loop) Running() bool { return l.running.Load() }

// Run executes callbacks until ctx is done, then returns ctx.Err(). One
// goroutine at a time runs a loop: a second concurrent Run returns
// ErrRunning at once.
func (l *Loop) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer l.running.Store(false)
	var batch []*loopTimer
	for {
		l.mu.Lock()
		batch, l.pending = l.pending, batch[:0]
		l.mu.Unlock()
		for i, t := range batch {
			batch[i] = nil
			t.queued.Store(false)
			if t.stopped.Swap(true) {
				continue
			}
			t.f()
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.wake:
		}
	}
}
