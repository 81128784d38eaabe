package meshsim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// RouteConfig is one `mycelium sim route` measurement.
type RouteConfig struct {
	Nodes    int
	Degree   float64
	Topology Topology // random (default), grid, line
	Graph    string   // a graph file instead: "i j" edges, one a line (# comments)
	Pairs    int
	Mode     bool // common-prefix metric
	Seed     uint64
	Loss     float64
	Trees    int
	FailRoot bool
	// ClaimPeriod of the trees (default 20 s) and the beacon period of the
	// nodes (60 s).
	ClaimPeriod time.Duration
	// MaxConverge bounds the wait for convergence (default 30 min).
	MaxConverge time.Duration
	// Steady is the quiet window after convergence over which the steady
	// control traffic is measured (default: one epoch cycle, 15 min).
	Steady time.Duration
	// Adversary names the attacks Adversaries nodes play once the trees
	// have converged (adversary.go); the pairs routed are then between
	// honest nodes.
	Adversary   []string
	Adversaries int
	// Attempts bounds each probe's sends, each after a failure in the
	// next best tree (0: the router's default, 4; 1: no retry).
	Attempts int
	// Progress, when set, is told the stage and how far through it the
	// measurement is.
	Progress Progress
	// Pcap, when set, is a file that receives every frame on the medium
	// (radiotap + 802.11, as capture writes ESP-NOW).
	Pcap string
}

// RouteResult is what the measurement found.
type RouteResult struct {
	Nodes                  int          `json:"nodes"`
	Edges                  int          `json:"edges"`
	MeanDegree             float64      `json:"mean_degree"`
	Trees                  int          `json:"trees"`
	Mode                   int          `json:"mode"`
	Seed                   uint64       `json:"seed"`
	ConvergedS             float64      `json:"converged_s"`
	NamedS                 *float64     `json:"named_s"`       // until every node's name record was stored (null: not within the wait)
	NamesPending           int          `json:"names_pending"` // nodes whose record was not confirmed stored when routing began
	BeaconPeriods          float64      `json:"converged_beacon_periods"`
	Delivered              int          `json:"delivered"`
	Pairs                  int          `json:"pairs"`
	DeliveryRatio          float64      `json:"delivery_ratio"`
	StretchMean            float64      `json:"stretch_mean"`
	StretchP95             float64      `json:"stretch_p95"`
	StretchMax             float64      `json:"stretch_max"`
	MeanHops               float64      `json:"mean_hops"`
	MeanShortest           float64      `json:"mean_shortest"`
	MaxDepth               int          `json:"max_depth"`
	ControlBytesPerNodeMin float64      `json:"control_bytes_per_node_per_min"`           // tree and routing messages, steady state
	ControlFormation       float64      `json:"control_bytes_per_node_per_min_formation"` // the same, from cold start to convergence
	AirBytesPerNodeMin     float64      `json:"air_bytes_per_node_per_min"`               // every frame a node sent (headers, acks, beacons), steady state
	RootFailed             bool         `json:"root_failed"`                              // --fail-root killed the root of tree 0
	ReconvergedS           *float64     `json:"reconverged_s"`                            // null: not re-converged within MaxConverge (or no root failed)
	ReconvergedPeriods     *float64     `json:"reconverged_claim_periods,omitempty"`
	ReconvergedAfterTerm   *float64     `json:"reconverged_after_term_end_claim_periods,omitempty"` // from the end of the dead root's term (its last claim + MissedClaims periods)
	RenamedS               *float64     `json:"renamed_s,omitempty"`                                // until every name record held the new addresses again
	AfterFailDelivered     *int         `json:"after_fail_delivered,omitempty"`
	AfterFailPairs         *int         `json:"after_fail_pairs,omitempty"`
	Loops                  int          `json:"loops"`
	Errors                 []string     `json:"errors,omitempty"`
	WallTimeS              float64      `json:"wall_time_s"`
	SetupWallS             float64      `json:"setup_wall_time_s"` // of the wall time, building the graph and the nodes
	SampleRoute            []int        `json:"sample_route,omitempty"`
	Positions              [][2]float64 `json:"-"`
	Graph                  [][]int      `json:"-"`
	Parents                []int        `json:"-"` // tree 0 parent of each node (-1: the root, or none)
	Root0                  int          `json:"-"` // the root of tree 0 (-1: none)
	TreeParents            [][]int      `json:"-"` // each tree's parent of each node, as Parents
	Roots                  []int        `json:"-"` // each tree's root (-1: none)
	SampleRoutes           [][]int      `json:"-"` // the paths of the first delivered pairs (at most MaxSampleRoutes)
	Stretches              []float64    `json:"-"` // every delivered pair's stretch, sorted
	AdversaryReport
}

// MaxSampleRoutes bounds RouteResult.SampleRoutes.
const MaxSampleRoutes = 20

// DefaultMaxConverge bounds the wait for the trees to converge, and to
// re-converge after a root failure.
const DefaultMaxConverge = 30 * time.Minute

// BeaconPeriod is the nodes' beacon period in the route measurement (the
// node's default); convergence is reported in these.
const BeaconPeriod = 60 * time.Second

// RouteApp carries the measurement's probes.
var RouteApp = packet.NewAppID("mycelium-sim", "route probe", 1)

// routeMesh is the built simulation.
type routeMesh struct {
	cfg    RouteConfig
	clk    *clock.Virtual
	med    *sim.Medium
	radios []*sim.Radio
	nodes  []*node.Node
	trees  []*tree.Trees
	rts    []*route.Router
	adj    [][]int
	pos    []sim.Position
	dead   []bool
	idx    map[identity.NodeID]int
	paths  map[pathKey][]int
	loops  int
	got    map[[16]byte]bool
	lastTS map[[16]byte]uint8
	prog   Progress
	stage  string
	total  int
	adv    *adversaries
}

// pathKey names one Package's journey in one epoch (a name record goes to
// every tree with the same bytes).
type pathKey struct {
	hash [16]byte
	ts   uint8
}

// Route runs the measurement. Zero fields of c take the defaults (1,000
// nodes of random geometric graph of mean degree 8, 1,000 pairs, 6 trees);
// a setting out of range is an error (see Validate) and so is a graph file
// of more than MaxRouteNodes nodes.
func Route(c RouteConfig) (*RouteResult, error) {
	wall := time.Now()
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
	if c.Trees == 0 {
		c.Trees = 6
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.ClaimPeriod <= 0 {
		c.ClaimPeriod = 20 * time.Second
	}
	if c.MaxConverge <= 0 {
		c.MaxConverge = DefaultMaxConverge
	}
	if c.Steady <= 0 {
		// A whole epoch cycle: every tree renews its epoch once in it
		// (tree.Config.EpochPeriods claims), and that belongs to the
		// steady cost.
		c.Steady = time.Duration(tree.DefaultEpochPeriods) * c.ClaimPeriod
	}
	m := &routeMesh{cfg: c, idx: map[identity.NodeID]int{}, paths: map[pathKey][]int{}, got: map[[16]byte]bool{}, lastTS: map[[16]byte]uint8{}, prog: c.Progress}
	rng := rand.New(rand.NewPCG(c.Seed, 0x726f757465))
	if c.Graph != "" {
		// Read first: a bad file is bad input, refused before any work.
		if err := m.readGraph(); err != nil {
			return nil, err
		}
	}
	if err := m.topology(rng); err != nil {
		return nil, err
	}
	if err := c.validateAdversary(len(m.adj)); err != nil {
		return nil, err
	}
	m.pickAdversaries()
	if err := m.build(); err != nil {
		return nil, err
	}
	if c.Pcap != "" {
		w, err := m.capture(c.Pcap)
		if err != nil {
			return nil, err
		}
		defer w.Close()
	}
	res := &RouteResult{Nodes: len(m.nodes), Trees: c.Trees, Seed: c.Seed, SetupWallS: time.Since(wall).Seconds()}
	if c.Mode {
		res.Mode = 1
	}
	edges := 0
	for _, a := range m.adj {
		edges += len(a)
	}
	res.Edges = edges / 2
	res.MeanDegree = float64(edges) / float64(len(m.nodes))
	m.begin("converging", len(m.nodes))
	start := m.clk.Now()
	m.runUntil(start.Add(c.MaxConverge), func() bool { return m.converged() }, m.placed)
	if !m.converged() {
		return nil, fmt.Errorf("the trees did not converge in %v of mesh time", c.MaxConverge)
	}
	conv := m.clk.Now().Sub(start)
	m.startAttacks()
	res.ConvergedS = conv.Seconds()
	res.BeaconPeriods = conv.Seconds() / BeaconPeriod.Seconds()
	res.ControlFormation = float64(m.controlBytes()) / float64(len(m.nodes)) / conv.Minutes()
	// Names: every node's record, with all its addresses, stored (a few
	// registrations may take their retries: the routing starts anyway
	// after namesWait, and lookups keep trying).
	m.begin("storing names", len(m.nodes))
	m.runUntil(m.clk.Now().Add(namesWait), m.named, m.namesStored)
	if m.named() {
		named := m.clk.Now().Sub(start).Seconds()
		res.NamedS = &named
	}
	res.NamesPending = m.namesPending()
	// Steady state: what the trees and names cost once formed, over a quiet
	// window (the measurement's probes would count as routing control).
	m.begin("steady state", int(c.Steady/time.Second))
	ctrl0, air0 := m.controlBytes(), m.airBytes()
	for end, step := m.clk.Now().Add(c.Steady), c.Steady/100; m.clk.Now().Before(end); {
		m.clk.RunUntil(minTime(m.clk.Now().Add(step), end))
		m.tick(int(c.Steady/time.Second - end.Sub(m.clk.Now())/time.Second))
	}
	per := float64(len(m.nodes)) * c.Steady.Minutes()
	res.ControlBytesPerNodeMin = float64(m.controlBytes()-ctrl0) / per
	res.AirBytesPerNodeMin = float64(m.airBytes()-air0) / per
	for _, t := range m.trees {
		for k := range t.Count() {
			if p, ok := t.Current(k); ok {
				res.MaxDepth = max(res.MaxDepth, p.Depth)
			}
		}
	}
	delivered, stretches, hops, shortest := m.routePairs(rng, c.Pairs, res, "")
	m.stopAttacks()
	m.adversaryResult(res)
	res.Pairs = c.Pairs
	res.Delivered = delivered
	res.DeliveryRatio = float64(delivered) / float64(c.Pairs)
	if len(stretches) > 0 {
		sort.Float64s(stretches)
		res.Stretches = stretches
		sum := 0.0
		for _, s := range stretches {
			sum += s
		}
		res.StretchMean = sum / float64(len(stretches))
		res.StretchP95 = stretches[int(0.95*float64(len(stretches)-1)+0.5)]
		res.StretchMax = stretches[len(stretches)-1]
		res.MeanHops = float64(hops) / float64(len(stretches))
		res.MeanShortest = float64(shortest) / float64(len(stretches))
	}
	if c.FailRoot {
		m.failRoot(rng, res)
	}
	res.Loops = m.loops
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
	m.drawTrees(res)
	res.WallTimeS = time.Since(wall).Seconds()
	return res, nil
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
	pl := place(c.Topology, c.Nodes, c.Degree, rng)
	m.pos = pl.pos
	m.adj = neighbours(m.pos, pl.radius)
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

// ReadGraph reads an edge list: "i j" a line, nodes numbered from 0, "#"
// starting a comment.
func ReadGraph(r io.Reader) ([][]int, error) {
	var edges [][2]int
	n := 0
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
		if s == "" {
			continue
		}
		f := strings.Fields(s)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want two node numbers", line)
		}
		a, err1 := strconv.Atoi(f[0])
		b, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || a < 0 || b < 0 || a == b {
			return nil, fmt.Errorf("line %d: bad edge %q", line, s)
		}
		if a >= MaxRouteNodes || b >= MaxRouteNodes {
			return nil, fmt.Errorf("line %d: node %d: a graph has at most %s nodes (0..%s)", line, max(a, b), Group(MaxRouteNodes), Group(MaxRouteNodes-1))
		}
		if len(edges) == MaxGraphEdges {
			return nil, fmt.Errorf("line %d: more than %s edges", line, Group(MaxGraphEdges))
		}
		edges = append(edges, [2]int{a, b})
		n = max(n, a+1, b+1)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", line+1, bufio.MaxScanTokenSize)
		}
		return nil, err
	}
	if n < 2 {
		return nil, fmt.Errorf("fewer than two nodes")
	}
	adj := make([][]int, n)
	seen := map[[2]int]bool{}
	for _, e := range edges {
		if e[0] > e[1] {
			e[0], e[1] = e[1], e[0]
		}
		if seen[e] {
			continue
		}
		seen[e] = true
		adj[e[0]] = append(adj[e[0]], e[1])
		adj[e[1]] = append(adj[e[1]], e[0])
	}
	if !connectedAdj(adj) {
		return nil, fmt.Errorf("the graph is not connected")
	}
	return adj, nil
}

func connectedAdj(adj [][]int) bool {
	seen := make([]bool, len(adj))
	stack := []int{0}
	seen[0] = true
	count := 1
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, v := range adj[u] {
			if !seen[v] {
				seen[v] = true
				count++
				stack = append(stack, v)
			}
		}
	}
	return count == len(adj)
}

// build creates the nodes, trees and routers.

func (m *routeMesh) build() error {
	c := m.cfg
	net := simnet.New()
	m.clk = net.Clock
	m.med = net.AddMedium("espnow", phys.ESPNOW(), c.Seed*2+1)
	memo := cert.NewMemo()
	n := len(m.pos)
	m.dead = make([]bool, n)
	for i := range n {
		net.AddStation(m.pos[i], "espnow")
		m.radios = append(m.radios, net.Radio(i, "espnow"))
	}
	loss := sim.Independent(c.Loss)
	for i, a := range m.adj {
		for _, j := range a {
			if i < j {
				net.Connect("espnow", i, j, loss, loss)
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
		nd, err := node.New(node.Config{Clock: m.clk, BeaconPeriod: BeaconPeriod, Links: m.advLinks(i, net.Links(i)), Identity: identity.FromSeed(seed), Seed: c.Seed<<20 + uint64(i)})
		if err != nil {
			return err
		}
		rt, err := route.Attach(nd, tree.Config{Trees: c.Trees, ClaimPeriod: c.ClaimPeriod, Memo: memo}, route.Config{Attempts: c.Attempts})
		if err != nil {
			return err
		}
		tr := rt.Trees()
		i := i
		nd.Register(RouteApp, func(node.Message) {})
		rt.Observe(func(h route.Hop) { m.onHop(i, h) })
		m.nodes = append(m.nodes, nd)
		m.trees = append(m.trees, tr)
		m.rts = append(m.rts, rt)
		m.idx[nd.ID()] = i
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
	m.stage = stage
	m.total = total
	if m.prog != nil {
		m.prog(stage, 0, total)
	}
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

// onHop records paths and checks the invariant that makes loops
// impossible: every hop brings the Package strictly closer to its
// destination by the packet's metric, computed on the true addresses (a
// relay's view of its neighbours' addresses is what they really are, for
// the whole epoch). A hop that does not is counted in loops. Paths are
// kept per Package and epoch for the stretch measurement (a sender's
// second attempt starts a new one).
func (m *routeMesh) onHop(i int, h route.Hop) {
	if h.Error || m.dead[i] {
		return // (a dead node's timers still run in the simulation; it sends nothing)
	}
	if !h.Delivered && !h.Proxy {
		// The decision must make strict progress by the address the relay
		// knows for the next hop, and that address must be the next hop's
		// own, if it still holds that epoch (a node that moved two epochs
		// on refuses the Package with an error: no loop there).
		met := addr.MetricTree
		if h.Mode {
			met = addr.MetricCPL
		}
		a, okA := m.rts[i].Position(h.TreeState)
		bad := !okA || met.Key(h.NextAddr, h.To) >= met.Key(a.Addr, h.To)
		if j, ok := m.idx[h.Next]; ok {
			if b, okB := m.rts[j].Position(h.TreeState); okB && !b.Addr.Equal(h.NextAddr) {
				bad = true
			}
		}
		if bad {
			m.loops++
		}
	}
	key := pathKey{h.Hash, h.TreeState}
	p := m.paths[key]
	if len(p) > 0 && p[0] == i {
		p = p[:0] // the sender sent it again: a new journey
	}
	m.paths[key] = append(p, i)
	if h.Delivered {
		m.got[h.Hash] = true
		m.lastTS[h.Hash] = h.TreeState
	}
}

// controlBytes sums the tree and routing control messages sent so far.
func (m *routeMesh) controlBytes() uint64 {
	var n uint64
	for i := range m.nodes {
		n += m.trees[i].Stats().BytesSent + m.rts[i].Stats().ControlBytesSent
	}
	return n
}

// airBytes sums every frame the nodes sent so far.
func (m *routeMesh) airBytes() uint64 {
	var n uint64
	for _, nd := range m.nodes {
		n += nd.Stats().BytesSent
	}
	return n
}

// namesWait bounds the wait for name records after convergence.
const namesWait = 2 * time.Minute

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

// converged: every live node has a position in every tree under the same
// live root (or knows it is too far from that root for an address: 32
// levels, PROTOCOL 6.2; it is reached through the other trees), and knows
// the position of every live neighbour that has one.
func (m *routeMesh) converged() bool {
	for k := range m.cfg.Trees {
		var root string
		first := true
		for i, t := range m.trees {
			if m.dead[i] {
				continue
			}
			r, alive := t.Root(k)
			if !alive {
				return false
			}
			if first {
				root, first = string(r), false
			} else if root != string(r) {
				return false
			}
			p, ok := t.Current(k)
			if !ok {
				if t.TooDeep(k) {
					continue
				}
				return false
			}
			placed := 0
			for _, j := range m.adj[i] {
				if q, ok := m.trees[j].Current(k); ok && !m.dead[j] && q.TreeState == p.TreeState {
					placed++
				}
			}
			if len(t.Neighbors(k, p.TreeState)) < placed {
				return false
			}
		}
	}
	return true
}

// routePairs sends a probe between random pairs and measures each path;
// what names the batch in the progress ("" or " after the failure").
func (m *routeMesh) routePairs(rng *rand.Rand, pairs int, res *RouteResult, what string) (delivered int, stretches []float64, hops, shortest int) {
	type probe struct {
		src, dst int
		hash     [16]byte
		r        *node.Result
	}
	var probes []probe
	live := []int{}
	for i := range m.nodes {
		if !m.dead[i] && (m.adv == nil || !m.adv.is[i]) {
			live = append(live, i)
		}
	}
	if len(live) < 2 {
		// No pair to route between (the loop below would never find a
		// destination other than the source).
		res.Errors = append(res.Errors, fmt.Sprintf("%d live nodes: no pair to route%s", len(live), what))
		return 0, nil, 0, 0
	}
	m.begin("routing"+what, pairs)
	for p := 0; p < pairs; p++ {
		if p%50 == 0 {
			m.tick(p)
		}
		src := live[rng.IntN(len(live))]
		dst := live[rng.IntN(len(live))]
		for dst == src {
			dst = live[rng.IntN(len(live))]
		}
		blob := fmt.Appendf(nil, "probe %d from %d to %d seed %d", p, src, dst, m.cfg.Seed)
		pkg := packet.NewPackage(RouteApp, blob)
		r := m.rts[src].Send(m.nodes[dst].ID(), RouteApp, blob, &route.Options{Mode: m.cfg.Mode})
		probes = append(probes, probe{src, dst, pkg.Hash, r})
		// Spread the probes out: one every 50 ms.
		m.clk.RunFor(50 * time.Millisecond)
	}
	// Wait for every probe's result. Results come back roughly in order:
	// skip the finished ones in front, and count them for the progress.
	m.begin("waiting for receipts"+what, len(probes))
	first, checks := 0, 0
	m.clk.RunWhile(m.clk.Now().Add(10*time.Minute), func() bool {
		for first < len(probes) && probes[first].r.Finished() {
			first++
		}
		if checks++; checks%10000 == 0 {
			m.tick(first)
		}
		return first < len(probes)
	})
	for _, p := range probes {
		ok := p.r.Err() == nil && p.r.Finished() && m.got[p.hash]
		if m.adv != nil {
			if ds, dt := m.bfs(p.src), m.bfs(p.dst); m.honestPair(p.src, p.dst, ds, dt) {
				res.HonestPairs++
				if ok {
					res.HonestDelivered++
				}
			}
		}
		if !ok {
			if p.r.Err() != nil && len(res.Errors) < 10 {
				res.Errors = append(res.Errors, fmt.Sprintf("%d→%d: %v", p.src, p.dst, p.r.Err()))
			}
			continue
		}
		delivered++
		path := m.paths[pathKey{p.hash, m.lastTS[p.hash]}]
		h := len(path) - 1
		sp := m.bfs(p.src)[p.dst]
		if sp <= 0 || h <= 0 {
			continue
		}
		hops += h
		shortest += sp
		stretches = append(stretches, float64(h)/float64(sp))
		if res.SampleRoute == nil && h >= 4 {
			res.SampleRoute = append([]int(nil), path...)
		}
		if len(res.SampleRoutes) < MaxSampleRoutes {
			res.SampleRoutes = append(res.SampleRoutes, append([]int(nil), path...))
		}
	}
	return delivered, stretches, hops, shortest
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
			byAddr[string(p.Addr.Canonical().Hex())] = i
		}
	}
	for i, t := range m.trees {
		out[i] = -1
		if p, ok := t.Current(k); ok && !m.dead[i] {
			if pa, ok := p.Addr.Parent(); ok {
				if j, ok := byAddr[pa.Canonical().Hex()]; ok {
					out[i] = j
				}
			}
		}
	}
	return out
}

// failRoot kills the root of tree 0 and measures how long until every live
// node is in a tree under a new root again, sending probes meanwhile (no
// loop may appear), then routes a second batch of pairs.
func (m *routeMesh) failRoot(rng *rand.Rand, res *RouteResult) {
	rootKey, _ := m.trees[0].Root(0)
	var root identity.NodeID
	copy(root[:], rootKey)
	ri, ok := m.idx[root]
	if !ok {
		return
	}
	// The root's term ends MissedClaims periods after its last claim (the
	// newest any node has: the root's own may be a term it just began).
	var last time.Time
	for _, t := range m.trees {
		if r, _ := t.Root(0); string(r) == string(rootKey) && t.LastClaim(0).After(last) {
			last = t.LastClaim(0)
		}
	}
	termEnd := last.Add(time.Duration(m.trees[ri].Config().MissedClaims) * m.cfg.ClaimPeriod)
	res.RootFailed = true
	m.dead[ri] = true
	m.nodes[ri].Close()
	for _, nb := range m.radios[ri].Neighbors() {
		m.med.Disconnect(m.radios[ri], nb)
	}
	start := m.clk.Now()
	// Traffic during the repair: a probe every second between live nodes.
	stop := false
	var tick func()
	tick = func() {
		if stop {
			return
		}
		live := []int{}
		for i := range m.nodes {
			if !m.dead[i] {
				live = append(live, i)
			}
		}
		s, d := live[rng.IntN(len(live))], live[rng.IntN(len(live))]
		if s != d {
			m.rts[s].Send(m.nodes[d].ID(), RouteApp, fmt.Appendf(nil, "repair probe %v %d %d", m.clk.Now(), s, d), &route.Options{Mode: m.cfg.Mode})
		}
		m.clk.AfterFunc(time.Second, tick)
	}
	m.clk.AfterFunc(time.Second, tick)
	m.begin("re-converging after the root failed", len(m.nodes)-1)
	m.runUntil(start.Add(m.cfg.MaxConverge), func() bool { return m.converged() && !sameRoot(m.trees, ri, rootKey) }, m.placed)
	stop = true
	if !m.converged() {
		return
	}
	took := m.clk.Now().Sub(start).Seconds()
	res.ReconvergedS = &took
	after := m.clk.Now().Sub(termEnd).Seconds() / m.cfg.ClaimPeriod.Seconds()
	res.ReconvergedAfterTerm = &after
	m.begin("storing names again", len(m.nodes)-1)
	m.runUntil(m.clk.Now().Add(namesWait), m.named, m.namesStored)
	if m.named() {
		named := m.clk.Now().Sub(start).Seconds()
		res.RenamedS = &named
	}
	periods := took / m.cfg.ClaimPeriod.Seconds()
	res.ReconvergedPeriods = &periods
	pairs := min(200, m.cfg.Pairs)
	d, _, _, _ := m.routePairs(rng, pairs, res, " after the failure")
	res.AfterFailDelivered, res.AfterFailPairs = &d, &pairs
}

func sameRoot(ts []*tree.Trees, dead int, root []byte) bool {
	for i, t := range ts {
		if i == dead {
			continue
		}
		if r, _ := t.Root(0); string(r) == string(root) {
			return true
		}
	}
	return false
}
