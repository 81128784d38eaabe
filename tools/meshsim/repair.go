package meshsim

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// Failures and their repair: the root of tree 0 dies (--fail-root), or a
// share of all nodes at once (--kill). From that instant a probe goes
// every second between live nodes that can still reach each other, until
// RepairPeriods claim periods after the failure; then a batch of pairs is
// sent; every probe's outcome is counted (delivered, failed with a typed
// error, or unreported: never silent). The trees' and the names' repair
// are timed too.

// RepairPeriods is when the batch after a failure goes: every pair still
// connected must be delivered again within three claim periods.
const RepairPeriods = 3

// RepairStats is what a failure and its repair did.
type RepairStats struct {
	Event  string `json:"event"` // "fail-root" or "kill"
	Killed int    `json:"killed"`
	// Components is how many pieces the live nodes fell into (a node cut
	// off alone is one); probes go only within a piece.
	Components int `json:"components"`
	// TreesS and NamesS: mesh time from the failure until the trees were
	// whole again in every piece of two or more nodes (every live node
	// placed under a live root of its piece, knowing its neighbours), and
	// until every record was stored again too; in claim periods as well.
	// Null: not within the wait.
	TreesS       *float64 `json:"trees_s"`
	TreesPeriods *float64 `json:"trees_claim_periods"`
	NamesS       *float64 `json:"names_s"`
	NamesPeriods *float64 `json:"names_claim_periods"`
	// During: the probes sent every second from the failure on;
	// AfterPeriods and After: the batch sent that many claim periods after
	// it.
	During       ProbeStats `json:"during"`
	AfterPeriods int        `json:"after_claim_periods"`
	After        ProbeStats `json:"after"`
}

// repair kills the victims and measures the repair.
func (m *routeMesh) repair(rng *rand.Rand, event string, victims []int) *RepairStats {
	rs := &RepairStats{Event: event, Killed: len(victims), AfterPeriods: RepairPeriods}
	for _, v := range victims {
		m.kill(v)
	}
	comp, sizes := m.liveComponents()
	rs.Components = len(sizes)
	var live []int
	for i := range m.nodes {
		if !m.dead[i] && sizes[comp[i]] > 1 {
			live = append(live, i)
		}
	}
	start := m.clk.Now()
	period := m.cfg.ClaimPeriod
	afterAt := start.Add(RepairPeriods * period)
	// The probes of the repair, one a second.
	var during []*probeLog
	n := 0
	var tick func()
	tick = func() {
		if !m.clk.Now().Before(afterAt) || len(live) < 2 {
			return
		}
		during = append(during, m.sendProbe(rng, live, comp, "repair probe "+strconv.Itoa(n)))
		n++
		m.clk.AfterFunc(time.Second, tick)
	}
	m.clk.AfterFunc(0, tick)
	mark := func(now time.Time, s, p **float64) {
		if *s == nil {
			d := now.Sub(start).Seconds()
			per := d / period.Seconds()
			*s, *p = &d, &per
		}
	}
	watch := func() {
		now := m.clk.Now()
		if rs.TreesS == nil && m.converged() {
			mark(now, &rs.TreesS, &rs.TreesPeriods)
		}
		if rs.TreesS != nil && rs.NamesS == nil && m.named() {
			mark(now, &rs.NamesS, &rs.NamesPeriods)
		}
	}
	// Watched every half second of mesh time until both are whole (or
	// the wait ends), through the batch after and its results too: a
	// repair that ends while the batch runs is timed when it ends.
	deadline := start.Add(m.cfg.MaxConverge)
	var poll func()
	poll = func() {
		watch()
		if (rs.TreesS == nil || rs.NamesS == nil) && m.clk.Now().Before(deadline) {
			m.clk.AfterFunc(500*time.Millisecond, poll)
		}
	}
	m.clk.AfterFunc(500*time.Millisecond, poll)
	m.begin("repairing after the "+event, int(afterAt.Sub(start)/time.Second))
	for m.clk.Now().Before(afterAt) {
		m.clk.RunUntil(minTime(m.clk.Now().Add(500*time.Millisecond), afterAt))
		m.tick(int(m.clk.Now().Sub(start) / time.Second))
	}
	rs.After = m.probeBatch(rng, min(m.cfg.Pairs, 300), m.probeGap(), m.probeWait(), " after the "+event)
	// The probes of the repair have had their results since (each sender
	// tries for at most a few minutes).
	m.clk.RunWhile(m.clk.Now().Add(m.probeWait()), func() bool {
		for _, pl := range during {
			if !pl.res.Finished() {
				return true
			}
		}
		return false
	})
	rs.During = m.measure(during)
	// The repair's end, if it had not come yet.
	for (rs.TreesS == nil || rs.NamesS == nil) && m.clk.Now().Before(deadline) {
		m.clk.RunUntil(minTime(m.clk.Now().Add(500*time.Millisecond), deadline))
	}
	return rs
}

// kill takes node v off the air for good.
func (m *routeMesh) kill(v int) {
	m.dead[v] = true
	// Its routing and trees stop with it: a switched-off node's timers
	// would otherwise go on starting terms of its own trees (hundreds, in
	// a kill of a tenth of 1,000 nodes) and count in the stage's work.
	m.rts[v].Close()
	m.nodes[v].Close()
	for _, nb := range m.radios[v].Neighbors() {
		m.med.Disconnect(m.radios[v], nb)
	}
}

// rootVictim is the root of tree 0 (-1 if none is known).
func (m *routeMesh) rootVictim() int {
	rootKey, _ := m.trees[0].Root(0)
	var root identity.NodeID
	copy(root[:], rootKey)
	if i, ok := m.idx[root]; ok {
		return i
	}
	return -1
}

// killVictims draws share of the live nodes at random.
func (m *routeMesh) killVictims(rng *rand.Rand, share float64) []int {
	var live []int
	for i := range m.nodes {
		if !m.dead[i] {
			live = append(live, i)
		}
	}
	n := int(share*float64(len(live)) + 0.5)
	rng.Shuffle(len(live), func(a, b int) { live[a], live[b] = live[b], live[a] })
	return live[:min(n, len(live))]
}

// liveComponents labels each live node with its piece of the live graph
// (dead nodes get -1) and returns the pieces' sizes.
func (m *routeMesh) liveComponents() (comp []int, sizes []int) {
	comp = make([]int, len(m.adj))
	for i := range comp {
		comp[i] = -1
	}
	var stack []int
	for s := range m.adj {
		if comp[s] >= 0 || m.dead[s] {
			continue
		}
		c := len(sizes)
		sizes = append(sizes, 1)
		comp[s] = c
		stack = append(stack[:0], s)
		for len(stack) > 0 {
			u := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, v := range m.adj[u] {
				if comp[v] < 0 && !m.dead[v] {
					comp[v] = c
					sizes[c]++
					stack = append(stack, v)
				}
			}
		}
	}
	return comp, sizes
}
