package rylr998_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
)

// got is a parsed line, copied out of the parser.
type got struct {
	Kind      rylr998.Kind
	Code      rylr998.ModuleError
	Name      string
	Value     string
	Src       uint16
	Data      string
	RSSI, SNR int
	Line      string
}

func (g got) String() string {
	switch g.Kind {
	case rylr998.KindRCV:
		return fmt.Sprintf("RCV(%d,%q,%d,%d)", g.Src, g.Data, g.RSSI, g.SNR)
	case rylr998.KindErr:
		return fmt.Sprintf("ERR(%d)", int(g.Code))
	case rylr998.KindValue:
		return fmt.Sprintf("%s=%s", g.Name, g.Value)
	}
	return g.Kind.String()
}

func collect(out *[]got) func(*rylr998.Response) {
	return func(r *rylr998.Response) {
		*out = append(*out, got{r.Kind, r.Code, string(r.Name), string(r.Value), r.Src, string(r.Data), r.RSSI, r.SNR, string(r.Line)})
	}
}

// parseChunks feeds in in pieces of the given sizes (cycled), then idles if asked.
func parseChunks(in []byte, sizes []int, idle bool) ([]got, rylr998.ParserStats) {
	var p rylr998.Parser
	var out []got
	emit := collect(&out)
	for i := 0; len(in) > 0; i++ {
		n := len(in)
		if len(sizes) > 0 {
			n = min(max(sizes[i%len(sizes)], 1), len(in))
		}
		p.Feed(in[:n], emit)
		in = in[n:]
	}
	if idle {
		p.Idle(emit)
	}
	return out, p.Stats()
}

func summary(gs []got) string {
	var b strings.Builder
	for i, g := range gs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(g.String())
	}
	return b.String()
}

// A session as the module prints it, whole or a byte at a time.
func TestParserTranscript(t *testing.T) {
	in := "+READY\r\n+OK\r\n+ADDRESS=120\r\n+RCV=50,5,HELLO,-99,40\r\n+ERR=17\r\n" +
		"+VER=RYLR998_V1.2.3\r\n+CPIN=No Password!\r\n+RESET\r\n+READY\r\n+FACTORY\r\n+IPR=9600\r\n" +
		"+PARAMETER=9,7,1,12\r\n+UID=104737333437353600170029\r\n+RCV=7, 3,a,b, -120, -7\r\n"
	want := "READY OK ADDRESS=120 RCV(50,\"HELLO\",-99,40) ERR(17) VER=RYLR998_V1.2.3 CPIN=No Password! " +
		"RESET READY FACTORY IPR=9600 PARAMETER=9,7,1,12 UID=104737333437353600170029 RCV(7,\"a,b\",-120,-7)"
	for _, sizes := range [][]int{nil, {1}, {3, 7}} {
		gs, st := parseChunks([]byte(in), sizes, false)
		if s := summary(gs); s != want {
			t.Fatalf("chunks %v:\n got %s\nwant %s", sizes, s, want)
		}
		if st.Garbage != 0 || st.Responses != 14 {
			t.Fatalf("stats %+v", st)
		}
	}
}

// +RCV is read by its declared length: its data may hold commas, CR, LF and
// text that looks like a response; RSSI and SNR follow it.
func TestParserRCVData(t *testing.T) {
	data := "a,b\r\n+OK\r\n,-5,3\r\n\x00\xff"
	in := rylr998.AppendRCV(nil, 65535, []byte(data), -101, -12)
	in = append(in, "+OK\r\n"...)
	gs, st := parseChunks(in, []int{2}, false)
	if len(gs) != 2 || gs[0].Kind != rylr998.KindRCV || gs[1].Kind != rylr998.KindOK {
		t.Fatalf("got %s", summary(gs))
	}
	g := gs[0]
	if g.Data != data || g.Src != 65535 || g.RSSI != -101 || g.SNR != -12 || st.Garbage != 0 {
		t.Fatalf("got %+v, stats %+v", g, st)
	}
	// An empty datagram.
	gs, _ = parseChunks([]byte("+RCV=3,0,,-40,9\r\n"), nil, false)
	if len(gs) != 1 || gs[0].Data != "" || gs[0].Src != 3 {
		t.Fatalf("empty: %s", summary(gs))
	}
}

// Garbage is skipped and counted, and the parser picks up the next line.
func TestParserGarbage(t *testing.T) {
	cases := []struct {
		name, in, want string
		garbage        uint64
	}{
		{"noise before a line", "\x00\xff+READY\r\n", "READY", 1},
		{"noise line", "~~\x01noise\r\n+OK\r\n", "OK", 1},
		{"half a line", "+ADDR+OK\r\n", "OK", 1},
		{"unknown word", "+HELLO\r\n+OK\r\n", "OK", 1},
		{"binary value", "+VER=\x01\x02\r\n+OK\r\n", "OK", 1},
		{"bad error number", "+ERR=x\r\n+ERR=1234\r\n+ERR=4\r\n", "ERR(4)", 1},
		{"over-long line", "+" + strings.Repeat("A", 700) + "\r\n+OK\r\n", "OK", 1},
		{"over-long value", "+VER=" + strings.Repeat("v", 400) + "\r\n+OK\r\n", "OK", 1},
		{"rcv length over 240", "+RCV=1,241,x,1,1\r\n+OK\r\n", "OK", 1},
		{"rcv address over 65535", "+RCV=65536,1,x,1,1\r\n+OK\r\n", "OK", 1},
		{"rcv data longer than declared", "+RCV=1,2,abc,-1,1\r\n+OK\r\n", "OK", 1},
		// The module reset in the middle of a +RCV: the line it printed
		// after is found inside the would-be data.
		{"truncated rcv", "+RCV=1,10,abc+READY\r\n", "READY", 1},
		{"two runs", "xx\r\n+OK\r\nyy\r\n+OK\r\n", "OK OK", 2},
	}
	for _, c := range cases {
		for _, sizes := range [][]int{nil, {1}} {
			gs, st := parseChunks([]byte(c.in), sizes, false)
			if s := summary(gs); s != c.want || st.Garbage != c.garbage {
				t.Errorf("%s (chunks %v): got %q garbage %d, want %q garbage %d", c.name, sizes, s, st.Garbage, c.want, c.garbage)
			}
		}
	}
}

// A line cut off for good (the line went quiet) is dropped at Idle, and
// complete lines held behind it come out.
func TestParserIdle(t *testing.T) {
	in := "+RCV=1,40,abc\r\n+READY\r\n"
	gs, _ := parseChunks([]byte(in), nil, false)
	if len(gs) != 0 {
		t.Fatalf("before idle: %s", summary(gs))
	}
	gs, st := parseChunks([]byte(in), nil, true)
	if summary(gs) != "READY" || st.Garbage != 1 {
		t.Fatalf("after idle: %s %+v", summary(gs), st)
	}
	gs, _ = parseChunks([]byte("+OK\r\n+ADDRE"), nil, true)
	if summary(gs) != "OK" {
		t.Fatalf("half line at idle: %s", summary(gs))
	}
}

// Memory stays bounded whatever arrives, and nothing panics.
func TestParserBounded(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var p rylr998.Parser
	buf := make([]byte, 4096)
	n := 0
	for range 500 {
		for i := range buf {
			// Mostly the characters lines are made of, so that long
			// near-valid runs occur.
			buf[i] = "+RCV=0123456789,-\r\nOKA"[r.IntN(22)]
			if r.IntN(50) == 0 {
				buf[i] = byte(r.IntN(256))
			}
		}
		p.Feed(buf, func(*rylr998.Response) { n++ })
		if p.Buffered() > rylr998.MaxLine {
			t.Fatalf("buffered %d", p.Buffered())
		}
	}
	if st := p.Stats(); st.Garbage == 0 {
		t.Fatalf("random input counted no garbage: %+v", st)
	}
}

// Decoding allocates nothing.
func TestParserNoAlloc(t *testing.T) {
	line := rylr998.AppendRCV(nil, 9, bytes.Repeat([]byte{'x'}, 240), -80, 7)
	var p rylr998.Parser
	n := 0
	emit := func(*rylr998.Response) { n++ }
	if a := testing.AllocsPerRun(100, func() { p.Feed(line, emit) }); a != 0 {
		t.Fatalf("%v allocations per line", a)
	}
	buf := make([]byte, 0, 300)
	if a := testing.AllocsPerRun(100, func() { buf = rylr998.AppendSend(buf[:0], 3, line[:240]) }); a != 0 {
		t.Fatalf("AppendSend: %v allocations", a)
	}
}

// Every +ERR number the RYLR998 guide documents (1, 2, 4, 5, 10, 12–15,
// 17–20) maps to a typed error usable with errors.Is, whose message is the
// guide's meaning; the RYLR896's 3 and 11 are named but not listed.
func TestModuleErrors(t *testing.T) {
	meaning := map[int]string{
		1: "0x0D 0x0A", 2: `"AT"`, 4: "unknown command", 5: "does not match the actual length",
		10: "TX is over times", 12: "CRC error", 13: "exceeds 240 bytes",
		14: "flash", 15: "unknown failure", 17: "last TX was not completed", 18: "preamble",
		19: "header error", 20: "smart receiving power saving mode",
	}
	for _, e := range []rylr998.ModuleError{rylr998.ErrNoEquals, rylr998.ErrRxOverTimes} {
		if e.Documented() || !strings.Contains(e.Error(), "RYLR896") {
			t.Errorf("+ERR=%d: documented %v, %q", int(e), e.Documented(), e.Error())
		}
	}
	if len(rylr998.ModuleErrors) != len(meaning) {
		t.Fatalf("%d errors listed, %d documented", len(rylr998.ModuleErrors), len(meaning))
	}
	for _, e := range rylr998.ModuleErrors {
		gs, _ := parseChunks(rylr998.AppendErr(nil, e), nil, false)
		if len(gs) != 1 || gs[0].Kind != rylr998.KindErr || gs[0].Code != e {
			t.Fatalf("%d: parsed %s", int(e), summary(gs))
		}
		var err error = &rylr998.CommandError{Cmd: "AT+SEND=1,1", Err: gs[0].Code}
		if !errors.Is(err, e) {
			t.Errorf("errors.Is(+ERR=%d, %v) false", int(e), e)
		}
		for _, other := range rylr998.ModuleErrors {
			if other != e && errors.Is(err, other) {
				t.Errorf("+ERR=%d matches %d", int(e), int(other))
			}
		}
		want := meaning[int(e)]
		if !e.Documented() || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("+ERR=%d", int(e))) {
			t.Errorf("+ERR=%d: message %q, want it to say %q", int(e), err.Error(), want)
		}
	}
	if u := rylr998.ModuleError(99); u.Documented() || !strings.Contains(u.Error(), "undocumented") {
		t.Errorf("undocumented number: %q", u.Error())
	}
	if !errors.Is(rylr998.ErrTxNotCompleted, rylr998.ModuleError(17)) {
		t.Fatal("value equality")
	}
}

func TestEncoders(t *testing.T) {
	if got := string(rylr998.AppendSend(nil, 50, []byte("HEL,\r\nLO"))); got != "AT+SEND=50,8,HEL,\r\nLO\r\n" {
		t.Fatalf("send %q", got)
	}
	if got := string(rylr998.AppendCommand(nil, "AT+ADDRESS?")); got != "AT+ADDRESS?\r\n" {
		t.Fatalf("command %q", got)
	}
	for _, b := range [][]byte{rylr998.AppendOK(nil), rylr998.AppendErr(nil, 5), rylr998.AppendValue(nil, "BAND", "868500000"), rylr998.AppendRCV(nil, 1, []byte("\r\n,"), -1, 0)} {
		gs, st := parseChunks(b, nil, false)
		if len(gs) != 1 || st.Garbage != 0 || gs[0].Line+"\r\n" != string(b) {
			t.Fatalf("%q: %s", b, summary(gs))
		}
	}
}

// cmds is a parsed command, copied out.
type cmd struct {
	Kind       rylr998.CmdKind
	Name, Args string
	Addr       uint16
	Data       string
	Err        rylr998.ModuleError
	End        int
}

func parseCommands(in []byte, sizes []int, idle bool) []cmd {
	return parseCommandsMode(in, sizes, idle, false)
}

// parseCommandsMode is parseCommands with AT+SEND's data read to CR LF
// when crlf.
func parseCommandsMode(in []byte, sizes []int, idle, crlf bool) []cmd {
	p := rylr998.CommandParser{DataEndsAtCRLF: crlf}
	var out []cmd
	emit := func(c *rylr998.Command) {
		out = append(out, cmd{c.Kind, string(c.Name), string(c.Args), c.Addr, string(c.Data), c.Err, c.End})
	}
	for i := 0; len(in) > 0; i++ {
		n := len(in)
		if len(sizes) > 0 {
			n = min(max(sizes[i%len(sizes)], 1), len(in))
		}
		p.Feed(in[:n], emit)
		in = in[n:]
	}
	if idle {
		p.Idle(emit)
	}
	return out
}

func TestCommandParser(t *testing.T) {
	in := "AT\r\nAT+ADDRESS=5\r\nAT+ADDRESS?\r\nAT+RESET\r\nAT+SEND=7,6,a\r\nb,c\r\n" +
		"XX\r\nAT\nAT+SEND=1,2,abc\r\nAT+SEND=1,241,x\r\nAT+ADDRESS\r\nAT+\r\nATZ\r\n\r\nAT\rAT\r\n"
	want := []cmd{
		{Kind: rylr998.CmdTest},
		{Kind: rylr998.CmdSet, Name: "ADDRESS", Args: "5"},
		{Kind: rylr998.CmdQuery, Name: "ADDRESS"},
		{Kind: rylr998.CmdExec, Name: "RESET"},
		{Kind: rylr998.CmdSend, Name: "SEND", Addr: 7, Data: "a\r\nb,c"},
		{Kind: rylr998.CmdBad, Err: rylr998.ErrNotAT},
		{Kind: rylr998.CmdBad, Err: rylr998.ErrNoCRLF},
		{Kind: rylr998.CmdBad, Err: rylr998.ErrLengthMismatch},
		{Kind: rylr998.CmdBad, Err: rylr998.ErrTxTooLong},
		{Kind: rylr998.CmdExec, Name: "ADDRESS"},
		{Kind: rylr998.CmdBad, Err: rylr998.ErrUnknownCommand},
		{Kind: rylr998.CmdBad, Err: rylr998.ErrUnknownCommand},
		{Kind: rylr998.CmdTest}, // a lone CR ends a command too (a terminal's Enter)
		{Kind: rylr998.CmdTest},
	}
	for _, sizes := range [][]int{nil, {1}, {5, 2}} {
		gotc := parseCommands([]byte(in), sizes, false)
		if len(gotc) != len(want) {
			t.Fatalf("chunks %v: %d commands, want %d: %+v", sizes, len(gotc), len(want), gotc)
		}
		for i := range want {
			g := gotc[i]
			g.End = 0
			if g != want[i] {
				t.Errorf("chunks %v: command %d: %+v, want %+v", sizes, i, g, want[i])
			}
		}
	}
	// End: where in the Feed's bytes the command finished, its CR LF
	// included; a LF still to come is not counted.
	gotc := parseCommands([]byte("AT\r\nAT+SEND=1,2,ab\r\n"), nil, false)
	if len(gotc) != 2 || gotc[0].End != 4 || gotc[1].End != 20 {
		t.Fatalf("ends %+v", gotc)
	}
	gotc = parseCommands([]byte("AT\r\nAT\r"), nil, false)
	if len(gotc) != 2 || gotc[0].End != 4 || gotc[1].End != 7 {
		t.Fatalf("ends %+v", gotc)
	}
	// A command cut off: the module answers when the line goes quiet.
	gotc = parseCommands([]byte("AT+SEND=1,10,abc"), nil, true)
	if len(gotc) != 1 || gotc[0].Err != rylr998.ErrLengthMismatch {
		t.Fatalf("cut-off send %+v", gotc)
	}
	gotc = parseCommands([]byte("AT+VER"), nil, true)
	if len(gotc) != 1 || gotc[0].Err != rylr998.ErrNoCRLF {
		t.Fatalf("cut-off line %+v", gotc)
	}
	// An over-long line is answered once.
	gotc = parseCommands([]byte("AT+"+strings.Repeat("A", 2000)+"\r\nAT\r\n"), []int{100}, false)
	if len(gotc) != 2 || gotc[0].Err != rylr998.ErrNoCRLF || gotc[1].Kind != rylr998.CmdTest {
		t.Fatalf("over-long %+v", gotc)
	}
}

// The guide prints its example with a space after each comma,
// "+RCV=50, 5, HELLO, -99, 40": the parser takes it. The declared length
// governs: data that starts with a space, or holds ", ", is read as it is.
func TestParserGuideSpacing(t *testing.T) {
	cases := []struct{ in, want string }{
		{"+RCV=50, 5, HELLO, -99, 40\r\n", `RCV(50,"HELLO",-99,40)`},
		{"+RCV=50,5,HELLO,-99,40\r\n", `RCV(50,"HELLO",-99,40)`},
		// Data " ab" without the guide's space, and with it.
		{"+RCV=1,3, ab,-1,2\r\n", `RCV(1," ab",-1,2)`},
		{"+RCV=1, 3,  ab, -1, 2\r\n", `RCV(1," ab",-1,2)`},
		// Data holding ", " and digits, spaced and not.
		{"+RCV=7,8,a, -5, 6,-70,3\r\n", `RCV(7,"a, -5, 6",-70,3)`},
		{"+RCV=7, 8, a, -5, 6, -70, 3\r\n", `RCV(7,"a, -5, 6",-70,3)`},
		// Data that is a space.
		{"+RCV=2,1, ,-9,1\r\n", `RCV(2," ",-9,1)`},
		{"+RCV=2, 1,  , -9, 1\r\n", `RCV(2," ",-9,1)`},
		// +SEND= answering AT+SEND?, read by its length too.
		{"+SEND=50, 5, HELLO\r\n", "SEND=50, 5, HELLO"},
		{"+SEND=0,0,\r\n", "SEND=0,0,"},
	}
	for _, c := range cases {
		for _, sizes := range [][]int{nil, {1}, {4, 3}} {
			gs, st := parseChunks([]byte(c.in), sizes, false)
			if s := summary(gs); s != c.want || st.Garbage != 0 {
				t.Errorf("%q (chunks %v): %s, garbage %d; want %s", c.in, sizes, s, st.Garbage, c.want)
			}
		}
	}
	// Two spaces are not the guide's spacing: the data does not line up.
	gs, st := parseChunks([]byte("+RCV=50,5,  HELLO,-99,40\r\n+OK\r\n"), nil, false)
	if summary(gs) != "OK" || st.Garbage != 1 {
		t.Fatalf("two spaces: %s %+v", summary(gs), st)
	}
}

// +SEND=<addr>,<len>,<data> is read by its length, so binary data (a
// framed datagram) answers AT+SEND? as a value line; a +SEND= line that
// is not of that form is still a plain value.
func TestParserSendLine(t *testing.T) {
	data := "\x0dHI\r\x0b,\x00\xff"
	in := "+SEND=3," + fmt.Sprint(len(data)) + "," + data + "\r\n+SEND=hello\r\n+OK\r\n"
	for _, sizes := range [][]int{nil, {1}} {
		gs, st := parseChunks([]byte(in), sizes, false)
		if len(gs) != 3 || st.Garbage != 0 || gs[0].Name != "SEND" || gs[0].Value != fmt.Sprintf("3,%d,%s", len(data), data) ||
			gs[1].Value != "hello" || gs[2].Kind != rylr998.KindOK {
			t.Fatalf("chunks %v: %q %+v", sizes, gs, st)
		}
	}
}

// AT+SEND with less data than declared is answered +ERR=5 and the next
// command is read as a command, in both ways a module may read the data;
// data holding CR LF is taken by length, and cut by a module that ends
// the data at CR LF.
func TestCommandParserSendData(t *testing.T) {
	cases := []struct {
		in             string
		byLen, toCRLF  string // the commands decoded, with Idle at the end
		shortSendAfter bool   // ShortSend before Idle (by length)
	}{
		// Shorter than declared, the next command right behind.
		{"AT+SEND=2,10,HELLO\r\nAT\r\n", "ERR5 TEST", "ERR5 TEST", false},
		{"AT+SEND=2,6,HELLO\r\nAT\r\n", "ERR5 TEST", "ERR5 TEST", false},
		// Shorter than declared, then nothing: by length, the line going
		// quiet decides (ShortSend says so at once).
		{"AT+SEND=2,10,HELLO\r\n", "ERR5", "ERR5", true},
		{"AT+SEND=2,7,HELLO\r\n", "ERR5", "ERR5", true},
		// CR LF inside data of the declared length.
		{"AT+SEND=2,7,HE\r\nLLO\r\nAT\r\n", `SEND(2,"HE\r\nLLO") TEST`, "ERR5 ERR2 TEST", false},
		// Lone CR, lone LF, 0x00, 0xFF: data either way.
		{"AT+SEND=2,6,a\rb\nc\x00\r\n", `SEND(2,"a\rb\nc\x00")`, `SEND(2,"a\rb\nc\x00")`, false},
		{"AT+SEND=2,2,\xff\xfe\r\n", `SEND(2,"\xff\xfe")`, `SEND(2,"\xff\xfe")`, false},
		// Longer than declared.
		{"AT+SEND=2,3,HELLO\r\nAT\r\n", "ERR5 TEST", "ERR5 TEST", false},
		{"AT+SEND=2,3,a\r\nbcd\r\n", "ERR5 ERR2", `ERR5 ERR2`, false},
		// Empty data.
		{"AT+SEND=2,0,\r\n", `SEND(2,"")`, `SEND(2,"")`, false},
		// No CR LF at all.
		{"AT+SEND=2,3,abc", "ERR5", "ERR1", false},
	}
	show := func(cs []cmd) string {
		var b strings.Builder
		for i, c := range cs {
			if i > 0 {
				b.WriteString(" ")
			}
			switch c.Kind {
			case rylr998.CmdBad:
				fmt.Fprintf(&b, "ERR%d", int(c.Err))
			case rylr998.CmdSend:
				fmt.Fprintf(&b, "SEND(%d,%q)", c.Addr, c.Data)
			case rylr998.CmdTest:
				b.WriteString("TEST")
			default:
				fmt.Fprintf(&b, "%+v", c)
			}
		}
		return b.String()
	}
	for _, c := range cases {
		for _, crlf := range []bool{false, true} {
			want := c.byLen
			if crlf {
				want = c.toCRLF
			}
			for _, sizes := range [][]int{nil, {1}, {3, 5}} {
				p := rylr998.CommandParser{DataEndsAtCRLF: crlf}
				var out []cmd
				emit := func(c *rylr998.Command) {
					out = append(out, cmd{c.Kind, string(c.Name), string(c.Args), c.Addr, string(c.Data), c.Err, c.End})
				}
				in := []byte(c.in)
				for i := 0; len(in) > 0; i++ {
					n := len(in)
					if len(sizes) > 0 {
						n = min(sizes[i%len(sizes)], len(in))
					}
					p.Feed(in[:n], emit)
					in = in[n:]
				}
				if got := p.ShortSend(); got != (c.shortSendAfter && !crlf) {
					t.Errorf("%q crlf=%v chunks %v: ShortSend %v", c.in, crlf, sizes, got)
				}
				p.Idle(emit)
				if got := show(out); got != want {
					t.Errorf("%q crlf=%v chunks %v: %s, want %s", c.in, crlf, sizes, got, want)
				}
			}
		}
	}
}
