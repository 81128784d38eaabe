package meshsim

import (
	"fmt"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
)

// BenchmarkTransferProven: a 10 KiB transfer between two of our nodes
// that have proven each other, the steady state between our nodes (the
// bench's transferOnce starts 7 s after the nodes heard each other, before
// the proofs end on LoRa), timed as the bench times it. One op is one run
// with its own seed (seed*1000 + op); mesh-s/op is the mean time to the
// sender's confirmation in mesh time, efficiency the mean of bound/time,
// frames/op what went on the air; hop=off is without authenticated hops
// (the default, node.Config.HopAuth), hop=on with:
//
//	go test -run '^$' -bench TransferProven -benchtime 100x ./tools/meshsim/
func BenchmarkTransferProven(b *testing.B) {
	for _, phy := range []sim.PHY{phys.ESPNOW(), phys.LoRa(lora.Params{SF: 9, Bandwidth: 125000, CR: 1, Preamble: 12})} {
		for _, loss := range []float64{0, 0.1} {
			for seed := uint64(1); seed <= 3; seed++ {
				for _, hop := range []bool{false, true} {
					b.Run(fmt.Sprintf("%s/loss=%.1f/seed=%d/hop=%s", phy.Name, loss, seed, map[bool]string{false: "off", true: "on"}[hop]), func(b *testing.B) {
						var took, eff, frames float64
						ok := 0
						r := uint64(0)
						for b.Loop() {
							o, done := provenOnce(phy, LossModel(loss, false), seed*1000+r, hop)
							r++
							if !done {
								continue
							}
							ok++
							took += o.took.Seconds()
							eff += o.bound.Seconds() / o.took.Seconds()
							frames += float64(o.frames)
						}
						if ok == 0 {
							b.Fatal("no run completed")
						}
						b.ReportMetric(took/float64(ok), "mesh-s/op")
						b.ReportMetric(eff/float64(ok), "efficiency")
						b.ReportMetric(frames/float64(ok), "frames/op")
						b.ReportMetric(float64(int(r)-ok), "failed")
					})
				}
			}
		}
	}
}

// provenOnce is transferOnce (bench.go) waiting for both proofs first.
func provenOnce(phy sim.PHY, loss sim.Loss, seed uint64, hop bool) (outcome, bool) {
	net := simnet.New()
	clk := net.Clock
	med := net.AddMedium("m", phy, seed)
	net.AddStation(sim.Position{}, "m")
	net.AddStation(sim.Position{X: 10}, "m")
	net.Connect("m", 0, 1, loss, loss)
	mk := func(i int, k byte) *node.Node {
		n, _ := node.New(node.Config{Clock: clk, Links: net.Links(i), Identity: identity.FromSeed([32]byte{k, byte(seed), byte(seed >> 8)}), Seed: seed*2 + uint64(k), HopAuth: hop})
		n.Register(TrafficApp, func(node.Message) {})
		n.Start()
		return n
	}
	a, b := mk(0, 1), mk(1, 2)
	proven := func() bool {
		pa, pb := a.Peer(b.ID()), b.Peer(a.ID())
		return pa != nil && pb != nil && pa.Proven && pb.Proven
	}
	clk.RunWhile(clk.Now().Add(2*time.Hour), func() bool { return !proven() })
	if !proven() {
		return outcome{}, false
	}
	clk.RunUntil(clk.Now().Add(7 * time.Second))
	o, res := timeSend(clk, med, phy, net.Radio(0, "m"), net.Radio(1, "m"), a, b.ID(), 10240, 24*time.Hour, nil)
	return o, res.Finished() && res.Err() == nil
}
