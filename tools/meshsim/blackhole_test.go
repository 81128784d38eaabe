package meshsim

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l3-route/route"
)

// TestBlackhole: adversaries drop every routed frame they hear. Nothing
// refuses that (there is nothing to check); what holds it off is the
// router's retries through other trees. On this seed a single attempt
// loses honest pairs to the blackholes (20 of 25 delivered, 22 of 40 in
// all), so the attack bites; with the retries more are served (24 of 25
// honest, 39 of 40 in all), and no routed probe is lost: the one pair
// that fails fails its lookup ("no address known"), both homes of the
// destination's record lying behind blackholes (the lookup is not routed
// round them). Every probe ends delivered or with a typed error (none
// unreported), and none is taken by another node. (A one-minute steady
// window: the test's time is the simulation's.)
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
	if retried.HonestDelivered <= one.HonestDelivered || retried.Delivered <= one.Delivered {
		t.Errorf("with retries through other trees honest %d/%d and %d pairs in all; one attempt %d/%d and %d",
			retried.HonestDelivered, retried.HonestPairs, retried.Delivered, one.HonestDelivered, one.HonestPairs, one.Delivered)
	}
	// With retries no routed probe is lost to the blackholes: a pair that
	// fails fails its lookup, whose every home lay behind one (the lookup
	// asks each tree's home along its greedy path; docs/security.md,
	// "Blackholes").
	for e, n := range retried.Failed {
		if e != route.ErrUnknownNode.Error() {
			t.Errorf("with retries through other trees %d probes failed: %s", n, e)
		}
	}
}
