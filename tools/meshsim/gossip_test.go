package meshsim

import (
	"errors"
	"testing"
)

// BenchmarkGossip1000 holds the gossip targets (issue 12) on the faithful
// medium: 1,000 nodes, mean degree 8, 10 % loss, 100 Messages: every
// Message reaches every node, at no more than 0.5 frames per node per
// Message, everything counted. Each iteration takes the next seed.
func BenchmarkGossip1000(b *testing.B) {
	var tx, p95 float64
	i := 0
	for b.Loop() {
		i++
		r, err := Gossip(GossipConfig{Nodes: 1000, Degree: 8, Loss: 0.1, Messages: 100, Seed: uint64(i)})
		if err != nil {
			b.Fatal(err)
		}
		if r.Complete != r.Messages {
			b.Fatalf("seed %d: %d of %d Messages reached every node (worst %.4f)", i, r.Complete, r.Messages, r.ReachMin)
		}
		if r.TxPerNodePerMs > 0.5 {
			b.Fatalf("seed %d: %.3f frames per node per Message, target 0.5", i, r.TxPerNodePerMs)
		}
		tx += r.TxPerNodePerMs
		p95 += r.LatencyP95
	}
	b.ReportMetric(tx/float64(i), "tx/node/msg")
	b.ReportMetric(p95/float64(i), "latency-p95-s")
}

// A small mesh: every Message reaches every node, each once, and the
// relays are fewer than the nodes.
func TestGossipSmall(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		r, err := Gossip(GossipConfig{Nodes: 60, Degree: 8, Loss: 0.1, Messages: 20, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if r.Complete != 20 || r.Reach != 1 {
			t.Errorf("seed %d: %d of 20 complete, reach %.4f", seed, r.Complete, r.Reach)
		}
		if r.RelayFraction >= 0.8 {
			t.Errorf("seed %d: %.2f broadcasts per node per Message: pruning does nothing", seed, r.RelayFraction)
		}
	}
}

func TestGossipRefuses(t *testing.T) {
	for _, c := range []GossipConfig{
		{Nodes: 1},
		{Messages: MaxGossipMessages + 1},
		{Loss: 1},
		{Rate: 1000},
		{Size: 5000},
	} {
		_, err := Gossip(c)
		var se *SettingError
		if !errors.As(err, &se) {
			t.Errorf("%+v: %v, want a SettingError", c, err)
		}
	}
}
