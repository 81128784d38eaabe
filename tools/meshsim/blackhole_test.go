package meshsim

import (
	"testing"
	"time"
)

// TestBlackhole: adversaries drop every routed frame they hear. Nothing
// refuses that (there is nothing to check); what holds it off is the
// router's retries through other trees. On this seed a single attempt
// loses honest pairs to the blackholes (20 of 25 delivered, 23 of 40 in
// all), so the attack bites; with the retries every honest pair is
// served and more pairs in all (39 of 40). Every probe ends delivered or
// with a typed error (none unreported), and none is taken by another
// node. (A one-minute steady window: the test's time is the simulation's.)
func TestBlackhole(t *testing.T) {
	run := func(attempts int) *RouteResult {
		t.Helper()
		r, err := Route(RouteConfig{Nodes: 60, Pairs: 40, Seed: 1, Adversary: []string{"blackhole"}, Adversaries: 4, Attempts: attempts, Steady: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if a := r.Adversary["blackhole"]; a == nil || a.Tried == 0 {
			t.Fatalf("attempts %d: no frame swallowed: %+v", attempts, a)
		}
		if r.Unreported != 0 || r.Misdelivered != 0 {
			t.Errorf("attempts %d: %d probes unreported, %d misdelivered", attempts, r.Unreported, r.Misdelivered)
		}
		if r.HonestPairs == 0 || r.HonestDeliveryRatio == nil {
			t.Fatalf("attempts %d: no honest pairs", attempts)
		}
		t.Logf("attempts %d: swallowed %d; honest %d/%d, all %d/%d, failed %v", attempts, r.Adversary["blackhole"].Tried, r.HonestDelivered, r.HonestPairs, r.Delivered, r.Pairs, r.Failed)
		return r
	}
	one, retried := run(1), run(0)
	if *one.HonestDeliveryRatio == 1 {
		t.Errorf("one attempt served every honest pair: the blackholes took nothing")
	}
	if *retried.HonestDeliveryRatio != 1 || retried.Delivered <= one.Delivered {
		t.Errorf("with retries through other trees honest %d/%d and %d pairs in all; one attempt %d/%d and %d",
			retried.HonestDelivered, retried.HonestPairs, retried.Delivered, one.HonestDelivered, one.HonestPairs, one.Delivered)
	}
}
