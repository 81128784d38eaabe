package meshsim

import (
	"testing"
	"time"
)

// TestRoutingAttacks: adversaries play every attack on routing and the
// trees at once; each is heard by honest nodes and none fools one, and
// every honest pair is served. Without the defence each is aimed at, its
// attack succeeds (docs/security.md says what each one checks): a plain or
// self-signed receipt completing a send early, an error ending it, a
// replayed Package delivered twice, a proxy or future-dated record
// displacing a node's own, a forged claim starting a term, a neighbour's
// certificate taken as the adversary's place.
func TestRoutingAttacks(t *testing.T) {
	kinds := []string{"forge-receipt", "forge-error", "replay-packet", "forge-proxy", "future-record", "forge-claim", "replay-cert", "lie-distance"}
	// A short steady window (the attacks run through it): the test's time is
	// the simulation's.
	r, err := Route(RouteConfig{Nodes: 60, Pairs: 40, Seed: 3, Adversary: kinds, Adversaries: 4, Steady: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		a := r.Adversary[k]
		if a == nil || a.Tried < 50 {
			t.Errorf("%s: hardly tried: %+v", k, a)
			continue
		}
		if a.Rejected != a.Tried {
			t.Errorf("%s: %d of %d attacks fooled an honest node", k, a.Tried-a.Rejected, a.Tried)
		}
	}
	if r.HonestPairs == 0 || r.HonestDeliveryRatio == nil || *r.HonestDeliveryRatio != 1 {
		t.Errorf("honest delivery %d of %d", r.HonestDelivered, r.HonestPairs)
	}
	// A probe a node other than its destination took (a forged record
	// believed) or that ended in silence is a failure however many
	// attacks were counted rejected.
	if r.Misdelivered != 0 || r.Unreported != 0 {
		t.Errorf("%d probes misdelivered, %d unreported", r.Misdelivered, r.Unreported)
	}
	for _, k := range kinds {
		t.Logf("%s: %+v", k, *r.Adversary[k])
	}
	t.Logf("honest %d/%d", r.HonestDelivered, r.HonestPairs)
}
