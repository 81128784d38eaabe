package rylr998_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998/emulator"
)

// Through a module that reads AT+SEND's data by length and through one that
// ends it at CR LF, every datagram arrives byte-exact with the packet and
// bytes framings: CR LF, 0x00, 0xFF, LF everywhere, up to the framing's
// limit. No frame on the air holds a LF, each is as long as FrameLen says,
// and the driver's airtime is the module's. Unframed, a datagram holding CR
// LF is cut by the second kind of module (+ERR=5): the framing is what
// carries it.
func TestFramingThroughBothModules(t *testing.T) {
	dataModes(t, func(t *testing.T, o emulator.Options) {
		packets := [][]byte{
			{0},
			append([]byte{0}, pattern(239, 1)...),
			append([]byte{0}, bytes.Repeat([]byte{'\n'}, 239)...),
			append([]byte{0, 0, 20, 0, 7}, bytes.Repeat([]byte("\r\n"), 117)...),
			{0, 0xff, 0x0d, 0x0a, 0x0a, 0},
		}
		anyBytes := [][]byte{
			{}, []byte("\r\n"), {0}, {0xff}, {'\n'},
			pattern(rylr998.MaxLFFree, 0),
			bytes.Repeat([]byte{'\n'}, rylr998.MaxLFFree),
			append(bytes.Repeat([]byte("\r\n"), 119), '\r'),
		}
		for _, c := range []struct {
			f  rylr998.Framing
			dg [][]byte
		}{{rylr998.FramePacket, packets}, {rylr998.FrameBytes, anyBytes}} {
			e := newEnvWith(t, 2, o, func(i int, cfg *rylr998.Config) { cfg.Framing = c.f })
			rs := attachAll(e)
			a, b := e.links[0], e.links[1]
			if a.Info().MTU != c.f.MaxDatagram() {
				t.Fatalf("%v: MTU %d", c.f, a.Info().MTU)
			}
			for _, d := range c.dg {
				if err := a.Send(b.Info().Addr, d, 0); err != nil {
					t.Fatalf("%v: send %d bytes: %v", c.f, len(d), err)
				}
				if !waitFor(func() bool { return rs[1].has(d) }) {
					t.Fatalf("%v: %d bytes %x did not arrive; health %+v", c.f, len(d), d, b.Health())
				}
			}
			waitFor(func() bool { d, _ := rs[0].Done(); return d == len(c.dg) }) // TxDone may come after the +RCV
			if done, errs := rs[0].Done(); done != len(c.dg) || len(errs) != 0 {
				t.Fatalf("%v: %d done, errors %v", c.f, done, errs)
			}
			heard := e.mods[1].Heard()
			var air time.Duration
			for i, h := range heard {
				if len(h.Data) != c.f.FrameLen(len(c.dg[i])) || bytes.IndexByte(h.Data, '\n') >= 0 {
					t.Fatalf("%v: datagram %d went on the air as %q", c.f, i, h.Data)
				}
				air += a.Airtime(len(c.dg[i]))
			}
			if got := e.mods[0].Radio().Counters().TxAirtime; got != air || a.Counters().TxAirtime != air {
				t.Fatalf("%v: module on the air %v, driver counted %v, want %v", c.f, got, a.Counters().TxAirtime, air)
			}
			if h := b.Health(); h.BadFrames != 0 || h.Line.Garbage != 0 {
				t.Fatalf("%v: health %+v", c.f, h)
			}
		}
		// Unframed, CR LF goes raw.
		e := newEnvWith(t, 2, o, func(i int, cfg *rylr998.Config) { cfg.Framing = rylr998.FrameNone })
		rs := attachAll(e)
		if err := e.links[0].Send(e.links[1].Info().Addr, []byte("A\r\nB"), 0); err != nil {
			t.Fatal(err)
		}
		if !waitFor(func() bool { d, _ := rs[0].Done(); return d == 1 }) {
			t.Fatal("no TxDone")
		}
		_, errs := rs[0].Done()
		if o.DataEndsAtCRLF {
			if len(errs) != 1 || !errors.Is(errs[0], rylr998.ErrLengthMismatch) {
				t.Fatalf("unframed CR LF through a module that ends the data there: %v", errs)
			}
		} else if len(errs) != 0 || !waitFor(func() bool { return rs[1].has([]byte("A\r\nB")) }) {
			t.Fatalf("unframed CR LF through a module that reads by length: %v", errs)
		}
	})
}

// The packet framing refuses a datagram that is not a packet, and its
// airtime is the unframed formula's.
func TestPacketFraming(t *testing.T) {
	e := newEnv(t, 1, func(i int, c *rylr998.Config) { c.Framing = rylr998.FramePacket })
	l := e.links[0]
	if err := l.Send(link.Broadcast, []byte("hello"), 0); !errors.Is(err, rylr998.ErrFrame) {
		t.Fatalf("send of text as a packet: %v", err)
	}
	if got := l.Counters().Drops[link.DropTxError]; got != 1 {
		t.Fatalf("refusal counted %d", got)
	}
	for _, n := range []int{1, 100, 240} {
		if l.Airtime(n) != fast.Airtime(n+rylr998.AirOverhead) {
			t.Fatalf("Airtime(%d) %v", n, l.Airtime(n))
		}
	}
	if l.Info().MTU != 240 {
		t.Fatalf("MTU %d", l.Info().MTU)
	}
}

// The guide's own +RCV example, spaces after the commas, is a frame like
// any other, in both kinds of module; a +RCV that is not a frame of the
// link's framing is dropped and counted.
func TestGuideRCVLine(t *testing.T) {
	dataModes(t, func(t *testing.T, o emulator.Options) {
		e := newEnvWith(t, 2, o, func(i int, c *rylr998.Config) {
			c.Framing = []rylr998.Framing{rylr998.FrameNone, rylr998.FramePacket}[i]
		})
		rs := attachAll(e)
		for _, m := range e.mods {
			m.InjectGarbage([]byte("+RCV=50, 5, HELLO, -99, 40\r\n"))
		}
		if !waitFor(func() bool { return len(rs[0].Frames()) == 1 && e.links[1].Health().BadFrames == 1 }) {
			t.Fatalf("frames %d, health %+v", len(rs[0].Frames()), e.links[1].Health())
		}
		f := rs[0].Frames()[0]
		if string(f.Data) != "HELLO" || f.Src != rylr998.Addr(50) || f.RSSI != -99 || f.SNR != 40 {
			t.Fatalf("frame %+v", f)
		}
		if h := e.links[0].Health(); h.Line.Garbage != 0 {
			t.Fatalf("the guide's line counted as garbage: %+v", h)
		}
		if got := e.links[1].Counters().Drops[link.DropMalformed]; got != 1 || len(rs[1].Frames()) != 0 {
			t.Fatalf("not a packet frame: %d drops, %d frames", got, len(rs[1].Frames()))
		}
	})
}

// openPort opens a module's terminal as the CLI's "lora at" does.
func openPort(t *testing.T, m *emulator.Module) serial.Port {
	t.Helper()
	if !waitFor(m.Idle) {
		t.Fatal("module did not boot")
	}
	p, err := rylr998.OpenPort(m.Path(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	// Synchronise past the module's +READY.
	if _, err := rylr998.Exec(p, "AT", patience); err != nil {
		if _, err := rylr998.Exec(p, "AT", patience); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// Through Exec (the CLI's "lora at"), in both kinds of module: a short
// AT+SEND gets +ERR=5 at once and the next command is answered; the
// password takes 8 hex digits, another length is +ERR=5; AT+SEND? answers
// a +SEND= line on a fresh module and after AT+FACTORY; no answer uses a
// number the RYLR998 guide does not document. The modules' idle gap is an
// hour, so only the short-AT+SEND rule can answer a cut command.
func TestExecAgainstTheGuide(t *testing.T) {
	dataModes(t, func(t *testing.T, o emulator.Options) {
		o.IdleGap = time.Hour
		e := newEnvWith(t, 0, o, nil)
		m, err := e.net.AddModule(o)
		if err != nil {
			t.Fatal(err)
		}
		p := openPort(t, m)
		steps := []struct {
			cmd  string
			want string
			err  error
		}{
			{"AT+SEND?", "+SEND=0,0,", nil},
			{"AT+SEND=2,10,HELLO", "+ERR=5", rylr998.ErrLengthMismatch},
			{"AT", "+OK", nil},
			{"AT+SEND=2,7,HELLO", "+ERR=5", rylr998.ErrLengthMismatch},
			{"AT", "+OK", nil},
			{"AT+SEND=2,6,HELLO", "+ERR=5", rylr998.ErrLengthMismatch},
			{"AT", "+OK", nil},
			{"AT+CPIN=0123456789ABCDEF0123456789ABCDEF", "+ERR=5", rylr998.ErrLengthMismatch},
			{"AT+CPIN=EEDCAA90,M", "+ERR=5", rylr998.ErrLengthMismatch},
			{"AT+CPIN=EEDCAA9", "+ERR=5", rylr998.ErrLengthMismatch},
			{"AT+CPIN=EEDCAA9G", "+ERR=4", rylr998.ErrUnknownCommand},
			{"AT+CPIN=EEDCAA90", "+OK", nil},
			{"AT+CPIN?", "+CPIN=EEDCAA90", nil},
			{"AT+ADDRESS", "+ERR=4", rylr998.ErrUnknownCommand},
			{"AT+ADDRESS!", "+ERR=4", rylr998.ErrUnknownCommand},
			{"AT+SEND=0,5,HELLO", "+OK", nil},
			{"AT+SEND?", "+SEND=0,5,HELLO", nil},
			{"AT+FACTORY", "+FACTORY", nil},
			{"AT+SEND?", "+SEND=0,0,", nil},
		}
		for _, s := range steps {
			lines, err := rylr998.Exec(p, s.cmd, patience)
			if len(lines) != 1 || lines[0] != s.want || !errors.Is(err, s.err) || (s.err == nil) != (err == nil) {
				t.Fatalf("%s: %q, %v; want %s, %v", s.cmd, lines, err, s.want, s.err)
			}
			var me rylr998.ModuleError
			if errors.As(err, &me) && !me.Documented() {
				t.Fatalf("%s: +ERR=%d is not in the RYLR998 guide", s.cmd, int(me))
			}
		}
	})
}

// Probe tells the two kinds of module apart, finds that both carry what
// the framing puts in the data field, leaves nothing on the line for the
// next command, and puts its frames where no other module hears them.
func TestProbe(t *testing.T) {
	dataModes(t, func(t *testing.T, o emulator.Options) {
		e := newEnvWith(t, 0, o, nil)
		var ms []*emulator.Module
		for range 2 {
			m, err := e.net.AddModule(o)
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		p := openPort(t, ms[0])
		r, err := rylr998.Probe(p, patience)
		if err != nil {
			t.Fatal(err)
		}
		want := rylr998.DataByLength
		if o.DataEndsAtCRLF {
			want = rylr998.DataToCRLF
		}
		if r.DataEnd != want || !r.FramesCarried || r.To != 1 {
			t.Fatalf("probe %+v, want %v", r, want)
		}
		if o.DataEndsAtCRLF && strings.Join(r.CRLFAnswer, " ") != "+ERR=5 +ERR=2" {
			t.Fatalf("answers %q", r.CRLFAnswer)
		}
		if lines, err := rylr998.Exec(p, "AT+ADDRESS?", patience); err != nil || len(lines) != 1 || lines[0] != "+ADDRESS=1" {
			t.Fatalf("after the probe: %q %v", lines, err)
		}
		if !waitFor(ms[0].Idle) {
			t.Fatal("sender stays busy")
		}
		if st := ms[1].Stats(); st.Received != 0 {
			t.Fatalf("another module heard the probe: %+v", st)
		}
		ms[0].SetMute(true)
		if _, err := rylr998.Probe(p, 200*time.Millisecond); !errors.Is(err, rylr998.ErrTimeout) {
			t.Fatalf("probe of a mute module: %v", err)
		}
	})
}
