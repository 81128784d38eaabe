package meshsim

import (
	"testing"
	"time"
)

// TestLieHood: adversaries that are proven neighbours broadcast
// neighbourhood lists naming two dozen far destinations as their own
// neighbours. Asked whom they would pass a Package for each to, honest
// neighbours never rank an adversary nearer than its certified depths
// allow (one hop beyond the largest of its trees' floors: liehood.go
// builds the bound from the destinations' addresses, not the router's),
// and every honest pair is served. With each tree's floor alone (the
// least of them, not the largest) the lies are believed: honest nodes
// pass Packages to a liar ranked next to a destination many hops away.
func TestLieHood(t *testing.T) {
	r, err := Route(RouteConfig{Nodes: 60, Pairs: 40, Seed: 3, Adversary: []string{"lie-hood"}, Adversaries: 4, Steady: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	a := r.Adversary["lie-hood"]
	if a == nil || a.Tried < 1000 {
		t.Fatalf("hardly tried: %+v", a)
	}
	if a.Rejected != a.Tried {
		t.Errorf("%d of %d decisions drawn to a liar beyond its bound", a.Tried-a.Rejected, a.Tried)
	}
	if r.HonestPairs == 0 || r.HonestDeliveryRatio == nil || *r.HonestDeliveryRatio != 1 {
		t.Errorf("honest delivery %d of %d", r.HonestDelivered, r.HonestPairs)
	}
	t.Logf("lie-hood: %+v; honest %d/%d; stretch %.3f, p95 %.2f", *a, r.HonestDelivered, r.HonestPairs, r.StretchMean, r.StretchP95)
}
