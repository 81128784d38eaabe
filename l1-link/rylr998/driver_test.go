package rylr998_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998/emulator"
)

// attachAll gives every link a recorder.
func attachAll(e *env) []*recorder {
	rs := make([]*recorder, len(e.links))
	for i, l := range e.links {
		rs[i] = &recorder{}
		l.Attach(rs[i])
	}
	return rs
}

// Data with commas, CR, LF and text that looks like module output crosses
// intact, and each frame carries the RSSI and SNR the module reported.
func TestRCVDataAndSignal(t *testing.T) {
	e := newEnv(t, 2, nil)
	rs := attachAll(e)
	all := make([]byte, rylr998.MaxLFFree)
	for i := range all {
		all[i] = byte(i)
	}
	msgs := [][]byte{
		[]byte("a,b,c\r\n+OK\r\n+READY\r\n,-40,7\r\n"),
		[]byte("\r"), []byte("\n"), []byte(","), {},
		all,
	}
	for _, m := range msgs {
		if err := e.links[0].Send(e.links[1].Info().Addr, m, 0); err != nil {
			t.Fatal(err)
		}
		if !waitFor(func() bool { return rs[1].has(m) }) {
			t.Fatalf("%q did not arrive; got %d frames", m, len(rs[1].Frames()))
		}
	}
	heard := e.mods[1].Heard()
	for i, f := range rs[1].Frames() {
		// Modules 1 and 2 sit 10 m apart: the medium gives -47 dBm.
		if !f.HasSignal || f.RSSI != heard[i].RSSI || f.SNR != heard[i].SNR || f.RSSI != -47 {
			t.Fatalf("frame %d: signal %v %d/%d, module reported %d/%d", i, f.HasSignal, f.RSSI, f.SNR, heard[i].RSSI, heard[i].SNR)
		}
		if f.Src != rylr998.Addr(10) || f.Time.IsZero() {
			t.Fatalf("frame %d: %+v", i, f)
		}
	}
	if h := e.links[1].Health(); h.Line.Garbage != 0 || h.Strays != 0 {
		t.Fatalf("clean line reported %+v", h)
	}
}

// The driver's airtime is the formula's over the datagram and the module's
// 8 bytes, it counts exactly that, and the emulated module's radio was
// busy for exactly that; back-to-back datagrams wait for the radio, so the
// module never has to refuse one.
func TestAirtime(t *testing.T) {
	e := newEnv(t, 2, nil)
	rs := attachAll(e)
	l := e.links[0]
	for _, n := range []int{0, 1, 10, 100, 239} {
		// FrameBytes: the frame is one byte longer than the datagram.
		if got, want := l.Airtime(n), fast.Airtime(n+1+rylr998.AirOverhead); got != want {
			t.Fatalf("Airtime(%d) = %v, want %v", n, got, want)
		}
		if link.Airtime(l, n) != l.Airtime(n) {
			t.Fatal("link.Airtime does not use the estimator")
		}
	}
	sizes := []int{1, 50, 239, 17}
	var want time.Duration
	for _, n := range sizes {
		if err := l.Send(e.links[1].Info().Addr, bytes.Repeat([]byte{'x'}, n), 0); err != nil {
			t.Fatal(err)
		}
		want += l.Airtime(n)
	}
	if !waitFor(func() bool { d, _ := rs[0].Done(); return d == len(sizes) && len(rs[1].Frames()) == len(sizes) }) {
		t.Fatalf("sent %v, received %d", sizes, len(rs[1].Frames()))
	}
	if got := l.Counters().TxAirtime; got != want {
		t.Fatalf("driver counted %v of airtime, formula %v", got, want)
	}
	if got := e.mods[0].Radio().Counters().TxAirtime; got != want {
		t.Fatalf("module was on the air %v, driver counted %v", got, want)
	}
	if st := e.mods[0].Stats(); st.Busy != 0 || st.Sent != uint64(len(sizes)) {
		t.Fatalf("module stats %+v: the driver sent while the radio was busy", st)
	}
}

// A datagram over the budget is refused with ErrDutyCycle and counted; the
// link reports what it used.
func TestDutyCycle(t *testing.T) {
	air := fast.Airtime(rylr998.FrameBytes.FrameLen(20) + rylr998.AirOverhead)
	// Room for two datagrams of 20 bytes and a bit: not a third, but an
	// empty one.
	budget := lora.DutyCycle{Fraction: float64(27*air/10) / float64(time.Hour), Window: time.Hour}
	e := newEnv(t, 2, func(i int, c *rylr998.Config) { c.DutyCycle = budget })
	rs := attachAll(e)
	l := e.links[0]
	in := l.Info()
	if !in.Caps.Has(link.CapDutyCycle) || in.DutyCycle != budget.Fraction || in.DutyWindow != time.Hour {
		t.Fatalf("info %+v", in)
	}
	msg := make([]byte, 20)
	for range 2 {
		if err := l.Send(e.links[1].Info().Addr, msg, 0); err != nil {
			t.Fatal(err)
		}
	}
	err := l.Send(e.links[1].Info().Addr, msg, 0)
	if !errors.Is(err, link.ErrDutyCycle) {
		t.Fatalf("third datagram: %v, want ErrDutyCycle", err)
	}
	if got := l.Counters().Drops[link.DropDutyCycle]; got != 1 {
		t.Fatalf("duty-cycle drops %d", got)
	}
	used, b := l.DutyCycle()
	if used != 2*air || b != budget.Budget() {
		t.Fatalf("DutyCycle() = %v, %v; want %v, %v", used, b, 2*air, budget.Budget())
	}
	// A smaller datagram still fits.
	if err := l.Send(e.links[1].Info().Addr, nil, 0); err != nil {
		t.Fatalf("small datagram within the budget: %v", err)
	}
	if !waitFor(func() bool { d, errs := rs[0].Done(); return d == 3 && len(errs) == 0 }) {
		t.Fatal("accepted datagrams not completed")
	}
	// The spent airtime stays counted once sent.
	if used, _ := l.DutyCycle(); used != 2*air+l.Airtime(0) {
		t.Fatalf("used %v after sending", used)
	}
	// Without a budget: no capability, nothing refused.
	if e2 := newEnv(t, 1, nil); e2.links[0].Info().Caps.Has(link.CapDutyCycle) {
		t.Fatal("CapDutyCycle without a budget")
	}
}

// Every +ERR the module gives to AT+SEND reaches TxDone as a typed error;
// +ERR=17 (radio busy) is retried instead.
func TestSendErrors(t *testing.T) {
	e := newEnv(t, 2, nil)
	rs := attachAll(e)
	l, to := e.links[0], e.links[1].Info().Addr
	n := 0
	for _, code := range rylr998.ModuleErrors {
		if code == rylr998.ErrTxNotCompleted {
			continue
		}
		e.mods[0].FailNext(code)
		if err := l.Send(to, []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		n++
		if !waitFor(func() bool { d, _ := rs[0].Done(); return d == n }) {
			t.Fatalf("+ERR=%d: no TxDone", int(code))
		}
		_, errs := rs[0].Done()
		err := errs[len(errs)-1]
		var ce *rylr998.CommandError
		// The command names the frame's length: 2 bytes for 1 (FrameBytes).
		if !errors.Is(err, code) || !errors.As(err, &ce) || ce.Cmd != "AT+SEND=11,2" {
			t.Fatalf("+ERR=%d: TxDone(%v)", int(code), err)
		}
	}
	if got := l.Counters().Drops[link.DropTxError]; got != uint64(n) {
		t.Fatalf("tx errors counted %d, want %d", got, n)
	}
	// Busy: retried, delivered, no error.
	e.mods[0].FailNext(rylr998.ErrTxNotCompleted)
	if err := l.Send(to, []byte("after busy"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool { return rs[1].has([]byte("after busy")) }) {
		t.Fatal("datagram refused once as busy was not retried")
	}
	if _, errs := rs[0].Done(); len(errs) != n {
		t.Fatalf("busy datagram reported an error: %v", errs[len(errs)-1])
	}
}

// A module that does not answer: Open fails with ErrTimeout; an open link
// completes the datagram with ErrTimeout, and recovers once the module
// answers again.
func TestCommandTimeout(t *testing.T) {
	const timeout = 250 * time.Millisecond
	e := newEnv(t, 2, func(i int, c *rylr998.Config) { c.CommandTimeout = timeout })
	rs := attachAll(e)
	l, to := e.links[0], e.links[1].Info().Addr

	extra, err := e.net.AddModule(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	extra.SetMute(true)
	start := time.Now()
	_, err = rylr998.Open(rylr998.Config{Port: extra.Path(), Address: 99, Params: fast, Clock: e.drvClk, CommandTimeout: timeout})
	if !errors.Is(err, rylr998.ErrTimeout) {
		t.Fatalf("open of a mute module: %v", err)
	}
	t.Logf("open of a mute module failed after %v: %v", time.Since(start).Round(time.Millisecond), err)

	e.mods[0].SetMute(true)
	if err := l.Send(to, []byte("lost"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool { d, _ := rs[0].Done(); return d == 1 }) {
		t.Fatal("no TxDone")
	}
	if _, errs := rs[0].Done(); len(errs) != 1 || !errors.Is(errs[0], rylr998.ErrTimeout) {
		t.Fatalf("TxDone errors %v", errs)
	}
	if h := l.Health(); h.Timeouts == 0 {
		t.Fatalf("health %+v", h)
	}
	e.mods[0].SetMute(false)
	if err := l.Send(to, []byte("back"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool { return rs[1].has([]byte("back")) }) {
		t.Fatalf("no recovery: health %+v", l.Health())
	}
	if h := l.Health(); h.Configs < 2 {
		t.Fatalf("recovered without reconfiguring: %+v", h)
	}
}

// When the module resets by itself it forgets its password (kept only in
// RAM); after a factory reset it forgets everything. The driver sees the
// unexpected +READY and re-applies its configuration, and traffic flows.
func TestRecoveryAfterReset(t *testing.T) {
	const pw = "EEDCAA90"
	e := newEnv(t, 2, func(i int, c *rylr998.Config) { c.Password = pw; c.TxPower = 14 })
	rs := attachAll(e)
	m, l := e.mods[1], e.links[1]
	if s := m.Settings(); s.Password != pw || s.Address != 11 || s.Power != 14 {
		t.Fatalf("configured module %+v", s)
	}
	exchange := func(msg string) {
		t.Helper()
		if err := e.links[0].Send(l.Info().Addr, []byte(msg), 0); err != nil {
			t.Fatal(err)
		}
		if !waitFor(func() bool { return rs[1].has([]byte(msg)) }) {
			t.Fatalf("%q did not arrive; module %+v, health %+v", msg, m.Settings(), l.Health())
		}
	}
	m.Reset()
	if !waitFor(func() bool { return l.Health().Configs == 2 }) {
		t.Fatalf("no reconfiguration: %+v", l.Health())
	}
	if h := l.Health(); h.Resets != 1 || m.Settings().Password != pw {
		t.Fatalf("after reset: health %+v, module %+v", h, m.Settings())
	}
	exchange("after reset")

	m.FactoryReset()
	if !waitFor(func() bool { return l.Health().Configs == 3 }) {
		t.Fatalf("no reconfiguration: %+v", l.Health())
	}
	s := m.Settings()
	if s.Address != 11 || s.Password != pw || s.Params != fast || s.Power != 14 {
		t.Fatalf("after factory reset the driver left %+v", s)
	}
	exchange("after factory reset")
}

// Garbage on the line (noise, a cut-off +RCV, binary junk) is skipped and
// counted, and the next frame gets through.
func TestRecoveryAfterGarbage(t *testing.T) {
	e := newEnv(t, 2, nil)
	rs := attachAll(e)
	l := e.links[1]
	e.mods[1].InjectGarbage([]byte("\x00\xff~noise\r\n+RCV=3,50,cut off\x01\x02"))
	if !waitFor(func() bool { return l.Health().Line.Garbage >= 1 }) {
		t.Fatalf("garbage not counted: %+v", l.Health())
	}
	send := func(from, to int, msg string) {
		t.Helper()
		if err := e.links[from].Send(e.links[to].Info().Addr, []byte(msg), 0); err != nil {
			t.Fatal(err)
		}
		if !waitFor(func() bool { return rs[to].has([]byte(msg)) }) {
			t.Fatalf("%q lost after garbage; health %+v", msg, l.Health())
		}
	}
	send(0, 1, "first")
	// Garbage while a command is in flight.
	e.mods[1].InjectGarbage([]byte("\xfe\xfd+ERR=x\r\n"))
	send(1, 0, "reply")
	send(0, 1, "second")
	if got := l.Counters().Drops[link.DropMalformed]; got < 2 {
		t.Fatalf("malformed drops %d", got)
	}
	if d, errs := rs[1].Done(); d != 1 || len(errs) != 0 {
		t.Fatalf("send with garbage around: %d done, %v", d, errs)
	}
}

// Sleep maps to AT+MODE=1: the module hears nothing, still sends (the
// UART traffic wakes it, and the driver puts it back to sleep), and
// AT+MODE=0 wakes it.
func TestSleep(t *testing.T) {
	e := newEnv(t, 2, nil)
	rs := attachAll(e)
	a, b, mb := e.links[0], e.links[1], e.mods[1]
	if !b.Info().Caps.Has(link.CapSleep) || !b.Awake() {
		t.Fatal("sleep capability")
	}
	b.SetAwake(false)
	if !waitFor(func() bool { return mb.Settings().Mode == 1 }) {
		t.Fatal("module not asleep")
	}
	if err := a.Send(b.Info().Addr, []byte("while asleep"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool { return mb.Radio().Counters().Drops[link.DropAsleep] == 1 }) {
		t.Fatal("the sleeping radio did not miss the frame")
	}
	if err := b.Send(a.Info().Addr, []byte("sent asleep"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool { return rs[0].has([]byte("sent asleep")) }) {
		t.Fatal("a sleeping module could not send")
	}
	if !waitFor(func() bool { d, _ := rs[1].Done(); return d == 1 && mb.Settings().Mode == 1 }) {
		t.Fatal("module not back to sleep after sending")
	}
	b.SetAwake(true)
	if !waitFor(func() bool { return mb.Settings().Mode == 0 }) {
		t.Fatal("module not awake")
	}
	if err := a.Send(b.Info().Addr, []byte("awake"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool { return rs[1].has([]byte("awake")) }) {
		t.Fatal("woken module did not receive")
	}
	if rs[1].has([]byte("while asleep")) {
		t.Fatal("received while asleep")
	}
}

// Open writes a setting only when the module differs, sparing its flash.
func TestConfigure(t *testing.T) {
	cfg := func(i int, c *rylr998.Config) {
		c.NetworkID = 6
		c.Band = 868100000
		c.TxPower = 14
		c.Password = "0badcafe"
	}
	e := newEnv(t, 1, cfg)
	m := e.mods[0]
	s := m.Settings()
	if s.Address != 10 || s.NetworkID != 6 || s.Band != 868100000 || s.Params != fast || s.Power != 14 || s.Password != "0BADCAFE" || s.Mode != 0 {
		t.Fatalf("module settings %+v", s)
	}
	e.closed[0].Store(true)
	e.links[0].Close()
	before := m.Stats().Commands
	c := rylr998.Config{Port: m.Path(), Address: 10, Params: fast, Clock: e.drvClk}
	cfg(0, &c)
	l, err := rylr998.Open(c)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// AT, AT+MODE=0, five queries and AT+CPIN: no setting rewritten.
	if n := m.Stats().Commands - before; n != 8 {
		t.Fatalf("reopening sent %d commands, want 8", n)
	}
}

func TestConfigValidation(t *testing.T) {
	e := newEnv(t, 1, nil)
	port := e.mods[0].Path()
	bad := []rylr998.Config{
		{Port: port, Address: 1},      // no clock
		{Port: port, Clock: e.drvClk}, // address 0
		{Port: port, Address: 1, Clock: e.drvClk, NetworkID: 2},
		{Port: port, Address: 1, Clock: e.drvClk, NetworkID: 6, Params: lora.Params{SF: 9, Bandwidth: 125000, CR: 1, Preamble: 8}},
		{Port: port, Address: 1, Clock: e.drvClk, Params: lora.Params{SF: 10, Bandwidth: 125000, CR: 1, Preamble: 12}},
		{Port: port, Address: 1, Clock: e.drvClk, Params: lora.Params{SF: 7, Bandwidth: 62500, CR: 1, Preamble: 12}},
		{Port: port, Address: 1, Clock: e.drvClk, Params: lora.Params{SF: 9, Bandwidth: 125000, CR: 1, Preamble: 30}},
		{Port: port, Address: 1, Clock: e.drvClk, Password: "xyz"},
		{Port: port, Address: 1, Clock: e.drvClk, Password: "00000000"},
		// 32 hex digits, as older REYAX modules took: an RYLR998 answers +ERR=5.
		{Port: port, Address: 1, Clock: e.drvClk, Password: "0123456789ABCDEF0123456789ABCDEF"},
		{Port: port, Address: 1, Clock: e.drvClk, Password: "EEDCAA90,M"},
		{Port: port, Address: 1, Clock: e.drvClk, Framing: rylr998.FrameNone + 1},
		{Port: port, Address: 1, Clock: e.drvClk, TxPower: 23},
		{Port: port, Address: 1, Clock: e.drvClk, Baud: 12345},
		{Address: 1, Clock: e.drvClk},
	}
	for i, c := range bad {
		if _, err := rylr998.Open(c); !errors.Is(err, rylr998.ErrConfig) {
			t.Errorf("config %d: %v, want ErrConfig", i, err)
		}
	}
}

// When the port goes away, queued and later datagrams complete with the
// port's error; Close still works once.
func TestPortGone(t *testing.T) {
	e := newEnv(t, 2, nil)
	rs := attachAll(e)
	l := e.links[0]
	e.mods[0].Close()
	if err := l.Send(link.Broadcast, []byte("into the void"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool { d, errs := rs[0].Done(); return d == 1 && len(errs) == 1 }) {
		t.Fatal("datagram on a dead port not completed with an error")
	}
	e.closed[0].Store(true)
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

// Config.Conn: the driver on an already-open terminal (an *os.File) rather
// than a device path.
func TestConn(t *testing.T) {
	e := newEnv(t, 1, nil)
	m, err := e.net.AddModule(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !waitFor(m.Idle) {
		t.Fatal("module did not boot")
	}
	f, err := os.OpenFile(m.Path(), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	l, err := rylr998.Open(rylr998.Config{Conn: f, Address: 42, Params: fast, Clock: e.drvClk, CommandTimeout: 2 * time.Second, Framing: rylr998.FrameBytes})
	if err != nil {
		t.Fatal(err)
	}
	var r recorder
	l.Attach(&r)
	e.links[0].Attach(&recorder{})
	if err := e.links[0].Send(rylr998.Addr(42), []byte("to a file"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool { return r.has([]byte("to a file")) }) {
		t.Fatalf("not received; health %+v", l.Health())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("the link did not close its Conn: %v", err)
	}
}
