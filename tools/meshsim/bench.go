package meshsim

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/e2e"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/refnode"
)

// TransferConfig is one `mycelium bench transfer` measurement: a Package of
// Size bytes (app_id, hash and blob) from one node to its neighbour. Up to
// streamFrom bytes it goes with Node.Send (one sequence, or a stream of
// segments past one); above, with Node.SendStream from a reader that holds
// nothing, to a receiver that takes it chunk by chunk: any size up to
// node.MaxStream, with the memory of a few segments at each end.
type TransferConfig struct {
	Link string // "espnow" or "lora"
	Size int
	// Loss is the mean loss on every frame, both directions: independent,
	// or in bursts (Bursty: Gilbert–Elliott, see LossModel).
	Loss   float64
	Bursty bool
	// Rate is the ESP-NOW PHY rate (0: 1 Mbit/s); with Adapt, the rate
	// each radio starts from before its rate control (minstrel) takes over.
	Rate  espnow.Rate
	Adapt bool
	// V2 gives both nodes ESP-NOW v2 radios (datagrams up to 1,470 bytes,
	// our v2 schemas).
	V2   bool
	Runs int
	Seed uint64
	LoRa lora.Params
	// Reference makes the receiver a reference board (refnode: the
	// MicroPython Packager, modem sleep on, each run at another point of
	// its sleep cycle) and the sender's radio one that cannot sleep, as
	// espnow.Link is. ESP-NOW only.
	Reference bool
	// E2E seals the Package end to end (l2-seq/e2e) between the two
	// nodes; their session is set up before the timed send (a session
	// serves many sends), and the handshake's cost is reported apart.
	E2E bool
	// Progress, when set, is told each run as it starts ("9 runs", done
	// of Runs).
	Progress Progress
}

// TransferResult is what the runs measured. Times are mesh time (the
// simulated clock), in seconds; every figure is over the runs that
// completed, nil (null in JSON) when none did; efficiency is each run's
// true lower bound over its time.
type TransferResult struct {
	Link      string  `json:"link"`
	Size      int     `json:"size"`
	Loss      float64 `json:"loss"`
	Bursty    bool    `json:"bursty"`
	RateKbps  int     `json:"rate_kbps,omitempty"`
	Adapt     bool    `json:"adapt,omitempty"`
	V2        bool    `json:"v2,omitempty"`
	E2E       bool    `json:"e2e,omitempty"`
	Runs      int     `json:"runs"`
	Completed int     `json:"completed"`
	// BoundS is the mean of the runs' true lower bounds: the data frames
	// the realised losses forced, each with the MAC's cost (see
	// boundMeter).
	BoundS *float64 `json:"bound_s"`
	MeanS  *float64 `json:"mean_s"`
	P95S   *float64 `json:"p95_s"`
	WorstS *float64 `json:"worst_s"`
	// EfficiencyMean is the mean over runs of bound/time; EfficiencyP95
	// the efficiency 95 % of the runs reach or beat (the 5th percentile);
	// EfficiencyWorst the lowest. Never above 1.
	EfficiencyMean  *float64 `json:"efficiency_mean"`
	EfficiencyP95   *float64 `json:"efficiency_p95"`
	EfficiencyWorst *float64 `json:"efficiency_worst"`
	// GoodputKbps is the transfer's bits over the mean time.
	GoodputKbps *float64 `json:"goodput_kbps"`
	Schema      uint8    `json:"schema"`
	Reference   bool     `json:"reference,omitempty"`
	Packets     int      `json:"packets"`
	// FramesPerRun is the mean number of frames both nodes put on the air
	// during a transfer (data, retransmissions, acks, probes; MAC retries
	// included, 802.11 ACKs not).
	FramesPerRun float64 `json:"frames_per_run"`
	// RetransMean counts the sequencer's retransmissions, MACRetriesMean
	// the radio's.
	RetransMean    float64   `json:"retransmissions_per_run"`
	MACRetriesMean float64   `json:"mac_retries_per_run"`
	Times          []float64 `json:"times_s"`
	effs           []float64
	Errors         []string `json:"errors,omitempty"`
	PHY            string   `json:"phy"`
}

// LossModel is the loss of `mycelium sim` and `mycelium bench`: independent
// with probability loss, or, bursty, Gilbert–Elliott with the same mean in
// bursts of about five frames losing 80 %.
func LossModel(loss float64, bursty bool) sim.Loss {
	if !bursty || loss <= 0 {
		return sim.Independent(loss)
	}
	bad := min(loss/0.8, 0.9)
	return sim.GilbertElliott(0.2*bad/(1-bad), 0.2, 0, 0.8)
}

// Transfer runs the benchmark. Zero fields of c take the defaults (9 runs,
// ESP-NOW at 1 Mbit/s, LoRa at SF9/BW125); a setting out of range is an
// error (Validate).
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
	if c.Link == "espnow" && c.Rate == 0 {
		c.Rate = espnow.Rate1M
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	phy := phys.ESPNOWAt(c.Rate)
	switch {
	case c.Link == "lora":
		phy = phys.LoRa(c.LoRa)
	case c.Adapt:
		phy = phys.ESPNOWAdaptive(c.Rate)
	}
	if c.V2 {
		phy = phys.ESPNOWV2(phy)
	}
	r := &TransferResult{Link: c.Link, Size: c.Size, Loss: c.Loss, Bursty: c.Bursty, Runs: c.Runs, PHY: phy.Name, Reference: c.Reference, E2E: c.E2E}
	if c.Link == "lora" {
		r.PHY = c.LoRa.String()
	} else {
		r.RateKbps, r.Adapt, r.V2 = int(c.Rate), c.Adapt, c.V2
		r.PHY = "802.11b/g " + c.Rate.String()
		if c.Rate.DSSS() {
			r.PHY += " long preamble"
		}
		if c.Adapt {
			r.PHY += ", then per-peer rate control"
		}
		if c.V2 {
			r.PHY += ", ESP-NOW v2 frames"
		}
	}
	loss := LossModel(c.Loss, c.Bursty)
	var frames, retrans, macRetries float64
	var bounds []float64
	for run := range c.Runs {
		if c.Progress != nil {
			c.Progress(fmt.Sprintf("%d runs", c.Runs), run, c.Runs)
		}
		once := func(phy sim.PHY, size int, loss sim.Loss, seed uint64) (outcome, error) {
			return transferOnce(phy, size, loss, seed, c.E2E)
		}
		if c.Reference {
			once = transferToBoard
		}
		o, err := once(phy, c.Size, loss, c.Seed*1000+uint64(run))
		if r.Packets == 0 {
			r.Packets, r.Schema = o.packets, o.schema
		}
		frames += float64(o.frames)
		retrans += float64(o.retrans)
		macRetries += float64(o.macRetries)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			continue
		}
		r.Completed++
		r.Times = append(r.Times, o.took.Seconds())
		bounds = append(bounds, o.bound.Seconds())
		r.effs = append(r.effs, o.bound.Seconds()/o.took.Seconds())
	}
	r.FramesPerRun = frames / float64(c.Runs)
	r.RetransMean = retrans / float64(c.Runs)
	r.MACRetriesMean = macRetries / float64(c.Runs)
	if r.Completed > 0 {
		f := func(v float64) *float64 { return &v }
		r.BoundS = f(mean(bounds))
		r.MeanS = f(mean(r.Times))
		r.P95S = f(quantile(r.Times, 0.95))
		r.WorstS = f(quantile(r.Times, 1))
		r.EfficiencyMean = f(mean(r.effs))
		r.EfficiencyP95 = f(quantile(r.effs, 0.05))
		r.EfficiencyWorst = f(quantile(r.effs, 0))
		r.GoodputKbps = f(float64(c.Size) * 8 / *r.MeanS / 1000)
	}
	return r, nil
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// quantile is the q-quantile of xs by the nearest rank (0: the least, 1:
// the greatest).
func quantile(xs []float64, q float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// outcome is one run's figures.
type outcome struct {
	took, bound                 time.Duration
	frames, retrans, macRetries uint64
	packets                     int
	schema                      uint8
}

// transferOnce builds two nodes, lets them find each other, then times one
// Package from the first to the second, until the sender's result, and
// measures the run's true lower bound.
func transferOnce(phy sim.PHY, size int, loss sim.Loss, seed uint64, sealed bool) (outcome, error) {
	net := simnet.New()
	clk := net.Clock
	med := net.AddMedium("m", phy, seed)
	net.AddStation(sim.Position{}, "m")
	net.AddStation(sim.Position{X: 10}, "m")
	net.Connect("m", 0, 1, loss, loss)
	mk := func(i int, k byte) *node.Node {
		n, _ := node.New(node.Config{Clock: clk, Links: net.Links(i), Identity: identity.FromSeed([32]byte{k, byte(seed), byte(seed >> 8)}), Seed: seed*2 + uint64(k)})
		n.Register(TrafficApp, func(node.Message) {})
		n.RegisterStream(TrafficApp, func(node.StreamChunk) {})
		n.Start()
		return n
	}
	a, b := mk(0, 1), mk(1, 2)
	if !clk.RunWhile(clk.Now().Add(time.Hour), func() bool { return a.Peer(b.ID()) == nil || b.Peer(a.ID()) == nil }) &&
		(a.Peer(b.ID()) == nil || b.Peer(a.ID()) == nil) {
		return outcome{}, fmt.Errorf("the nodes never heard each other")
	}
	var send func(blob []byte) *node.Result
	if sealed {
		la, lb, err := e2ePair(a, b, seed)
		if err != nil {
			return outcome{}, err
		}
		_ = lb
		warm := la.Send(b.ID(), TrafficApp, []byte("session"))
		clk.RunWhile(clk.Now().Add(time.Minute), func() bool { return !warm.Finished() })
		if err := warm.Err(); err != nil || !warm.Finished() {
			return outcome{}, fmt.Errorf("no e2e session: %v", err)
		}
		send = func(blob []byte) *node.Result { return la.Send(b.ID(), TrafficApp, blob) }
	}
	// Measure in the steady state: both nodes' first beacon bursts (due in
	// the first tenth of a minute after start) are over, the next a minute off.
	clk.RunUntil(clk.Now().Add(7 * time.Second))
	o, res := timeSend(clk, med, phy, net.Radio(0, "m"), net.Radio(1, "m"), a, b.ID(), size, 24*time.Hour, send)
	if !res.Finished() {
		return o, fmt.Errorf("did not finish in a day of mesh time")
	}
	return o, res.Err()
}

// MaxTransfer is the largest transfer the bench simulates (the node
// streams up to node.MaxStream): 256 MiB, about 8 s of wall time a run.
const MaxTransfer = 256 << 20

// streamFrom is the size above which the bench sends with SendStream.
const streamFrom = 1 << 20

// timeSend sends a Package of size bytes from a (on radio ra) to its peer
// to (on radio rb) and runs the clock until the sender's result (or
// limit): the time it took, its true lower bound, the frames put on the
// air meanwhile, and the retransmissions.
func timeSend(clk *clock.Virtual, med *sim.Medium, phy sim.PHY, ra, rb *sim.Radio, a *node.Node, to identity.NodeID, size int, limit time.Duration, send func([]byte) *node.Result) (outcome, *node.Result) {
	st0 := med.Stats()
	rt0 := a.Stats().Retransmits
	start := clk.Now()
	meter := newBoundMeter(phy, ra, rb, start)
	med.SetAttemptLog(meter.attempt)
	var res *node.Result
	n := size - packet.PackageOverhead
	if size > streamFrom {
		res = a.SendStream(to, TrafficApp, &patternReader{n: int64(n)}, int64(n), nil)
	} else {
		blob := make([]byte, n)
		_, _ = (&patternReader{n: int64(n)}).Read(blob)
		if send != nil {
			res = send(blob)
		} else {
			res = a.Send(to, TrafficApp, blob, nil)
		}
	}
	clk.RunWhile(start.Add(limit), func() bool { return !res.Finished() })
	med.SetAttemptLog(nil)
	end := clk.Now()
	st := med.Stats()
	packets, schema := meter.packets()
	return outcome{
		packets: packets, schema: schema,
		took: end.Sub(start), bound: meter.bound(end),
		frames: st.Transmissions - st0.Transmissions, retrans: a.Stats().Retransmits - rt0, macRetries: st.Retries - st0.Retries,
	}, res
}

// patternReader yields n bytes of a pattern, holding none of them.
type patternReader struct{ off, n int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(b)), p.n-p.off))
	for j := range k {
		i := p.off + int64(j)
		b[j] = byte(i*13 + i>>9)
	}
	p.off += int64(k)
	return k, nil
}

// transferToBoard is transferOnce to a reference board: once the two know
// each other, the board is left to fall back into its sleep rhythm (its
// phase depends on the seed), then timed from the send to the sender's
// confirmation, which comes only when the board has acked every packet.
// A confirmation for a Package the board did not deliver is an error.
func transferToBoard(phy sim.PHY, size int, loss sim.Loss, seed uint64) (outcome, error) {
	clk := clock.NewVirtual(time.Time{})
	phy.Caps &^= link.CapSleep // our radio, like espnow.Link, cannot sleep
	med := sim.NewMedium(clk, phy, seed)
	ra, rb := med.AddRadio(sim.Position{}), med.AddRadio(sim.Position{X: 10})
	med.Connect(ra, rb, loss, loss)
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
		return outcome{}, fmt.Errorf("the node and the board never heard each other")
	}
	// Steady state, and a start at a point of the board's cycle that
	// varies with the seed.
	clk.RunUntil(clk.Now().Add(7*time.Second + time.Duration(rng.Int64N(cycle))))
	o, res := timeSend(clk, med, phy, ra, rb, a, bid, size, time.Hour, nil)
	switch {
	case !res.Finished():
		return o, fmt.Errorf("did not finish in an hour of mesh time")
	case res.Err() == nil && delivered != 1:
		return o, fmt.Errorf("confirmed, but the board delivered it %d times", delivered)
	}
	return o, res.Err()
}

// e2ePair gives a and b, neighbours, end-to-end layers that reach each
// other one hop (Node.Send), with entropy from seed so runs repeat.
func e2ePair(a, b *node.Node, seed uint64) (*e2e.Layer, *e2e.Layer, error) {
	mk := func(n *node.Node, k byte) (*e2e.Layer, error) {
		id := identity.FromSeed([32]byte{k, byte(seed), byte(seed >> 8)})
		t := e2e.TransportFunc(func(to identity.NodeID, app packet.AppID, blob []byte) *node.Result {
			return n.Send(to, app, blob, nil)
		})
		return e2e.Attach(n, id, t, e2e.Config{Entropy: rand.NewChaCha8([32]byte{k, byte(seed), byte(seed >> 8), 0xe2})})
	}
	la, err := mk(a, 1)
	if err != nil {
		return nil, nil, err
	}
	lb, err := mk(b, 2)
	return la, lb, err
}
