package clock

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestVirtualOrder(t *testing.T) {
	c := NewVirtual(time.Time{})
	var got []int
	c.AfterFunc(2*time.Second, func() { got = append(got, 3) })
	c.AfterFunc(time.Second, func() { got = append(got, 1) })
	c.AfterFunc(time.Second, func() {
		got = append(got, 2)
		// Scheduling from a callback at zero delay runs after what is already due.
		c.AfterFunc(0, func() { got = append(got, 25) })
	})
	stop := c.AfterFunc(1500*time.Millisecond, func() { got = append(got, 99) })
	if !stop.Stop() || stop.Stop() {
		t.Fatal("Stop should report pending exactly once")
	}
	n := c.RunUntil(Epoch.Add(10 * time.Second))
	want := []int{1, 2, 25, 3}
	if n != 4 || len(got) != 4 {
		t.Fatalf("ran %d: %v", n, got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	if !c.Now().Equal(Epoch.Add(10 * time.Second)) {
		t.Fatalf("now %v", c.Now())
	}
}

func TestVirtualRunWhile(t *testing.T) {
	c := NewVirtual(time.Time{})
	count := 0
	var tick func()
	tick = func() { count++; c.AfterFunc(time.Millisecond, tick) }
	c.AfterFunc(0, tick)
	if !c.RunWhile(Epoch.Add(time.Hour), func() bool { return count < 1000 }) {
		t.Fatal("condition never met")
	}
	if got := c.Now().Sub(Epoch); got != 999*time.Millisecond {
		t.Fatalf("time advanced %v", got)
	}
	if c.RunWhile(Epoch.Add(2*time.Second), func() bool { return true }) {
		t.Fatal("deadline not honoured")
	}
}

func TestLoopSerial(t *testing.T) {
	l := NewLoop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	results := make(chan int, 3)
	// Counter touched only from callbacks: the race detector checks seriality.
	counter := 0
	for i := range 100 {
		go l.AfterFunc(time.Duration(i%3)*time.Millisecond, func() {
			counter++
			if counter == 100 {
				results <- counter
			}
		})
	}
	if got := <-results; got != 100 {
		t.Fatal(got)
	}
	stopped := l.AfterFunc(time.Hour, func() { t.Error("stopped timer ran") })
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatal(err)
	}
}

func TestLoopRunsOnce(t *testing.T) {
	l := NewLoop()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	l.AfterFunc(0, func() { close(started) })
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	<-started
	if err := l.Run(context.Background()); err != ErrRunning {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatal(err)
	}
}

// TestVirtualHeapAgainstSort: thousands of callbacks at random times, some
// stopped (some before, some after others ran), run in exactly the order a
// sort by (time, scheduling order) gives, and Pending counts the live ones.
func TestVirtualHeapAgainstSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := NewVirtual(time.Time{})
	type want struct {
		at  time.Duration
		seq int
	}
	var order []int
	var wants []want
	var timers []Timer
	stopped := map[int]bool{}
	for i := range 5000 {
		d := time.Duration(rng.IntN(1000)) * time.Millisecond
		timers = append(timers, c.AfterFunc(d, func() { order = append(order, i) }))
		wants = append(wants, want{d, i})
	}
	for i := range 5000 {
		if rng.IntN(4) == 0 {
			if !timers[i].Stop() {
				t.Fatalf("timer %d not pending", i)
			}
			stopped[i] = true
		}
	}
	if c.Pending() != 5000-len(stopped) {
		t.Fatalf("pending %d, want %d", c.Pending(), 5000-len(stopped))
	}
	c.RunUntil(c.Now().Add(2 * time.Second))
	var expect []int
	slices.SortStableFunc(wants, func(a, b want) int { return cmp.Compare(a.at, b.at) })
	for _, w := range wants {
		if !stopped[w.seq] {
			expect = append(expect, w.seq)
		}
	}
	if !slices.Equal(order, expect) || c.Pending() != 0 {
		t.Fatalf("ran %d callbacks out of order (pending %d)", len(order), c.Pending())
	}
}

// TestVirtualCompact: stopping most of a large heap compacts it, and what
// is left still runs in (time, scheduling order), with timers scheduled
// after the compaction in their place.
func TestVirtualCompact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := NewVirtual(time.Time{})
	type want struct {
		at  time.Duration
		seq int
	}
	var order []int
	var wants []want
	var timers []Timer
	add := func(i int) {
		d := time.Duration(rng.IntN(1000)) * time.Millisecond
		timers = append(timers, c.AfterFunc(d, func() { order = append(order, i) }))
		wants = append(wants, want{d, i})
	}
	for i := range 20000 {
		add(i)
	}
	stopped := map[int]bool{}
	for i := range 20000 {
		if i%10 != 0 {
			timers[i].Stop()
			stopped[i] = true
		}
	}
	c.mu.Lock()
	size := c.q.len()
	c.mu.Unlock()
	if size > 4*c.Pending() {
		t.Fatalf("heap holds %d entries for %d live timers: not compacted", size, c.Pending())
	}
	for i := 20000; i < 21000; i++ {
		add(i)
	}
	c.RunUntil(c.Now().Add(2 * time.Second))
	var expect []int
	slices.SortStableFunc(wants, func(a, b want) int { return cmp.Compare(a.at, b.at) })
	for _, w := range wants {
		if !stopped[w.seq] {
			expect = append(expect, w.seq)
		}
	}
	if !slices.Equal(order, expect) {
		t.Fatalf("ran %d callbacks out of order (want %d)", len(order), len(expect))
	}
}

// TestNowIsTheTimeSet: Now returns the very time the clock stands at, its
// location included, whether the clock got there by running a callback
// or by a RunUntil to a time of another location (read without the lock
// in the first case, under it in the second), and readers on another
// goroutine may ask it while the loop runs.
func TestNowIsTheTimeSet(t *testing.T) {
	c := NewVirtual(time.Time{})
	c.AfterFunc(1500*time.Millisecond, func() {})
	c.Step()
	if got, want := c.Now(), Epoch.Add(1500*time.Millisecond); got != want {
		t.Fatalf("after a callback: %v, want %v", got, want)
	}
	loc := time.FixedZone("UTC+1", 3600)
	there := Epoch.Add(3 * time.Second).In(loc)
	c.RunUntil(there)
	if got := c.Now(); got != there || got.Location() != loc {
		t.Fatalf("after RunUntil(%v): %v", there, got)
	}
	back := Epoch.Add(5 * time.Second)
	c.RunUntil(back)
	if got := c.Now(); got != back {
		t.Fatalf("after RunUntil(%v): %v", back, got)
	}
	done := make(chan struct{})
	read := make(chan time.Time)
	go func() {
		var last time.Time
		for {
			select {
			case <-done:
				read <- last
				return
			default:
				if now := c.Now(); now.Before(last) {
					panic("the clock went back")
				} else {
					last = now
				}
			}
		}
	}()
	for range 1000 {
		c.AfterFunc(time.Millisecond, func() {})
		c.Step()
	}
	close(done)
	if last := <-read; last.After(c.Now()) {
		t.Fatalf("a reader saw %v, past the clock's %v", last, c.Now())
	}
}

// BenchmarkNow is the cost of asking the time, which every timer, frame
// and message of a simulation does.
func BenchmarkNow(b *testing.B) {
	c := NewVirtual(time.Time{})
	c.AfterFunc(time.Second, func() {})
	c.Step()
	var t time.Time
	for b.Loop() {
		t = c.Now()
	}
	_ = t
}

// A halted clock tells the time of the clock under it and runs nothing.
func TestHalted(t *testing.T) {
	v := NewVirtual(time.Unix(1000, 0))
	h := Halted(v)
	ran := false
	tm := h.AfterFunc(time.Second, func() { ran = true })
	h.AfterFunc(0, func() { ran = true })
	v.RunFor(time.Hour)
	if ran {
		t.Error("a halted clock ran a callback")
	}
	if v.Pending() != 0 {
		t.Errorf("a halted clock left %d callbacks pending", v.Pending())
	}
	if tm.Stop() {
		t.Error("Stop reports a halted clock's timer pending")
	}
	if !h.Now().Equal(v.Now()) {
		t.Errorf("halted Now %v, the clock's %v", h.Now(), v.Now())
	}
}

// TestVirtualOrderAgainstModel: callbacks that schedule and stop others
// as they run (as a simulation's do), at delays from zero to seconds,
// many of them tied, some either side of a power of two (where the radix
// heap's buckets divide), and RunFor stopping between them (so that some
// are scheduled for before the last key the queue looked at), run one by
// one in exactly the order of a plain list ordered by (time, scheduling
// order), ties included.
func TestVirtualOrderAgainstModel(t *testing.T) {
	type entry struct {
		key     time.Duration
		seq     int
		stopped bool
		timer   Timer
	}
	delays := []time.Duration{0, time.Microsecond, 9 * time.Microsecond, 1<<20 - 1, 1 << 20, 1<<20 + 1, 2 * time.Millisecond, time.Second}
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 7))
		c := NewVirtual(time.Time{})
		var model []*entry // pending, in scheduling order
		seq, ran := 0, 0
		var schedule func()
		schedule = func() {
			var d time.Duration
			switch rng.IntN(3) {
			case 0:
				d = delays[rng.IntN(len(delays))]
			case 1:
				d = time.Duration(rng.IntN(4)) * time.Millisecond // ties
			default:
				d = time.Duration(rng.Int64N(int64(3 * time.Second)))
			}
			e := &entry{key: c.Now().Sub(Epoch) + d, seq: seq}
			seq++
			e.timer = c.AfterFunc(d, func() {
				// The model's first pending entry must be this one.
				var first *entry
				for _, m := range model {
					if !m.stopped && (first == nil || m.key < first.key || m.key == first.key && m.seq < first.seq) {
						first = m
					}
				}
				if first != e {
					t.Fatalf("seed %d: ran #%d at %v, the model's next is #%d at %v", seed, e.seq, e.key, first.seq, first.key)
				}
				model = slices.DeleteFunc(model, func(m *entry) bool { return m == e || m.stopped })
				ran++
				for range rng.IntN(4) {
					if seq < 12000 {
						schedule()
					}
				}
				if len(model) > 0 && rng.IntN(3) == 0 {
					m := model[rng.IntN(len(model))]
					if !m.stopped {
						m.stopped = true
						if !m.timer.Stop() {
							t.Fatalf("seed %d: #%d not pending", seed, m.seq)
						}
					}
				}
			})
			model = append(model, e)
		}
		for range 200 {
			schedule()
		}
		for c.Pending() > 0 {
			c.RunFor(time.Duration(rng.Int64N(int64(50 * time.Millisecond))))
		}
		if ran < 5000 {
			t.Fatalf("seed %d: only %d callbacks ran", seed, ran)
		}
	}
}

// TestVirtualTies: callbacks due at the same instant run in the order
// they were scheduled, wherever the queue held them: one scheduled long
// before for that instant (split down from a higher bucket) runs before
// one scheduled for it later, and one scheduled, after RunUntil looked
// ahead, for before what it saw runs first.
func TestVirtualTies(t *testing.T) {
	c := NewVirtual(time.Time{})
	var got []string
	const k = 1 << 20
	c.AfterFunc(k+5, func() { got = append(got, "a") })
	c.AfterFunc(k, func() {
		// a now waits in a low bucket: b, due at the same instant, after it.
		c.AfterFunc(5, func() { got = append(got, "b") })
	})
	c.RunFor(time.Millisecond) // k+5 ns is 1.048581 ms: nothing due yet
	c.RunFor(time.Millisecond)
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("ran %v, want [a b]", got)
	}

	got = nil
	c = NewVirtual(time.Time{})
	c.AfterFunc(10*time.Millisecond, func() { got = append(got, "a") })
	c.RunFor(5 * time.Millisecond) // looks at a, runs nothing
	c.AfterFunc(5*time.Millisecond, func() { got = append(got, "c") })
	c.AfterFunc(time.Millisecond, func() { got = append(got, "early") })
	c.RunFor(10 * time.Millisecond)
	if !slices.Equal(got, []string{"early", "a", "c"}) {
		t.Fatalf("ran %v, want [early a c]", got)
	}
}

// TestKeyAfterAgainstTime: the queue key of Now()+d that keyAfter reads
// off nowKey is the one time.Time arithmetic gives (Now().Add(d) less
// the start, saturating), for clocks started with and without a
// monotonic reading, at any time they stand at, for delays up to
// MaxInt64; Elapsed and Start give Now back. Fails on a key that wraps
// instead of saturating.
func TestKeyAfterAgainstTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, start := range []time.Time{Epoch, time.Now(), Epoch.In(time.FixedZone("UTC+1", 3600))} {
		c := NewVirtual(start)
		for i := range 2000 {
			step := time.Duration(rng.Int64N(int64(time.Hour)))
			if i%100 == 99 {
				step = time.Duration(rng.Int64N(math.MaxInt64 / 4))
			}
			c.AfterFunc(step, func() {})
			c.Step()
			e, ok := c.Elapsed()
			if !ok || !c.Start().Add(e).Equal(c.Now()) || c.Now().Sub(c.Start()) != e {
				t.Fatalf("Elapsed() = %v, %v at %v (start %v)", e, ok, c.Now(), c.Start())
			}
			for _, d := range []time.Duration{0, 1, step, time.Duration(rng.Int64N(math.MaxInt64)), math.MaxInt64 - e, math.MaxInt64 - e + 1, math.MaxInt64} {
				if d < 0 {
					continue
				}
				c.mu.Lock()
				got, want := c.keyAfter(d), int64(c.now.Add(d).Sub(c.start))
				c.mu.Unlock()
				if got != want {
					t.Fatalf("start %v, at +%v: keyAfter(%v) = %d, time.Time says %d", start, e, d, got, want)
				}
			}
		}
	}
}
