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
// square have fewer neighbours), so the radius is found by bisection on
// the degree actually counted.
func radiusFor(pos []sim.Position, degree float64) float64 {
	n := len(pos)
	if n < 2 {
		return Spacing
	}
	var d []float64
	for i := range pos {
		for j := i + 1; j < n; j++ {
			d = append(d, pos[i].Dist(pos[j]))
		}
	}
	slices.Sort(d)
	// Mean degree is 2·edges/n: the radius is just past the right pair.
	edges := min(int(math.Round(degree*float64(n)/2)), len(d))
	if edges == 0 {
		return d[0] / 2
	}
	if edges == len(d) {
		return d[len(d)-1] * 1.001
	}
	return (d[edges-1] + d[edges]) / 2
}

// connected reports whether the unit-disk graph of pos with radius r is
// connected.
func connected(pos []sim.Position, r float64) bool {
	if len(pos) == 0 {
		return true
	}
	seen := make([]bool, len(pos))
	stack := []int{0}
	seen[0] = true
	count := 1
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for j := range pos {
			if !seen[j] && pos[i].Dist(pos[j]) < r {
				seen[j] = true
				count++
				stack = append(stack, j)
			}
		}
	}
	return count == len(pos)
}
