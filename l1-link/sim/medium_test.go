package sim_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
)

func TestConformanceESPNOW(t *testing.T) { conformance(t, phys.ESPNOW()) }
func TestConformanceLoRa(t *testing.T)   { conformance(t, phys.LoRa(lora.Default)) }

func conformance(t *testing.T, phy sim.PHY) {
	linktest.Run(t, func(t *testing.T) *linktest.Env {
		clk := clock.NewVirtual(time.Time{})
		m := sim.NewMedium(clk, phy, 1)
		rs := []*sim.Radio{m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})}
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				m.Connect(rs[i], rs[j], sim.Loss{}, sim.Loss{})
			}
		}
		return linktest.Virtual(clk, time.Hour, time.Minute, rs[0], rs[1], rs[2])
	})
}

// pump keeps a radio's queue fed with n frames of size bytes to dst.
type pump struct {
	r    *sim.Radio
	dst  link.Addr
	size int
	left int
	done int
	recv int
}

func (p *pump) fill() {
	for p.left > 0 {
		if err := p.r.Send(p.dst, make([]byte, p.size), 0); err != nil {
			return
		}
		p.left--
	}
}
func (p *pump) TxDone(link.Tag, error)    { p.done++; p.fill() }
func (p *pump) DeliverFrame(f link.Frame) { p.recv++ }

type counter struct{ n, bcast int }

// errCounter counts completions by outcome.
type errCounter struct{ ok, noAck, other int }

func (c *errCounter) TxDone(_ link.Tag, err error) {
	switch {
	case err == nil:
		c.ok++
	case errors.Is(err, link.ErrNoAck):
		c.noAck++
	default:
		c.other++
	}
}
func (c *errCounter) DeliverFrame(link.Frame) {}

func (c *counter) TxDone(link.Tag, error) {}
func (c *counter) DeliverFrame(f link.Frame) {
	c.n++
	if f.Broadcast {
		c.bcast++
	}
}

// figures sends n frames from one radio to its neighbour over loss and
// returns the elapsed time, the airtime counted and the delivered fraction.
func figures(t *testing.T, phy sim.PHY, loss sim.Loss, n, size int, seed uint64) (time.Duration, time.Duration, float64) {
	t.Helper()
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phy, seed)
	a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, loss, loss)
	p := &pump{r: a, dst: b.Addr(), size: size, left: n}
	var c counter
	a.Attach(p)
	b.Attach(&c)
	start := clk.Now()
	p.fill()
	clk.RunWhile(start.Add(100*time.Hour), func() bool { return p.done < n })
	if p.done != n {
		t.Fatalf("only %d of %d frames sent", p.done, n)
	}
	return clk.Now().Sub(start), a.Counters().TxAirtime, float64(c.n) / float64(n)
}

// The medium reproduces the airtime formulas and the loss models over
// 10,000 frames (the link-layer acceptance figure: within 1 %). Loss is
// measured on broadcasts: unicast frames are retried by the 802.11 MAC
// (see dcf_test.go).
func TestAirtimeAndLossFigures(t *testing.T) {
	const n = 10000
	esp := phys.ESPNOW()
	if got := esp.Airtime(250); got != 2536*time.Microsecond {
		t.Fatalf("ESP-NOW 250-byte airtime %v, want 2.536 ms", got)
	}
	elapsed, air, got := figures(t, esp, sim.Loss{}, n, 250, 1)
	want := time.Duration(n) * esp.Airtime(250)
	if air != want {
		t.Errorf("ESP-NOW airtime counted %v, formula %v", air, want)
	}
	// Back to back from one sender, each unicast frame is DIFS, the mean
	// backoff (CWmin/2 slots), the frame, SIFS and the ACK.
	d := esp.DCF
	gap := d.DIFS() + time.Duration(d.CWMin(esp.Rate))*d.Slot/2 + d.SIFS + d.AckAirtime(esp.Rate)
	wantElapsed := want + time.Duration(n)*gap
	if d := math.Abs(float64(elapsed-wantElapsed)) / float64(wantElapsed); d > 0.01 {
		t.Errorf("ESP-NOW elapsed %v, formula %v (%.2f%% off)", elapsed, wantElapsed, 100*d)
	}
	if got != 1 {
		t.Errorf("lossless link delivered %.4f", got)
	}
	t.Logf("ESP-NOW: %d frames of 250 B in %v (airtime %v, %.2f%% of elapsed)", n, elapsed, air, 100*float64(air)/float64(elapsed))

	lp := phys.LoRa(lora.Default)
	elapsed, air, _ = figures(t, lp, sim.Loss{}, n, 240, 2)
	// The RYLR-998 adds 8 bytes on the air.
	want = time.Duration(n) * lora.Default.Airtime(240+8)
	if air != want || elapsed != want {
		t.Errorf("LoRa: elapsed %v, airtime %v, formula %v", elapsed, air, want)
	}
	t.Logf("LoRa %v: %d frames of 240 B (+8 on the air): %v on air (%.4f s each)", lora.Default, n, elapsed, lora.Default.Airtime(248).Seconds())

	for _, p := range []float64{0.01, 0.1, 0.3} {
		got := broadcastDelivery(t, esp, sim.Independent(p), n, 3)
		if d := math.Abs((1 - got) - p); d > 0.01 {
			t.Errorf("independent loss %.2f: measured %.4f", p, 1-got)
		}
		t.Logf("independent loss %.2f: measured %.4f over %d frames", p, 1-got, n)
	}
}

// broadcastDelivery sends n broadcasts of 50 bytes from one radio to its
// neighbour over loss and returns the fraction received.
func broadcastDelivery(t *testing.T, phy sim.PHY, loss sim.Loss, n int, seed uint64) float64 {
	t.Helper()
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phy, seed)
	a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, loss, loss)
	p := &pump{r: a, dst: link.Broadcast, size: 50, left: n}
	var c counter
	a.Attach(p)
	b.Attach(&c)
	p.fill()
	clk.RunWhile(clk.Now().Add(100*time.Hour), func() bool { return p.done < n })
	return float64(c.n) / float64(n)
}

func TestGilbertElliott(t *testing.T) {
	const n = 100000
	ge := sim.GilbertElliott(0.02, 0.2, 0.01, 0.8) // bursts of 5 frames
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.LoRa(lora.Params{SF: 7, Bandwidth: 500000, CR: 1, Preamble: 8}), 4)
	a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, ge, ge)
	// Record the loss pattern in order: frame i carries its index.
	got := make([]bool, n)
	rec := &indexRecorder{got: got}
	b.Attach(rec)
	p := &seqPump{r: a, dst: b.Addr(), n: n}
	a.Attach(p)
	p.fill()
	clk.RunWhile(clk.Now().Add(1000*time.Hour), func() bool { return p.done < n })
	lost, runs, runLen := 0, 0, 0
	for i, ok := range got {
		if !ok {
			lost++
			if i == 0 || got[i-1] {
				runs++
			}
			runLen++
		}
	}
	mean := float64(lost) / n
	if math.Abs(mean-ge.Mean()) > 0.01 {
		t.Errorf("Gilbert-Elliott loss %.4f, model mean %.4f", mean, ge.Mean())
	}
	// Bursty: losses come in runs far longer than independent loss gives.
	avgRun := float64(runLen) / float64(runs)
	indepRun := 1 / (1 - mean)
	if avgRun < 2*indepRun {
		t.Errorf("mean loss run %.2f frames, independent loss would give %.2f", avgRun, indepRun)
	}
	t.Logf("Gilbert-Elliott: loss %.4f (model %.4f), mean loss run %.2f frames", mean, ge.Mean(), avgRun)
}

type indexRecorder struct{ got []bool }

func (r *indexRecorder) TxDone(link.Tag, error) {}
func (r *indexRecorder) DeliverFrame(f link.Frame) {
	i := int(f.Data[0])<<16 | int(f.Data[1])<<8 | int(f.Data[2])
	r.got[i] = true
}

type seqPump struct {
	r       *sim.Radio
	dst     link.Addr
	n, next int
	done    int
}

func (p *seqPump) fill() {
	for p.next < p.n {
		i := p.next
		if p.r.Send(p.dst, []byte{byte(i >> 16), byte(i >> 8), byte(i)}, 0) != nil {
			return
		}
		p.next++
	}
}
func (p *seqPump) TxDone(link.Tag, error)  { p.done++; p.fill() }
func (p *seqPump) DeliverFrame(link.Frame) {}

// Hidden terminals on an ALOHA radio: a and c cannot hear each other, both
// reach b; frames that overlap at b are both lost.
func TestCollisionHiddenTerminal(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.LoRa(lora.Default), 5)
	a, b, c := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, sim.Loss{}, sim.Loss{})
	m.Connect(c, b, sim.Loss{}, sim.Loss{})
	var rb counter
	b.Attach(&rb)
	a.Attach(&counter{})
	c.Attach(&counter{})
	if err := a.Send(b.Addr(), make([]byte, 100), 0); err != nil {
		t.Fatal(err)
	}
	clk.RunFor(100 * time.Millisecond) // a's frame is on the air (it lasts ~0.6 s)
	if err := c.Send(link.Broadcast, make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	clk.RunFor(10 * time.Second)
	if rb.n != 0 {
		t.Fatalf("b received %d frames through a collision", rb.n)
	}
	if got := b.Counters().Drops[link.DropCollision]; got != 2 {
		t.Fatalf("collisions counted %d, want 2", got)
	}
	// Apart in time, both arrive.
	_ = a.Send(b.Addr(), make([]byte, 100), 0)
	clk.RunFor(10 * time.Second)
	_ = c.Send(b.Addr(), make([]byte, 100), 0)
	clk.RunFor(10 * time.Second)
	if rb.n != 2 {
		t.Fatalf("b received %d frames sent apart, want 2", rb.n)
	}
}

// A half-duplex radio hears nothing while it transmits.
func TestHalfDuplex(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.LoRa(lora.Default), 6)
	a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, sim.Loss{}, sim.Loss{})
	var ra, rb counter
	a.Attach(&ra)
	b.Attach(&rb)
	_ = b.Send(link.Broadcast, make([]byte, 200), 0) // b talks for ~1 s
	clk.RunFor(50 * time.Millisecond)
	_ = a.Send(b.Addr(), make([]byte, 10), 0)
	clk.RunFor(10 * time.Second)
	if rb.n != 0 {
		t.Fatal("b heard a frame while it was transmitting")
	}
	if ra.n != 0 {
		t.Fatal("a heard b's frame although it started transmitting during it")
	}
}

// Carrier sense: radios that all hear the same frame and answer at once do
// not all collide; with CSMA most answers get through.
func TestCSMASpreadsAnswers(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.ESPNOW(), 7)
	hub := m.AddRadio(sim.Position{})
	var got counter
	hub.Attach(&got)
	var leaves []*sim.Radio
	for range 6 {
		r := m.AddRadio(sim.Position{})
		leaves = append(leaves, r)
	}
	for i, r := range leaves {
		m.Connect(hub, r, sim.Loss{}, sim.Loss{})
		for _, o := range leaves[i+1:] {
			m.Connect(r, o, sim.Loss{}, sim.Loss{})
		}
		r.Attach(&answerer{r: r, to: hub.Addr()})
	}
	_ = hub.Send(link.Broadcast, []byte("beacon"), 0)
	clk.RunFor(time.Second)
	if got.n < 4 {
		t.Fatalf("hub heard %d of 6 answers (collisions %d)", got.n, hub.Counters().Drops[link.DropCollision])
	}
	t.Logf("hub heard %d of 6 simultaneous answers", got.n)
}

type answerer struct {
	r  *sim.Radio
	to link.Addr
}

func (a *answerer) TxDone(link.Tag, error) {}
func (a *answerer) DeliverFrame(f link.Frame) {
	if f.Broadcast {
		_ = a.r.Send(a.to, []byte("answer"), 0)
	}
}

func TestSleep(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.ESPNOW(), 8)
	a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, sim.Loss{}, sim.Loss{})
	var rb counter
	sa := &errCounter{}
	a.Attach(sa)
	b.Attach(&rb)
	var s link.Sleeper = b
	s.SetAwake(false)
	_ = a.Send(b.Addr(), []byte("x"), 0)
	clk.RunFor(time.Second)
	// A sleeping radio does not ACK: the sender tries RetryLimit times.
	limit := uint64(phys.ESPNOW().DCF.RetryLimit)
	if rb.n != 0 || b.Counters().Drops[link.DropAsleep] != limit || sa.noAck != 1 {
		t.Fatalf("sleeping radio: received %d, drops %+v, sender's ErrNoAck %d", rb.n, b.Counters().Drops, sa.noAck)
	}
	s.SetAwake(true)
	_ = a.Send(b.Addr(), []byte("y"), 0)
	clk.RunFor(time.Second)
	if rb.n != 1 {
		t.Fatal("woken radio did not receive")
	}
	// Awake 1 s of the 2 s so far.
	if aw := b.AwakeTime(); aw < 990*time.Millisecond || aw > 1010*time.Millisecond {
		t.Fatalf("awake time %v", aw)
	}
	// A sleeping radio still transmits.
	s.SetAwake(false)
	var ra counter
	a.Attach(&ra)
	_ = b.Send(a.Addr(), []byte("z"), 0)
	clk.RunFor(time.Second)
	if ra.n != 1 {
		t.Fatal("sleeping radio could not transmit")
	}
}

// The same seed gives the same run, event for event.
func TestDeterministic(t *testing.T) {
	run := func(seed uint64) sim.MediumStats {
		clk := clock.NewVirtual(time.Time{})
		m := sim.NewMedium(clk, phys.ESPNOW(), seed)
		var rs []*sim.Radio
		for i := range 20 {
			rs = append(rs, m.AddRadio(sim.Position{X: float64(i%5) * 10, Y: float64(i/5) * 10}))
		}
		m.ConnectWithin(15, sim.Independent(0.2))
		for _, r := range rs {
			r.Attach(&answerer{r: r, to: rs[0].Addr()})
		}
		for i := range 200 {
			r := rs[i%len(rs)]
			clk.AfterFunc(time.Duration(i)*3*time.Millisecond, func() { _ = r.Send(link.Broadcast, []byte("hello"), 0) })
		}
		clk.RunFor(time.Minute)
		return m.Stats()
	}
	a, b, c := run(42), run(42), run(43)
	if a != b {
		t.Fatalf("same seed, different runs:\n%+v\n%+v", a, b)
	}
	if a == c {
		t.Fatalf("different seeds, identical runs: %+v", a)
	}
	if a.Transmissions < 200 || a.Deliveries == 0 || a.Losses == 0 {
		t.Fatalf("implausible run %+v", a)
	}
}

// An hour of a busy 100-node mesh runs in well under a second of wall time
// per simulated hour per... (see BenchmarkMeshHour for the figure).
func BenchmarkMeshHour(b *testing.B) {
	for b.Loop() {
		clk := clock.NewVirtual(time.Time{})
		m := sim.NewMedium(clk, phys.ESPNOW(), 1)
		var rs []*sim.Radio
		for i := range 100 {
			rs = append(rs, m.AddRadio(sim.Position{X: float64(i%10) * 10, Y: float64(i/10) * 10}))
		}
		m.ConnectWithin(25, sim.Independent(0.05))
		for _, r := range rs {
			r.Attach(&counter{})
		}
		// Every radio broadcasts a burst of 4 frames every 60 s (beacon-like).
		for i, r := range rs {
			var tick func()
			tick = func() {
				for range 4 {
					_ = r.Send(link.Broadcast, make([]byte, 100), 0)
				}
				clk.AfterFunc(time.Minute, tick)
			}
			clk.AfterFunc(time.Duration(i)*600*time.Millisecond, tick)
		}
		clk.RunFor(time.Hour)
	}
}
