package meshsim

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
)

// TestAdversaries: on a small mesh every forgery an honest node hears is
// rejected, honest pairs are all served while the flooders keep their
// radios busy with bogus sequence packets (line rate, not bursts), and the
// reassembly memory the flood takes stays within the budget.
func TestAdversaries(t *testing.T) {
	// A short steady window (the attacks run through it): the test's time
	// is the simulation's, and a line-rate flood is most of it.
	const steady = time.Minute
	r, err := Route(RouteConfig{Nodes: 60, Pairs: 40, Seed: 2, Adversary: []string{"forge-goodbye", "forge-beacon", "flood"}, Adversaries: 4, Steady: steady})
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
	// Line rate: on ESP-NOW (1 Mb/s) a bogus frame takes some 2.2 ms of
	// air; with DCF, acks and the neighbours' traffic a flooder sends
	// well over 50 a second. Bursts of 64 every 5 s were 13.
	if f := r.Adversary["flood"]; f.Tried < 50*len(r.Adversaries)*int(steady/time.Second) {
		t.Errorf("flood: %d frames from %d adversaries in %v: not line rate", f.Tried, len(r.Adversaries), steady)
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
	// The flood fills its neighbours' reassembly memory as far as their
	// per-peer budgets let it (the honest traffic alone holds a few kB),
	// and no further than the node's.
	if per := node.DefaultBudgets().RxPerPeer; r.PeakRxBytes < per/2 || r.PeakRxBytes > r.RxBudgetBytes {
		t.Errorf("peak reassembly %d bytes: want the flood held, within the budget %d (per peer %d)", r.PeakRxBytes, r.RxBudgetBytes, per)
	}
	for k, a := range r.Adversary {
		t.Logf("%s: %+v", k, *a)
	}
	t.Logf("honest %d/%d peak rx %d", r.HonestDelivered, r.HonestPairs, r.PeakRxBytes)
	if _, err := Route(RouteConfig{Nodes: 10, Adversary: []string{"forge-everything"}, Adversaries: 1}); err == nil {
		t.Error("an attack the simulator does not play was accepted")
	}
}
