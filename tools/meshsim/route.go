package meshsim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// RouteConfig is one `mycelium sim route` measurement.
type RouteConfig struct {
	Nodes    int
	Degree   float64
	Topology Topology // random (default), grid, line, ring, clustered, hubs
	Graph    string   // a graph file instead: "i j" edges, one a line (# comments)
	Pairs    int
	Mode     bool // common-prefix metric
	Seed     uint64
	Loss     float64
	Trees    int // default: the link's (6 on ESP-NOW, 1 on LoRa)
	// FailRoot kills the root of tree 0 once the pairs are routed; Kill
	// kills that share of the nodes at random instead (0 < Kill ≤ 0.5).
	// Either way the repair is measured (RepairStats).
	FailRoot bool
	Kill     float64
	// Link is "espnow" (default) or "lora": every node on that one link,
	// its periods scaled to the link (linkProfile).
	Link string
	LoRa lora.Params // modulation on LoRa (default the RYLR-998's: SF9, 125 kHz)
	// DutyCycle is a LoRa node's transmit budget (default 1 %), what the
	// steady airtime is held against.
	DutyCycle float64
	// ClaimPeriod of the trees and BeaconPeriod of the nodes (default: the
	// link's).
	ClaimPeriod  time.Duration
	BeaconPeriod time.Duration
	// MaxConverge bounds the wait for convergence, and for a repair
	// (default 30 min of mesh time; 12 h on LoRa).
	MaxConverge time.Duration
	// Steady is the quiet window after convergence over which the steady
	// traffic is measured (default: one epoch cycle, EpochPeriods claim
	// periods). It starts at convergence, and a tree's first term runs on
	// to the tree's slot of the cycle (tree.stagger), so it holds the
	// renewals of the trees whose first term ends in it: 2 to 6 terms of
	// six trees in the README's runs (StageStats.Terms). The pairs
	// are routed when it ends, so its length also decides whether routing
	// meets a round of the trees' renewals (each tree renews every
	// EpochPeriods claim periods from its term's start, TermsS):
	// RouteResult.Window reports what fell in the routing window. Set, it
	// is MinSteady..MaxSteady.
	Steady time.Duration
	// SteadyOnCycle starts the steady window once every tree has started
	// a term since convergence, not at convergence: from its first
	// renewal on, a tree renews once a cycle at its slot, so a window of
	// one cycle then holds each tree's renewal once, as on a mesh that
	// has run for days. The stage before it, "reaching the cycle", lasts
	// at most two cycles (the slowest tree's first term); SteadyFromS
	// says when the window began.
	SteadyOnCycle bool
	// Progress, when set, is told the stage and how far through it the
	// measurement is.
	Progress Progress
	// Adversary names the attacks Adversaries nodes play once the trees
	// have converged (adversary.go); the pairs routed are then between
	// honest nodes.
	Adversary   []string
	Adversaries int
	// Attempts bounds each probe's sends, each after a failure in the
	// next best tree (0: the router's default, 4; 1: no retry).
	Attempts int
	// Pcap, when set, is a file that receives every frame on the medium
	// (radiotap + 802.11, as capture writes ESP-NOW).
	Pcap string
	// HopAuth turns on authenticated hops in every node
	// (node.Config.HopAuth): the convergence and delivery figures with and
	// without it.
	HopAuth bool
}

// RouteResult is what the measurement found.
type RouteResult struct {
	Nodes      int     `json:"nodes"`
	Edges      int     `json:"edges"`
	MeanDegree float64 `json:"mean_degree"`
	MaxDegree  int     `json:"max_degree"`
	Diameter   int     `json:"diameter"` // hops, the longest shortest path (at least: two sweeps of breadth-first search)
	Topology   string  `json:"topology"`
	Link       string  `json:"link"`
	Trees      int     `json:"trees"`
	Mode       int     `json:"mode"`
	Seed       uint64  `json:"seed"`
	// Converged is when every node had a place in every tree (or a lease,
	// where no parent had room), knew its neighbours' places, and had its
	// name record stored and confirmed: ConvergedS from a cold start, in
	// claim periods too; TreesS when the trees alone were. Null: not within
	// MaxConverge (NamesPending says how many records were missing).
	ConvergedS       *float64 `json:"converged_s"`
	ConvergedPeriods *float64 `json:"converged_claim_periods"`
	TreesS           *float64 `json:"trees_converged_s"`
	NamesPending     int      `json:"names_pending"`
	BeaconPeriods    float64  `json:"converged_beacon_periods"`
	// The pairs routed once converged (and after the steady window).
	ProbeStats
	MaxDepth   int `json:"max_depth"`   // levels, the deepest place in any tree
	MaxNibbles int `json:"max_nibbles"` // of the longest address (32 fit the wire)
	Leased     int `json:"leased"`      // places that are leases (no parent had room)
	// Window is when the pairs were routed (probes sent and their
	// receipts awaited), and the trees' new terms in it.
	Window RoutingWindow `json:"routing_window"`
	// Steady is the air over the steady window (control only: no probes
	// run in it); Forming from the cold start to convergence.
	Steady  AirStats `json:"steady"`
	Forming AirStats `json:"forming"`
	// SteadyFromS is when the steady window began (seconds from the
	// start): at convergence, or later with SteadyOnCycle.
	SteadyFromS float64 `json:"steady_from_s"`
	// Repair is the failure (--fail-root or --kill) and its repair.
	Repair *RepairStats `json:"repair,omitempty"`
	// Loops counts decisions that broke the invariant that rules loops
	// out (route.Hop.Check: the bound a path header carries must fall at
	// every hop, a plain Package must get strictly closer); StaleViews
	// those that took a neighbour to be nearer than it was (it had left
	// an epoch): no loop, the bound still fell.
	Loops      int      `json:"loops"`
	StaleViews int      `json:"stale_views"`
	LoopErrors []string `json:"loop_errors,omitempty"`
	// Hop sums the nodes' authenticated-hop counters (node.HopStats) over
	// the whole run, with HopAuth: what was tagged, opened, refused and
	// why.
	Hop *HopCounts `json:"hop,omitempty"`
	// Events the virtual clock ran, wall time per event of the simulation
	// proper (building excluded), and the largest heap seen.
	Events       uint64  `json:"events"`
	WallPerEvent float64 `json:"wall_us_per_event"`
	CPUS         float64 `json:"cpu_s"` // the process's CPU time over the simulation proper, as the OS counts it (user and system, every thread: the collector's too); on a loaded machine, a better figure than the wall time
	HeapMB       float64 `json:"heap_peak_mb"`
	// Stages splits the events, the mesh time and the CPU time by stage
	// (converging, storing names, steady state, pairs, repair): which one
	// a run's time goes to as the mesh grows.
	Stages     []StageStats `json:"stages"`
	WallTimeS  float64      `json:"wall_time_s"`
	SetupWallS float64      `json:"setup_wall_time_s"` // of the wall time, building the graph and the nodes
	// PlacedByDepth is, when the trees converged, how long after its
	// term began each node took the place it held, by the place's depth
	// (every tree): how a tree's forming time grows with its depth.
	PlacedByDepth []DepthTime `json:"placed_by_depth,omitempty"`
	// TermsS is, when the trees converged, when each tree's term then
	// began (mesh seconds from the cold start; null: node 0 has no place).
	TermsS       []*float64   `json:"trees_term_s,omitempty"`
	SampleRoute  []int        `json:"sample_route,omitempty"`
	Positions    [][2]float64 `json:"-"`
	Graph        [][]int      `json:"-"`
	Parents      []int        `json:"-"` // tree 0 parent of each node (-1: the root, or none)
	Root0        int          `json:"-"` // the root of tree 0 (-1: none)
	TreeParents  [][]int      `json:"-"` // each tree's parent of each node, as Parents
	Roots        []int        `json:"-"` // each tree's root (-1: none)
	SampleRoutes [][]int      `json:"-"` // the paths of the first delivered pairs (at most MaxSampleRoutes)
	Stretches    []float64    `json:"-"` // every delivered pair's stretch in the main batch, sorted
	AdversaryReport
}

// RoutingWindow is the stretch of mesh time in which the pairs were
// routed: from the first probe sent to the last result (the stages
// "routing" and "waiting for receipts"). A tree that starts a new term in
// it moves every node to a new epoch while probes, their lookups and
// receipts are on the way, so a table compares like with like only
// between runs whose windows met as many terms.
type RoutingWindow struct {
	// StartS is when the first probe was sent (mesh seconds from the cold
	// start), MeshS the window's length.
	StartS float64 `json:"start_s"`
	MeshS  float64 `json:"mesh_s"`
	// Renewals is the roots' new terms in the window (their periodic
	// renewals: tree.Stats.Renewals), Terms every term started in it, the
	// renewals included (Terms − Renewals: nodes that stood for root, a
	// root buried or an election raced), Epochs the epochs the nodes
	// entered.
	Renewals uint64 `json:"renewals"`
	Terms    uint64 `json:"terms"`
	Epochs   uint64 `json:"epochs"`
}

// DepthTime is the places of one depth, and how long after their term
// began they were taken (seconds, mean and the latest).
type DepthTime struct {
	Depth  int     `json:"depth"`
	Places int     `json:"places"`
	MeanS  float64 `json:"mean_s"`
	MaxS   float64 `json:"max_s"`
}

// placedAt is when a node took its place in a tree's epoch.
type placedAt struct {
	ts   uint8
	term int64
	at   time.Time
}

// onPlaced notes when node i took a new place in tree k (a place never
// moves within an epoch: a new one is a new epoch's).
func (m *routeMesh) onPlaced(i, k int) {
	p, ok := m.trees[i].Current(k)
	if !ok || m.placedAt[i][k].term == p.Term && m.placedAt[i][k].ts == p.TreeState {
		return
	}
	m.placedAt[i][k] = placedAt{ts: p.TreeState, term: p.Term, at: m.clk.Now()}
}

// placedByDepth is the live nodes' current places by depth, with how long
// after its term each was taken.
func (m *routeMesh) placedByDepth() []DepthTime {
	var out []DepthTime
	for i, t := range m.trees {
		if m.dead[i] {
			continue
		}
		for k := range m.cfg.Trees {
			p, ok := t.Current(k)
			if !ok || p.Root || m.placedAt[i][k].term != p.Term || m.placedAt[i][k].ts != p.TreeState {
				continue
			}
			for len(out) <= p.Depth {
				out = append(out, DepthTime{Depth: len(out)})
			}
			d := m.placedAt[i][k].at.Sub(time.Unix(0, p.Term)).Seconds()
			o := &out[p.Depth]
			o.Places++
			o.MeanS += d
			o.MaxS = max(o.MaxS, d)
		}
	}
	kept := out[:0]
	for _, o := range out {
		if o.Places > 0 {
			// A sum of equal times over their count may round a last
			// bit above any of them (three places at 7.677784935 s gave
			// a mean of 7.677784935000001): a mean is never above the
			// largest.
			o.MeanS = min(o.MeanS/float64(o.Places), o.MaxS)
			kept = append(kept, o)
		}
	}
	return kept
}

// StageStats is one stage of a run: its events, mesh time and CPU time.
type StageStats struct {
	Stage     string  `json:"stage"`
	Events    uint64  `json:"events"`
	MeshTimeS float64 `json:"mesh_time_s"`
	CPUS      float64 `json:"cpu_s"`
	// Terms is how many root terms the nodes started in the stage, over
	// every tree: at a cold start, one per tree when the elections do not
	// race (several candidates claiming before the best claim reaches
	// them make more); in the steady window, the roots' periodic new terms.
	// Only live nodes' work counts: a killed node's router and trees are
	// closed with it (route.Router.Close), its counts frozen at its death.
	Terms uint64 `json:"terms"`
	// Epochs is how many epochs the nodes entered in the stage, over
	// every tree (a node following each new term once makes one a term).
	Epochs uint64 `json:"epochs"`
	// Frames is the transmissions in the stage by kind of message, over
	// every node (MAC retries included, ACKs under "ack"): which kind's
	// work grows with the mesh.
	Frames map[string]uint64 `json:"frames_by_kind,omitempty"`
	// MACRetries and Later split Frames: the MAC's retries of a frame
	// unacknowledged, and a sequence's packets after its first (a message
	// longer than a frame).
	MACRetries map[string]uint64 `json:"mac_retries_by_kind,omitempty"`
	Later      map[string]uint64 `json:"later_packets_by_kind,omitempty"`
	// Originated and Forwarded sum the routers' Packages made and passed
	// on in the stage (route.Stats: registrations, their answers,
	// lookups, probes, errors): with the routed kinds' frames, the hops a
	// routed message takes and the frames a hop costs.
	Originated uint64 `json:"routed_originated"`
	Forwarded  uint64 `json:"routed_forwarded"`
}

// MaxSampleRoutes bounds RouteResult.SampleRoutes.
const MaxSampleRoutes = 20

// DefaultMaxConverge bounds the wait for the trees to converge, and to
// re-converge after a root failure.
const DefaultMaxConverge = 30 * time.Minute

// BeaconPeriod is the nodes' beacon period in the route measurement on
// ESP-NOW (the node's default); convergence is reported in these.
const BeaconPeriod = 60 * time.Second

// ProbeGap is the time between probes of a batch on ESP-NOW: ten a
// second, a load the busiest relays carry (a gateway that a third of all
// routes cross included), so that a batch measures routing, not a radio's
// capacity.
const ProbeGap = 100 * time.Millisecond

// probeGap and probeWait are the gap between probes on this mesh's link,
// and how long a batch waits for its last results: every attempt a sender
// makes (Attempts, each waiting a receipt, and the pauses), and a lookup's
// patience, over 10 minutes on ESP-NOW. On LoRa a probe, its lookup and
// its receipt cost a relay on its way about five full frames, and a relay
// that many routes cross may send only DutyCycle of the time: probes go
// one every 5/DutyCycle airtimes of a full frame (500 at 1 %, ten minutes
// at SF9), the most such a relay could carry and still stay in its budget
// (faster, the batch would measure an overloaded ALOHA channel, not
// routing).
func (m *routeMesh) probeGap() time.Duration {
	frame := m.prof.phy.Airtime(m.prof.phy.MTU)
	if m.cfg.Link == "lora" {
		return time.Duration(5 / m.cfg.DutyCycle * float64(frame))
	}
	return max(ProbeGap, 20*frame)
}

func (m *routeMesh) probeWait() time.Duration {
	c := m.rts[0].Config()
	return max(10*time.Minute, time.Duration(c.Attempts+2)*c.ReceiptTimeout+1000*m.prof.phy.Airtime(m.prof.phy.MTU))
}

// RouteApp carries the measurement's probes.
var RouteApp = packet.NewAppID("mycelium-sim", "route probe", 1)

// routeMesh is the built simulation.
type routeMesh struct {
	cfg      RouteConfig
	prof     linkProfile
	clk      *clock.Virtual
	med      *sim.Medium
	radios   []*sim.Radio
	kinds    *airKinds // airtime by kind of message, per node
	nodes    []*node.Node
	trees    []*tree.Trees
	rts      []*route.Router
	adj      [][]int
	pos      []sim.Position
	dead     []bool
	idx      map[identity.NodeID]int
	ttl      uint8 // the hop limit the routers start Packages with
	probes   map[[16]byte]*probeLog
	sample   []int
	samples  [][]int     // the first delivered paths (MaxSampleRoutes)
	batch    []*probeLog // the last batch measured, and its sorted stretches
	batchStr []float64
	adv      *adversaries
	loops    int
	loopErrs []string
	stale    int
	heapPeak uint64
	placedAt [][]placedAt // by node, by tree: when the current place was taken
	prog     Progress
	stage    string
	total    int
	stages   []StageStats
	stageAt  struct {
		events uint64
		mesh   time.Time
		cpu    float64
		nodeTotals
		frames [3][]uint64
	}
}

// Route runs the measurement. Zero fields of c take the defaults (1,000
// nodes of random geometric graph of mean degree 8, 1,000 pairs, the
// link's trees); a setting out of range is an error (see Validate) and so
// is a graph file of more than MaxRouteNodes nodes.
func Route(c RouteConfig) (*RouteResult, error) {
	wall := time.Now()
	m, rng, err := newRouteMesh(c)
	if err != nil {
		return nil, err
	}
	c = m.cfg
	if c.Pcap != "" {
		w, err := m.capture(c.Pcap)
		if err != nil {
			return nil, err
		}
		defer w.Close()
	}
	res := &RouteResult{Nodes: len(m.nodes), Topology: string(c.Topology), Link: c.Link, Trees: c.Trees, Seed: c.Seed, SetupWallS: time.Since(wall).Seconds()}
	if c.Graph != "" {
		res.Topology = "graph"
	}
	if c.Mode {
		res.Mode = 1
	}
	edges := 0
	for _, a := range m.adj {
		edges += len(a)
		res.MaxDegree = max(res.MaxDegree, len(a))
	}
	res.Edges = edges / 2
	res.MeanDegree = float64(edges) / float64(len(m.nodes))
	res.Diameter = m.diameter()
	simStart, events0, cpu0 := time.Now(), m.clk.Ran(), cpuSeconds()
	m.notePeak()

	// Convergence: the trees, then the names.
	m.begin("converging", len(m.nodes))
	start := m.clk.Now()
	air0 := m.airSnapshot()
	deadline := start.Add(c.MaxConverge)
	m.runUntil(deadline, m.converged, m.placed)
	if m.converged() {
		s := m.clk.Now().Sub(start).Seconds()
		res.TreesS = &s
		res.PlacedByDepth = m.placedByDepth()
		for _, term := range m.terms() {
			var at *float64
			if term != 0 {
				s := time.Unix(0, term).Sub(start).Seconds()
				at = &s
			}
			res.TermsS = append(res.TermsS, at)
		}
		m.begin("storing names", len(m.nodes))
		m.runUntil(deadline, m.named, m.namesStored)
	}
	res.NamesPending = m.namesPending()
	if res.TreesS == nil {
		return nil, fmt.Errorf("the trees did not converge in %v of mesh time (%s; %d terms started)", c.MaxConverge, m.unconverged(), m.totals().terms-m.stageAt.terms)
	}
	if m.named() {
		conv := m.clk.Now().Sub(start)
		s, p := conv.Seconds(), conv.Seconds()/c.ClaimPeriod.Seconds()
		res.ConvergedS, res.ConvergedPeriods = &s, &p
		res.BeaconPeriods = conv.Seconds() / c.BeaconPeriod.Seconds()
	}
	res.Forming = m.airSince(air0)
	m.notePeak()
	m.startAttacks()
	if c.SteadyOnCycle {
		if err := m.reachCycle(); err != nil {
			return nil, err
		}
	}
	res.SteadyFromS = m.clk.Now().Sub(start).Seconds()

	// Steady state: what the trees and names cost once formed, over a
	// quiet window (the probes would count as routing control).
	m.begin("steady state", int(c.Steady/time.Second))
	air0 = m.airSnapshot()
	for end, step := m.clk.Now().Add(c.Steady), c.Steady/100; m.clk.Now().Before(end); {
		m.clk.RunUntil(minTime(m.clk.Now().Add(step), end))
		m.tick(int(c.Steady/time.Second - end.Sub(m.clk.Now())/time.Second))
	}
	res.Steady = m.airSince(air0)
	m.notePeak()
	for i, t := range m.trees {
		for k := range t.Count() {
			if p, ok := t.Current(k); ok {
				res.MaxDepth = max(res.MaxDepth, p.Depth)
				res.MaxNibbles = max(res.MaxNibbles, p.Addr.NibbleLen())
			} else if !m.dead[i] {
				res.Leased++
			}
		}
	}

	// The pairs.
	at, t0 := m.clk.Now(), m.totals()
	res.ProbeStats = m.probeBatch(rng, c.Pairs, m.probeGap(), m.probeWait(), "")
	t1 := m.totals()
	res.Window = RoutingWindow{StartS: at.Sub(start).Seconds(), MeshS: m.clk.Now().Sub(at).Seconds(),
		Renewals: t1.renewals - t0.renewals, Terms: t1.terms - t0.terms, Epochs: t1.epochs - t0.epochs}
	res.Stretches = m.batchStr
	m.countHonest(res, m.batch)
	m.stopAttacks()
	m.adversaryResult(res)
	m.notePeak()

	// A failure, and its repair.
	switch {
	case c.FailRoot:
		if v := m.rootVictim(); v >= 0 {
			res.Repair = m.repair(rng, "root failure", []int{v})
		}
	case c.Kill > 0:
		res.Repair = m.repair(rng, "kill", m.killVictims(rng, c.Kill))
	}
	m.notePeak()

	res.Loops, res.StaleViews, res.LoopErrors = m.loops, m.stale, m.loopErrs
	m.endStage()
	res.Stages = m.stages
	if c.HopAuth {
		res.Hop = m.hopCounts()
	}
	res.Events = m.clk.Ran() - events0
	res.CPUS = cpuSeconds() - cpu0
	if res.Events > 0 {
		res.WallPerEvent = float64(time.Since(simStart).Microseconds()) / float64(res.Events)
	}
	res.HeapMB = float64(m.heapPeak) / (1 << 20)
	res.SampleRoute = m.sample
	res.Positions = make([][2]float64, len(m.pos))
	for i, p := range m.pos {
		res.Positions[i] = [2]float64{p.X, p.Y}
	}
	res.Graph = m.adj
	res.Parents = m.parents(0)
	res.Root0 = -1
	for i, t := range m.trees {
		if p, ok := t.Current(0); ok && p.Root && !m.dead[i] {
			res.Root0 = i
		}
	}
	res.SampleRoutes = m.samples
	m.drawTrees(res)
	res.WallTimeS = time.Since(wall).Seconds()
	return res, nil
}

// newRouteMesh fills in c's defaults, checks it, and builds the graph and
// the nodes; the clock has not run. The random source it returns draws
// the rest of the measurement (the pairs, the victims).
func newRouteMesh(c RouteConfig) (*routeMesh, *rand.Rand, error) {
	if c.Nodes == 0 {
		c.Nodes = 1000
	}
	if c.Degree == 0 {
		c.Degree = 8
	}
	if c.Topology == "" {
		c.Topology = Random
	}
	if c.Pairs == 0 {
		c.Pairs = 1000
	}
	if c.Link == "" {
		c.Link = "espnow"
	}
	if c.Link == "lora" && c.LoRa.SF == 0 {
		c.LoRa = lora.Default
	}
	if c.DutyCycle == 0 {
		c.DutyCycle = DefaultDutyCycle
	}
	prof := c.profile()
	if c.Trees == 0 {
		c.Trees = prof.trees
	}
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	if c.ClaimPeriod <= 0 {
		c.ClaimPeriod = prof.claim
	}
	if c.BeaconPeriod <= 0 {
		c.BeaconPeriod = prof.beacon
	}
	if c.MaxConverge <= 0 {
		c.MaxConverge = max(DefaultMaxConverge, 12*c.ClaimPeriod)
	}
	if c.Steady <= 0 {
		c.Steady = time.Duration(prof.epochPeriods) * c.ClaimPeriod
	}
	m := &routeMesh{cfg: c, prof: prof, idx: map[identity.NodeID]int{}, probes: map[[16]byte]*probeLog{}, prog: c.Progress}
	rng := rand.New(rand.NewPCG(c.Seed, 0x726f757465))
	if c.Graph != "" {
		// Read first: a bad file is bad input, refused before any work.
		if err := m.readGraph(); err != nil {
			return nil, nil, err
		}
	}
	if err := m.topology(rng); err != nil {
		return nil, nil, err
	}
	if err := c.validateAdversary(len(m.adj)); err != nil {
		return nil, nil, err
	}
	m.pickAdversaries()
	if err := m.build(); err != nil {
		return nil, nil, err
	}
	return m, rng, nil
}

// notePeak samples the heap (at stage ends: reading it stops the world).
func (m *routeMesh) notePeak() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heapPeak = max(m.heapPeak, ms.HeapAlloc)
}

// diameter is the longest shortest path found by two sweeps of
// breadth-first search (a lower bound; exact on trees, lines and rings).
func (m *routeMesh) diameter() int {
	far := func(s int) (int, int) {
		d := m.bfs(s)
		best := s
		for i, x := range d {
			if x > d[best] {
				best = i
			}
		}
		return best, d[best]
	}
	a, _ := far(0)
	_, d := far(a)
	return d
}

// topology builds positions and the graph.
func (m *routeMesh) topology(rng *rand.Rand) error {
	c := m.cfg
	if m.adj != nil {
		n := len(m.adj)
		for i := range n {
			a := 2 * math.Pi * float64(i) / float64(n)
			m.pos = append(m.pos, sim.Position{X: 1000 + 1000*math.Cos(a), Y: 1000 + 1000*math.Sin(a)})
		}
		return nil
	}
	g, err := buildGraph(c.Topology, c.Nodes, c.Degree, rng)
	if err != nil {
		return err
	}
	m.pos, m.adj = g.pos, g.adj
	if !connectedAdj(m.adj) {
		return fmt.Errorf("the %s graph is not connected (raise --degree)", c.Topology)
	}
	return nil
}

// readGraph reads the graph file into m.adj.
func (m *routeMesh) readGraph() error {
	f, err := os.Open(m.cfg.Graph)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s: %w", m.cfg.Graph, err)
	}
	defer f.Close()
	adj, err := ReadGraph(f)
	if err == nil {
		err = m.cfg.checkGraph(len(adj))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", m.cfg.Graph, err)
	}
	m.adj = adj
	return nil
}

// build creates the nodes, trees and routers.

func (m *routeMesh) build() error {
	c := m.cfg
	net := simnet.New()
	m.clk = net.Clock
	m.med = net.AddMedium(c.Link, m.prof.phy, c.Seed*2+1)
	memo := cert.NewMemo()
	n := len(m.pos)
	m.dead = make([]bool, n)
	for i := range n {
		net.AddStation(m.pos[i], c.Link)
		m.radios = append(m.radios, net.Radio(i, c.Link))
	}
	m.kinds = newAirKinds(m.radios)
	m.med.SetAttemptLog(m.kinds.attempt)
	loss := sim.Independent(c.Loss)
	for i, a := range m.adj {
		for _, j := range a {
			if i < j {
				net.Connect(c.Link, i, j, loss, loss)
			}
		}
	}
	m.begin("building nodes", n)
	for i := range n {
		if i%100 == 0 {
			m.tick(i)
		}
		var seed [32]byte
		seed[0], seed[1], seed[2], seed[3] = byte(i), byte(i>>8), byte(c.Seed), byte(c.Seed>>8)
		nd, err := node.New(node.Config{Clock: m.clk, BeaconPeriod: c.BeaconPeriod, Links: m.advLinks(i, net.Links(i)), Identity: identity.FromSeed(seed), Seed: c.Seed<<20 + uint64(i), HopAuth: c.HopAuth})
		if err != nil {
			return err
		}
		rt, err := route.Attach(nd, tree.Config{Trees: c.Trees, ClaimPeriod: c.ClaimPeriod, EpochPeriods: m.prof.epochPeriods, Memo: memo}, route.Config{Attempts: c.Attempts})
		if err != nil {
			return err
		}
		tr := rt.Trees()
		i := i
		nd.Register(RouteApp, func(node.Message) {})
		m.registerVictim(nd)
		rt.Observe(func(h route.Hop) { m.onHop(i, h) })
		m.placedAt = append(m.placedAt, make([]placedAt, c.Trees))
		tr.Subscribe(func(k int) { m.onPlaced(i, k) })
		m.nodes = append(m.nodes, nd)
		m.trees = append(m.trees, tr)
		m.rts = append(m.rts, rt)
		m.idx[nd.ID()] = i
		m.ttl = rt.Config().TTL
	}
	for i := range m.nodes {
		m.nodes[i].Start()
		m.trees[i].Start()
	}
	return nil
}

// runUntil runs the clock until done() holds (checked every 500 ms of mesh
// time: checking after every event would cost more than the simulation) or
// the deadline passes; progress, when given, counts what is done of the
// stage (checked every 5 s of mesh time).
func (m *routeMesh) runUntil(deadline time.Time, done func() bool, progress func() int) {
	for k := 0; !done() && m.clk.Now().Before(deadline); k++ {
		m.clk.RunUntil(m.clk.Now().Add(500 * time.Millisecond))
		if progress != nil && m.prog != nil && k%10 == 9 {
			m.tick(progress())
		}
	}
}

// begin tells the progress a stage began, of total steps (0: unknown).
func (m *routeMesh) begin(stage string, total int) {
	m.endStage()
	m.stageAt.events, m.stageAt.mesh, m.stageAt.cpu = m.clk.Ran(), m.clk.Now(), cpuSeconds()
	m.stageAt.nodeTotals = m.totals()
	if m.kinds != nil {
		for c := range m.stageAt.frames {
			m.stageAt.frames[c] = m.kinds.frameCounts(c)
		}
	}
	m.stage = stage
	m.total = total
	if m.prog != nil {
		m.prog(stage, 0, total)
	}
}

// endStage closes the stage begun last (if any) into m.stages.
func (m *routeMesh) endStage() {
	if m.stage == "" {
		return
	}
	t, at := m.totals(), m.stageAt.nodeTotals
	m.stages = append(m.stages, StageStats{Stage: m.stage, Events: m.clk.Ran() - m.stageAt.events,
		MeshTimeS: m.clk.Now().Sub(m.stageAt.mesh).Seconds(), CPUS: cpuSeconds() - m.stageAt.cpu,
		Terms: t.terms - at.terms, Epochs: t.epochs - at.epochs,
		Frames: m.stageFrames(0), MACRetries: m.stageFrames(1), Later: m.stageFrames(2), Originated: t.orig - at.orig, Forwarded: t.fwd - at.fwd})
	m.stage = ""
}

// nodeTotals are counts summed over every node so far: the root terms
// started (and of them, the renewals by a root) and epochs entered, the
// routers' Packages originated and forwarded.
type nodeTotals struct{ terms, renewals, epochs, orig, fwd uint64 }

// totals sums the nodes' counts so far (a killed node's until its death:
// kill closes its trees and router, their counts kept).
func (m *routeMesh) totals() (n nodeTotals) {
	for i, t := range m.trees {
		if t != nil {
			s := t.Stats()
			n.terms += s.Terms
			n.renewals += s.Renewals
			n.epochs += s.Epochs
		}
		if r := m.rts[i]; r != nil {
			s := r.Stats()
			n.orig += s.Originated
			n.fwd += s.Forwarded
		}
	}
	return n
}

// stageFrames is counter c of the transmissions by kind (airKinds.frames)
// since the stage began.
func (m *routeMesh) stageFrames(c int) map[string]uint64 {
	if m.kinds == nil {
		return nil
	}
	out := map[string]uint64{}
	for id, n := range m.kinds.frameCounts(c) {
		if id < len(m.stageAt.frames[c]) {
			n -= m.stageAt.frames[c][id]
		}
		if n > 0 {
			out[m.kinds.name(id)] = n
		}
	}
	return out
}

// tick tells the progress how far the stage is.
func (m *routeMesh) tick(done int) {
	if m.prog != nil {
		m.prog(m.stage, done, m.total)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// placed counts the live nodes with a position in every tree (or too deep
// for one): convergence's progress.
func (m *routeMesh) placed() int {
	n := 0
	for i, t := range m.trees {
		if m.dead[i] {
			continue
		}
		all := true
		for k := range m.cfg.Trees {
			if _, ok := t.Current(k); !ok && !t.TooDeep(k) {
				all = false
				break
			}
		}
		if all {
			n++
		}
	}
	return n
}

// namesStored counts the live nodes whose name record is stored.
func (m *routeMesh) namesStored() int {
	live := 0
	for i := range m.nodes {
		if !m.dead[i] {
			live++
		}
	}
	return live - m.namesPending()
}

// onHop checks every routing decision against the truth (route.Hop.Check)
// and logs those about probes.
func (m *routeMesh) onHop(i int, h route.Hop) {
	if m.dead[i] {
		return // (a dead node's timers still run in the simulation; it sends nothing)
	}
	if err := h.Check(m.router); errors.Is(err, route.ErrStaleView) {
		m.stale++
	} else if err != nil {
		m.loops++
		if len(m.loopErrs) < 10 {
			m.loopErrs = append(m.loopErrs, fmt.Sprintf("node %d: %v", i, err))
		}
	}
	m.logProbe(i, &h)
	if a := m.adv; a != nil && h.Hash == a.heard.hash && h.HasNonce {
		a.heard.nonce, a.heard.hasNonce = h.Nonce, true
	}
}

// router is the router of the node with node_id id (nil if none).
func (m *routeMesh) router(id identity.NodeID) *route.Router {
	if j, ok := m.idx[id]; ok {
		return m.rts[j]
	}
	return nil
}

// controlBytes sums the tree and routing control messages sent so far.
func (m *routeMesh) controlBytes() uint64 {
	var n uint64
	for i := range m.nodes {
		n += m.trees[i].Stats().BytesSent + m.rts[i].Stats().ControlBytesSent
	}
	return n
}

// named: every live node's name record is complete and stored.
func (m *routeMesh) named() bool { return m.namesPending() == 0 }

// namesPending counts the live nodes whose record is not confirmed stored.
func (m *routeMesh) namesPending() int {
	n := 0
	for i, r := range m.rts {
		if !m.dead[i] && !r.Registered() {
			n++
		}
	}
	return n
}

// converged: in every piece of two or more live nodes (one, until a
// failure), every live node has a place in every tree under one live root
// of its piece with its parent alive (or a lease, where no parent had room;
// or is too deep for any address), and knows the place of every live
// neighbour that has one.
func (m *routeMesh) converged() bool {
	comp, sizes := m.liveComponents()
	return m.allPlaced(comp, sizes) && m.lacking(comp, sizes, true) == lack{}
}

// unconverged says what converged still lacks (a mesh that never
// converged: which of these held it).
func (m *routeMesh) unconverged() string {
	comp, sizes := m.liveComponents()
	l := m.lacking(comp, sizes, false)
	return fmt.Sprintf("summed over the trees: %d places not taken, %d nodes off their piece's root, %d parents gone, %d nodes missing %d neighbours' places", l.unplaced, l.rootless, l.orphans, l.views, l.unknown)
}

// lack counts, over the trees, the live nodes of pieces of two or more
// that converged finds wanting: with no place (no lease, not too deep),
// off their piece's root (a root dead, gone, in another piece, or not the
// one the piece's first node follows), with their parent gone, and
// missing the places of some placed neighbours (views; unknown: how many
// places).
type lack struct{ unplaced, rootless, orphans, views, unknown int }

// lacking counts what converged still lacks; first: stop at the first
// lack found (converged's check, made every 500 ms of mesh time).
func (m *routeMesh) lacking(comp, sizes []int, first bool) (l lack) {
	for k := range m.cfg.Trees {
		roots := map[int]string{}
		for i, t := range m.trees {
			if first && l != (lack{}) {
				return l
			}
			if m.dead[i] || sizes[comp[i]] < 2 {
				continue
			}
			r, alive := t.Root(k)
			if got, ok := roots[comp[i]]; !alive || (ok && got != string(r)) {
				l.rootless++
			} else if !ok {
				var id identity.NodeID
				copy(id[:], r)
				if j, ok := m.idx[id]; !ok || m.dead[j] || comp[j] != comp[i] {
					l.rootless++ // a root that is gone, or in another piece
				} else {
					roots[comp[i]] = string(r)
				}
			}
			p, ok := t.Current(k)
			if !ok {
				if !t.TooDeep(k) && !slices.ContainsFunc(m.rts[i].Addrs(), func(a route.TreeAddr) bool { return int(a.Tree) == k }) {
					l.unplaced++
				}
				continue
			}
			placed := 0
			pa, hasParent := p.Addr.Parent()
			parentAlive := !hasParent
			for _, j := range m.adj[i] {
				if q, ok := m.trees[j].Current(k); ok && !m.dead[j] && q.TreeState == p.TreeState {
					placed++
					parentAlive = parentAlive || q.Addr.Equal(pa)
				}
			}
			if !parentAlive {
				l.orphans++ // a tree broken by a death
			}
			if known := len(t.Neighbors(k, p.TreeState)); known < placed {
				l.views++ // neighbours not known yet
				l.unknown += placed - known
			}
		}
	}
	return l
}

// allPlaced is converged's first, cheap, condition: every live node of a
// piece of two or more has a place in every tree, a lease, or is too deep
// for any address. Checked alone first, it answers most of the checks
// made while a mesh forms (a few nodes unplaced in one tree) at a node's
// places each, where converged's full pass reads every neighbour's place
// of every tree before it; the checks, every 500 ms of mesh time over
// every node, cost more the larger the mesh (3.6 % of the CPU of a
// 2,000-node run, 2.4 % at 1,000).
func (m *routeMesh) allPlaced(comp, sizes []int) bool {
	for i, t := range m.trees {
		if m.dead[i] || sizes[comp[i]] < 2 {
			continue
		}
		for k := range m.cfg.Trees {
			if _, ok := t.Current(k); !ok && !t.TooDeep(k) && !slices.ContainsFunc(m.rts[i].Addrs(), func(a route.TreeAddr) bool { return int(a.Tree) == k }) {
				return false
			}
		}
	}
	return true
}

// bfs: hop distances from s over live nodes.
func (m *routeMesh) bfs(s int) []int {
	d := make([]int, len(m.adj))
	for i := range d {
		d[i] = -1
	}
	d[s] = 0
	q := []int{s}
	for len(q) > 0 {
		u := q[0]
		q = q[1:]
		for _, v := range m.adj[u] {
			if d[v] < 0 && !m.dead[v] {
				d[v] = d[u] + 1
				q = append(q, v)
			}
		}
	}
	return d
}

// parents returns each node's parent in tree k (-1 for the root or none).
func (m *routeMesh) parents(k int) []int {
	out := make([]int, len(m.nodes))
	byAddr := map[string]int{}
	for i, t := range m.trees {
		if p, ok := t.Current(k); ok && !m.dead[i] {
			byAddr[p.Addr.Canonical().String()] = i
		}
	}
	for i, t := range m.trees {
		out[i] = -1
		if p, ok := t.Current(k); ok && !m.dead[i] {
			if pa, ok := p.Addr.Parent(); ok {
				if j, ok := byAddr[pa.String()]; ok {
					out[i] = j
				}
			}
		}
	}
	return out
}

// HopCounts is node.HopStats summed over a mesh, with the neighbour-proof
// challenges sent (which rekeys and lapsed challenges add to).
type HopCounts struct {
	Sealed          uint64 `json:"sealed"`
	Opened          uint64 `json:"opened"`
	BadTag          uint64 `json:"bad_tag"`
	Replayed        uint64 `json:"replayed"`
	Unverified      uint64 `json:"unverified"`
	Unauthenticated uint64 `json:"unauthenticated"`
	Rekeys          uint64 `json:"rekeys"`
	Lapsed          uint64 `json:"lapsed"`
	Recut           uint64 `json:"recut"`
	Challenges      uint64 `json:"challenges"`
}

// hopCounts sums the nodes' hop counters.
func (m *routeMesh) hopCounts() *HopCounts {
	var h HopCounts
	for _, n := range m.nodes {
		s := n.Stats()
		h.Sealed += s.Hop.Sealed
		h.Opened += s.Hop.Opened
		h.BadTag += s.Hop.BadTag
		h.Replayed += s.Hop.Replayed
		h.Unverified += s.Hop.Unverified
		h.Unauthenticated += s.Hop.Unauthenticated
		h.Rekeys += s.Hop.Rekeys
		h.Lapsed += s.Hop.Lapsed
		h.Recut += s.Hop.Recut
		h.Challenges += s.Trust.ChallengesSent
	}
	return &h
}

// reachCycle runs until every tree has started a term since convergence
// (RouteConfig.SteadyOnCycle), at most two epoch cycles.
func (m *routeMesh) reachCycle() error {
	c := m.cfg
	conv := m.terms()
	moved := func() int {
		n := 0
		for k, t := range m.terms() {
			if t != conv[k] {
				n++
			}
		}
		return n
	}
	m.begin("reaching the cycle", c.Trees)
	cycle := time.Duration(m.prof.epochPeriods) * c.ClaimPeriod
	m.runUntil(m.clk.Now().Add(2*cycle), func() bool { return moved() == c.Trees }, moved)
	if n := moved(); n < c.Trees {
		return fmt.Errorf("--steady-on-cycle: %d of %d trees started a term in the two epoch cycles after convergence", n, c.Trees)
	}
	return nil
}

// terms is each tree's current term (its start) as the first live node
// placed in it has it (0: none placed).
func (m *routeMesh) terms() []int64 {
	out := make([]int64, m.cfg.Trees)
	for k := range out {
		for i, t := range m.trees {
			if t == nil || m.dead[i] {
				continue
			}
			if p, ok := t.Current(k); ok {
				out[k] = p.Term
				break
			}
		}
	}
	return out
}
