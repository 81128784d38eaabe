package clock

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// hidden is a Virtual clock that an Alarm does not recognise as one: its
// alarms are Stop and AfterFunc.
type hidden struct{ *Virtual }

// TestAlarmAgainstModel: alarms armed again before they fire, stopped,
// and armed once more, among plain AfterFunc callbacks, run in the order
// of a model that keeps each alarm's last arming only, by (time, the
// arming's place in scheduling order); and the same script run with
// Stop and AfterFunc instead runs the same callbacks in the same order.
// A stale arming that ran, or an arming that took no place in the
// scheduling order (a tie run out of order), fails it.
func TestAlarmAgainstModel(t *testing.T) {
	for seed := range uint64(4) {
		var runs [2][]int
		for k, wrap := range []bool{false, true} {
			runs[k] = alarmScript(t, seed, wrap)
		}
		if len(runs[0]) < 5000 {
			t.Fatalf("seed %d: only %d callbacks ran", seed, len(runs[0]))
		}
		if !slices.Equal(runs[0], runs[1]) {
			i := 0
			for i < min(len(runs[0]), len(runs[1])) && runs[0][i] == runs[1][i] {
				i++
			}
			t.Fatalf("seed %d: alarms and Stop+AfterFunc part at callback %d of %d/%d", seed, i, len(runs[0]), len(runs[1]))
		}
	}
}

// alarmScript runs a seeded script of 40 alarms and plain callbacks on a
// Virtual clock (hidden: as another clock), checking each callback
// against the model, and returns the callbacks run (alarms 0..39, plain
// ones from 1000).
func alarmScript(t *testing.T, seed uint64, wrap bool) []int {
	type armed struct {
		key time.Duration
		seq int
		on  bool
	}
	const n = 40
	rng := rand.New(rand.NewPCG(seed, 11))
	v := NewVirtual(time.Time{})
	var c Clock = v
	if wrap {
		c = hidden{v}
	}
	var alarms [n]Alarm
	var model [n]armed
	plain := map[int]armed{} // pending plain callbacks, by id
	seq, nextPlain := 0, 1000
	var order []int
	delay := func() time.Duration {
		switch rng.IntN(3) {
		case 0:
			return time.Duration(rng.IntN(4)) * time.Millisecond // ties
		case 1:
			return 1<<20 + time.Duration(rng.IntN(3)) - 1
		default:
			return time.Duration(rng.Int64N(int64(time.Second)))
		}
	}
	// check: the callback id due at key, armed at seq, is the model's first.
	check := func(id int, a armed) {
		best, bestID := armed{}, -1
		consider := func(id int, m armed) {
			if m.on && (bestID < 0 || m.key < best.key || m.key == best.key && m.seq < best.seq) {
				best, bestID = m, id
			}
		}
		for i, m := range model {
			consider(i, m)
		}
		for i, m := range plain {
			consider(i, m)
		}
		if bestID != id || best != a {
			t.Fatalf("seed %d wrap %v: ran %d (%v), the model's next is %d (%v)", seed, wrap, id, a, bestID, best)
		}
	}
	var step func()
	step = func() {
		if seq > 15000 {
			return
		}
		for range 1 + rng.IntN(3) {
			switch op := rng.IntN(10); {
			case op < 6: // arm (again)
				i := rng.IntN(n)
				d := delay()
				alarms[i].Arm(d)
				model[i] = armed{key: v.Now().Sub(Epoch) + d, seq: seq, on: true}
				seq++
			case op < 8: // stop
				i := rng.IntN(n)
				if got := alarms[i].Stop(); got != model[i].on && !wrap {
					t.Fatalf("seed %d: alarm %d Stop %v, model armed %v", seed, i, got, model[i].on)
				}
				model[i].on = false
			default: // a plain callback
				id, d := nextPlain, delay()
				nextPlain++
				a := armed{key: v.Now().Sub(Epoch) + d, seq: seq, on: true}
				seq++
				plain[id] = a
				c.AfterFunc(d, func() {
					check(id, a)
					delete(plain, id)
					order = append(order, id)
					step()
				})
			}
		}
	}
	for i := range alarms {
		alarms[i].InitFunc(c, func() {
			check(i, model[i])
			model[i].on = false
			order = append(order, i)
			step()
		})
	}
	for range 30 {
		step()
	}
	for v.Pending() > 0 {
		v.RunFor(time.Duration(rng.Int64N(int64(50 * time.Millisecond))))
	}
	return order
}

// TestAlarmAllocatesNothing: arming an alarm of a Virtual clock again and
// again, and running it, allocates nothing once the queue has grown.
func TestAlarmAllocatesNothing(t *testing.T) {
	c := NewVirtual(time.Time{})
	var a Alarm
	ran := 0
	a.InitFunc(c, func() { ran++ })
	for range 10000 {
		a.Arm(time.Millisecond)
		a.Arm(2 * time.Millisecond)
		c.RunFor(3 * time.Millisecond)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		a.Arm(time.Millisecond)
		a.Stop()
		a.Arm(2 * time.Millisecond)
		c.RunFor(3 * time.Millisecond)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per arming", allocs)
	}
	if ran != 11001 {
		t.Fatalf("ran %d times, want 11001", ran)
	}
}
