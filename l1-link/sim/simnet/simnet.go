// Package simnet builds simulated networks for tests, benchmarks and the
// simulator, once for every layer: a virtual clock, media by name, stations
// with a radio on each medium they are on, and the edges between them.
// Each layer puts its own node on a station's links (node tests a bare
// node, the routing tests a node with trees and a router, meshsim its
// traffic), so this package names no layer above the link.
package simnet

import (
	"fmt"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// Net is a simulated network. Everything in it runs on Clock, which only
// moves when its owner runs it: a Net is used from one goroutine.
type Net struct {
	Clock    *clock.Virtual
	media    map[string]*sim.Medium
	stations []station
}

// station is one place with radios: what a node's links are.
type station struct {
	pos    sim.Position
	media  []string // in link order
	radios map[string]*sim.Radio
}

// New returns an empty network on a virtual clock standing at clock.Epoch.
func New() *Net {
	return &Net{Clock: clock.NewVirtual(time.Time{}), media: map[string]*sim.Medium{}}
}

// AddMedium adds a medium named name for phy, its random choices (loss,
// backoff) drawn from seed.
func (n *Net) AddMedium(name string, phy sim.PHY, seed uint64) *sim.Medium {
	m := sim.NewMedium(n.Clock, phy, seed)
	n.media[name] = m
	return m
}

// Medium returns the medium named name (nil if none).
func (n *Net) Medium(name string) *sim.Medium { return n.media[name] }

// AddStation adds a station at pos with a radio on each named medium, in
// that order (its links' order), and returns its index. It panics for a
// medium never added: a test's typo, found at once.
func (n *Net) AddStation(pos sim.Position, media ...string) int {
	s := station{pos: pos, media: slices.Clone(media), radios: map[string]*sim.Radio{}}
	for _, name := range media {
		m := n.media[name]
		if m == nil {
			panic(fmt.Sprintf("simnet: no medium %q", name))
		}
		s.radios[name] = m.AddRadio(pos)
	}
	n.stations = append(n.stations, s)
	return len(n.stations) - 1
}

// Stations is the number of stations.
func (n *Net) Stations() int { return len(n.stations) }

// Radio returns station i's radio on medium (nil if it has none there).
func (n *Net) Radio(i int, medium string) *sim.Radio { return n.stations[i].radios[medium] }

// Radios returns station i's radios in link order.
func (n *Net) Radios(i int) []*sim.Radio {
	s := n.stations[i]
	out := make([]*sim.Radio, len(s.media))
	for k, name := range s.media {
		out[k] = s.radios[name]
	}
	return out
}

// Links returns station i's radios as the links of a node, in order.
func (n *Net) Links(i int) []link.Link {
	rs := n.Radios(i)
	out := make([]link.Link, len(rs))
	for k, r := range rs {
		out[k] = r
	}
	return out
}

// Position returns where station i is.
func (n *Net) Position(i int) sim.Position { return n.stations[i].pos }

// Connect lets stations a and b hear each other on medium, with a loss
// model each way (connecting again replaces them). It panics if either has
// no radio there.
func (n *Net) Connect(medium string, a, b int, ab, ba sim.Loss) {
	ra, rb := n.Radio(a, medium), n.Radio(b, medium)
	if ra == nil || rb == nil {
		panic(fmt.Sprintf("simnet: stations %d and %d do not both have a radio on %q", a, b, medium))
	}
	n.media[medium].Connect(ra, rb, ab, ba)
}

// Disconnect makes stations a and b unable to hear each other on medium.
func (n *Net) Disconnect(medium string, a, b int) {
	if ra, rb := n.Radio(a, medium), n.Radio(b, medium); ra != nil && rb != nil {
		n.media[medium].Disconnect(ra, rb)
	}
}

// ConnectWithin connects, on medium, every pair of its stations closer than
// radius, with loss both ways; it returns the number of pairs.
func (n *Net) ConnectWithin(medium string, radius float64, loss sim.Loss) int {
	var on []int
	for i, s := range n.stations {
		if s.radios[medium] != nil {
			on = append(on, i)
		}
	}
	pairs := 0
	for k, a := range on {
		for _, b := range on[k+1:] {
			if n.stations[a].pos.Dist(n.stations[b].pos) < radius {
				n.Connect(medium, a, b, loss, loss)
				pairs++
			}
		}
	}
	return pairs
}

// Neighbors returns the stations within radio reach of station i, on any
// medium, in index order.
func (n *Net) Neighbors(i int) []int {
	var out []int
	for name, r := range n.stations[i].radios {
		for _, o := range r.Neighbors() {
			for j, s := range n.stations {
				if s.radios[name] == o && !slices.Contains(out, j) {
					out = append(out, j)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// RunUntil runs the clock until cond holds or limit of mesh time passes;
// it reports whether cond holds. cond is checked after every event.
func (n *Net) RunUntil(limit time.Duration, cond func() bool) bool {
	n.Clock.RunWhile(n.Clock.Now().Add(limit), func() bool { return !cond() })
	return cond()
}
