package minstrel_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/minstrel"
)

var rates = []int{1000, 2000, 5500, 6000, 9000, 11000, 12000, 18000, 24000, 36000, 48000, 54000}

func cost(r int) time.Duration { return espnow.ExchangeTime(250, espnow.Rate(r)) }

// channel is a destination whose per-attempt success probability depends
// on the rate; it plays frames through the MAC's retries.
type channel struct {
	p   map[int]float64
	rng *rand.Rand
}

// send plays one frame at one rate: attempts made, acknowledged or not,
// and the air it took.
func (c *channel) send(rate int) (int, bool, time.Duration) {
	return c.chain(rate, 0, rate, func(int, int, bool) {})
}

// chain plays a frame with a rate chain, reporting each rate's attempts.
func (c *channel) chain(first, n, then int, report func(rate, att int, ok bool)) (int, bool, time.Duration) {
	var air time.Duration
	at := 0
	for a := 1; a <= espnow.RetryLimit; a++ {
		rate := first
		if n > 0 && a > n {
			if a == n+1 {
				report(first, at, false)
				at = 0
			}
			rate = then
		}
		at++
		air += cost(rate)
		if c.rng.Float64() < c.p[rate] {
			report(rate, at, true)
			return a, true, air
		}
	}
	last := first
	if n > 0 && espnow.RetryLimit > n {
		last = then
	}
	report(last, at, false)
	return espnow.RetryLimit, false, air
}

// run sends n frames to dst through m and returns the goodput (frames per
// second of air) and the rate chosen at the end.
func run(m *minstrel.Minstrel, dst espnow.MAC, c *channel, n int) (float64, int) {
	var air time.Duration
	ok := 0
	for range n {
		first, k, then := m.Rate(dst)
		_, acked, d := c.chain(first, k, then, func(r, att int, ok bool) { m.Report(dst, r, att, ok) })
		air += d
		if acked {
			ok++
		}
	}
	return float64(ok) / air.Seconds(), m.Best(dst)
}

// snr makes a channel where rates up to fast succeed 95 % of the time,
// the next 40 %, and faster ones 2 %.
func snr(fast int, seed uint64) *channel {
	c := &channel{p: map[int]float64{}, rng: rand.New(rand.NewPCG(seed, 1))}
	next := false
	for _, r := range rates {
		switch {
		case r <= fast:
			c.p[r] = 0.95
		case !next:
			c.p[r], next = 0.4, true
		default:
			c.p[r] = 0.02
		}
	}
	return c
}

// The best fixed rate's goodput on a channel, and which rate it is.
func bestFixed(c *channel, n int) (float64, int) {
	best, at := 0.0, 0
	for _, r := range rates {
		var air time.Duration
		ok := 0
		for range n {
			_, acked, d := c.send(r)
			air += d
			if acked {
				ok++
			}
		}
		if g := float64(ok) / air.Seconds(); g > best {
			best, at = g, r
		}
	}
	return best, at
}

// Per destination, minstrel finds the rate of best throughput and gets
// within 10 % of what the best fixed rate would give.
func TestConverges(t *testing.T) {
	for i, fast := range []int{1000, 2000, 11000, 24000, 48000, 54000} {
		m := minstrel.New(minstrel.Config{Rates: rates, Cost: cost, Start: 1000, Seed: uint64(i)})
		dst := espnow.MAC{2, 0, 0, 0, 0, byte(i)}
		c := snr(fast, uint64(i))
		run(m, dst, c, 2000) // learn
		got, chose := run(m, dst, c, 20000)
		want, at := bestFixed(snr(fast, uint64(i)+100), 20000)
		// (Rates whose throughputs are within a few per cent swap with the
		// estimates' noise: the rate chosen must be as good, not the same.)
		tp := func(r int) float64 { return c.p[r] / cost(r).Seconds() }
		if got < 0.9*want || tp(chose) < 0.95*tp(at) {
			t.Errorf("good up to %d kbit/s: chose %d kbit/s for %.0f frames/s; the best fixed rate %d gives %.0f", fast, chose, got, at, want)
		}
		t.Logf("good up to %d kbit/s: chose %d, %.0f frames/s (best fixed %d: %.0f)", fast, chose, got, at, want)
	}
}

// Each destination has its own rate, and a link that degrades or recovers
// is followed.
func TestPerPeerAndAdapts(t *testing.T) {
	m := minstrel.New(minstrel.Config{Rates: rates, Cost: cost, Start: 1000, Seed: 7})
	near, far := espnow.MAC{2, 0, 0, 0, 0, 1}, espnow.MAC{2, 0, 0, 0, 0, 2}
	cn, cf := snr(54000, 1), snr(2000, 2)
	for range 3000 {
		for _, d := range []struct {
			dst espnow.MAC
			c   *channel
		}{{near, cn}, {far, cf}} {
			first, k, then := m.Rate(d.dst)
			d.c.chain(first, k, then, func(r, att int, ok bool) { m.Report(d.dst, r, att, ok) })
		}
	}
	if m.Best(near) != 54000 || m.Best(far) != 2000 {
		t.Fatalf("near at %d, far at %d", m.Best(near), m.Best(far))
	}
	// The near peer walks away (good up to 12M: 12M is best), then comes
	// back half way (36M).
	if _, r := run(m, near, snr(12000, 3), 3000); r != 12000 {
		t.Fatalf("degraded to 12M: at %d", r)
	}
	if _, r := run(m, near, snr(36000, 4), 6000); r != 36000 {
		t.Fatalf("recovered to 36M: at %d", r)
	}
}

// Destinations past MaxPeers are forgotten, least recently used first.
func TestBounded(t *testing.T) {
	m := minstrel.New(minstrel.Config{Rates: rates, Cost: cost, Start: 6000, MaxPeers: 4})
	for i := range 100 {
		dst := espnow.MAC{2, 0, 0, 0, 0, byte(i)}
		r, _, _ := m.Rate(dst)
		m.Report(dst, r, 1, true)
	}
	if n := m.Peers(); n != 4 {
		t.Fatalf("%d destinations kept", n)
	}
}
