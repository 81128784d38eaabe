package meshsim

import "testing"

// TestAdversaries: on a small mesh every forgery an honest node hears is
// rejected, honest pairs are all served, and a flood stays within the
// reassembly budget.
func TestAdversaries(t *testing.T) {
	r, err := Route(RouteConfig{Nodes: 60, Pairs: 40, Seed: 2, Adversary: []string{"forge-goodbye", "forge-beacon", "flood"}, Adversaries: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"forge-goodbye", "forge-beacon", "flood"} {
		a := r.Adversary[k]
		if a == nil || a.Tried == 0 {
			t.Fatalf("%s: not tried: %+v", k, a)
		}
		if k != "flood" && a.Rejected != a.Tried {
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
	if r.PeakRxBytes == 0 || r.PeakRxBytes > r.RxBudgetBytes {
		t.Errorf("peak reassembly %d bytes, budget %d", r.PeakRxBytes, r.RxBudgetBytes)
	}
	t.Logf("%+v honest %d/%d peak rx %d", r.Adversary, r.HonestDelivered, r.HonestPairs, r.PeakRxBytes)
	if _, err := Route(RouteConfig{Nodes: 10, Adversary: []string{"forge-everything"}, Adversaries: 1}); err == nil {
		t.Error("an attack the simulator does not play was accepted")
	}
}
