package sim_test

import (
	"math"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
)

// The 802.11b/g figures the tests check the medium against, written out
// from the standard rather than taken from the PHY under test.
const (
	slot = 20 * time.Microsecond
	sifs = 10 * time.Microsecond
	difs = sifs + 2*slot
)

// cwMin is aCWmin: 31 for DSSS/CCK, 15 for ERP-OFDM.
func cwMin(rate espnow.Rate) int {
	if rate.OFDM() {
		return 15
	}
	return 31
}

// ackAir is the airtime of the 14-byte ACK answering a frame at rate: at 1
// Mbit/s with long preamble for DSSS, else at 24, 12 or 6 Mbit/s OFDM.
func ackAir(rate espnow.Rate) time.Duration {
	if !rate.OFDM() {
		return 192*time.Microsecond + 14*8*time.Microsecond
	}
	ack := 6
	switch {
	case rate >= 24000:
		ack = 24
	case rate >= 12000:
		ack = 12
	}
	dbps := 4 * ack
	syms := (16 + 14*8 + 6 + dbps - 1) / dbps
	return time.Duration(20+4*syms+6) * time.Microsecond
}

// exchange is the mean time one saturated sender needs per frame of n
// bytes at rate: DIFS, the mean backoff (CWmin/2 slots), the frame and,
// for unicast, SIFS and the ACK (the classic maximum-throughput formula of
// 802.11, e.g. Jun, Peddabachagari and Sichitiu, 2003).
func exchange(n int, rate espnow.Rate, unicast bool) time.Duration {
	t := difs + time.Duration(cwMin(rate))*slot/2 + espnow.Airtime(n, int(rate))
	if unicast {
		t += sifs + ackAir(rate)
	}
	return t
}

// saturate keeps a radio's queue full of n-byte frames to dst.
type saturate struct {
	r    *sim.Radio
	dst  link.Addr
	n    int
	done int
}

func (s *saturate) fill() {
	for s.r.Send(s.dst, make([]byte, s.n), 0) == nil {
	}
}
func (s *saturate) TxDone(link.Tag, error)  { s.done++; s.fill() }
func (s *saturate) DeliverFrame(link.Frame) {}

// throughput runs one saturated sender to one receiver and returns the
// payload bit rate the receiver sees (frames 200..N).
func throughput(t *testing.T, phy sim.PHY, n int, unicast bool, frames int, seed uint64) float64 {
	t.Helper()
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phy, seed)
	a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, sim.Loss{}, sim.Loss{})
	dst := link.Broadcast
	if unicast {
		dst = b.Addr()
	}
	s := &saturate{r: a, dst: dst, n: n}
	a.Attach(s)
	rc := &clockedCounter{clk: clk, mark: 200}
	b.Attach(rc)
	s.fill()
	clk.RunWhile(clk.Now().Add(time.Hour), func() bool { return rc.n < frames })
	if rc.n < frames {
		t.Fatalf("only %d frames arrived", rc.n)
	}
	return float64((frames-rc.mark)*n*8) / clk.Now().Sub(rc.at).Seconds()
}

// clockedCounter counts deliveries and notes when the mark-th arrived.
type clockedCounter struct {
	clk  clock.Clock
	n    int
	mark int
	at   time.Time
}

func (c *clockedCounter) TxDone(link.Tag, error) {}
func (c *clockedCounter) DeliverFrame(link.Frame) {
	c.n++
	if c.n == c.mark {
		c.at = c.clk.Now()
	}
}

// One saturated sender, broadcast and unicast, at 802.11b and g rates:
// the medium's throughput is the formula's within 1 %.
func TestThroughputFormula(t *testing.T) {
	for _, rate := range []espnow.Rate{espnow.Rate1M, espnow.Rate2M, espnow.Rate5M5, espnow.Rate11M, espnow.Rate6M, espnow.Rate24M, espnow.Rate54M} {
		for _, unicast := range []bool{false, true} {
			got := throughput(t, phys.ESPNOWAt(rate), 250, unicast, 5000, uint64(rate))
			want := 250 * 8 / exchange(250, rate, unicast).Seconds()
			if d := math.Abs(got-want) / want; d > 0.01 {
				t.Errorf("%v unicast=%v: %.3f Mbit/s, formula %.3f (%.2f%% off)", rate, unicast, got/1e6, want/1e6, 100*d)
			}
			t.Logf("%v unicast=%v: %.3f Mbit/s, formula %.3f", rate, unicast, got/1e6, want/1e6)
		}
	}
}

// The figures ESPythoNOW measured from a Linux rt2800usb card to an ESP32
// with 250-byte frames, within 5 %. Two of its figures are not the
// medium's and have no test here: 0.05 Mbit/s when the sender waits for
// each frame's delivery report is a host round trip (about 37 ms a frame
// in Python and USB, against the 3.2 ms exchange), and the same 5.2 Mbit/s
// at 36 to 54 Mbit/s is the card's injection ceiling (the medium gives 5.9
// to 6.4 there).
func TestESPythoNOWAnchors(t *testing.T) {
	for _, c := range []struct {
		name    string
		rate    espnow.Rate
		unicast bool
		mbps    float64
	}{
		{"1M broadcast", espnow.Rate1M, false, 0.66},
		{"1M unicast without waiting", espnow.Rate1M, true, 0.61},
		{"24M unicast", espnow.Rate24M, true, 5.2},
	} {
		got := throughput(t, phys.ESPNOWAt(c.rate), 250, c.unicast, 8000, 7) / 1e6
		d := math.Abs(got-c.mbps) / c.mbps
		if d > 0.05 {
			t.Errorf("%s: %.3f Mbit/s, ESPythoNOW %.2f (%.1f%% off)", c.name, got, c.mbps, 100*d)
		}
		t.Logf("%s: %.3f Mbit/s, ESPythoNOW %.2f (%.1f%% off)", c.name, got, c.mbps, 100*d)
	}
	// ESP-NOW v2 carries 1,470 bytes in six vendor elements.
	v2 := phys.ESPNOWAt(espnow.Rate24M)
	v2.MTU = 1470
	got := throughput(t, v2, 1470, true, 5000, 8)
	want := 1470 * 8 / exchange(1470, espnow.Rate24M, true).Seconds()
	if d := math.Abs(got-want) / want; d > 0.01 {
		t.Errorf("v2 1,470 B at 24M: %.3f Mbit/s, formula %.3f", got/1e6, want/1e6)
	}
	t.Logf("v2 1,470-byte frames at 24 Mbit/s: %.2f Mbit/s", got/1e6)
}

// bianchi is the saturation throughput of n 802.11 stations that all hear
// each other (Bianchi, 2000, with the retry limit of Wu et al., 2002):
// every station transmits in a slot with probability tau, which the
// contention windows of its backoff stages give for the collision
// probability p = 1-(1-tau)^(n-1), solved as a fixed point. A success
// takes the frame, SIFS, the ACK and DIFS; a collision the frame and the
// ACK timeout, after which the colliders count on at once.
func bianchi(n, size int, rate espnow.Rate) float64 {
	w, wmax := cwMin(rate)+1, 1024
	const retries = 7
	tauOf := func(p float64) float64 {
		var att, slots float64
		pi := 1.0
		for i := range retries {
			wi := min(w<<i, wmax)
			att += pi
			slots += pi * float64(wi-1) / 2
			pi *= p
		}
		return att / (att + slots)
	}
	lo, hi := 0.0, 1.0
	for range 100 {
		p := (lo + hi) / 2
		if 1-math.Pow(1-tauOf(p), float64(n-1)) > p {
			lo = p
		} else {
			hi = p
		}
	}
	tau := tauOf(lo)
	ptr := 1 - math.Pow(1-tau, float64(n))
	ps := float64(n) * tau * math.Pow(1-tau, float64(n-1)) / ptr
	air := espnow.Airtime(size, int(rate)).Seconds()
	ts := air + (sifs + ackAir(rate) + difs).Seconds()
	tc := air + espnow.AckTimeout(rate).Seconds()
	return ps * ptr * float64(size*8) / ((1-ptr)*slot.Seconds() + ptr*ps*ts + ptr*(1-ps)*tc)
}

// Several saturated stations contend in slots: two whose countdowns end in
// the same slot collide, and the medium's throughput follows Bianchi's
// model within 5 %.
func TestBianchiSaturation(t *testing.T) {
	for _, n := range []int{2, 5, 10} {
		clk := clock.NewVirtual(time.Time{})
		m := sim.NewMedium(clk, phys.ESPNOW(), uint64(n))
		sink := m.AddRadio(sim.Position{})
		var rs []*sim.Radio
		for range n {
			rs = append(rs, m.AddRadio(sim.Position{}))
		}
		all := append([]*sim.Radio{sink}, rs...)
		for i, a := range all {
			for _, b := range all[i+1:] {
				m.Connect(a, b, sim.Loss{}, sim.Loss{})
			}
		}
		rc := &clockedCounter{clk: clk, mark: 500}
		sink.Attach(rc)
		for _, r := range rs {
			s := &saturate{r: r, dst: sink.Addr(), n: 250}
			r.Attach(s)
			s.fill()
		}
		const frames = 10000
		clk.RunWhile(clk.Now().Add(time.Hour), func() bool { return rc.n < frames })
		got := float64((frames-rc.mark)*250*8) / clk.Now().Sub(rc.at).Seconds()
		want := bianchi(n, 250, espnow.Rate1M)
		st := m.Stats()
		if d := math.Abs(got-want) / want; d > 0.05 {
			t.Errorf("%d stations: %.4f Mbit/s, Bianchi %.4f (%.1f%% off)", n, got/1e6, want/1e6, 100*d)
		}
		t.Logf("%d stations: %.4f Mbit/s, Bianchi %.4f; %d retries, %d collisions in %d frames", n, got/1e6, want/1e6, st.Retries, st.Collisions, st.Transmissions)
	}
}

// attempts records the medium's attempt log.
func attempts(m *sim.Medium) *[]sim.Attempt {
	var log []sim.Attempt
	m.SetAttemptLog(func(a *sim.Attempt) {
		c := *a
		c.Data = append([]byte(nil), a.Data...)
		log = append(log, c)
	})
	return &log
}

// A unicast frame is acknowledged SIFS after it ends, by an ACK at the ACK
// rate; a broadcast gets none.
func TestAckAfterSIFS(t *testing.T) {
	for _, rate := range []espnow.Rate{espnow.Rate1M, espnow.Rate11M, espnow.Rate6M, espnow.Rate54M} {
		clk := clock.NewVirtual(time.Time{})
		m := sim.NewMedium(clk, phys.ESPNOWAt(rate), 1)
		a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
		m.Connect(a, b, sim.Loss{}, sim.Loss{})
		log := attempts(m)
		done := &errCounter{}
		a.Attach(done)
		b.Attach(&counter{})
		_ = a.Send(b.Addr(), make([]byte, 100), 1)
		clk.RunFor(time.Second)
		_ = a.Send(link.Broadcast, make([]byte, 100), 2)
		clk.RunFor(time.Second)
		if len(*log) != 2 || done.ok != 2 {
			t.Fatalf("%v: %d attempts, %d completions", rate, len(*log), done.ok)
		}
		u, bc := (*log)[0], (*log)[1]
		if !u.Acked || !u.Delivered || u.Done.Sub(u.End) != sifs+ackAir(rate) || u.End.Sub(u.Start) != espnow.Airtime(100, int(rate)) || u.Rate != int(rate) {
			t.Errorf("%v unicast: %+v (ack %v after the frame, want %v)", rate, u, u.Done.Sub(u.End), sifs+ackAir(rate))
		}
		if bc.Acked || !bc.Done.Equal(bc.End) {
			t.Errorf("%v broadcast acknowledged: %+v", rate, bc)
		}
		if st := m.Stats(); st.Acks != 1 {
			t.Errorf("%v: %d ACKs", rate, st.Acks)
		}
	}
}

// A unicast frame nobody acknowledges goes on the air RetryLimit times,
// each retry after the ACK timeout and a backoff from a window that
// doubles (31, 63, 127, ... 1,023 slots), then fails with link.ErrNoAck; a
// broadcast goes once whatever happens to it.
func TestMACRetries(t *testing.T) {
	const frames = 3000
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.ESPNOW(), 2)
	a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, sim.Independent(1), sim.Loss{})
	log := attempts(m)
	done := &errCounter{}
	b.Attach(&counter{})
	sent := 0
	next := func() {
		if sent < frames {
			sent++
			_ = a.Send(b.Addr(), make([]byte, 50), 0)
		}
	}
	a.Attach(&chain{errCounter: done, next: next})
	next()
	clk.RunWhile(clk.Now().Add(time.Hour), func() bool { return done.noAck < frames })
	if done.noAck != frames || done.ok != 0 {
		t.Fatalf("completions: %+v", done)
	}
	if len(*log) != frames*7 {
		t.Fatalf("%d attempts for %d frames, want 7 each", len(*log), frames)
	}
	var waits [8]time.Duration
	for i, at := range *log {
		if at.Try != i%7+1 || at.Acked || at.Delivered {
			t.Fatalf("attempt %d: %+v", i, at)
		}
		if at.Try > 1 {
			prev := (*log)[i-1]
			if prev.Done.Sub(prev.End) != espnow.AckTimeout(espnow.Rate1M) || !at.Start.Equal(prev.Done.Add(at.Wait)) {
				t.Fatalf("retry %d: starts %v after the timeout, waited %v; timeout %v after the frame", at.Try, at.Start.Sub(prev.Done), at.Wait, prev.Done.Sub(prev.End))
			}
			if cw := min(32<<(at.Try-1), 1024) - 1; at.CW != cw || at.Backoff < 0 || at.Backoff > cw || at.Wait != time.Duration(at.Backoff)*slot {
				t.Fatalf("retry %d: backoff %d of 0..%d, waited %v; want a window of %d, counted from the timeout", at.Try, at.Backoff, at.CW, at.Wait, cw)
			}
			waits[at.Try] += at.Wait
		}
	}
	for try := 2; try <= 7; try++ {
		cw := min(32<<(try-1), 1024) - 1
		got := float64(waits[try]) / frames / float64(slot)
		want := float64(cw) / 2
		if math.Abs(got-want)/want > 0.06 {
			t.Errorf("try %d: mean backoff %.1f slots, want %.1f (CW %d)", try, got, want, cw)
		}
	}
	if st := m.Stats(); st.NoAcks != frames || st.Retries != 6*frames {
		t.Errorf("stats %+v", st)
	}

	// A broadcast: once, and done.
	*log = nil
	bc := &errCounter{}
	a.Attach(bc)
	_ = a.Send(link.Broadcast, []byte("x"), 0)
	clk.RunFor(time.Second)
	if len(*log) != 1 || bc.ok != 1 {
		t.Fatalf("broadcast over a dead link: %d attempts, %+v", len(*log), bc)
	}
}

// chain sends the next frame when one completes.
type chain struct {
	*errCounter
	next func()
}

func (c *chain) TxDone(tag link.Tag, err error) { c.errCounter.TxDone(tag, err); c.next() }

// ACKs lost on the way back: the receiver has the frame after the first
// attempt, acknowledges every retry, and delivers it once.
func TestRetryDuplicates(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.ESPNOW(), 3)
	a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, sim.Loss{}, sim.Independent(1))
	done := &errCounter{}
	var rb counter
	a.Attach(done)
	b.Attach(&rb)
	_ = a.Send(b.Addr(), []byte("once"), 0)
	clk.RunFor(time.Second)
	st := m.Stats()
	if rb.n != 1 || done.noAck != 1 || st.Duplicates != 6 || st.Acks != 7 {
		t.Fatalf("delivered %d, sender %+v, stats %+v", rb.n, done, st)
	}
}

// Carrier sense is slot-granular: two radios that both defer behind a
// frame and draw the same backoff start in the same slot and collide, one
// time in 32 (CWmin 31); and two that find an idle medium in the same
// instant both go at once.
func TestSameSlotCollides(t *testing.T) {
	const trials = 4000
	collided := 0
	for i := range trials {
		clk := clock.NewVirtual(time.Time{})
		m := sim.NewMedium(clk, phys.ESPNOW(), uint64(i))
		c, a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
		m.Connect(a, b, sim.Loss{}, sim.Loss{})
		m.Connect(a, c, sim.Loss{}, sim.Loss{})
		m.Connect(b, c, sim.Loss{}, sim.Loss{})
		var got counter
		c.Attach(&got)
		a.Attach(&counter{})
		b.Attach(&counter{})
		_ = c.Send(link.Broadcast, make([]byte, 100), 0)
		clk.RunFor(100 * time.Microsecond) // c is on the air
		_ = a.Send(link.Broadcast, []byte("a"), 0)
		_ = b.Send(link.Broadcast, []byte("b"), 0)
		clk.RunFor(time.Second)
		if got.n != 2 {
			collided++
		}
	}
	p := float64(collided) / trials
	if want := 1.0 / 32; math.Abs(p-want) > 4*math.Sqrt(want*(1-want)/trials) {
		t.Errorf("same-slot collisions %.4f, want %.4f", p, want)
	}
	t.Logf("two deferring radios collided in %.2f%% of %d trials (1/32 = 3.13%%)", 100*p, trials)

	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.ESPNOW(), 1)
	c, a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, c, sim.Loss{}, sim.Loss{})
	m.Connect(b, c, sim.Loss{}, sim.Loss{})
	m.Connect(a, b, sim.Loss{}, sim.Loss{})
	var got counter
	c.Attach(&got)
	clk.RunFor(time.Second)
	_ = a.Send(link.Broadcast, []byte("a"), 0)
	_ = b.Send(link.Broadcast, []byte("b"), 0)
	clk.RunFor(time.Second)
	if got.n != 0 || c.Counters().Drops[link.DropCollision] != 2 {
		t.Fatalf("two radios starting at once on an idle medium: %d received", got.n)
	}
}

// The NAV keeps a radio that hears a unicast frame but not its addressee
// off the air during the ACK: a radio hidden from the receiver, sending
// all the time, never starts a frame while an ACK it cannot hear is on the
// air (ACKs it destroys are those of frames it collided with, starting in
// the same slot).
func TestNAVProtectsAck(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.ESPNOW(), 4)
	a, b, c := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, sim.Loss{}, sim.Loss{})
	m.Connect(a, c, sim.Loss{}, sim.Loss{}) // c hears a, not b
	log := attempts(m)
	sa := &saturate{r: a, dst: b.Addr(), n: 250}
	sc := &saturate{r: c, dst: link.Broadcast, n: 250}
	a.Attach(sa)
	c.Attach(sc)
	b.Attach(&counter{})
	sa.fill()
	sc.fill()
	clk.RunFor(8 * time.Second)
	var fromA, fromC []sim.Attempt
	for _, at := range *log {
		if at.From == a {
			fromA = append(fromA, at)
		} else {
			fromC = append(fromC, at)
		}
	}
	inAck, sameSlot := 0, 0
	for _, u := range fromA {
		for _, x := range fromC {
			if x.Start.After(u.End) && x.Start.Before(u.Done) {
				inAck++
			}
			if d := x.Start.Sub(u.Start); d > -slot && d < slot {
				sameSlot++
			}
		}
	}
	if len(fromA) < 1000 || inAck != 0 || sameSlot == 0 {
		t.Fatalf("%d unicast attempts; the hidden radio started %d frames during their ACKs (%d in the same slot as the data)", len(fromA), inAck, sameSlot)
	}
	t.Logf("%d unicast attempts next to a saturated radio that cannot hear the ACKs: none of its %d frames started during an ACK (%d same-slot collisions)", len(fromA), len(fromC), sameSlot)
}

// After a frame received in error a radio waits EIFS, not DIFS.
func TestEIFS(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.ESPNOW(), 5)
	x, y, a := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(x, a, sim.Loss{}, sim.Loss{})
	m.Connect(y, a, sim.Loss{}, sim.Loss{}) // x and y are hidden from each other
	log := attempts(m)
	for _, r := range []*sim.Radio{x, y, a} {
		r.Attach(&counter{})
	}
	_ = x.Send(link.Broadcast, make([]byte, 100), 0)
	_ = y.Send(link.Broadcast, make([]byte, 100), 0)
	clk.RunFor(time.Millisecond)
	_ = a.Send(link.Broadcast, []byte("after"), 0)
	clk.RunFor(time.Second)
	if len(*log) != 3 {
		t.Fatalf("%d attempts", len(*log))
	}
	col, at := (*log)[0], (*log)[2]
	eifs := phys.ESPNOW().DCF.EIFS
	if at.From != a || at.Wait < eifs || (at.Wait-eifs)%slot != 0 || !at.Start.Equal(col.End.Add(at.Wait)) {
		t.Fatalf("after the collision a waited %v from its end (%v counted), want EIFS %v and whole slots", at.Start.Sub(col.End), at.Wait, eifs)
	}
}

// Each frame goes at its rate: the radio's, or its rate control's choice
// for the destination (broadcasts keep the radio's).
func TestRatePerFrame(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.ESPNOW(), 6)
	a, b, c := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, sim.Loss{}, sim.Loss{})
	m.Connect(a, c, sim.Loss{}, sim.Loss{})
	log := attempts(m)
	for _, r := range []*sim.Radio{a, b, c} {
		r.Attach(&counter{})
	}
	if a.SetRate(7000) || !a.SetRate(11000) {
		t.Fatal("SetRate accepted a rate 802.11 lacks, or refused 11 Mbit/s")
	}
	rc := &fixedRates{rates: map[string]int{b.Addr().String(): 6000, c.Addr().String(): 54000}}
	a.SetRateControl(rc)
	for _, dst := range []link.Addr{b.Addr(), c.Addr(), link.Broadcast} {
		_ = a.Send(dst, make([]byte, 200), 0)
		clk.RunFor(100 * time.Millisecond)
	}
	want := []int{6000, 54000, 11000}
	for i, at := range *log {
		if at.Rate != want[i] || at.End.Sub(at.Start) != espnow.Airtime(200, want[i]) {
			t.Errorf("frame %d: %d kbit/s for %v, want %d kbit/s for %v", i, at.Rate, at.End.Sub(at.Start), want[i], espnow.Airtime(200, want[i]))
		}
	}
	if rc.reports != 2 {
		t.Errorf("rate control heard of %d frames, want the 2 unicasts", rc.reports)
	}
}

type fixedRates struct {
	rates   map[string]int
	reports int
}

func (f *fixedRates) Rate(dst link.Addr) (int, int, int) { r := f.rates[dst.String()]; return r, 0, r }
func (f *fixedRates) Report(link.Addr, int, int, bool)   { f.reports++ }

// The PHY's error rate grows with distance, for fast rates first: where 1
// Mbit/s loses nothing, 54 Mbit/s loses most frames and 24 Mbit/s some.
func TestPERWithDistance(t *testing.T) {
	// At the ESP32's sensitivity for the rate, 10 % of 1,000-byte frames.
	want := 1 - math.Pow(0.9, float64(espnow.FrameLen(200))/1000)
	if p := phys.ESPNOWPER(54000, 200, -75+95); math.Abs(p-want) > 1e-9 {
		t.Fatalf("54 Mbit/s at its sensitivity: PER %.4f, want %.4f", p, want)
	}
	loss := func(rate espnow.Rate, dist float64) float64 {
		clk := clock.NewVirtual(time.Time{})
		m := sim.NewMedium(clk, phys.ESPNOWAt(rate), 9)
		a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{X: dist})
		m.Connect(a, b, sim.Loss{}, sim.Loss{})
		var got counter
		b.Attach(&got)
		s := &saturate{r: a, dst: link.Broadcast, n: 250}
		a.Attach(s)
		s.fill()
		clk.RunWhile(clk.Now().Add(time.Hour), func() bool { return s.done < 2000 })
		return 1 - float64(got.n)/float64(s.done)
	}
	// 20 dBm, 40 dB at 1 m, exponent 2.7, noise -95 dBm: SNR 75-27·log10(d).
	d := math.Pow(10, (75-20.0)/27) // SNR 20 dB: 54 Mbit/s's sensitivity
	l1, l24, l54 := loss(espnow.Rate1M, d), loss(espnow.Rate24M, d), loss(espnow.Rate54M, d)
	if l1 != 0 || l24 > 0.01 || l54 < 0.02 || l54 > 0.2 {
		t.Errorf("at %.0f m: loss %.3f at 1M, %.3f at 24M, %.3f at 54M", d, l1, l24, l54)
	}
	// Connected radios hear each other at 1 Mbit/s however far apart
	// (a graph's edges stay up), and faster rates fade.
	if l := loss(espnow.Rate1M, 2000); l != 0 {
		t.Errorf("2 km at 1 Mbit/s: loss %.3f", l)
	}
	if l := loss(espnow.Rate11M, 2000); l < 0.5 {
		t.Errorf("2 km at 11 Mbit/s: loss %.3f", l)
	}
	far := math.Pow(10, (75-12.0)/27) // SNR 12 dB
	if l24, l54 := loss(espnow.Rate24M, far), loss(espnow.Rate54M, far); l54 < 0.9 || l24 > 0.2 {
		t.Errorf("at %.0f m: loss %.3f at 24M, %.3f at 54M", far, l24, l54)
	}
}

// A receiver that vanishes while its ACK is due: the sender, hearing
// nothing, retries to its limit and reports link.ErrNoAck.
func TestVanishMidExchange(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phys.ESPNOW(), 10)
	a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	m.Connect(a, b, sim.Loss{}, sim.Loss{})
	done := &errCounter{}
	a.Attach(done)
	b.Attach(&counter{})
	_ = a.Send(b.Addr(), make([]byte, 100), 0)
	clk.RunFor(espnow.Airtime(100, 1000) + 5*time.Microsecond) // the frame is over, the ACK due
	m.Disconnect(a, b)
	clk.RunFor(time.Second)
	if done.noAck != 1 {
		t.Fatalf("completions %+v", done)
	}
}

// With rate control a radio finds, per destination, a rate near the best
// for that link: a near peer gets fast OFDM, a far one a slow rate, each
// within 15 % of the goodput of the best fixed rate for it.
func TestRateAdaptation(t *testing.T) {
	// SNR 75-27·log10(d): 30 dB at 46 m, 5 dB at 390 m.
	near, far := 46.0, 390.0
	goodput := func(phy sim.PHY, dist float64, seed uint64) (float64, int) {
		clk := clock.NewVirtual(time.Time{})
		m := sim.NewMedium(clk, phy, seed)
		a, b := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{X: dist})
		m.Connect(a, b, sim.Loss{}, sim.Loss{})
		log := attempts(m)
		s := &saturate{r: a, dst: b.Addr(), n: 250}
		a.Attach(s)
		rc := &clockedCounter{clk: clk, mark: 1}
		b.Attach(rc)
		s.fill()
		// Until the sender is done with 2,000 frames: at a rate the link
		// cannot carry few of them arrive.
		start := clk.Now()
		clk.RunWhile(clk.Now().Add(time.Hour), func() bool { return s.done < 2000 })
		rates := map[int]int{}
		for _, at := range (*log)[len(*log)/2:] {
			rates[at.Rate]++
		}
		most := 0
		for r, n := range rates {
			if n > rates[most] {
				most = r
			}
		}
		return float64(rc.n*250*8) / clk.Now().Sub(start).Seconds(), most
	}
	for _, dist := range []float64{near, far} {
		got, rate := goodput(phys.ESPNOWAdaptive(espnow.Rate1M), dist, 1)
		best, at := 0.0, 0
		for _, r := range []espnow.Rate{espnow.Rate1M, espnow.Rate2M, espnow.Rate5M5, espnow.Rate6M, espnow.Rate9M, espnow.Rate11M, espnow.Rate12M, espnow.Rate18M, espnow.Rate24M, espnow.Rate36M, espnow.Rate48M, espnow.Rate54M} {
			if g, _ := goodput(phys.ESPNOWAt(r), dist, 2); g > best {
				best, at = g, int(r)
			}
		}
		if got < 0.85*best {
			t.Errorf("at %.0f m: adaptive %.2f Mbit/s (mostly %d kbit/s), best fixed %d kbit/s %.2f", dist, got/1e6, rate, at, best/1e6)
		}
		t.Logf("at %.0f m: adaptive %.2f Mbit/s (mostly %d kbit/s), best fixed %d kbit/s %.2f", dist, got/1e6, rate, at, best/1e6)
	}
}

// On an ESP-NOW v2 medium a v1 radio takes and sends 250 bytes at most and
// drops the longer frames it hears; v2 radios carry 1,470.
func TestV1RadioOnV2Medium(t *testing.T) {
	phy := phys.ESPNOWV2(phys.ESPNOW())
	clk := clock.NewVirtual(time.Time{})
	m := sim.NewMedium(clk, phy, 11)
	a, b, old := m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{}), m.AddRadio(sim.Position{})
	old.SetLimits(espnow.MaxBody, link.SchemasESPNOW)
	m.Connect(a, b, sim.Loss{}, sim.Loss{})
	m.Connect(a, old, sim.Loss{}, sim.Loss{})
	var rb, rold counter
	a.Attach(&counter{})
	b.Attach(&rb)
	old.Attach(&rold)
	if old.Info().MTU != 250 || b.Info().MTU != 1470 || len(old.Info().Schemas) != 11 || old.Send(a.Addr(), make([]byte, 251), 0) == nil {
		t.Fatal("MTUs")
	}
	_ = a.Send(link.Broadcast, make([]byte, 1470), 0)
	_ = a.Send(link.Broadcast, make([]byte, 200), 0)
	clk.RunFor(time.Second)
	if rb.n != 2 || rold.n != 1 || old.Counters().Drops[link.DropOversize] != 2 { // its own refused send, and the frame it heard
		t.Fatalf("v2 radio got %d, v1 radio %d (drops %v)", rb.n, rold.n, old.Counters().Drops)
	}
}
