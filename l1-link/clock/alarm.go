package clock

import "time"

// Event is work an Alarm runs: Fire is called on the clock's loop.
type Event interface{ Fire() }

// Alarm is a callback that its owner arms again and again, held by value
// in the owner (Init it once, never copy it after). On a Virtual clock
// arming it allocates nothing: the queue's entry names the alarm and the
// order of its arming, and an arming replaced by a later one, or
// stopped, is left in the queue to be dropped (as a stopped AfterFunc
// is). A simulation sets most of its timers again and again (a radio's
// next attempt, every neighbour's whenever a frame goes on the air; each
// frame's end): each was a Timer and a closure to collect. Arm runs the
// callback exactly where Stop and then AfterFunc would: in (time,
// scheduling order), the arming taking the next place in that order.
// On any other clock Arm is Stop and AfterFunc.
//
// Like the clock's callbacks, an Alarm is used from the loop only.
type Alarm struct {
	t     vtimer // on a Virtual clock (t.c set)
	c     Clock  // on any other
	f     func()
	other Timer // its pending callback there
}

// Init makes a an alarm of c that calls ev.Fire.
func (a *Alarm) Init(c Clock, ev Event) { a.init(c, nil, ev) }

// InitFunc makes a an alarm of c that calls f.
func (a *Alarm) InitFunc(c Clock, f func()) { a.init(c, f, nil) }

func (a *Alarm) init(c Clock, f func(), ev Event) {
	if v, ok := c.(*Virtual); ok {
		a.t = vtimer{c: v, f: f, ev: ev, keep: true}
		return
	}
	if f == nil {
		f = ev.Fire
	}
	a.c, a.f = c, f
}

// Arm schedules the callback d from now, replacing any pending arming.
func (a *Alarm) Arm(d time.Duration) {
	if c := a.t.c; c != nil {
		c.mu.Lock()
		c.stop(&a.t)
		c.arm(&a.t, d)
		c.mu.Unlock()
		return
	}
	Stop(&a.other)
	a.other = a.c.AfterFunc(d, a.f)
}

// Stop cancels a pending arming; it reports whether there was one.
func (a *Alarm) Stop() bool {
	if c := a.t.c; c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.stop(&a.t)
	}
	if a.other == nil {
		return false
	}
	ok := a.other.Stop()
	a.other = nil
	return ok
}
