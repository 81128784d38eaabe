// Package clock is the time source protocol code takes instead of the time
// package, so that the same code runs on the wall clock in the field and on a
// virtual clock in the simulator, where an hour of mesh time passes in
// seconds and every run with the same seed is the same.
//
// The contract both clocks keep: callbacks scheduled with AfterFunc run one
// at a time on the clock's loop, never concurrently with each other, so state
// touched only from callbacks needs no lock. AfterFunc may be called from any
// goroutine; AfterFunc(0, f) is how another goroutine (a radio's reader, say)
// hands work to the loop.
package clock

import "time"

// Clock tells the time and runs callbacks later, serially.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc runs f on the clock's loop once d has passed (d <= 0: as soon
	// as possible, after callbacks already due).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending callback.
type Timer interface {
	// Stop cancels the callback; it reports whether it was still pending.
	Stop() bool
}

// Stop stops the timer *t holds, if any, and clears it: the one way code
// that keeps a pending callback in a field cancels it.
func Stop(t *Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}

// Halted is c for a layer that has shut down for good: Now still tells the
// time, AfterFunc arms nothing (its timer is already stopped). A layer
// that keeps its clock in a field swaps it for Halted at its Close, so
// that no callback still in flight can start its periodic work again.
func Halted(c Clock) Clock { return halted{c} }

type halted struct{ c Clock }

func (h halted) Now() time.Time                      { return h.c.Now() }
func (halted) AfterFunc(time.Duration, func()) Timer { return stopped{} }

// stopped is the timer of a callback that never runs.
type stopped struct{}

func (stopped) Stop() bool { return false }
