package meshsim

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// quick is a route run at a size the test suite can afford: a short steady
// window (the steady figures are not what these tests hold).
func quick(c RouteConfig) RouteConfig {
	c.Steady = 2 * time.Minute
	if c.Pairs == 0 {
		c.Pairs = 150
	}
	return c
}

// checkRun holds a run to the invariants every graph must keep: converged
// (trees and names), every probe delivered, none unreported, no decision
// that could loop.
func checkRun(t *testing.T, name string, r *RouteResult) {
	t.Helper()
	conv := "not converged"
	if r.ConvergedS != nil {
		conv = fmt.Sprintf("converged %.0f s (%.1f claim periods)", *r.ConvergedS, *r.ConvergedPeriods)
	}
	t.Logf("%s: %d nodes, diameter %d, degree ≤ %d, depth %d (%d nibbles), %d leased; %s; delivered %d/%d (%.2f attempts), stretch mean %.3f p95 %.2f; loops %d, stale %d; %d events, wall %.1f s",
		name, r.Nodes, r.Diameter, r.MaxDegree, r.MaxDepth, r.MaxNibbles, r.Leased, conv, r.Delivered, r.Pairs, r.Attempts, r.StretchMean, r.StretchP95, r.Loops, r.StaleViews, r.Events, r.WallTimeS)
	if r.ConvergedS == nil {
		t.Errorf("%s: %d names not stored", name, r.NamesPending)
	}
	if r.Delivered != r.Pairs || r.Unreported != 0 {
		t.Errorf("%s: delivered %d of %d, %d unreported; failed %v %v", name, r.Delivered, r.Pairs, r.Unreported, r.Failed, r.Errors)
	}
	if r.Misdelivered != 0 {
		t.Errorf("%s: %d probes taken by a node other than their destination", name, r.Misdelivered)
	}
	if r.Loops != 0 {
		t.Errorf("%s: %d decisions broke the loop invariant: %v", name, r.Loops, r.LoopErrors)
	}
	// The stages split the whole run: their events add up to the run's,
	// and converging, the steady window and the pairs are among them.
	var events uint64
	seen := map[string]bool{}
	for _, st := range r.Stages {
		events += st.Events
		seen[st.Stage] = true
		// Every tree's root started a term to form it, and the nodes
		// entered its epoch.
		if st.Stage == "converging" && (st.Terms < uint64(r.Trees) || st.Epochs < uint64(r.Trees)) {
			t.Errorf("%s: converging made %d terms and %d epochs, for %d trees", name, st.Terms, st.Epochs, r.Trees)
		}
		// The frames by kind are the stage's transmissions: in the steady
		// window (no node dies there) they are the radios' count, and
		// every kind in it carries a frame. A claim floods each period.
		if st.Stage == "steady state" {
			var frames uint64
			for k, n := range st.Frames {
				if n == 0 {
					t.Errorf("%s: steady window: kind %q with no frame", name, k)
				}
				frames += n
			}
			per := float64(frames) / float64(r.Nodes) / (st.MeshTimeS / 60)
			if st.Frames["tree claim"] == 0 || math.Abs(per-r.Steady.FramesPerNodeMin) > 0.01*r.Steady.FramesPerNodeMin {
				t.Errorf("%s: steady window: frames by kind %v, %.2f a node a minute, the radios counted %.2f", name, st.Frames, per, r.Steady.FramesPerNodeMin)
			}
			// The busiest node's frames are a part of them, kind by kind,
			// of the kinds its airtime is split into; its retries and
			// later packets a part of its frames.
			b := &r.Steady
			if len(b.BusiestFrames) != len(b.BusiestByKind) || b.BusiestDegree < 1 {
				t.Errorf("%s: steady window: the busiest node (degree %d) sent frames of kinds %v, airtime of kinds %v", name, b.BusiestDegree, b.BusiestFrames, b.BusiestByKind)
			}
			for k, n := range b.BusiestFrames {
				if b.BusiestByKind[k] == 0 || n > st.Frames[k] || b.BusiestMACRetries[k] > n || b.BusiestLater[k] > n {
					t.Errorf("%s: steady window: the busiest node's %q: %d frames (%d retries, %d later packets; the mesh's %d), airtime share %g", name, k, n, b.BusiestMACRetries[k], b.BusiestLater[k], st.Frames[k], b.BusiestByKind[k])
				}
			}
		}
	}
	// Every place at convergence is counted by its depth, after its term
	// began (a root has none; a lease is no place), and every tree's term
	// began before the trees converged.
	places := 0
	for _, d := range r.PlacedByDepth {
		places += d.Places
		if d.Depth < 1 || d.MeanS < 0 || d.MeanS > d.MaxS {
			t.Errorf("%s: places at depth %d: %+v", name, d.Depth, d)
		}
	}
	if r.Leased == 0 && places != r.Nodes*r.Trees-r.Trees {
		t.Errorf("%s: %d places counted by depth, %d nodes in %d trees", name, places, r.Nodes, r.Trees)
	}
	if len(r.TermsS) != r.Trees {
		t.Errorf("%s: %d terms' starts for %d trees", name, len(r.TermsS), r.Trees)
	}
	for k, s := range r.TermsS {
		if s == nil || *s < 0 || *s > *r.TreesS {
			t.Errorf("%s: tree %d's term began at %v, the trees converged at %v s", name, k, s, *r.TreesS)
		}
	}
	if events != r.Events || !seen["converging"] || !seen["steady state"] || !seen["routing"] {
		t.Errorf("%s: stages %+v add up to %d events, the run had %d", name, r.Stages, events, r.Events)
	}
}

// TestEveryKindOfGraph: small graphs of every kind route every probe, with
// no loop. The line and the ring are deeper than the wire's 32 nibbles
// (Long addresses, path headers); the hubs' gateway hears more nodes than
// a parent can number (135), some of them only it (leases). The hubs run
// two trees: on the 802.11 DCF medium six trees forming around a gateway
// that 170 hidden neighbours talk to converge only after the 15-minute
// renewals, and not on every seed (README: not met), too long for a test.
// Seed 3: since a leaf is no candidate (docs/protocol.md, elections), seed
// 26 (the seed before) leases no place: its gateway (degree 170) no longer
// has more children than it can number.
func TestEveryKindOfGraph(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  RouteConfig
		want func(*RouteResult) error
	}{
		{"random", RouteConfig{Nodes: 150, Topology: Random, Seed: 21}, nil},
		{"grid", RouteConfig{Nodes: 100, Topology: Grid, Seed: 22}, nil},
		{"line", RouteConfig{Nodes: 60, Topology: Line, Seed: 23}, func(r *RouteResult) error {
			if r.MaxNibbles <= 32 {
				return fmt.Errorf("no address past the wire (%d nibbles)", r.MaxNibbles)
			}
			return nil
		}},
		{"ring", RouteConfig{Nodes: 160, Topology: Ring, Degree: 4, Seed: 24}, nil},
		{"clustered", RouteConfig{Nodes: 200, Topology: Clustered, Seed: 25}, nil},
		{"hubs", RouteConfig{Nodes: 300, Topology: Hubs, Degree: 6, Trees: 2, Seed: 3}, func(r *RouteResult) error {
			// A gateway of more neighbours than a parent may take as
			// children. Whether some node still holds a lease when the
			// short steady window ends is timing: seeds 1 and 2 of this
			// shape end with none on main too, and seed 3, 35 on main,
			// ends with none since gateways broadcast their chains
			// (h26cert: the full 15-minute runs of seeds 1–5 end with
			// 8–41). Leases themselves are held by l3-route/route's
			// lease tests.
			if r.MaxDegree <= 135 {
				return fmt.Errorf("a gateway of degree %d: not the shape meant", r.MaxDegree)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Route(quick(tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			checkRun(t, tc.name, r)
			if tc.want != nil {
				if err := tc.want(r); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestRepair: after the root of tree 0 dies, and after a tenth of the
// nodes die at once, no probe is lost silently or taken by another node,
// and every pair still connected is delivered again RepairPeriods claim
// periods after.
func TestRepair(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  RouteConfig
	}{
		{"root", RouteConfig{Nodes: 150, Seed: 31, FailRoot: true}},
		{"kill", RouteConfig{Nodes: 150, Seed: 32, Kill: 0.1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Route(quick(tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			checkRun(t, tc.name, r)
			rs := r.Repair
			if rs == nil {
				t.Fatal("no repair measured")
			}
			t.Logf("%s: %d dead, %d pieces; trees repaired %v s, names %v s; during %d/%d delivered, %d unreported, failed %v; after %d/%d",
				rs.Event, rs.Killed, rs.Components, deref(rs.TreesS), deref(rs.NamesS), rs.During.Delivered, rs.During.Pairs, rs.During.Unreported, rs.During.Failed, rs.After.Delivered, rs.After.Pairs)
			if rs.During.Unreported != 0 || rs.After.Unreported != 0 {
				t.Errorf("probes lost silently: %d during, %d after", rs.During.Unreported, rs.After.Unreported)
			}
			if rs.During.Misdelivered != 0 || rs.After.Misdelivered != 0 {
				t.Errorf("probes taken by another node: %d during, %d after", rs.During.Misdelivered, rs.After.Misdelivered)
			}
			if rs.After.Delivered != rs.After.Pairs {
				t.Errorf("after %d claim periods: %d/%d delivered (%v)", rs.AfterPeriods, rs.After.Delivered, rs.After.Pairs, rs.After.Errors)
			}
		})
	}
}

func deref(p *float64) any {
	if p == nil {
		return "never"
	}
	return *p
}

// TestStretchBothMetrics: routing by every tree, seeing a hop ahead
// (route/hood.go), holds the stretch on a random mesh within the issue's
// target (mean 1.06, p95 1.3) in both metrics. (By common-prefix distance
// it did not before the neighbourhoods: 1.074 and 1.375 at this seed,
// 1.074 to 1.145 and 1.375 to 1.625 over seeds 1-6 at 200 nodes; now 1.021
// and 1.14 here, README for the other seeds. The 1,000-node figures come
// from `mycelium bench route`.)
func TestStretchBothMetrics(t *testing.T) {
	for _, mode := range []bool{false, true} {
		r, err := Route(quick(RouteConfig{Nodes: 200, Seed: 3, Mode: mode, Pairs: 300}))
		if err != nil {
			t.Fatal(err)
		}
		checkRun(t, fmt.Sprintf("mode %d", r.Mode), r)
		maxMean, maxP95 := 1.06, 1.3
		if r.StretchMean > maxMean || r.StretchP95 > maxP95 {
			t.Errorf("mode %d: stretch mean %.3f, p95 %.3f", r.Mode, r.StretchMean, r.StretchP95)
		}
	}
}

// TestStretchCommonPrefix: routing by common prefix (mode 1) compares the
// trees by the levels of the destination's address still to descend into
// (addr.Metric.PathKey), not by the bare prefix length. With the bare
// length the tree where the destination lies deepest won every comparison
// and held a Package in ever deeper subtrees of it: on this graph 1.076,
// p95 1.33 (seed 1 at 1,000 nodes 1.180, p95 1.81); now 1.026, p95 1.20.
func TestStretchCommonPrefix(t *testing.T) {
	r, err := Route(quick(RouteConfig{Nodes: 200, Seed: 1, Mode: true, Pairs: 300}))
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, "mode 1", r)
	if r.StretchMean > 1.06 || r.StretchP95 > 1.3 {
		t.Errorf("mode 1: stretch mean %.3f, p95 %.3f, want at most 1.06 and 1.3", r.StretchMean, r.StretchP95)
	}
}

// BenchmarkRoute is the routing measurement as a benchmark: one whole run
// (build, converge, route 1,000 pairs) per iteration, at 1,000 and 10,000
// nodes of mean degree 8. The time per event is the figure that must stay
// flat as the mesh grows.
func BenchmarkRoute(b *testing.B) {
	defer TuneCollector()() // as sim route runs
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for range b.N {
				r, err := Route(RouteConfig{Nodes: n, Pairs: 1000, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.DeliveryRatio, "delivery")
				b.ReportMetric(r.StretchMean, "stretch")
				b.ReportMetric(r.StretchP95, "stretch_p95")
				b.ReportMetric(r.WallPerEvent, "µs/event")
				b.ReportMetric(r.HeapMB, "heap_MB")
				b.ReportMetric(float64(r.Loops), "loops")
			}
		})
	}
}

// BenchmarkRouteEvents is the cost of a simulated event as the mesh
// grows: the first minute of mesh time from a cold start (the busiest:
// every node proves itself to its neighbours and the trees form) on random
// graphs of mean degree 8 from 1,000 to 10,000 nodes, building excluded.
// ns/event is the figure that must stay flat (cpu-ns/event is the
// process's CPU time per event, the collector's included: on a shared
// machine the steadier figure); events/node says the work per node did
// not grow either.
func BenchmarkRouteEvents(b *testing.B) {
	defer TuneCollector()()
	for _, n := range []int{1000, 2000, 5000, 10000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				m, _, err := newRouteMesh(RouteConfig{Nodes: n, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				b.StartTimer()
				start, cpu := time.Now(), cpuSeconds()
				events := m.clk.RunFor(time.Minute)
				el, cpu := time.Since(start), cpuSeconds()-cpu
				b.StopTimer()
				m.notePeak()
				b.ReportMetric(float64(el.Nanoseconds())/float64(events), "ns/event")
				b.ReportMetric(cpu*1e9/float64(events), "cpu-ns/event")
				b.ReportMetric(float64(events)/float64(n), "events/node")
				b.ReportMetric(float64(m.heapPeak)/float64(n)/1024, "heap_KiB/node")
			}
		})
	}
}

// TestLoRaControlAirtime: on a LoRa mesh of 100 (SF9, 1 % duty cycle),
// the busiest node's steady control traffic (a whole term: every frame,
// every relay's copy, acks, beacons) stays within a tenth of its duty
// budget, and routing still delivers. Before the re-registrations after a
// new term were spread over four claim periods (route/lookup.go,
// termSpread), the hour they crowded into cost a relay round the root of
// this mesh 13.1 % (registrations, their answers and the retries of both:
// 5.0 %); spread (4 hours), 9.0 %; with a term every two weeks instead of
// one a week (linkProfile), 6.8 %.
//
// Seed 17: when a claim's flood missed a region, every node of it asked
// its parent for the claim at the same instant (the watches of nodes
// started together ticked together), and the queries, the stale answers
// and the copies served to pullers collided and were sent again: a relay
// there spent 7.1 % of its budget on claims, 11.7 % in all. Seed 10: 16
// of 100 lookups failed ("no address known"), records stored short of
// their homes by a relay whose hop toward the key failed, given up on
// after a round of tries, or left above a home the tree later grew.
func TestLoRaControlAirtime(t *testing.T) {
	for _, seed := range []uint64{1, 10, 17} {
		name := fmt.Sprintf("lora seed %d", seed)
		r, err := Route(RouteConfig{Link: "lora", Nodes: 100, Pairs: 20, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		checkRun(t, name, r)
		st := r.Steady
		if st.DutyShareMax == nil {
			t.Fatal("no duty-cycle share on LoRa")
		}
		reg := st.BusiestByKind["route register"] + st.BusiestByKind["route registered"]
		t.Logf("%s: busiest node %d: %.1f %% of its duty budget (registrations %.1f %%), mean node %.1f %%; %v",
			name, st.BusiestNode, 100**st.DutyShareMax, 100*reg/DefaultDutyCycle, 100*st.AirtimeShareMean/DefaultDutyCycle, st.BusiestByKind)
		if *st.DutyShareMax > 0.10 {
			t.Errorf("%s: busiest node's control airtime %.1f %% of its duty budget, want ≤ 10 %%", name, 100**st.DutyShareMax)
		}
		// Registrations are the share termSpread keeps down (a term's
		// re-registrations all at once: 5.0 % of the busiest node's
		// budget); measured now 0-2.6 % over these seeds (seed 17's
		// busiest node is on many records' paths).
		if reg > 0.03*DefaultDutyCycle {
			t.Errorf("%s: registrations took %.1f %% of the busiest node's duty budget, want ≤ 3 %%", name, 100*reg/DefaultDutyCycle)
		}
	}
}

// The simulator measures at the periods the daemon runs at: tree's
// profiles, LoRa's on LoRa.
func TestRouteProfileIsTrees(t *testing.T) {
	for link, want := range map[string]tree.Profile{"lora": tree.LoRaProfile(), "espnow": tree.DefaultProfile()} {
		p := (&RouteConfig{Link: link}).profile()
		if p.beacon != want.Beacon || p.claim != want.ClaimPeriod || p.trees != want.Trees || p.epochPeriods != want.EpochPeriods {
			t.Errorf("%s: %+v, want %+v", link, p, want)
		}
	}
	if BeaconPeriod != tree.DefaultProfile().Beacon {
		t.Errorf("BeaconPeriod %v, the default profile's %v", BeaconPeriod, tree.DefaultProfile().Beacon)
	}
}

// TestUnconvergedSaysWhy: a mesh that does not converge in time says what
// held it (places not taken, roots, parents, neighbours' places unknown)
// and how many terms began, not just that it did not: on dense and hub
// meshes that never converged nothing said which it was.
func TestUnconvergedSaysWhy(t *testing.T) {
	_, err := Route(quick(RouteConfig{Nodes: 60, Seed: 1, Pairs: 10, MaxConverge: 5 * time.Second}))
	if err == nil {
		t.Fatal("converged in 5 s of mesh time")
	}
	for _, want := range []string{"did not converge", "places not taken", "neighbours' places", "terms started"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
