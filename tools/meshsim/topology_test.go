package meshsim

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// The grid gives exactly what comparing every pair gives: the radius for a
// degree, the neighbour lists in their order, connectivity. (Runs are pure
// functions of their seed, so the placement must not change under them.)
func TestGridMatchesEveryPair(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 40 {
		n := 2 + rng.IntN(300)
		side := Spacing * math.Sqrt(float64(n))
		pos := make([]sim.Position, n)
		for i := range pos {
			pos[i] = sim.Position{X: rng.Float64() * side, Y: rng.Float64() * side}
		}
		if trial%10 == 0 { // nodes on top of each other
			pos[1] = pos[0]
		}
		degree := []float64{0.001, 1, 4, 8, 20, float64(n)}[trial%6]

		var d []float64
		for i := range pos {
			for j := i + 1; j < n; j++ {
				d = append(d, pos[i].Dist(pos[j]))
			}
		}
		slices.Sort(d)
		edges := min(int(math.Round(degree*float64(n)/2)), len(d))
		var want float64
		switch edges {
		case 0:
			want = d[0] / 2
		case len(d):
			want = d[len(d)-1] * 1.001
		default:
			want = (d[edges-1] + d[edges]) / 2
		}
		r := radiusFor(pos, degree)
		if r != want {
			t.Fatalf("trial %d (%d nodes, degree %v): radius %v, want %v", trial, n, degree, r, want)
		}

		adj := neighbours(pos, r)
		for i := range pos {
			var nb []int
			for j := range pos {
				if j != i && pos[i].Dist(pos[j]) < r {
					nb = append(nb, j)
				}
			}
			if !slices.Equal(adj[i], nb) {
				t.Fatalf("trial %d: neighbours of %d: %v, want %v", trial, i, adj[i], nb)
			}
		}
		// The neighbour lists are checked against every pair above: the
		// graph's own connectivity is the reference.
		if connected(pos, r) != connectedAdj(adj) {
			t.Fatalf("trial %d: connected %v, want %v", trial, connected(pos, r), connectedAdj(adj))
		}
	}
}

// A large random placement costs seconds, not the n² pairs of old (400 MB
// and minutes at 10,000 nodes over the retries).
func BenchmarkPlace10000(b *testing.B) {
	for b.Loop() {
		place(Random, 10000, 8, rand.New(rand.NewPCG(1, 1)))
	}
}

// Settings out of range are refused, named as the command line names them,
// and a run that would hang is refused before it starts.
func TestValidate(t *testing.T) {
	good := Config{Nodes: 25, Topology: Grid, Degree: 6, Link: "espnow", Loss: 0.05, Duration: time.Minute, Transfers: 1, MinSize: 100, MaxSize: 20000}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		mut  func(*Config)
		flag string
	}{
		"no nodes":        {func(c *Config) { c.Nodes = 0 }, "nodes"},
		"too many":        {func(c *Config) { c.Nodes = MaxNodes + 1 }, "nodes"},
		"NaN loss":        {func(c *Config) { c.Loss = math.NaN() }, "loss"},
		"loss 1":          {func(c *Config) { c.Loss = 1 }, "loss"},
		"no duration":     {func(c *Config) { c.Duration = 0 }, "duration"},
		"long duration":   {func(c *Config) { c.Duration = MaxDuration + time.Second }, "duration"},
		"NaN transfers":   {func(c *Config) { c.Transfers = math.NaN() }, "transfers"},
		"min above max":   {func(c *Config) { c.MinSize = 30000 }, "min-size"},
		"gateways":        {func(c *Config) { c.Gateways = 2 }, "gateways"},
		"too many bytes":  {func(c *Config) { c.Nodes, c.Duration, c.Transfers = MaxNodes, MaxDuration, 10 }, "transfers"},
		"random degree":   {func(c *Config) { c.Topology, c.Degree = Random, -1 }, "degree"},
		"degree vs nodes": {func(c *Config) { c.Topology, c.Nodes, c.Degree = Random, 3, 3 }, "degree"},
	} {
		cfg := good
		c.mut(&cfg)
		var se *SettingError
		if err := cfg.Validate(); !errors.As(err, &se) || se.Name != c.flag {
			t.Errorf("%s: %v", name, err)
		}
		// Build fills zero settings with the defaults (a library's zero
		// value); anything else out of range it refuses too.
		if _, err := Build(cfg); (err == nil) != (cfg.Nodes == 0 || cfg.Duration == 0) {
			t.Errorf("%s: Build: %v", name, err)
		}
	}
	for name, c := range map[string]RouteConfig{
		"one node":             {Nodes: 1},
		"two, root failed":     {Nodes: 2, Degree: 1, FailRoot: true},
		"too many nodes":       {Nodes: MaxRouteNodes + 1},
		"too many pairs":       {Nodes: 10, Degree: 3, Pairs: MaxPairs + 1},
		"NaN loss":             {Nodes: 10, Degree: 3, Loss: math.NaN()},
		"negative nodes":       {Nodes: -5},
		"degree over the mesh": {Nodes: 4, Degree: 8},
	} {
		if _, err := Route(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Reference boards fit the nodes of a mixed mesh with ESP-NOW alone,
	// as Build places them, and not one more.
	for _, n := range []int{2, 7, 25, 101} {
		for _, gw := range []int{0, 1, n / 3} {
			cfg := good
			cfg.Nodes, cfg.Link, cfg.Gateways = n, "mixed", gw
			cfg.ReferenceNodes = espOnly(n, gw)
			if cfg.ReferenceNodes == 0 {
				continue
			}
			if _, err := Build(cfg); err != nil {
				t.Errorf("%d nodes, %d gateways, %d boards: %v", n, gw, cfg.ReferenceNodes, err)
			}
			cfg.ReferenceNodes++
			if err := cfg.Validate(); err == nil {
				t.Errorf("%d nodes, %d gateways: %d boards taken", n, gw, cfg.ReferenceNodes)
			}
		}
	}
	if _, err := Transfer(TransferConfig{Runs: -1, Size: 100}); err == nil {
		t.Error("transfer: negative runs taken")
	}
}

// A clustered graph is towns joined by chains, on every seed: a chain that
// missed its town once made repair scatter the cut-off town into the
// other (seed 5 at 200 nodes: one blob, degree median 28, max 42), a
// different mesh from the one the topology names. A town's disk gives a
// median degree of about 13 at 200 nodes and 18 at 1,000.
func TestClusteredKeepsItsTowns(t *testing.T) {
	for _, n := range []int{200, 1000} {
		for seed := uint64(1); seed <= 30; seed++ {
			if n == 1000 && seed > 8 {
				break
			}
			g, err := buildGraph(Clustered, n, 8, rand.New(rand.NewPCG(seed, 0x726f757465)))
			if err != nil {
				t.Fatal(err)
			}
			if !connectedAdj(g.adj) {
				t.Fatalf("%d nodes, seed %d: not connected", n, seed)
			}
			deg := make([]int, n)
			for i, nb := range g.adj {
				deg[i] = len(nb)
			}
			slices.Sort(deg)
			if med := deg[n/2]; med > 20 {
				t.Errorf("%d nodes, seed %d: degree median %d, max %d: a town was scattered into another", n, seed, med, deg[n-1])
			}
		}
	}
}
