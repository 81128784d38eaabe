package emulator_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998/emulator"
)

// dataModes runs f against modules that read AT+SEND's data by length
// and against modules that end it at the first CR LF.
func dataModes(t *testing.T, f func(t *testing.T, o emulator.Options)) {
	for _, crlf := range []bool{false, true} {
		name := "by-length"
		if crlf {
			name = "ends-at-crlf"
		}
		t.Run(name, func(t *testing.T) { f(t, emulator.Options{DataEndsAtCRLF: crlf}) })
	}
}

// AT+SEND with less data than declared is answered +ERR=5 at once, and the
// next command is answered, whether it comes in the same write or after
// the answer. The idle gap is an hour: the answer cannot come from the line
// going quiet for a half-typed command.
func TestShortSend(t *testing.T) {
	dataModes(t, func(t *testing.T, o emulator.Options) {
		o.IdleGap = time.Hour
		_, ms := network(t, 2, o)
		h, b := dial(t, ms[0]), dial(t, ms[1])
		h.expect("AT+SEND=2,10,HELLO\r\n", "+ERR=5")
		h.expect("AT\r\n", "+OK")
		h.expect("AT+SEND=2,10,HELLO\r\nAT\r\n", "+ERR=5", "+OK")
		h.expect("AT+SEND=2,7,HELLO\r\n", "+ERR=5")
		h.expect("AT+ADDRESS?\r\n", "+ADDRESS=1")
		h.expect("AT+SEND=2,6,HELLO\r\nAT\r\n", "+ERR=5", "+OK")
		// One byte short: the CR LF is the last of the declared bytes.
		h.expect("AT+SEND=2,6,HELLO\r\n", "+ERR=5")
		h.expect("AT\r\n", "+OK")
		if st := ms[0].Stats(); st.Sent != 0 {
			t.Fatalf("a short AT+SEND put %d frames on the air", st.Sent)
		}
		b.quiet(20 * time.Millisecond)
		h.quiet(20 * time.Millisecond)
	})
}

// Data holding CR LF: taken by a module that reads by length, cut by one
// that ends the data at CR LF (+ERR=5, and the rest read as a command).
// A lone CR or LF, 0x00 and 0xFF are data to both.
func TestSendDataBytes(t *testing.T) {
	dataModes(t, func(t *testing.T, o emulator.Options) {
		_, ms := network(t, 2, o)
		a, b := dial(t, ms[0]), dial(t, ms[1])
		send := func(data string) {
			t.Helper()
			a.expect("AT+SEND=2,"+strconv.Itoa(len(data))+","+data+"\r\n", "+OK")
			if l := b.next(); l.data != data || l.src != 1 {
				t.Fatalf("%q received as %+v", data, l)
			}
			if !waitFor(ms[0].Idle) {
				t.Fatal("radio stays busy")
			}
		}
		send("a\rb\nc\x00\xff")
		send("\r")
		send("\n\n")
		if o.DataEndsAtCRLF {
			a.expect("AT+SEND=2,7,HE\r\nLLO\r\n", "+ERR=5", "+ERR=2")
			b.quiet(50 * time.Millisecond)
		} else {
			send("HE\r\nLLO")
		}
	})
}

// The password: 8 hex digits; another length, the ",M" form included, is
// +ERR=5 (the RYLR998 guide); not hex, or zero, +ERR=4; it lives in RAM.
func TestPassword(t *testing.T) {
	dataModes(t, func(t *testing.T, o emulator.Options) {
		_, ms := network(t, 1, o)
		h := dial(t, ms[0])
		h.expect("AT+CPIN=0123456789ABCDEF0123456789ABCDEF\r\n", "+ERR=5")
		h.expect("AT+CPIN=EEDCAA90,M\r\n", "+ERR=5")
		h.expect("AT+CPIN=EEDCAA9\r\n", "+ERR=5")
		h.expect("AT+CPIN=\r\n", "+ERR=5")
		h.expect("AT+CPIN=EEDCAA9G\r\n", "+ERR=4")
		h.expect("AT+CPIN=00000000\r\n", "+ERR=4")
		h.expect("AT+CPIN?\r\n", "+CPIN=No Password!")
		h.expect("AT+CPIN=ffffffff\r\n", "+OK")
		h.expect("AT+CPIN?\r\n", "+CPIN=FFFFFFFF")
		h.expect("AT+RESET\r\n", "+RESET", "+READY")
		h.expect("AT+CPIN?\r\n", "+CPIN=No Password!")
	})
}

// Every error the module answers is one the RYLR998 guide documents (no
// +ERR=3); AT+SEND? answers a +SEND= line on a fresh module and after
// AT+FACTORY, which forgets the last message sent.
func TestGuideAnswers(t *testing.T) {
	dataModes(t, func(t *testing.T, o emulator.Options) {
		_, ms := network(t, 1, o)
		h := dial(t, ms[0])
		h.expect("AT+SEND?\r\n", "+SEND=0,0,")
		h.expect("AT+SEND=7,3,a,b\r\n", "+OK")
		h.expect("AT+SEND?\r\n", "+SEND=7,3,a,b")
		h.expect("AT+FACTORY\r\n", "+FACTORY")
		h.expect("AT+SEND?\r\n", "+SEND=0,0,")
		bad := []string{
			"AT+ADDRESS", "AT+NETWORKID", "AT+BAND", "AT+RESET=1", "AT+ADDRESS!", "AT+FOO?", "ATI", "XX",
			"AT+SEND", "AT+SEND=", "AT+SEND=1", "AT+SEND=x,1,a", "AT+SEND=1,241,a", "AT+SEND=1,5,abc",
			"AT+MODE=3", "AT+MODE=2,10,10", "AT+PARAMETER=9,7,1,30", "AT+IPR=7", "AT+CRFOP=99",
		}
		for _, c := range bad {
			h.write(c + "\r\n")
			l := h.next()
			if l.kind != rylr998.KindErr || !l.code.Documented() {
				t.Errorf("%s: %q, not an error the guide documents", c, l.text)
			}
		}
		h.expect("AT+ADDRESS\r\n", "+ERR=4")
	})
}
