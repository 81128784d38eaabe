package lora

import (
	"time"
)

// DutyCycle is a transmit-time budget: at most Fraction of every Window may
// be spent transmitting (EU868 sub-bands: 1 % or 10 % per hour). It keeps
// airtime in a fixed number of buckets, so memory is constant however many
// frames are sent; the window slides by one bucket at a time, which errs on
// the safe side (a frame counts for up to one bucket longer than the window).
// The zero value (Fraction 0) allows everything. Not safe for concurrent use.
type DutyCycle struct {
	Fraction float64
	Window   time.Duration

	buckets [dutyBuckets]time.Duration
	start   time.Time // start of the newest bucket
	newest  int
}

const dutyBuckets = 60

// Enabled reports whether a budget applies.
func (d *DutyCycle) Enabled() bool { return d.Fraction > 0 && d.Window > 0 }

// Budget is the airtime allowed per window.
func (d *DutyCycle) Budget() time.Duration {
	return time.Duration(d.Fraction * float64(d.Window))
}

func (d *DutyCycle) bucketLen() time.Duration { return d.Window / dutyBuckets }

// advance rotates buckets so the newest covers now.
func (d *DutyCycle) advance(now time.Time) {
	bl := d.bucketLen()
	if d.start.IsZero() {
		d.start = now.Truncate(bl)
		return
	}
	steps := int(now.Sub(d.start) / bl)
	if steps <= 0 {
		return
	}
	if steps >= dutyBuckets {
		d.buckets = [dutyBuckets]time.Duration{}
		d.start = now.Truncate(bl)
		return
	}
	for range steps {
		d.newest = (d.newest + 1) % dutyBuckets
		d.buckets[d.newest] = 0
	}
	d.start = d.start.Add(time.Duration(steps) * bl)
}

// Used returns the airtime spent in the window ending now.
func (d *DutyCycle) Used(now time.Time) time.Duration {
	if !d.Enabled() {
		return 0
	}
	d.advance(now)
	var u time.Duration
	for _, b := range d.buckets {
		u += b
	}
	return u
}

// Allow reports whether a frame of airtime a may be sent now.
func (d *DutyCycle) Allow(now time.Time, a time.Duration) bool {
	if !d.Enabled() {
		return true
	}
	return d.Used(now)+a <= d.Budget()
}

// Spend records airtime a spent now.
func (d *DutyCycle) Spend(now time.Time, a time.Duration) {
	if !d.Enabled() {
		return
	}
	d.advance(now)
	d.buckets[d.newest] += a
}

// Wait returns how long until a frame of airtime a would be allowed (0 if
// now; the full window if a exceeds the budget itself, which never fits).
func (d *DutyCycle) Wait(now time.Time, a time.Duration) time.Duration {
	if d.Allow(now, a) {
		return 0
	}
	if a > d.Budget() {
		return d.Window
	}
	// Oldest buckets expire first: find how many must expire.
	used := d.Used(now)
	bl := d.bucketLen()
	wait := d.start.Add(bl).Sub(now) // when the oldest bucket leaves
	for i := 1; i <= dutyBuckets; i++ {
		oldest := (d.newest + i) % dutyBuckets
		used -= d.buckets[oldest]
		if used+a <= d.Budget() {
			return wait
		}
		wait += bl
	}
	return d.Window
}
