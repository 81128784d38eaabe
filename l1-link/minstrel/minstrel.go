// Package minstrel chooses the PHY rate of each unicast frame, per
// destination, from how earlier frames fared: a minstrel-like rate control
// (after Linux mac80211's minstrel). For every destination it keeps an
// estimate of each rate's per-attempt success probability (an exponentially
// weighted average), sends frames at the rate with the best expected
// throughput — probability over the time an attempt takes — and spends one
// frame in SampleEvery on another rate that could do better, so it notices
// when the link improves as well as when it degrades.
//
// A frame's rates are a chain (its first attempts at one rate, its
// retries at another), so a sample costs one attempt at the rate sampled.
// A Minstrel is not safe for concurrent use; its owner serialises
// calls (the medium's lock, the link's writer).
package minstrel

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// Config configures New.
type Config struct {
	// Rates are the rates to choose from (any unit, kbit/s for 802.11);
	// at least one.
	Rates []int
	// Cost is the time one attempt at a rate occupies the air (a typical
	// frame with the MAC's overhead), by which throughput is weighed.
	Cost func(rate int) time.Duration
	// Start is the rate for a destination nothing is known of yet (0 or
	// not in Rates: the slowest).
	Start int
	// Seed drives the sampling, so that simulations repeat.
	Seed uint64
	// SampleEvery: one frame in SampleEvery samples another rate (0: 16).
	SampleEvery int
	// MaxPeers bounds the destinations remembered (0: 256); past it the
	// least recently used is forgotten.
	MaxPeers int
}

// update folds a rate's counts into its estimate once it has this many
// attempts; weight is the new counts' share (mac80211 uses 25 %).
const (
	update = 8
	weight = 0.25
	// minProb: a rate that succeeds less often counts as useless.
	minProb = 0.1
)

// Minstrel is the rate control of one radio.
type Minstrel struct {
	cfg   Config
	rates []int // ascending
	cost  []time.Duration
	start int // index
	rng   *rand.Rand
	peers map[string]*peer
	tick  uint64
}

type peer struct {
	stats   []rateStats
	best    int // index of the rate of best expected throughput
	frames  int
	unknown int // rates never reported on
	used    uint64
}

type rateStats struct {
	att, succ int     // attempts and successes not yet folded in
	prob      float64 // per-attempt success probability
	known     bool
}

// New returns a rate control; it panics with no rates (a programming
// error: the radio's rates are fixed).
func New(cfg Config) *Minstrel {
	if len(cfg.Rates) == 0 {
		panic("minstrel: no rates")
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 16
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 256
	}
	m := &Minstrel{cfg: cfg, rates: slices.Clone(cfg.Rates), rng: rand.New(rand.NewPCG(cfg.Seed, 0x6d696e73)), peers: map[string]*peer{}}
	slices.Sort(m.rates)
	m.rates = slices.Compact(m.rates)
	for _, r := range m.rates {
		m.cost = append(m.cost, max(cfg.Cost(r), time.Nanosecond))
	}
	m.start = max(slices.Index(m.rates, cfg.Start), 0)
	return m
}

// Rate is the rate chain for the next frame to dst: n attempts at first,
// the rest at then. A normal frame goes at the best rate throughout (n
// 0); a sample tries its rate once and falls back to the best.
func (m *Minstrel) Rate(dst link.Addr) (first, n, then int) {
	p := m.peer(dst.String())
	p.frames++
	every := m.cfg.SampleEvery
	if p.unknown > 0 {
		// Rates never tried yet: explore faster.
		every = 4
	}
	best := m.rates[p.best]
	if p.frames%every == 0 {
		if i, ok := m.sample(p); ok {
			return m.rates[i], 1, best
		}
	}
	return best, 0, best
}

// Report tells how a frame to dst at rate fared: attempts times on the
// air, acknowledged at the last of them or never.
func (m *Minstrel) Report(dst link.Addr, rate, attempts int, acked bool) {
	i := slices.Index(m.rates, rate)
	if i < 0 || attempts <= 0 {
		return
	}
	p := m.peer(dst.String())
	s := &p.stats[i]
	s.att += attempts
	if acked {
		s.succ++
	}
	if s.att < update && s.known && acked {
		return
	}
	// Fold in: a rate's first report at once (a first estimate), a known
	// rate's when it failed a whole frame (conditions changed), else once
	// there are enough attempts to say something.
	if !s.known {
		p.unknown--
	}
	q := float64(s.succ) / float64(s.att)
	if s.known {
		s.prob = (1-weight)*s.prob + weight*q
	} else {
		s.prob, s.known = q, true
	}
	s.att, s.succ = 0, 0
	m.choose(p)
}

// Best is the rate frames to dst go at now (samples aside).
func (m *Minstrel) Best(dst link.Addr) int {
	if p := m.peers[dst.String()]; p != nil {
		return m.rates[p.best]
	}
	return m.rates[m.start]
}

// throughput is a rate's expected successes per second of air.
func (m *Minstrel) throughput(p *peer, i int) float64 {
	s := p.stats[i]
	if !s.known || s.prob < minProb {
		return 0
	}
	return s.prob / m.cost[i].Seconds()
}

// choose makes the rate of best expected throughput p's rate; while
// nothing is known the start rate stays.
func (m *Minstrel) choose(p *peer) {
	best, tp := p.best, m.throughput(p, p.best)
	for i := range m.rates {
		if t := m.throughput(p, i); t > tp {
			best, tp = i, t
		}
	}
	if tp == 0 {
		// Every rate tried is useless: fall back to the slowest not known
		// to fail, the one most likely to get through.
		best = 0
		for i := range m.rates {
			if !p.stats[i].known || p.stats[i].prob >= minProb {
				best = i
				break
			}
		}
	}
	p.best = best
}

// sample picks a rate other than the best that could beat it: one whose
// throughput, were every attempt to succeed, exceeds the best's expected
// throughput. Three samples in four go to the nearest such rate (the next
// step up), the rest to any; a rate already known to do worse than the
// best is tried again only one time in sixteen, so that a link that gets
// better is still noticed without spending much on it.
func (m *Minstrel) sample(p *peer) (int, bool) {
	tp := m.throughput(p, p.best)
	var cand []int
	for i := range m.rates {
		if i == p.best || 1/m.cost[i].Seconds() <= tp {
			continue
		}
		if m.throughput(p, i) < tp && p.stats[i].known && m.rng.IntN(16) != 0 {
			continue
		}
		cand = append(cand, i)
	}
	if len(cand) == 0 {
		return 0, false
	}
	if m.rng.IntN(4) != 0 {
		// The candidate that would gain least: the next step up.
		near := cand[0]
		for _, i := range cand[1:] {
			if m.cost[i] > m.cost[near] {
				near = i
			}
		}
		return near, true
	}
	return cand[m.rng.IntN(len(cand))], true
}

// peer returns dst's state, creating it (and forgetting the least recently
// used destination past MaxPeers).
func (m *Minstrel) peer(dst string) *peer {
	m.tick++
	if p := m.peers[dst]; p != nil {
		p.used = m.tick
		return p
	}
	if len(m.peers) >= m.cfg.MaxPeers {
		var old string
		var at uint64
		for k, p := range m.peers {
			if old == "" || p.used < at || (p.used == at && k < old) {
				old, at = k, p.used
			}
		}
		delete(m.peers, old)
	}
	p := &peer{stats: make([]rateStats, len(m.rates)), best: m.start, used: m.tick, unknown: len(m.rates)}
	m.peers[dst] = p
	return p
}

// Peers is the number of destinations remembered.
func (m *Minstrel) Peers() int { return len(m.peers) }
