package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
)

// TestInstantAgainstTime: the MAC's instants compare, add and subtract
// as the time.Time values they stand for did, the zero time (never, and
// never plus a little) included, saturating where time.Time.Sub does.
func TestInstantAgainstTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Medium{t0: t0}
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func() (instant, time.Time) {
		d := time.Duration(rng.Int64N(int64(time.Millisecond)))
		if rng.IntN(3) == 0 {
			return never.add(d), time.Time{}.Add(d)
		}
		d += time.Duration(rng.Int64N(int64(24 * time.Hour)))
		return m.instant(t0.Add(d)), t0.Add(d)
	}
	for range 100000 {
		a, ta := pick()
		b, tb := pick()
		if got, want := a.sub(b), ta.Sub(tb); got != want {
			t.Fatalf("%d.sub(%d) = %v, time.Time says %v", a, b, got, want)
		}
		if (a < b) != ta.Before(tb) || (a > b) != ta.After(tb) {
			t.Fatalf("%d and %d ordered otherwise than %v and %v", a, b, ta, tb)
		}
		if a > never.add(time.Hour) && !m.timeAt(a).Equal(ta) {
			t.Fatalf("timeAt(%d) = %v, want %v", a, m.timeAt(a), ta)
		}
	}
}

// TestNowAgainstClock: the medium's instant read off a virtual clock's
// offset is the one clk.Now().Sub(t0) gives, for a medium made after the
// clock moved, and after the clock was run to a time of another
// location (where it falls back to Now).
func TestNowAgainstClock(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	clk.RunFor(1234567 * time.Microsecond)
	m := NewMedium(clk, PHY{}, 1)
	if m.vclk == nil {
		t.Fatal("a medium on a virtual clock reads no offset")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	check := func() {
		t.Helper()
		if got, want := m.now(), m.instant(clk.Now()); got != want {
			t.Fatalf("at %v: now() = %d, want %d", clk.Now(), got, want)
		}
	}
	for range 1000 {
		clk.AfterFunc(time.Duration(rng.Int64N(int64(time.Second))), func() {})
		clk.Step()
		check()
	}
	clk.RunUntil(clk.Now().Add(time.Second).In(time.FixedZone("UTC+1", 3600)))
	if _, ok := clk.Elapsed(); ok {
		t.Fatal("a time of another location taken as the start plus an offset")
	}
	check()
	clk.AfterFunc(time.Second, func() {})
	clk.Step()
	check()
}
