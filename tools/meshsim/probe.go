package meshsim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
)

// Probes: every measurement Package is named by its hash before it is
// sent, and every routing decision about it is logged, so that what is
// reported is what happened: every attempt counted (a sender tries again
// after a failure), every hop any attempt took counted, the delivered
// copy's path read off the decisions that carried it, and each probe's
// outcome — delivered, failed with a typed error, or neither (a silent
// loss, which must not happen).

// ProbeStats is what a batch of probes found.
type ProbeStats struct {
	Pairs      int            `json:"pairs"`
	Delivered  int            `json:"delivered"`
	Failed     map[string]int `json:"failed,omitempty"` // by the error the sender's result ended with (the receipt may be what was lost)
	Unreported int            `json:"unreported"`       // no result by the end of the wait: a silent loss (must be 0)
	// Misdelivered counts probes a node other than their destination took
	// as its own (must be 0).
	Misdelivered int `json:"misdelivered"`
	// DeliveryRatio is delivered over pairs.
	DeliveryRatio float64 `json:"delivery_ratio"`
	// Attempts is the mean number of times a probe's sender sent it; First
	// counts the probes delivered by their first attempt.
	Attempts float64 `json:"attempts_mean"`
	First    int     `json:"delivered_first_attempt"`
	// Stretch of the path the delivered copy took over the shortest path
	// (breadth-first over the live graph), over the delivered probes: mean,
	// p95 and max; StretchP95All counts every probe, a failed one as
	// infinitely long (null when more than 5 % failed).
	StretchMean   float64  `json:"stretch_mean"`
	StretchP95    float64  `json:"stretch_p95"`
	StretchMax    float64  `json:"stretch_max"`
	StretchP95All *float64 `json:"stretch_p95_all_pairs"`
	// Effort is every hop every attempt of a delivered probe took (copies
	// included) over its shortest path, mean.
	Effort       float64 `json:"effort_mean"`
	MeanHops     float64 `json:"mean_hops"`
	MeanShortest float64 `json:"mean_shortest"`
	// Errors names a few of the failures.
	Errors []string `json:"errors,omitempty"`
}

// probeLog is what the routers said about one probe.
type probeLog struct {
	src, dst   int
	res        *node.Result
	attempts   int   // decisions at the source with no neighbour it came from
	sent       int   // hops any attempt took
	hops       int   // the delivered copy's path, in hops (-1: not delivered)
	deliveredT uint8 // the ttl the delivered copy arrived with
	elsewhere  int   // copies a node other than the destination took as its own
	steps      []probeStep
}

// probeStep is one decision about a probe: node i passed it on (or took
// it) with ttl, having got it from node from (-1: made it).
type probeStep struct {
	node, from int
	ttl        uint8
	delivered  bool
}

// logProbe records a decision about a probe (onHop calls it).
func (m *routeMesh) logProbe(i int, h *route.Hop) {
	pl := m.probes[h.Hash]
	if pl == nil || h.Error {
		return
	}
	from := -1
	if j, ok := m.idx[h.From]; ok && h.From != (identity.NodeID{}) {
		from = j
	}
	pl.steps = append(pl.steps, probeStep{node: i, from: from, ttl: h.TTL, delivered: h.Delivered})
	switch {
	case h.Delivered && i != pl.dst:
		pl.elsewhere++
	case h.Delivered:
		if pl.hops < 0 {
			// The hop limit counts down one per relay from the sender's:
			// the path is exactly that many hops, plus the last.
			pl.hops = int(m.ttl) - int(h.TTL) + 1
			pl.deliveredT = h.TTL
		}
	case !h.Proxy:
		pl.sent++
		if from < 0 && i == pl.src {
			pl.attempts++
		}
	}
}

// path reads the delivered copy's path off its decisions, from the
// destination back: each node got it with the ttl the one before sent it.
func (pl *probeLog) path() []int {
	if pl.hops < 0 {
		return nil
	}
	path := []int{pl.dst}
	ttl := pl.deliveredT
	from := -1
	for _, s := range pl.steps {
		if s.delivered && s.node == pl.dst && s.ttl == pl.deliveredT {
			from = s.from
			break
		}
	}
	for from >= 0 && len(path) <= pl.hops {
		path = append(path, from)
		cur := from
		from = -1
		for k := len(pl.steps) - 1; k >= 0; k-- {
			if s := pl.steps[k]; s.node == cur && !s.delivered && s.ttl == ttl {
				from = s.from
				break
			}
		}
		ttl++
	}
	slices.Reverse(path)
	return path
}

// probeBatch sends a probe between each of n random pairs of live nodes
// that can reach each other (one every gap of mesh time), waits for every
// result (at most wait after the last), and measures them. what names the
// stage in the progress.
func (m *routeMesh) probeBatch(rng *rand.Rand, n int, gap, wait time.Duration, what string) ProbeStats {
	pls := m.sendProbes(rng, n, gap, what)
	m.begin("waiting for receipts"+what, len(pls))
	first, checks := 0, 0
	m.clk.RunWhile(m.clk.Now().Add(wait), func() bool {
		for first < len(pls) && pls[first].res.Finished() {
			first++
		}
		if checks++; checks%10000 == 0 {
			m.tick(first)
		}
		return first < len(pls)
	})
	m.batch = pls
	return m.measure(pls)
}

// sendProbes sends n probes between random connected pairs, gap apart.
func (m *routeMesh) sendProbes(rng *rand.Rand, n int, gap time.Duration, what string) []*probeLog {
	comp, sizes := m.liveComponents()
	var live []int
	for i := range m.nodes {
		if !m.dead[i] && sizes[comp[i]] > 1 && (m.adv == nil || !m.adv.is[i]) {
			live = append(live, i)
		}
	}
	var pls []*probeLog
	if len(live) < 2 {
		return nil
	}
	m.begin("routing"+what, n)
	for p := range n {
		if p%50 == 0 {
			m.tick(p)
		}
		if pl := m.sendProbe(rng, live, comp, fmt.Sprintf("probe %d%s", p, what)); pl != nil {
			pls = append(pls, pl)
		}
		m.clk.RunFor(gap)
	}
	return pls
}

// sendProbe sends one probe between a random pair of live nodes in one
// component, with a name.
func (m *routeMesh) sendProbe(rng *rand.Rand, live, comp []int, name string) *probeLog {
	src := live[rng.IntN(len(live))]
	dst := live[rng.IntN(len(live))]
	for dst == src || comp[dst] != comp[src] {
		dst = live[rng.IntN(len(live))]
	}
	blob := fmt.Appendf(nil, "%s from %d to %d seed %d", name, src, dst, m.cfg.Seed)
	pkg := packet.NewPackage(RouteApp, blob)
	pl := &probeLog{src: src, dst: dst, hops: -1}
	m.probes[pkg.Hash] = pl
	pl.res = m.rts[src].Send(m.nodes[dst].ID(), RouteApp, blob, &route.Options{Mode: m.cfg.Mode})
	return pl
}

// measure sums up probes whose results are in (or not: unreported).
func (m *routeMesh) measure(pls []*probeLog) ProbeStats {
	st := ProbeStats{Pairs: len(pls), Failed: map[string]int{}}
	var stretches, efforts []float64
	var hops, shortest, attempts int
	var all []float64
	for _, pl := range pls {
		attempts += pl.attempts
		if pl.elsewhere > 0 {
			st.Misdelivered++
		}
		switch {
		case !pl.res.Finished():
			st.Unreported++
			all = append(all, math.Inf(1))
			continue
		case pl.res.Err() != nil:
			st.Failed[probeFailName(pl.res.Err())]++
			if len(st.Errors) < 10 {
				st.Errors = append(st.Errors, fmt.Sprintf("%d→%d: %v", pl.src, pl.dst, pl.res.Err()))
			}
			all = append(all, math.Inf(1))
			continue
		case pl.hops < 0 && pl.elsewhere > 0:
			// Confirmed by a node that took the Package for its own (an
			// address the name led to that another node holds now): a
			// misdelivery, never a success.
			st.Failed["delivered to another node"]++
			all = append(all, math.Inf(1))
			continue
		case pl.hops < 0:
			// A receipt without a delivery the observers saw: count it as
			// what it is, not as a success.
			st.Failed["receipt without a delivery"]++
			all = append(all, math.Inf(1))
			continue
		}
		st.Delivered++
		if pl.attempts == 1 {
			st.First++
		}
		sp := m.bfs(pl.src)[pl.dst]
		if sp <= 0 {
			continue
		}
		s := float64(pl.hops) / float64(sp)
		stretches = append(stretches, s)
		all = append(all, s)
		efforts = append(efforts, float64(pl.sent)/float64(sp))
		hops += pl.hops
		shortest += sp
		if m.sample == nil && pl.hops >= 4 {
			m.sample = pl.path()
		}
		if len(m.samples) < MaxSampleRoutes {
			m.samples = append(m.samples, pl.path())
		}
	}
	if len(st.Failed) == 0 {
		st.Failed = nil
	}
	if st.Pairs > 0 {
		st.DeliveryRatio = float64(st.Delivered) / float64(st.Pairs)
		st.Attempts = float64(attempts) / float64(st.Pairs)
	}
	m.batchStr = slices.Sorted(slices.Values(stretches))
	if len(stretches) > 0 {
		st.StretchMean, st.StretchP95, st.StretchMax = meanP95Max(stretches)
		st.Effort, _, _ = meanP95Max(efforts)
		st.MeanHops = float64(hops) / float64(len(stretches))
		st.MeanShortest = float64(shortest) / float64(len(stretches))
	}
	if len(all) > 0 {
		sort.Float64s(all)
		if p := all[p95Index(len(all))]; !math.IsInf(p, 1) {
			st.StretchP95All = &p
		}
	}
	return st
}

// meanP95Max returns the mean, 95th percentile (nearest rank) and maximum.
func meanP95Max(v []float64) (mean, p95, mx float64) {
	s := slices.Clone(v)
	sort.Float64s(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return sum / float64(len(s)), s[p95Index(len(s))], s[len(s)-1]
}

func p95Index(n int) int { return int(math.Ceil(0.95*float64(n))) - 1 }

// probeFailName names an error for the tallies: the mesh's typed errors
// by their kind (without who reported them), the router's by their text.
func probeFailName(err error) string {
	if errors.Is(err, route.ErrNoReceipt) {
		return "no receipt" // (it wraps ErrAbandoned; a hop's abandoned sequence is another failure)
	}
	if node.CodeOf(err) != 0 {
		return failName(err)
	}
	var re *node.RemoteError
	if errors.As(err, &re) {
		err = re.Err
	}
	return err.Error()
}

// delivered reports a probe confirmed and delivered to its destination.
func (pl *probeLog) delivered() bool {
	return pl.res.Finished() && pl.res.Err() == nil && pl.hops >= 0 && pl.elsewhere == 0
}

// countHonest counts, with adversaries in the mesh, the batch's pairs
// whose every shortest path avoids them, and how many of those arrived.
func (m *routeMesh) countHonest(res *RouteResult, pls []*probeLog) {
	if m.adv == nil {
		return
	}
	for _, pl := range pls {
		if ds, dt := m.bfs(pl.src), m.bfs(pl.dst); m.honestPair(pl.src, pl.dst, ds, dt) {
			res.HonestPairs++
			if pl.delivered() {
				res.HonestDelivered++
			}
		}
	}
}
