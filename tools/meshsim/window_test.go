package meshsim

import (
	"errors"
	"math"
	"testing"
	"time"
)

// TestSteadyPlacesRouting: the steady window's length (RouteConfig.Steady,
// --steady) decides when the pairs are routed, and RoutingWindow reports
// the trees' renewals the routing met: a window ending a second before
// tree 0's second renewal routes through it (at least that renewal, and
// no node standing for root on this quiet mesh), where the default window,
// set explicitly, gives the default run field for field. A hubs mesh
// routed while its trees renewed lost a quarter of its pairs where the
// default window, between two rounds, lost none (h29seed7): tables must
// say which it was.
func TestSteadyPlacesRouting(t *testing.T) {
	base := RouteConfig{Nodes: 30, Pairs: 20, Seed: 3}
	def, err := Route(base)
	if err != nil {
		t.Fatal(err)
	}
	// The default window: one epoch cycle of the link's profile (15
	// minutes on ESP-NOW).
	prof := base.profile()
	conv, cycle := *def.ConvergedS, (time.Duration(prof.epochPeriods) * prof.claim).Seconds()
	if w := def.Window; w.StartS != conv+cycle || w.MeshS <= 0 || w.Terms < w.Renewals {
		t.Errorf("default window %+v, converged at %v s", w, conv)
	}
	same := base
	same.Steady = time.Duration(cycle) * time.Second
	again, err := Route(same)
	if err != nil {
		t.Fatal(err)
	}
	if again.Window != def.Window || again.Delivered != def.Delivered || again.StretchMean != def.StretchMean || again.Steady.FramesPerNodeMin != def.Steady.FramesPerNodeMin {
		t.Errorf("--steady of one epoch cycle: %+v, %d delivered; the default %+v, %d", again.Window, again.Delivered, def.Window, def.Delivered)
	}
	// Tree 0's second renewal: two cycles after its term began.
	renew := *def.TermsS[0] + 2*cycle
	on := base
	on.Steady = time.Duration((renew - 1 - conv) * float64(time.Second))
	r, err := Route(on)
	if err != nil {
		t.Fatal(err)
	}
	w := r.Window
	if math.Abs(w.StartS-(renew-1)) > 1e-6 || w.Renewals < 1 || w.Terms != w.Renewals || w.Epochs == 0 {
		t.Errorf("window set a second before tree 0's renewal at %.1f s: %+v", renew, w)
	}
	if r.Loops != 0 {
		t.Errorf("%d loops", r.Loops)
	}
}

// TestSteadyOutOfRange: a steady window set outside MinSteady..MaxSteady
// is refused as a setting, named as the flag, before anything runs.
func TestSteadyOutOfRange(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, time.Millisecond, MinSteady - 1, MaxSteady + 1} {
		c := RouteConfig{Nodes: 10, Topology: Random, Degree: 3, Pairs: 5, Steady: d}
		var se *SettingError
		if err := c.Validate(); !errors.As(err, &se) || se.Name != "steady" {
			t.Errorf("steady %v: %v", d, err)
		}
		if _, err := Route(c); err == nil {
			t.Errorf("steady %v: Route ran", d)
		}
	}
	for _, d := range []time.Duration{0, MinSteady, MaxSteady} {
		c := RouteConfig{Nodes: 10, Topology: Random, Degree: 3, Pairs: 5, Steady: d}
		if err := c.Validate(); err != nil {
			t.Errorf("steady %v: %v", d, err)
		}
	}
}

// TestSteadyOnCycle: a tree's first term runs on to its slot of the
// cycle, so the default window, from convergence, holds the renewals of
// only the trees whose first term ends in it (2 to 6 of six in the
// README's runs: the busiest node's air on hubs followed when the mesh
// converged, h41pullstale). With SteadyOnCycle the window begins once
// every tree has started a term since convergence, and one cycle then
// holds each tree's renewal once, and no other term on this quiet mesh.
func TestSteadyOnCycle(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		base := RouteConfig{Nodes: 30, Pairs: 20, Seed: seed}
		def, err := Route(base)
		if err != nil {
			t.Fatal(err)
		}
		on := base
		on.SteadyOnCycle = true
		r, err := Route(on)
		if err != nil {
			t.Fatal(err)
		}
		terms := func(r *RouteResult) uint64 {
			for _, s := range r.Stages {
				if s.Stage == "steady state" {
					return s.Terms
				}
			}
			t.Fatal("no steady state stage")
			return 0
		}
		t.Logf("seed %d: from convergence (%.1f s) %d terms in the window; from %.1f s %d", seed, def.SteadyFromS, terms(def), r.SteadyFromS, terms(r))
		if def.SteadyFromS != *def.ConvergedS {
			t.Errorf("seed %d: the default window began at %v s, converged at %v", seed, def.SteadyFromS, *def.ConvergedS)
		}
		if got, want := terms(r), uint64(len(r.TermsS)); got != want {
			t.Errorf("seed %d: %d terms in the window on the cycle, want one a tree (%d)", seed, got, want)
		}
		if r.SteadyFromS <= *r.ConvergedS {
			t.Errorf("seed %d: the window on the cycle began at %v s, converged at %v", seed, r.SteadyFromS, *r.ConvergedS)
		}
		if r.Delivered != r.Pairs || r.Loops != 0 {
			t.Errorf("seed %d: %d of %d delivered, %d loops", seed, r.Delivered, r.Pairs, r.Loops)
		}
	}
}
