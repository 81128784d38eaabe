// Package meshsim builds whole meshes on the simulated medium and runs them
// in virtual time: the engine behind `mycelium sim` and `mycelium bench`.
// A run is a pure function of its Config: the same seed gives the same
// figures.
package meshsim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// Topology names a way to place nodes.
type Topology string

// Topologies.
const (
	Grid   Topology = "grid"   // a square grid, each node hearing its 4 neighbours
	Line   Topology = "line"   // a chain
	Random Topology = "random" // random geometric: uniform positions, a radius for the mean degree
)

// ParseTopology checks a topology name.
func ParseTopology(s string) (Topology, error) {
	switch t := Topology(s); t {
	case Grid, Line, Random:
		return t, nil
	}
	return "", fmt.Errorf("unknown topology %q (grid, line, random)", s)
}

// Spacing is the distance between neighbours on grids and lines, in metres
// (about what ESP-NOW reaches indoors).
const Spacing = 50.0

// placement is where nodes are and how far a radio reaches.
type placement struct {
	pos    []sim.Position
	radius float64 // ESP-NOW range
}

// place positions n nodes. For Random, the radius is chosen so that the
// mean degree is the one asked for (the placement is resampled until the
// graph is connected, up to a point).
func place(t Topology, n int, degree float64, rng *rand.Rand) placement {
	switch t {
	case Line:
		p := placement{radius: Spacing * 1.01}
		for i := range n {
			p.pos = append(p.pos, sim.Position{X: float64(i) * Spacing})
		}
		return p
	case Random:
		side := Spacing * math.Sqrt(float64(n))
		var p placement
		for try := 0; ; try++ {
			p = placement{}
			for range n {
				p.pos = append(p.pos, sim.Position{X: rng.Float64() * side, Y: rng.Float64() * side})
			}
			p.radius = radiusFor(p.pos, degree)
			if try >= 50 || connected(p.pos, p.radius) {
				return p
			}
		}
	default:
		cols := int(math.Ceil(math.Sqrt(float64(n))))
		p := placement{radius: Spacing * 1.01}
		for i := range n {
			p.pos = append(p.pos, sim.Position{X: float64(i%cols) * Spacing, Y: float64(i/cols) * Spacing})
		}
		return p
	}
}

// radiusFor finds the radius that gives the nodes at pos the mean degree
// wanted: the area formula alone gives less (nodes near the edge of the
// square have fewer neighbours), so the radius is put just past the right
// pair: between the edges-th and the next shortest of all pairwise
// distances. Those two are found without listing every pair (n² of them:
// 400 MB and seconds of sorting at 10,000 nodes, for each placement tried):
// a window of radii that holds both ranks is narrowed by counting pairs on
// a grid, and only the distances inside it are sorted.
func radiusFor(pos []sim.Position, degree float64) float64 {
	n := len(pos)
	if n < 2 {
		return Spacing
	}
	all := n * (n - 1) / 2
	// Mean degree is 2·edges/n.
	edges := min(int(math.Round(degree*float64(n)/2)), all)
	switch edges {
	case 0:
		return rankedDistance(pos, 0) / 2
	case all:
		far := 0.0
		for i := range pos {
			for j := i + 1; j < n; j++ {
				far = max(far, pos[i].Dist(pos[j]))
			}
		}
		return far * 1.001
	}
	return (rankedDistance(pos, edges-1) + rankedDistance(pos, edges)) / 2
}

// rankedDistance returns the k-th shortest (from 0) of the pairwise
// distances of pos, k below n(n-1)/2.
func rankedDistance(pos []sim.Position, k int) float64 {
	minX, minY, maxX, maxY := bounds(pos)
	area := max((maxX-minX)*(maxY-minY), 1)
	n := float64(len(pos))
	// The radius at which k+1 pairs are expected in a uniform square, as a
	// start; then widen the window [lo, hi) until it holds rank k.
	hi := math.Sqrt(2*float64(k+1)*area/(math.Pi*n*n)) * 1.5
	hi = max(hi, 1e-9)
	for pairsWithin(pos, hi) <= k {
		hi *= 1.5
	}
	lo := hi / 1.5
	below := pairsWithin(pos, lo)
	for below > k && lo > 1e-9 {
		lo /= 1.5
		below = pairsWithin(pos, lo)
	}
	if below > k { // nodes on top of each other
		lo, below = 0, 0
	}
	var window []float64
	g := newGrid(pos, hi)
	for i := range pos {
		g.near(pos, i, hi, func(j int) {
			if j > i {
				if d := pos[i].Dist(pos[j]); d >= lo {
					window = append(window, d)
				}
			}
		})
	}
	slices.Sort(window)
	return window[k-below]
}

// pairsWithin counts the pairs closer than r.
func pairsWithin(pos []sim.Position, r float64) int {
	if r <= 0 {
		return 0
	}
	g := newGrid(pos, r)
	count := 0
	for i := range pos {
		g.near(pos, i, r, func(j int) {
			if j > i {
				count++
			}
		})
	}
	return count
}

// connected reports whether the unit-disk graph of pos with radius r is
// connected.
func connected(pos []sim.Position, r float64) bool {
	if len(pos) == 0 {
		return true
	}
	g := newGrid(pos, r)
	seen := make([]bool, len(pos))
	stack := []int{0}
	seen[0] = true
	count := 1
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		g.near(pos, i, r, func(j int) {
			if !seen[j] {
				seen[j] = true
				count++
				stack = append(stack, j)
			}
		})
	}
	return count == len(pos)
}

// neighbours lists, for each node, the nodes closer than r, in increasing
// order: the graph the nested loop over all pairs gives, in its order.
func neighbours(pos []sim.Position, r float64) [][]int {
	g := newGrid(pos, r)
	adj := make([][]int, len(pos))
	for i := range pos {
		g.near(pos, i, r, func(j int) {
			if j != i {
				adj[i] = append(adj[i], j)
			}
		})
		slices.Sort(adj[i])
	}
	return adj
}

// grid buckets positions in squares of a side, so that the nodes within
// that distance of one are found in the nine squares around it. The
// squares are a dense array (nodes sorted by square, as in a CSR matrix)
// when there are not many more of them than nodes, a map otherwise.
type grid struct {
	side       float64
	minX, minY float64
	cols, rows int
	start      []int // dense: square k holds order[start[k]:start[k+1]]
	order      []int
	cells      map[[2]int][]int // sparse
}

// maxCells bounds the grid's squares per axis: a radius far below the
// spacing would otherwise make a square per node and nothing to gain.
const maxCells = 1 << 20

func newGrid(pos []sim.Position, side float64) *grid {
	minX, minY, maxX, maxY := bounds(pos)
	side = max(side, (maxX-minX)/maxCells, (maxY-minY)/maxCells, 1e-9)
	g := &grid{side: side, minX: minX, minY: minY}
	g.cols, g.rows = int((maxX-minX)/side)+1, int((maxY-minY)/side)+1
	if g.cols*g.rows > 4*len(pos)+16 {
		g.cells = map[[2]int][]int{}
		for i, p := range pos {
			c := g.cell(p)
			g.cells[c] = append(g.cells[c], i)
		}
		return g
	}
	g.start = make([]int, g.cols*g.rows+1)
	for _, p := range pos {
		c := g.cell(p)
		g.start[c[1]*g.cols+c[0]+1]++
	}
	for k := 1; k < len(g.start); k++ {
		g.start[k] += g.start[k-1]
	}
	g.order = make([]int, len(pos))
	fill := slices.Clone(g.start)
	for i, p := range pos {
		c := g.cell(p)
		k := c[1]*g.cols + c[0]
		g.order[fill[k]] = i
		fill[k]++
	}
	return g
}

func (g *grid) cell(p sim.Position) [2]int {
	return [2]int{int((p.X - g.minX) / g.side), int((p.Y - g.minY) / g.side)}
}

// square returns the nodes of square (x, y), in increasing order.
func (g *grid) square(x, y int) []int {
	if g.cells != nil {
		return g.cells[[2]int{x, y}]
	}
	if x < 0 || y < 0 || x >= g.cols || y >= g.rows {
		return nil
	}
	k := y*g.cols + x
	return g.order[g.start[k]:g.start[k+1]]
}

// near calls f for every node j (i itself included) closer to node i than
// r, which must not exceed the grid's side. The distance decides as
// Position.Dist computes it; the squared distance only skips the nodes
// clearly out of reach.
func (g *grid) near(pos []sim.Position, i int, r float64, f func(j int)) {
	c := g.cell(pos[i])
	p := pos[i]
	far := r * r * (1 + 1e-9)
	for dy := -1; dy <= 1; dy++ {
		for dx := -1; dx <= 1; dx++ {
			for _, j := range g.square(c[0]+dx, c[1]+dy) {
				ex, ey := pos[j].X-p.X, pos[j].Y-p.Y
				if ex*ex+ey*ey > far {
					continue
				}
				if p.Dist(pos[j]) < r {
					f(j)
				}
			}
		}
	}
}

func bounds(pos []sim.Position) (minX, minY, maxX, maxY float64) {
	minX, minY = math.Inf(1), math.Inf(1)
	maxX, maxY = math.Inf(-1), math.Inf(-1)
	for _, p := range pos {
		minX, maxX = min(minX, p.X), max(maxX, p.X)
		minY, maxY = min(minY, p.Y), max(maxY, p.Y)
	}
	return minX, minY, maxX, maxY
}
