package emulator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998/emulator"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

var fast = lora.Params{SF: 7, Bandwidth: 500000, CR: 1, Preamble: 12}

const patience = 10 * time.Second

// line is one line a module sent, copied.
type line struct {
	kind rylr998.Kind
	text string // the line without CR LF
	src  uint16
	data string
	rssi int
	snr  int
	code rylr998.ModuleError // +ERR=n
	at   time.Time           // when the host read it
}

// host is a terminal program on a module's pty, opened as a serial device.
type host struct {
	t     *testing.T
	port  serial.Port
	lines chan line
}

func dial(t *testing.T, m *emulator.Module) *host {
	t.Helper()
	if !waitFor(m.Idle) {
		t.Fatal("module did not boot")
	}
	p, err := serial.Open(m.Path(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	p.ResetInputBuffer()
	h := &host{t: t, port: p, lines: make(chan line, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ps rylr998.Parser
		buf := make([]byte, 512)
		for {
			n, err := p.Read(buf)
			now := time.Now()
			ps.Feed(buf[:n], func(r *rylr998.Response) {
				h.lines <- line{r.Kind, string(r.Line), r.Src, string(r.Data), r.RSSI, r.SNR, r.Code, now}
			})
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { p.Close(); <-done })
	// The +READY of the module's boot may still be on its way through the
	// terminal (the flush above can miss it): synchronise on an AT.
	h.write("AT\r\n")
	for h.next().text != "+OK" {
	}
	return h
}

func (h *host) write(s string) time.Time {
	h.t.Helper()
	now := time.Now()
	if _, err := h.port.Write([]byte(s)); err != nil {
		h.t.Fatal(err)
	}
	return now
}

func (h *host) next() line {
	h.t.Helper()
	select {
	case l := <-h.lines:
		return l
	case <-time.After(patience):
		h.t.Fatal("no answer from the module")
	}
	return line{}
}

// expect sends cmd and checks the answer lines.
func (h *host) expect(cmd string, want ...string) {
	h.t.Helper()
	h.write(cmd)
	for _, w := range want {
		if got := h.next(); got.text != w {
			h.t.Fatalf("%q: got %q, want %q", cmd, got.text, w)
		}
	}
}

// quiet checks that nothing arrives within d.
func (h *host) quiet(d time.Duration) {
	h.t.Helper()
	select {
	case l := <-h.lines:
		h.t.Fatalf("unexpected %q", l.text)
	case <-time.After(d):
	}
}

func runLoop(t *testing.T) *clock.Loop {
	loop := clock.NewLoop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return loop
}

// network starts n modules and waits for them to boot.
func network(t *testing.T, n int, o emulator.Options) (*emulator.Network, []*emulator.Module) {
	t.Helper()
	net := emulator.NewNetwork(runLoop(t), fast, 7)
	t.Cleanup(func() { net.Close() })
	var ms []*emulator.Module
	for range n {
		m, err := net.AddModule(o)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if !waitFor(func() bool {
		for _, m := range ms {
			if !m.Idle() {
				return false
			}
		}
		return true
	}) {
		t.Fatal("modules did not boot")
	}
	return net, ms
}

// waitFor polls cond every millisecond until it holds or patience runs out.
func waitFor(cond func() bool) bool {
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return cond()
		}
	}
	return true
}

// The AT command set, answered as the guide documents it.
func TestCommands(t *testing.T) {
	_, ms := network(t, 1, emulator.Options{})
	m := ms[0]
	h := dial(t, m)
	h.expect("AT\r\n", "+OK")
	h.expect("AT+VER?\r\n", "+VER="+emulator.Version)
	h.write("AT+UID?\r\n")
	if l := h.next(); !strings.HasPrefix(l.text, "+UID=") || len(l.text) != 5+24 {
		t.Fatalf("uid %q", l.text)
	}
	h.expect("AT+ADDRESS?\r\n", "+ADDRESS=1")
	h.expect("AT+ADDRESS=120\r\n", "+OK")
	h.expect("AT+ADDRESS?\r\n", "+ADDRESS=120")
	h.expect("AT+ADDRESS=65536\r\n", "+ERR=4")
	h.expect("AT+NETWORKID?\r\n", "+NETWORKID=18")
	h.expect("AT+NETWORKID=2\r\n", "+ERR=4")
	h.expect("AT+NETWORKID=6\r\n", "+OK")
	// Off network 18 the preamble must be 12.
	h.expect("AT+PARAMETER=7,9,4,15\r\n", "+ERR=18")
	h.expect("AT+PARAMETER=7,9,4,12\r\n", "+OK")
	h.expect("AT+PARAMETER?\r\n", "+PARAMETER=7,9,4,12")
	h.expect("AT+NETWORKID=18\r\n", "+OK")
	h.expect("AT+PARAMETER=7,9,4,15\r\n", "+OK")
	h.expect("AT+PARAMETER=10,7,1,12\r\n", "+ERR=4") // SF10 at 125 kHz
	h.expect("AT+PARAMETER=9,6,1,12\r\n", "+ERR=4")  // bandwidth code 6
	h.expect("AT+PARAMETER=9,7,1,25\r\n", "+ERR=18")
	h.expect("AT+BAND?\r\n", "+BAND=915000000")
	h.expect("AT+BAND=868500000\r\n", "+OK")
	h.expect("AT+BAND?\r\n", "+BAND=868500000")
	h.expect("AT+CPIN?\r\n", "+CPIN=No Password!")
	h.expect("AT+CPIN=EEDCAA9\r\n", "+ERR=5")
	h.expect("AT+CPIN=eedcaa90\r\n", "+OK")
	h.expect("AT+CPIN?\r\n", "+CPIN=EEDCAA90")
	h.expect("AT+CRFOP?\r\n", "+CRFOP=22")
	h.expect("AT+CRFOP=23\r\n", "+ERR=4")
	h.expect("AT+CRFOP=10\r\n", "+OK")
	h.expect("AT+MODE?\r\n", "+MODE=0")
	h.expect("AT+MODE=2,10,3000\r\n", "+ERR=20")
	h.expect("AT+MODE=2,3000,3000\r\n", "+OK")
	if s := m.Settings(); s.Mode != 2 || s.RxTime != 3000 {
		t.Fatalf("settings %+v", s)
	}
	// Any activity on the line wakes the module: the query finds mode 0.
	h.expect("AT+MODE?\r\n", "+MODE=0")
	h.expect("AT+SEND?\r\n", "+SEND=0,0,")
	h.expect("AT+SEND=0,5,HELLO\r\n", "+OK")
	h.expect("AT+SEND?\r\n", "+SEND=0,5,HELLO")
	h.expect("AT+FCCT=0\r\n", "+OK")
	// Errors.
	h.expect("XX\r\n", "+ERR=2")
	h.expect("AT\n", "+ERR=1")
	h.expect("AT+FOO?\r\n", "+ERR=4")
	h.expect("ATI\r\n", "+ERR=4")
	h.expect("AT+ADDRESS\r\n", "+ERR=4")
	h.expect("AT+SEND=1,2,abc\r\n", "+ERR=5")
	h.expect("AT+SEND=1,241,abc\r\n", "+ERR=13")
	// A terminal's Enter (CR alone) ends a command too.
	h.expect("AT\r", "+OK")
	// Settings kept in flash survive a reset; a band set without ",M"
	// does not, nor a password (kept in RAM only).
	h.expect("AT+RESET\r\n", "+RESET", "+READY")
	s := m.Settings()
	if s.Address != 120 || s.NetworkID != 18 || s.Params.Preamble != 15 || s.Power != 10 || s.Band != 915000000 || s.Password != "" {
		t.Fatalf("after reset %+v", s)
	}
	h.expect("AT+BAND=868500000,M\r\n", "+OK")
	h.expect("AT+CPIN=EEDCAA90,M\r\n", "+ERR=5") // no ",M" for the password
	h.expect("AT+CPIN=EEDCAA90\r\n", "+OK")
	h.expect("AT+RESET\r\n", "+RESET", "+READY")
	if s := m.Settings(); s.Band != 868500000 || s.Password != "" {
		t.Fatalf("after reset: %+v", s)
	}
	h.expect("AT+FACTORY\r\n", "+FACTORY")
	if s := m.Settings(); s.Address != 0 || s.Band != emulator.FactoryBand || s.Params != lora.Default || s.Password != "" || s.Power != 22 {
		t.Fatalf("after factory %+v", s)
	}
	h.expect("AT+IPR=9600\r\n", "+IPR=9600")
	h.expect("AT+IPR?\r\n", "+IPR=9600")
	h.expect("AT+IPR=1234\r\n", "+ERR=4")
	if st := m.Stats(); st.Errors == 0 || st.Commands < 50 {
		t.Fatalf("stats %+v", st)
	}
}

// Two modules: AT+SEND on one gives +RCV on the other, the data raw and
// the signal from the medium; a second AT+SEND while the first frame is on
// the air is refused with +ERR=17.
func TestSendReceive(t *testing.T) {
	_, ms := network(t, 3, emulator.Options{})
	a, b, c := dial(t, ms[0]), dial(t, ms[1]), dial(t, ms[2])
	data := "x,y\r\n+OK\r\n"
	sent := a.write(fmt.Sprintf("AT+SEND=2,%d,%s\r\n", len(data), data))
	if l := a.next(); l.text != "+OK" {
		t.Fatalf("send: %q", l.text)
	}
	a.expect("AT+SEND=2,1,z\r\n", "+ERR=17")
	got := b.next()
	// Modules 1 and 2 are 10 m apart: -47 dBm by the medium's path loss,
	// and the SNR a LoRa radio reports at its best, +10 dB.
	if got.kind != rylr998.KindRCV || got.src != 1 || got.data != data || got.rssi != -47 || got.snr != 10 {
		t.Fatalf("received %+v", got)
	}
	// It took at least the airtime of the data and the module's 8 bytes.
	air := fast.Airtime(len(data) + rylr998.AirOverhead)
	if d := got.at.Sub(sent); d < air {
		t.Fatalf("received %v after sending, airtime is %v", d, air)
	}
	c.quiet(50 * time.Millisecond) // addressed to 2 only
	if st := ms[0].Stats(); st.Busy != 1 || st.Sent != 1 {
		t.Fatalf("sender stats %+v", st)
	}
	if st := ms[2].Stats(); st.Filtered != 1 || st.Received != 0 {
		t.Fatalf("bystander stats %+v", st)
	}
	// Broadcast: both hear it.
	a.expect("AT+SEND=0,3,all\r\n", "+OK")
	for _, h := range []*host{b, c} {
		if l := h.next(); l.data != "all" || l.src != 1 {
			t.Fatalf("broadcast: %+v", l)
		}
	}
	if h := ms[1].Heard(); len(h) != 2 || h[0].Dst != 2 || h[1].Dst != 0 {
		t.Fatalf("heard %+v", h)
	}
}

// Modules on another network id, or with another password or other
// parameters, do not hear each other.
func TestFiltering(t *testing.T) {
	_, ms := network(t, 2, emulator.Options{})
	a, b := dial(t, ms[0]), dial(t, ms[1])
	try := func(setup string, heard bool) {
		t.Helper()
		for _, cmd := range strings.Split(setup, ";") {
			if cmd != "" {
				b.expect(cmd+"\r\n", "+OK")
			}
		}
		a.expect("AT+SEND=0,2,hi\r\n", "+OK")
		if heard {
			if l := b.next(); l.data != "hi" {
				t.Fatalf("%s: got %+v", setup, l)
			}
		} else {
			b.quiet(100 * time.Millisecond)
		}
		if !waitFor(ms[0].Idle) { // the radio is free again
			t.Fatal("sender stays busy")
		}
	}
	try("", true)
	try("AT+NETWORKID=6", false)
	try("AT+NETWORKID=18;AT+CPIN=11223344", false)
	b.expect("AT+RESET\r\n", "+RESET", "+READY")
	try("", true) // the password was not memorized: gone
	try("AT+PARAMETER=7,8,1,12", false)
	try("AT+PARAMETER=7,9,1,12", true)
	try("AT+PARAMETER=7,9,1,8", true) // another preamble length is still heard
	if st := ms[1].Stats(); st.Filtered != 3 {
		t.Fatalf("filtered %d, want 3", st.Filtered)
	}
}

// Bytes take 10 bit times each to cross the line, both ways.
func TestLinePacing(t *testing.T) {
	_, ms := network(t, 1, emulator.Options{Baud: 9600})
	h := dial(t, ms[0])
	cmd := "AT+SEND=5,200," + strings.Repeat("p", 200) + "\r\n"
	start := h.write(cmd)
	l := h.next()
	want := time.Duration(len(cmd)+len("+OK\r\n")) * 10 * time.Second / 9600
	if got := l.at.Sub(start); l.text != "+OK" || got < want {
		t.Fatalf("%q after %v; the line alone takes %v", l.text, got, want)
	}
}

// Sleep: a module in mode 1 hears nothing; bytes on its UART wake it.
func TestSleepMode(t *testing.T) {
	_, ms := network(t, 2, emulator.Options{})
	a, b := dial(t, ms[0]), dial(t, ms[1])
	b.expect("AT+MODE=1\r\n", "+OK")
	a.expect("AT+SEND=2,4,zzzz\r\n", "+OK")
	b.quiet(100 * time.Millisecond)
	if d := ms[1].Radio().Counters().Drops[link.DropAsleep]; d != 1 {
		t.Fatalf("asleep drops %d", d)
	}
	b.expect("AT\r\n", "+OK")
	if ms[1].Settings().Mode != 0 {
		t.Fatal("not woken by the UART")
	}
	a.expect("AT+SEND=2,4,wake\r\n", "+OK")
	if l := b.next(); l.data != "wake" {
		t.Fatalf("%+v", l)
	}
}

// Smart receive: the receiver cycles; a good frame returns it to mode 0.
func TestSmartReceive(t *testing.T) {
	_, ms := network(t, 2, emulator.Options{})
	a, b := dial(t, ms[0]), dial(t, ms[1])
	b.expect("AT+MODE=2,30,30\r\n", "+OK")
	got := false
	for i := 0; i < 50 && !got; i++ {
		a.expect(fmt.Sprintf("AT+SEND=2,2,%02d\r\n", i), "+OK")
		select {
		case l := <-b.lines:
			got = l.kind == rylr998.KindRCV
		case <-time.After(2 * fast.Airtime(10)):
		}
	}
	if !got {
		t.Fatal("nothing received in smart receive mode")
	}
	if ms[1].Settings().Mode != 0 {
		t.Fatal("a frame did not end smart receive mode")
	}
}

// Faults: mute, garbage, reset, a forced error.
func TestFaults(t *testing.T) {
	_, ms := network(t, 1, emulator.Options{})
	m := ms[0]
	h := dial(t, m)
	m.SetMute(true)
	h.write("AT\r\n")
	h.quiet(100 * time.Millisecond)
	m.SetMute(false)
	h.expect("AT\r\n", "+OK")
	m.InjectGarbage([]byte("\x00\xffjunk\r\n"))
	h.expect("AT\r\n", "+OK")
	m.FailNext(rylr998.ErrCRC)
	h.expect("AT\r\n", "+ERR=12")
	h.expect("AT+CPIN=EEDCAA90\r\n", "+OK")
	m.Reset()
	if l := h.next(); l.text != "+READY" {
		t.Fatalf("%q", l.text)
	}
	if m.Settings().Password != "" {
		t.Fatal("password survived a reset")
	}
	h.expect("AT+ADDRESS=77\r\n", "+OK")
	m.FactoryReset()
	if l := h.next(); l.text != "+READY" || m.Settings().Address != 0 {
		t.Fatalf("%q %+v", l.text, m.Settings())
	}
}

// Modules added with Isolated hear nobody until connected.
func TestTopology(t *testing.T) {
	n, ms := network(t, 1, emulator.Options{})
	far, err := n.AddModule(emulator.Options{Isolated: true, Position: &sim.Position{X: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if len(far.Radio().Neighbors()) != 0 || len(n.Modules()) != 2 {
		t.Fatal("isolated module connected")
	}
	n.Medium().Connect(ms[0].Radio(), far.Radio(), sim.Loss{}, sim.Loss{})
	a, b := dial(t, ms[0]), dial(t, far)
	a.expect("AT+SEND=2,3,far\r\n", "+OK")
	if l := b.next(); l.data != "far" || l.rssi >= -47 {
		t.Fatalf("%+v", l)
	}
}
