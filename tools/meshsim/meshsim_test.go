package meshsim

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
)

func TestDefaultRun(t *testing.T) {
	m, err := Build(Config{Loss: 0.05, Transfers: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := m.Run()
	if r.Nodes != 25 || r.MeshTimeS != 600 {
		t.Fatalf("defaults: %d nodes, %v s", r.Nodes, r.MeshTimeS)
	}
	if r.MeanPeers < 3 {
		t.Fatalf("peers discovered: %.1f per node on a 5x5 grid", r.MeanPeers)
	}
	tr := r.Transfers
	if tr.Started < 150 || float64(tr.Confirmed) < 0.95*float64(tr.Started) || tr.Delivered < tr.Confirmed {
		t.Fatalf("transfers %+v", tr)
	}
	// Every packet a node hands its radio goes on the air (once, and again
	// for each MAC retry), except those still queued when the run ends (a
	// node hands its radio two at most).
	air := r.Airtime["espnow"]
	if first := air.Transmissions - air.MACRetries; first > r.Packets.Sent || r.Packets.Sent-first > 2*uint64(r.Nodes) || air.Acks == 0 {
		t.Fatalf("frames on the air %d (%d of them MAC retries, %d ACKs), packets sent %d", air.Transmissions, air.MACRetries, air.Acks, r.Packets.Sent)
	}
	if r.GoodputBps <= 0 || r.Memory.HeapPerNodeBytes <= 0 {
		t.Fatalf("goodput %v, heap %d", r.GoodputBps, r.Memory.HeapPerNodeBytes)
	}
}

// The same seed gives the same run; another seed another.
func TestDeterministic(t *testing.T) {
	run := func(seed uint64) Result {
		m, err := Build(Config{Nodes: 30, Topology: Random, Degree: 5, Loss: 0.1, Transfers: 2, Seed: seed, Duration: 5 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		r := *m.Run()
		r.WallTimeS, r.Memory = 0, MemoryFigs{PeakRxBytes: r.Memory.PeakRxBytes, PeakCacheBytes: r.Memory.PeakCacheBytes}
		return r
	}
	a, b, c := run(7), run(7), run(8)
	if a.Events != b.Events || a.Packets != b.Packets || a.Transfers.Confirmed != b.Transfers.Confirmed || a.Bytes != b.Bytes {
		t.Fatalf("same seed, different runs:\n%+v\n%+v", a, b)
	}
	if a.Events == c.Events && a.Packets == c.Packets {
		t.Fatal("different seeds, same run")
	}
}

func TestMixedAndLoRa(t *testing.T) {
	for _, l := range []string{"lora", "mixed"} {
		m, err := Build(Config{Nodes: 20, Link: l, Loss: 0.05, Transfers: 0.2, MaxSize: 1500, Seed: 3, Duration: 15 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		r := m.Run()
		if _, ok := r.Airtime["lora"]; !ok {
			t.Fatalf("%s: no LoRa medium", l)
		}
		if l == "mixed" {
			gw := 0
			for _, rs := range m.Radios {
				if len(rs) == 2 {
					gw++
				}
			}
			if gw != 2 || r.Edges["espnow"] == 0 || r.Edges["lora"] == 0 {
				t.Fatalf("mixed: %d gateways, edges %v", gw, r.Edges)
			}
		}
		if r.Transfers.Confirmed == 0 || r.MeanPeers < 1 {
			t.Fatalf("%s: %+v, %.1f peers", l, r.Transfers, r.MeanPeers)
		}
	}
}

func TestPcapDir(t *testing.T) {
	dir := t.TempDir()
	m, err := Build(Config{Nodes: 6, Link: "mixed", Seed: 2, Duration: time.Minute, PcapDir: dir, Gateways: 2})
	if err != nil {
		t.Fatal(err)
	}
	r := m.Run()
	for name, want := range map[string]uint64{"espnow": r.Airtime["espnow"].Transmissions, "lora": r.Airtime["lora"].Transmissions} {
		f, err := os.Open(filepath.Join(dir, name+".pcap"))
		if err != nil {
			t.Fatal(err)
		}
		rd, err := capture.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for {
			if _, _, err := rd.Next(); err != nil {
				break
			}
			n++
		}
		f.Close()
		if n != want || n == 0 {
			t.Fatalf("%s.pcap holds %d frames, the medium carried %d", name, n, want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	if _, err := Build(Config{Link: "carrier-pigeon"}); err == nil {
		t.Fatal("unknown link accepted")
	}
	if _, err := ParseTopology("torus"); err == nil {
		t.Fatal("unknown topology accepted")
	}
	if _, err := Transfer(TransferConfig{Link: "espnow", Size: 10}); err == nil {
		t.Fatal("a Package under 32 bytes accepted")
	}
	if _, err := Transfer(TransferConfig{Link: "espnow", Size: 1 << 30}); err == nil {
		t.Fatal("1 GiB accepted")
	}
	if _, err := Transfer(TransferConfig{Link: "lora", Size: 100, LoRa: lora.Params{SF: 99}}); err == nil {
		t.Fatal("bad LoRa parameters accepted")
	}
}

// The node core's targets (issue 16: transfers near the true lower bound
// on the faithful medium), on a few runs (`mycelium bench transfer --runs
// 100` measures them). Virtual time: these figures do not depend on the
// machine.
func TestTransferTargets(t *testing.T) {
	for _, c := range []struct {
		link   string
		size   int
		loss   float64
		bursty bool
		want   float64
	}{
		{"espnow", 62207, 0, false, 0.90},
		{"espnow", 62207, 0.10, false, 0.85},
		{"espnow", 62207, 0.30, false, 0.75},
		{"espnow", 62207, 0.10, true, 0.70},
		{"espnow", 1024, 0, false, 0.85},
		{"espnow", 1 << 20, 0, false, 0.88},
		{"lora", 4096, 0.10, false, 0.85},
	} {
		r, err := Transfer(TransferConfig{Link: c.link, Size: c.size, Loss: c.loss, Bursty: c.bursty, Runs: 7, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Completed != r.Runs {
			t.Fatalf("%s loss %.2f: %d of %d runs completed: %v", c.link, c.loss, r.Completed, r.Runs, r.Errors)
		}
		if *r.EfficiencyMean < c.want || *r.EfficiencyWorst > 1 {
			t.Errorf("%s loss %.2f bursty %v: efficiency %.3f (worst %.3f), target %.2f", c.link, c.loss, c.bursty, *r.EfficiencyMean, *r.EfficiencyWorst, c.want)
		}
		t.Logf("%s %d B loss %.2f bursty %v: mean %.3f s (p95 %.3f), bound %.3f s, efficiency %.3f (p95 %.3f), %.0f kbit/s, %.1f retransmissions, %.1f MAC retries", c.link, c.size, c.loss, c.bursty, *r.MeanS, *r.P95S, *r.BoundS, *r.EfficiencyMean, *r.EfficiencyP95, *r.GoodputKbps, r.RetransMean, r.MACRetriesMean)
	}
}

// BenchmarkTransfer reports the transfer figures as benchmark metrics
// (efficiency, mesh seconds) alongside the wall time a transfer costs to
// simulate.
func BenchmarkTransfer(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  TransferConfig
	}{
		{"espnow/loss0", TransferConfig{Link: "espnow", Size: 62207, Runs: 1}},
		{"espnow/loss0.1", TransferConfig{Link: "espnow", Size: 62207, Loss: 0.1, Runs: 1}},
		{"espnow/loss0.3", TransferConfig{Link: "espnow", Size: 62207, Loss: 0.3, Runs: 1}},
		{"lora/loss0.1", TransferConfig{Link: "lora", Size: 4096, Loss: 0.1, Runs: 1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var eff, mesh float64
			i := 0
			for b.Loop() {
				cfg := c.cfg
				cfg.Seed = uint64(i)
				i++
				r, err := Transfer(cfg)
				if err != nil || r.Completed != 1 {
					b.Fatalf("%v %v", err, r.Errors)
				}
				eff += *r.EfficiencyMean
				mesh += *r.MeanS
			}
			b.ReportMetric(eff/float64(i), "efficiency")
			b.ReportMetric(mesh/float64(i), "mesh-s/op")
		})
	}
}

// BenchmarkMesh1000 is the 1,000-node hour of `mycelium sim`: wall time per
// hour of mesh time, and heap per node.
func BenchmarkMesh1000(b *testing.B) {
	for b.Loop() {
		m, err := Build(Config{Nodes: 1000, Topology: Random, Degree: 8, Loss: 0.05, Transfers: 1, Seed: 1, Duration: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		r := m.Run()
		b.ReportMetric(float64(r.Memory.HeapPerNodeBytes), "heap-B/node")
		b.ReportMetric(float64(r.Events), "events")
	}
}

// A mesh with reference boards among our nodes: every send of ours ends
// confirmed or failed, none confirmed without a delivery, over several
// seeds.
func TestReferenceNodes(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		m, err := Build(Config{Nodes: 25, ReferenceNodes: 6, Loss: 0.05, Transfers: 1, Seed: seed, Duration: 5 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		boards := 0
		for i := range m.Nodes {
			if (m.Nodes[i] == nil) == (m.Boards[i] == nil) {
				t.Fatalf("node %d is both or neither", i)
			}
			if m.Boards[i] != nil {
				boards++
			}
		}
		r := m.Run()
		tr, b := r.Transfers, r.Transfers.Boards
		if boards != 6 || b == nil || b.Nodes != 6 {
			t.Fatalf("%d boards, figures %+v", boards, b)
		}
		if tr.Unreported != 0 {
			t.Errorf("seed %d: %d sends confirmed and never delivered", seed, tr.Unreported)
		}
		if b.SentTo < 10 || float64(b.ConfirmedTo) < 0.9*float64(b.SentTo) || b.ConfirmedTo+b.FailedTo > b.SentTo {
			t.Errorf("seed %d: to boards %+v", seed, b)
		}
		if b.SentBy == 0 {
			t.Errorf("seed %d: the boards sent nothing", seed)
		}
		t.Logf("seed %d: %+v; unreported %d, duplicates %d, failed %v", seed, *b, tr.Unreported, tr.Duplicates, tr.Failed)
	}
}

func TestReferenceNodesErrors(t *testing.T) {
	for _, c := range []Config{
		{Nodes: 10, ReferenceNodes: -1},
		{Nodes: 10, ReferenceNodes: 11},
		{Nodes: 10, Link: "lora", ReferenceNodes: 1},
		{Nodes: 10, Link: "mixed", Gateways: 5, ReferenceNodes: 10},
	} {
		if _, err := Build(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := Transfer(TransferConfig{Link: "lora", Size: 1000, Reference: true}); err == nil {
		t.Error("a reference board on LoRa accepted")
	}
}

// The bound is a true lower bound: no run beats it, at any size or loss,
// bursty or not, on either link.
func TestBoundNeverBeaten(t *testing.T) {
	for _, c := range []TransferConfig{
		{Link: "espnow", Size: 40},
		{Link: "espnow", Size: 1024, Loss: 0.3},
		{Link: "espnow", Size: 5000, Loss: 0.2, Bursty: true},
		{Link: "espnow", Size: 5000, Loss: 0.1, Rate: 54000},
		{Link: "espnow", Size: 200000, Loss: 0.1},
		{Link: "lora", Size: 600, Loss: 0.2},
	} {
		c.Runs, c.Seed = 30, 3
		r, err := Transfer(c)
		if err != nil {
			t.Fatal(err)
		}
		if r.Completed != r.Runs || *r.EfficiencyWorst <= 0 || *r.EfficiencyMean > 1 || quantile(r.Times, 0) <= 0 {
			t.Fatalf("%+v: %d completed, efficiency mean %.3f, worst %.3f", c, r.Completed, *r.EfficiencyMean, *r.EfficiencyWorst)
		}
		if best := quantile(r.effs, 1); best > 1 {
			t.Fatalf("%+v: a run at efficiency %.4f", c, best)
		}
		t.Logf("%s %d B loss %.1f bursty %v: efficiency mean %.3f, best %.3f, worst %.3f", c.Link, c.Size, c.Loss, c.Bursty, *r.EfficiencyMean, quantile(r.effs, 1), *r.EfficiencyWorst)
	}
}
