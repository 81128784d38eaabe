package meshsim

import (
	"fmt"
	"sort"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
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
}

// TransferResult is what the runs measured.
type TransferResult struct {
	Link       string  `json:"link"`
	Size       int     `json:"size"`
	Loss       float64 `json:"loss"`
	Runs       int     `json:"runs"`
	Completed  int     `json:"completed"`
	MedianS    float64 `json:"median_s"`
	BoundS     float64 `json:"bound_s"`
	Efficiency float64 `json:"efficiency"`
	P10S       float64 `json:"p10_s"`
	P90S       float64 `json:"p90_s"`
	Schema     uint8   `json:"schema"`
	Packets    int     `json:"packets"`
	// FramesPerRun is the mean number of frames both nodes put on the air
	// during a transfer (data, retransmissions, acks, probes).
	FramesPerRun float64   `json:"frames_per_run"`
	RetransMean  float64   `json:"retransmissions_per_run"`
	Times        []float64 `json:"times_s"`
	Errors       []string  `json:"errors,omitempty"`
	PHY          string    `json:"phy"`
}

// Transfer runs the benchmark.
func Transfer(c TransferConfig) (*TransferResult, error) {
	if c.Runs <= 0 {
		c.Runs = 9
	}
	if c.LoRa.SF == 0 {
		c.LoRa = lora.Params{SF: 9, Bandwidth: 125000, CR: 1, Preamble: 12}
	}
	var phy sim.PHY
	switch c.Link {
	case "espnow", "":
		c.Link = "espnow"
		phy = sim.ESPNOW()
	case "lora":
		if err := c.LoRa.Validate(); err != nil {
			return nil, err
		}
		phy = sim.LoRa(c.LoRa)
	default:
		return nil, fmt.Errorf("unknown link %q (espnow, lora)", c.Link)
	}
	if c.Size < packet.PackageOverhead {
		return nil, fmt.Errorf("size %d: a Package is at least %d bytes", c.Size, packet.PackageOverhead)
	}
	if c.Loss < 0 || c.Loss >= 1 {
		return nil, fmt.Errorf("loss %v not in [0, 1)", c.Loss)
	}
	// The schema two of our nodes pick (PROTOCOL 4.1), and the airtime-only
	// bound: the data frames the loss forces, N/(1-p), each one airtime.
	var s *packet.Schema
	for _, id := range phy.Schemas {
		x := packet.MustLookup(id)
		if x.Routed() || x.MaxPackage() < c.Size {
			continue
		}
		if s == nil || x.MaxBody > s.MaxBody {
			s = x
		}
	}
	if s == nil {
		return nil, fmt.Errorf("size %d: larger than any schema of %s carries", c.Size, c.Link)
	}
	count := sequence.Count(s, c.Size)
	last := c.Size - (count-1)*s.MaxBody
	data := time.Duration(count-1)*phy.Airtime(s.MaxPacket()) + phy.Airtime(s.HeaderSize+last)
	r := &TransferResult{Link: c.Link, Size: c.Size, Loss: c.Loss, Runs: c.Runs, Schema: s.ID, Packets: count, PHY: phy.Name}
	if c.Link == "lora" {
		r.PHY = c.LoRa.String()
	} else {
		r.PHY = "802.11b 1 Mbit/s long preamble"
	}
	r.BoundS = data.Seconds() / (1 - c.Loss)
	var frames, retrans float64
	for run := range c.Runs {
		d, f, rt, err := transferOnce(phy, c.Size, c.Loss, c.Seed*1000+uint64(run))
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
		q := func(p float64) float64 { return ts[int(p*float64(len(ts)-1)+0.5)] }
		r.MedianS, r.P10S, r.P90S = q(0.5), q(0.1), q(0.9)
		r.Efficiency = r.BoundS / r.MedianS
	}
	return r, nil
}

// transferOnce builds two nodes, lets them find each other, then times one
// Package from the first to the second, until the sender's result.
func transferOnce(phy sim.PHY, size int, loss float64, seed uint64) (time.Duration, uint64, uint64, error) {
	clk := clock.NewVirtual(time.Time{})
	med := sim.NewMedium(clk, phy, seed)
	ra, rb := med.AddRadio(sim.Position{}), med.AddRadio(sim.Position{X: 10})
	l := sim.Independent(loss)
	med.Connect(ra, rb, l, l)
	mk := func(r *sim.Radio, k byte) *node.Node {
		n, _ := node.New(node.Config{Clock: clk, Links: []link.Link{r}, Identity: identity.FromSeed([32]byte{k, byte(seed), byte(seed >> 8)}), Seed: seed*2 + uint64(k)})
		n.Register(TrafficApp, func(node.Message) {})
		n.Start()
		return n
	}
	a, b := mk(ra, 1), mk(rb, 2)
	if !clk.RunWhile(clk.Now().Add(time.Hour), func() bool { return a.Peer(b.ID()) == nil || b.Peer(a.ID()) == nil }) &&
		(a.Peer(b.ID()) == nil || b.Peer(a.ID()) == nil) {
		return 0, 0, 0, fmt.Errorf("the nodes never heard each other")
	}
	// Measure in the steady state: both nodes' first beacon bursts (due in
	// the first tenth of a minute after start) are over, the next a minute off.
	clk.RunUntil(clk.Now().Add(7 * time.Second))
	blob := make([]byte, size-packet.PackageOverhead)
	for i := range blob {
		blob[i] = byte(i * 13)
	}
	before := med.Stats().Transmissions
	rt0 := a.Stats().Retransmits
	start := clk.Now()
	res := a.Send(b.ID(), TrafficApp, blob, nil)
	clk.RunWhile(start.Add(24*time.Hour), func() bool { return !res.Finished() })
	d := clk.Now().Sub(start)
	frames := med.Stats().Transmissions - before
	if !res.Finished() {
		return d, frames, a.Stats().Retransmits - rt0, fmt.Errorf("did not finish in a day of mesh time")
	}
	return d, frames, a.Stats().Retransmits - rt0, res.Err()
}
