package meshsim

// The graphs `sim route` measures on: every kind a deployment meets, each
// built in one draw (no redrawing until connected: at 10,000 nodes a
// random geometric graph of mean degree 8 almost never is, and each draw
// cost O(n²)), then repaired: nodes outside the largest component are moved
// next to a node of it. Neighbours are found through a cell index, so a
// graph costs O(n·degree), not O(n²) (the grid of topology.go).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// More topologies of `sim route` (see Topology).
const (
	Ring      Topology = "ring"      // a loop road: nodes in a narrow band around a circle
	Clustered Topology = "clustered" // dense towns joined by thin chains of relays
	Hubs      Topology = "hubs"      // a mesh with rooftop gateways that hear hundreds of nodes, some only them
)

// RouteTopologies are the topologies `sim route` builds.
var RouteTopologies = []Topology{Random, Grid, Line, Ring, Clustered, Hubs}

// ParseRouteTopology checks a topology name for `sim route`.
func ParseRouteTopology(s string) (Topology, error) {
	if t := Topology(s); slices.Contains(RouteTopologies, t) {
		return t, nil
	}
	return "", fmt.Errorf("unknown topology %q (random, grid, line, ring, clustered, hubs)", s)
}

// HasDegree reports whether the topology is built to a mean degree
// (random, ring and the mesh of hubs); the others have theirs by shape.
func (t Topology) HasDegree() bool { return t == Random || t == Ring || t == Hubs }

// graph is a built topology: where the nodes are (for pictures, and for
// the radio's signal figures) and who hears whom.
type graph struct {
	pos []sim.Position
	adj [][]int // sorted, symmetric
}

// buildGraph builds n nodes of topology t with the mean degree asked for
// (where the topology has one), connected, deterministically from rng.
func buildGraph(t Topology, n int, degree float64, rng *rand.Rand) (graph, error) {
	if n < 2 {
		return graph{}, fmt.Errorf("%d nodes: a mesh needs at least two", n)
	}
	switch t {
	case Line, Grid:
		pl := place(t, n, degree, rng)
		return graph{pos: pl.pos, adj: neighbours(pl.pos, pl.radius)}, nil
	case Random:
		side := Spacing * math.Sqrt(float64(n))
		pos := make([]sim.Position, n)
		for i := range pos {
			pos[i] = sim.Position{X: rng.Float64() * side, Y: rng.Float64() * side}
		}
		return geometric(pos, degree, rng), nil
	case Ring:
		// A loop road: nodes about evenly spread along it (a gap wider
		// than the range would cut the ring), in a band a fifth of the
		// range wide, as many within range either way as the degree asks.
		r := 2 * Spacing
		circ := float64(n) * 2 * r / max(degree, 2)
		rad := circ / (2 * math.Pi)
		pos := make([]sim.Position, n)
		for i := range pos {
			a := 2 * math.Pi * (float64(i) + 0.6*(rng.Float64()-0.5)) / float64(n)
			d := rad + (rng.Float64()-0.5)*0.2*r
			pos[i] = sim.Position{X: rad + r + d*math.Cos(a), Y: rad + r + d*math.Sin(a)}
		}
		return graph{pos: pos, adj: repair(pos, r, rng)}, nil
	case Clustered:
		return clustered(n, rng), nil
	case Hubs:
		return hubs(n, degree, rng), nil
	}
	return graph{}, fmt.Errorf("unknown topology %q", t)
}

// geometric is the unit-disk graph of pos with the radius that gives the
// mean degree asked for, repaired to be connected.
func geometric(pos []sim.Position, degree float64, rng *rand.Rand) graph {
	r := radiusFor(pos, degree)
	return graph{pos: pos, adj: repair(pos, r, rng)}
}

// repair connects the unit-disk graph of pos, radius r: every node outside
// the largest component moves next to a random node of it (within 0.5 to
// 0.9 of the radius), which joins it to the component. Moving a node out of
// a small component never splits the largest one, so one round suffices;
// the loop only guards against the impossible.
func repair(pos []sim.Position, r float64, rng *rand.Rand) [][]int {
	for {
		adj := neighbours(pos, r)
		comp, sizes := components(adj)
		big := 0
		for c, s := range sizes {
			if s > sizes[big] {
				big = c
			}
		}
		if len(sizes) <= 1 {
			return adj
		}
		var members []int
		for i, c := range comp {
			if c == big {
				members = append(members, i)
			}
		}
		for i, c := range comp {
			if c == big {
				continue
			}
			u := members[rng.IntN(len(members))]
			a := rng.Float64() * 2 * math.Pi
			d := r * (0.5 + 0.4*rng.Float64())
			pos[i] = sim.Position{X: pos[u].X + d*math.Cos(a), Y: pos[u].Y + d*math.Sin(a)}
		}
	}
}

// components labels each node with its connected component and returns
// the components' sizes.
func components(adj [][]int) (comp []int, sizes []int) {
	comp = make([]int, len(adj))
	for i := range comp {
		comp[i] = -1
	}
	var stack []int
	for s := range adj {
		if comp[s] >= 0 {
			continue
		}
		c := len(sizes)
		sizes = append(sizes, 1)
		comp[s] = c
		stack = append(stack[:0], s)
		for len(stack) > 0 {
			u := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, v := range adj[u] {
				if comp[v] < 0 {
					comp[v] = c
					sizes[c]++
					stack = append(stack, v)
				}
			}
		}
	}
	return comp, sizes
}

// clustered: towns of about 150 nodes, each a dense disk (mean degree
// about 20), on a jittered grid eight radio ranges apart, joined along a
// spanning tree of their centres (plus the shortest of the other pairs, one
// for every four towns) by chains of relays 0.7 ranges apart: the shape of
// villages linked along valleys, where a few relays carry everything
// between towns.
func clustered(n int, rng *rand.Rand) graph {
	r := 2 * Spacing
	towns := max(2, int(math.Round(float64(n)/150)))
	for draws := 0; ; {
		centres := make([]sim.Position, towns)
		cols := int(math.Ceil(math.Sqrt(float64(towns))))
		for i := range centres {
			centres[i] = sim.Position{
				X: (float64(i%cols) + 0.3*(rng.Float64()-0.5)) * 8 * r,
				Y: (float64(i/cols) + 0.3*(rng.Float64()-0.5)) * 8 * r,
			}
		}
		townR := 2.5 * r
		links := townLinks(centres)
		var chains []sim.Position
		for _, l := range links {
			a, b := centres[l[0]], centres[l[1]]
			d := a.Dist(b) - 2*townR*0.9
			steps := int(math.Ceil(d/(0.7*r))) - 1
			ux, uy := (b.X-a.X)/a.Dist(b), (b.Y-a.Y)/a.Dist(b)
			for s := 1; s <= steps; s++ {
				t := townR*0.9 + d*float64(s)/float64(steps+1)
				j := (rng.Float64() - 0.5) * 0.2 * r
				chains = append(chains, sim.Position{X: a.X + ux*t - uy*j, Y: a.Y + uy*t + ux*j})
			}
		}
		rest := n - len(chains)
		if rest < 10*towns && towns > 2 {
			towns--
			continue
		}
		pos := make([]sim.Position, 0, n)
		for i := range rest {
			c := centres[i%towns]
			a := rng.Float64() * 2 * math.Pi
			d := townR * math.Sqrt(rng.Float64())
			pos = append(pos, sim.Position{X: c.X + d*math.Cos(a), Y: c.Y + d*math.Sin(a)})
		}
		pos = append(pos, chains...)
		pos = pos[:n]
		// A chain's end can miss its town (no town node within range of
		// its first relay: about one draw in twelve at 200 nodes). Then
		// repair would scatter the whole cut-off town into the largest
		// piece, and the graph would be one dense blob (seed 5 at 200
		// nodes: degree median 28 and max 42 against 13 and 21-25), not
		// towns joined by chains. Draw again; repair only strays.
		if draws++; draws < maxClusterDraws && cutOff(neighbours(pos, r)) > maxStrays {
			continue
		}
		return graph{pos: pos, adj: repair(pos, r, rng)}
	}
}

// maxClusterDraws bounds the draws of a clustered graph whose towns or
// chains came out cut off (each fails with probability about 1/12), and
// maxStrays is how many nodes outside the largest piece repair may move
// next to it (a town node at its disk's edge, a chain relay) without the
// shape changing.
const (
	maxClusterDraws = 32
	maxStrays       = 10
)

// cutOff is how many nodes lie outside the largest connected piece.
func cutOff(adj [][]int) int {
	_, sizes := components(adj)
	return len(adj) - slices.Max(sizes)
}

// townLinks is a minimum spanning tree of the centres (Prim) plus the
// shortest remaining pairs, one for every four towns.
func townLinks(c []sim.Position) [][2]int {
	n := len(c)
	in := make([]bool, n)
	in[0] = true
	var links [][2]int
	for len(links) < n-1 {
		best, bi, bj := math.Inf(1), -1, -1
		for i := range n {
			if !in[i] {
				continue
			}
			for j := range n {
				if !in[j] && c[i].Dist(c[j]) < best {
					best, bi, bj = c[i].Dist(c[j]), i, j
				}
			}
		}
		in[bj] = true
		links = append(links, [2]int{bi, bj})
	}
	type pair struct {
		i, j int
		d    float64
	}
	var rest []pair
	for i := range n {
		for j := i + 1; j < n; j++ {
			if !slices.ContainsFunc(links, func(l [2]int) bool { return l == [2]int{i, j} || l == [2]int{j, i} }) {
				rest = append(rest, pair{i, j, c[i].Dist(c[j])})
			}
		}
	}
	slices.SortFunc(rest, func(a, b pair) int { return int(math.Copysign(1, a.d-b.d)) })
	for k := 0; k < n/4 && k < len(rest); k++ {
		links = append(links, [2]int{rest[k].i, rest[k].j})
	}
	return links
}

// hubs: a random geometric mesh of the mean degree asked for, with one
// rooftop gateway for every 300 nodes. A gateway hears every mesh node
// within a long range (about 180 of them) and 60 small nodes that hear
// only it (a sensor or a flat with one line of sight): some 240 neighbours,
// more than the 135 children a parent can number (PROTOCOL 6.2).
func hubs(n int, degree float64, rng *rand.Rand) graph {
	const (
		hubMesh   = 180 // mesh nodes a gateway hears
		hubLeaves = 60  // nodes that hear only their gateway
	)
	h := max(1, n/300)
	leaves := min(h*hubLeaves, n/4)
	base := n - leaves
	side := Spacing * math.Sqrt(float64(base))
	pos := make([]sim.Position, base, n)
	for i := range pos {
		pos[i] = sim.Position{X: rng.Float64() * side, Y: rng.Float64() * side}
	}
	g := geometric(pos, degree, rng)
	pos = g.pos
	adj := g.adj
	gw := rng.Perm(base)[:h]
	// The long range: the radius that holds hubMesh nodes around the
	// first gateway (the same for all: one kind of rooftop radio).
	far := math.Sqrt(float64(min(hubMesh, base-1))/(math.Pi*float64(base))) * side
	link := func(a, b int) {
		if !slices.Contains(adj[a], b) {
			adj[a] = append(adj[a], b)
			adj[b] = append(adj[b], a)
		}
	}
	for _, g := range gw {
		for j := range base {
			if j != g && pos[g].Dist(pos[j]) < far {
				link(g, j)
			}
		}
	}
	for k := range leaves {
		g := gw[k%h]
		a := rng.Float64() * 2 * math.Pi
		d := far * (0.3 + 0.7*rng.Float64())
		pos = append(pos, sim.Position{X: pos[g].X + d*math.Cos(a), Y: pos[g].Y + d*math.Sin(a)})
		adj = append(adj, nil)
		link(g, len(pos)-1)
	}
	for i := range adj {
		slices.Sort(adj[i])
	}
	return graph{pos: pos, adj: adj}
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
