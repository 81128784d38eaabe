package meshsim

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/refnode"
	"github.com/mycelium-mesh/mycelium/l2-seq/sequence"
)

// TransferConfig is one `mycelium bench transfer` measurement: a Package of
// Size bytes (app_id, hash and blob) from one node to its neighbour.
type TransferConfig struct {
	Link string // "espnow" or "lora"
	Size int
	Loss float64 // independent loss on every frame, both directions
	Runs int
	Seed uint64
	LoRa lora.Params
	// Reference makes the receiver a reference board (refnode: the
	// MicroPython Packager, modem sleep on, each run at another point of
	// its sleep cycle) and the sender's radio one that cannot sleep, as
	// espnow.Link is. ESP-NOW only.
	Reference bool
	// Progress, when set, is told each run as it starts ("9 runs", done
	// of Runs).
	Progress Progress
}

// TransferResult is what the runs measured. Times are mesh time (the
// simulated clock), in seconds; the figures over the completed runs are
// nil (null in JSON) when none completed.
type TransferResult struct {
	Link       string   `json:"link"`
	Size       int      `json:"size"`
	Loss       float64  `json:"loss"`
	Runs       int      `json:"runs"`
	Completed  int      `json:"completed"`
	MedianS    *float64 `json:"median_s"`
	BoundS     float64  `json:"bound_s"`
	Efficiency *float64 `json:"efficiency"` // bound_s / median_s
	MeanS      *float64 `json:"mean_s"`
	P95S       *float64 `json:"p95_s"`
	P10S       *float64 `json:"p10_s"`
	P90S       *float64 `json:"p90_s"`
	Schema     uint8    `json:"schema"`
	Reference  bool     `json:"reference,omitempty"`
	Packets    int      `json:"packets"`
	// FramesPerRun is the mean number of frames both nodes put on the air
	// during a transfer (data, retransmissions, acks, probes).
	FramesPerRun float64   `json:"frames_per_run"`
	RetransMean  float64   `json:"retransmissions_per_run"`
	Times        []float64 `json:"times_s"`
	Errors       []string  `json:"errors,omitempty"`
	PHY          string    `json:"phy"`
}

// Transfer runs the benchmark. Zero fields of c take the defaults (9 runs,
// ESP-NOW, LoRa at SF9/BW125); a setting out of range is an error
// (Validate).
func Transfer(c TransferConfig) (*TransferResult, error) {
	if c.Runs == 0 {
		c.Runs = 9
	}
	if c.LoRa.SF == 0 {
		c.LoRa = lora.Params{SF: 9, Bandwidth: 125000, CR: 1, Preamble: 12}
	}
	if c.Link == "" {
		c.Link = "espnow"
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	phy := phys.ESPNOW()
	if c.Link == "lora" {
		phy = phys.LoRa(c.LoRa)
	}
	// The schema two of our nodes pick (PROTOCOL 4.1), and the airtime-only
	// bound: the data frames the loss forces, N/(1-p), each one airtime.
	var s *packet.Schema
	for _, id := range phy.Schemas {
		x := packet.MustLookup(id)
		if x.Routed() || x.MaxPackage() < c.Size || (c.Reference && id != 0 && id != 2) {
			continue
		}
		if s == nil || x.MaxBody > s.MaxBody {
			s = x
		}
	}
	if s == nil {
		want := fmt.Sprintf("larger than any schema of %s carries between neighbours", c.Link)
		if c.Reference {
			want = "larger than a reference board takes (schemas 0 and 2)"
		}
		return nil, &SettingError{Name: "size", Value: fmt.Sprint(c.Size), Want: want}
	}
	count := sequence.Count(s, c.Size)
	last := c.Size - (count-1)*s.MaxBody
	data := time.Duration(count-1)*phy.Airtime(s.MaxPacket()) + phy.Airtime(s.HeaderSize+last)
	r := &TransferResult{Link: c.Link, Size: c.Size, Loss: c.Loss, Runs: c.Runs, Schema: s.ID, Packets: count, PHY: phy.Name, Reference: c.Reference}
	if c.Link == "lora" {
		r.PHY = c.LoRa.String()
	} else {
		r.PHY = "802.11b 1 Mbit/s long preamble"
	}
	r.BoundS = data.Seconds() / (1 - c.Loss)
	var frames, retrans float64
	for run := range c.Runs {
		if c.Progress != nil {
			c.Progress(fmt.Sprintf("%d runs", c.Runs), run, c.Runs)
		}
		once := transferOnce
		if c.Reference {
			once = transferToBoard
		}
		d, f, rt, err := once(phy, c.Size, c.Loss, c.Seed*1000+uint64(run))
		frames += float64(f)
		retrans += float64(rt)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			continue
		}
		r.Completed++
		r.Times = append(r.Times, d.Seconds())
	}
	r.FramesPerRun = frames / float64(c.Runs)
	r.RetransMean = retrans / float64(c.Runs)
	if len(r.Times) > 0 {
		ts := append([]float64(nil), r.Times...)
		sort.Float64s(ts)
		q := func(p float64) *float64 { v := ts[int(p*float64(len(ts)-1)+0.5)]; return &v }
		r.MedianS, r.P10S, r.P90S, r.P95S = q(0.5), q(0.1), q(0.9), q(0.95)
		sum := 0.0
		for _, t := range ts {
			sum += t
		}
		mean := sum / float64(len(ts))
		eff := r.BoundS / *r.MedianS
		r.MeanS, r.Efficiency = &mean, &eff
	}
	return r, nil
}

// transferOnce builds two nodes, lets them find each other, then times one
// Package from the first to the second, until the sender's result.
func transferOnce(phy sim.PHY, size int, loss float64, seed uint64) (time.Duration, uint64, uint64, error) {
	net := simnet.New()
	clk := net.Clock
	med := net.AddMedium("m", phy, seed)
	net.AddStation(sim.Position{}, "m")
	net.AddStation(sim.Position{X: 10}, "m")
	l := sim.Independent(loss)
	net.Connect("m", 0, 1, l, l)
	mk := func(i int, k byte) *node.Node {
		n, _ := node.New(node.Config{Clock: clk, Links: net.Links(i), Identity: identity.FromSeed([32]byte{k, byte(seed), byte(seed >> 8)}), Seed: seed*2 + uint64(k)})
		n.Register(TrafficApp, func(node.Message) {})
		n.Start()
		return n
	}
	a, b := mk(0, 1), mk(1, 2)
	if !clk.RunWhile(clk.Now().Add(time.Hour), func() bool { return a.Peer(b.ID()) == nil || b.Peer(a.ID()) == nil }) &&
		(a.Peer(b.ID()) == nil || b.Peer(a.ID()) == nil) {
		return 0, 0, 0, fmt.Errorf("the nodes never heard each other")
	}
	// Measure in the steady state: both nodes' first beacon bursts (due in
	// the first tenth of a minute after start) are over, the next a minute off.
	clk.RunUntil(clk.Now().Add(7 * time.Second))
	d, frames, rt, res := timeSend(clk, med, a, b.ID(), size, 24*time.Hour)
	if !res.Finished() {
		return d, frames, rt, fmt.Errorf("did not finish in a day of mesh time")
	}
	return d, frames, rt, res.Err()
}

// timeSend sends a Package of size bytes from a to its peer to and runs
// the clock until the sender's result (or limit): the time it took, the
// frames put on the air meanwhile, and a's retransmissions.
func timeSend(clk *clock.Virtual, med *sim.Medium, a *node.Node, to identity.NodeID, size int, limit time.Duration) (time.Duration, uint64, uint64, *node.Result) {
	blob := make([]byte, size-packet.PackageOverhead)
	for i := range blob {
		blob[i] = byte(i * 13)
	}
	before := med.Stats().Transmissions
	rt0 := a.Stats().Retransmits
	start := clk.Now()
	res := a.Send(to, TrafficApp, blob, nil)
	clk.RunWhile(start.Add(limit), func() bool { return !res.Finished() })
	return clk.Now().Sub(start), med.Stats().Transmissions - before, a.Stats().Retransmits - rt0, res
}

// transferToBoard is transferOnce to a reference board: once the two know
// each other, the board is left to fall back into its sleep rhythm (its
// phase depends on the seed), then timed from the send to the sender's
// confirmation, which comes only when the board has acked every packet.
// A confirmation for a Package the board did not deliver is an error.
func transferToBoard(phy sim.PHY, size int, loss float64, seed uint64) (time.Duration, uint64, uint64, error) {
	clk := clock.NewVirtual(time.Time{})
	phy.Caps &^= link.CapSleep // our radio, like espnow.Link, cannot sleep
	med := sim.NewMedium(clk, phy, seed)
	ra, rb := med.AddRadio(sim.Position{}), med.AddRadio(sim.Position{X: 10})
	l := sim.Independent(loss)
	med.Connect(ra, rb, l, l)
	a, _ := node.New(node.Config{Clock: clk, Links: []link.Link{ra}, Identity: identity.FromSeed([32]byte{1, byte(seed), byte(seed >> 8)}), Seed: seed * 2})
	a.Start()
	cycle := int64(refnode.ModemSleep + refnode.ModemWake)
	rng := rand.New(rand.NewPCG(seed, 0x7068617365))
	b := refnode.New(refnode.Config{
		Clock: clk, Link: rb, NodeID: identity.FromSeed([32]byte{2, byte(seed), byte(seed >> 8)}).ID(), Seed: seed*2 + 1,
		Sleep: true, Phase: time.Duration(rng.Int64N(cycle)),
	})
	delivered := 0
	b.Register(TrafficApp, func(refnode.Message) { delivered++ })
	b.Start()
	bid := identity.NodeID(b.ID())
	if !clk.RunWhile(clk.Now().Add(time.Hour), func() bool { return a.Peer(bid) == nil || len(b.Peers()) == 0 }) &&
		(a.Peer(bid) == nil || len(b.Peers()) == 0) {
		return 0, 0, 0, fmt.Errorf("the node and the board never heard each other")
	}
	// Steady state, and a start at a point of the board's cycle that
	// varies with the seed.
	clk.RunUntil(clk.Now().Add(7*time.Second + time.Duration(rng.Int64N(cycle))))
	d, frames, rt, res := timeSend(clk, med, a, bid, size, time.Hour)
	switch {
	case !res.Finished():
		return d, frames, rt, fmt.Errorf("did not finish in an hour of mesh time")
	case res.Err() == nil && delivered != 1:
		return d, frames, rt, fmt.Errorf("confirmed, but the board delivered it %d times", delivered)
	}
	return d, frames, rt, res.Err()
}
