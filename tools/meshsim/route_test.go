package meshsim

import (
	"fmt"
	"testing"
)

// The targets of the routing issue, at a size the test suite can afford
// (the 1,000-node figures come from BenchmarkRoute and `mycelium bench
// route`): every probe delivered, no hop that fails to bring a Package
// closer to its destination (the loop invariant), stretch within 1.2 in
// both metrics, convergence within 10 beacon periods, and after the root
// of tree 0 dies, a new tree within 3 claim periods of the old term's end.
func TestRouteTargets(t *testing.T) {
	for _, mode := range []bool{false, true} {
		r, err := Route(RouteConfig{Nodes: 150, Pairs: 200, Seed: 3, Mode: mode, FailRoot: !mode})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("mode %d: %d nodes, %d edges, converged %.0f s (%.1f beacon periods), delivered %d/%d, stretch mean %.3f p95 %.2f, control %.0f B/node/min steady (%.0f forming), loops %d, wall %.1f s",
			r.Mode, r.Nodes, r.Edges, r.ConvergedS, r.BeaconPeriods, r.Delivered, r.Pairs, r.StretchMean, r.StretchP95, r.ControlBytesPerNodeMin, r.ControlFormation, r.Loops, r.WallTimeS)
		if r.DeliveryRatio != 1 {
			t.Errorf("mode %d: delivery %.3f, errors %v", r.Mode, r.DeliveryRatio, r.Errors)
		}
		if r.Loops != 0 {
			t.Errorf("mode %d: %d hops without progress", r.Mode, r.Loops)
		}
		if r.StretchMean > 1.2 {
			t.Errorf("mode %d: stretch %.3f", r.Mode, r.StretchMean)
		}
		if r.BeaconPeriods >= 10 {
			t.Errorf("mode %d: converged in %.1f beacon periods", r.Mode, r.BeaconPeriods)
		}
		if r.ReconvergedS != nil {
			t.Logf("root failure: reconverged %.0f s after, %.2f claim periods after the term ended; %d/%d delivered after", *r.ReconvergedS, *r.ReconvergedAfterTerm, *r.AfterFailDelivered, *r.AfterFailPairs)
			if *r.ReconvergedAfterTerm > 3 {
				t.Errorf("reconverged %.2f claim periods after the term ended", *r.ReconvergedAfterTerm)
			}
			// Right after the failure the dead root's neighbours still
			// route toward it until they find it silent, and its region
			// is crowded: a few sends fail for good (their senders hear
			// why); the mesh as a whole must carry on.
			if float64(*r.AfterFailDelivered) < 0.95*float64(*r.AfterFailPairs) {
				t.Logf("errors: %v", r.Errors)
				t.Errorf("after the root failed: %d/%d delivered", *r.AfterFailDelivered, *r.AfterFailPairs)
			}
		} else if !mode {
			t.Error("no re-convergence after the root failed")
		}
	}
}

// BenchmarkRoute is the routing measurement as a benchmark: one whole run
// (build, converge, route 1,000 pairs) per iteration, at 100 and 1,000
// nodes of mean degree 8, in both metrics. The targets: delivery 1,
// stretch at most 1.2, convergence under 10 beacon periods, no loops, and
// under a minute of wall time at 1,000 nodes (ns/op).
func BenchmarkRoute(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, mode := range []bool{false, true} {
			m := 0
			if mode {
				m = 1
			}
			b.Run(fmt.Sprintf("nodes=%d/mode=%d", n, m), func(b *testing.B) {
				for range b.N {
					r, err := Route(RouteConfig{Nodes: n, Pairs: 1000, Seed: 1, Mode: mode})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(r.DeliveryRatio, "delivery")
					b.ReportMetric(r.StretchMean, "stretch")
					b.ReportMetric(r.StretchP95, "stretch_p95")
					b.ReportMetric(r.BeaconPeriods, "beacon_periods")
					b.ReportMetric(r.ControlBytesPerNodeMin, "ctrl_B/node/min")
					b.ReportMetric(float64(r.Loops), "loops")
				}
			})
		}
	}
}
