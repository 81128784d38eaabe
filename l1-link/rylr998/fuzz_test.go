package rylr998_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
)

// parserSeeds are real transcripts and the awkward cases.
var parserSeeds = []string{
	"+READY\r\n+OK\r\n+ADDRESS=120\r\n+RCV=50,5,HELLO,-99,40\r\n+ERR=17\r\n",
	"+VER=RYLR998_V1.2.3\r\n+CPIN=No Password!\r\n+RESET\r\n+READY\r\n+IPR=9600\r\n",
	"+RCV=1,12,a,b\r\n+OK\r\n,x,-40,9\r\n+OK\r\n",
	"+RCV=65535,3,\r\n\r,-164,-20\r\n",
	"+RCV=1,10,abc+READY\r\n",
	"+RCV=5,200,short",
	"\x00\xff\xfe+READY\r\n",
	"+PARAMETER=9,7,1,12\r\n+BAND=868500000\r\n+UID=104737333437353600170029\r\n",
	"+SEND=50,5,HELLO\r\n+FACTORY\r\n",
	"+ERR=1\r\n+ERR=2\r\n+ERR=4\r\n+ERR=5\r\n+ERR=10\r\n+ERR=12\r\n+ERR=13\r\n+ERR=14\r\n+ERR=15\r\n+ERR=18\r\n+ERR=19\r\n+ERR=20\r\n",
	"+RCV=50, 5, HELLO, -99, 40\r\n+RCV=1, 3,  ab, -1, 2\r\n+RCV=2,1, ,-9,1\r\n",
	"+SEND=0,0,\r\n+SEND=3,4,\x0b\r\x0c\x00\r\n+SEND=hello\r\n",
}

// FuzzParser: any byte stream, split anywhere, decodes without panic, in
// bounded memory, to the same lines however it is split; and every line
// decoded encodes back to a line that decodes the same.
func FuzzParser(f *testing.F) {
	for i, s := range parserSeeds {
		f.Add([]byte(s), uint8(i+1))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		whole, st := parseChunks(in, nil, false)
		split, st2 := parseChunks(in, []int{int(chunk%32) + 1, 1}, false)
		if !reflect.DeepEqual(whole, split) || st != st2 {
			t.Fatalf("split changes the result:\n%s\n%s\n%+v %+v", summary(whole), summary(split), st, st2)
		}
		var p rylr998.Parser
		p.Feed(in, func(*rylr998.Response) {})
		if p.Buffered() > rylr998.MaxLine {
			t.Fatalf("buffered %d", p.Buffered())
		}
		p.Idle(func(*rylr998.Response) {})
		for _, g := range whole {
			var b []byte
			switch g.Kind {
			case rylr998.KindRCV:
				if len(g.Data) > rylr998.MTU {
					t.Fatalf("datagram of %d bytes", len(g.Data))
				}
				b = rylr998.AppendRCV(nil, g.Src, []byte(g.Data), g.RSSI, g.SNR)
			case rylr998.KindErr:
				b = rylr998.AppendErr(nil, g.Code)
			case rylr998.KindValue:
				b = rylr998.AppendValue(nil, g.Name, g.Value)
			default:
				b = append([]byte(g.Line), '\r', '\n')
			}
			again, st := parseChunks(b, nil, false)
			g.Line = ""
			if len(again) == 1 {
				again[0].Line = ""
			}
			if len(again) != 1 || again[0] != g || st.Garbage != 0 {
				t.Fatalf("%+v re-encoded as %q decodes to %s", g, b, summary(again))
			}
		}
	})
}

var commandSeeds = []string{
	"AT\r\nAT+ADDRESS=5\r\nAT+ADDRESS?\r\nAT+RESET\r\n",
	"AT+SEND=7,6,a\r\nb,c\r\nAT+SEND=0,3,xyz\r\n",
	"AT+PARAMETER=9,7,1,12\r\nAT+BAND=868500000,M\r\nAT+CPIN=EEDCAA90\r\nAT+MODE=2,3000,3000\r\n",
	"XX\r\nAT\nAT+SEND=1,2,abc\r\nAT+SEND=1,241,x\r\nAT+ADDRESS\r\n",
	"AT\rAT\r\nAT+VER?\r",
	"AT+SEND=1,10,abc",
	"\x00\xffAT+UID?\r\n",
	"AT+SEND=2,10,HELLO\r\nAT\r\nAT+SEND=2,7,HE\r\nLLO\r\nAT+SEND=2,6,HELLO\r\n",
	"AT+SEND=2,7,HELLO\r\n",
}

// FuzzCommandParser: any byte stream, split anywhere, decodes without
// panic, in bounded memory, to the same commands however it is split,
// whichever way AT+SEND's data is read (chunk's top bit picks it); data
// read to CR LF never holds that pair.
func FuzzCommandParser(f *testing.F) {
	for i, s := range commandSeeds {
		f.Add([]byte(s), uint8(i+1))
		f.Add([]byte(s), uint8(i+1)|0x80)
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		crlf := chunk&0x80 != 0
		strip := func(cs []cmd) []cmd {
			for i := range cs {
				cs[i].End = 0
				if cs[i].Kind == rylr998.CmdSend && len(cs[i].Data) > rylr998.MTU {
					t.Fatalf("send of %d bytes", len(cs[i].Data))
				}
				if crlf && cs[i].Kind == rylr998.CmdSend && strings.Contains(cs[i].Data, "\r\n") {
					t.Fatalf("CR LF in data read to CR LF: %q", cs[i].Data)
				}
			}
			return cs
		}
		whole := strip(parseCommandsMode(in, nil, false, crlf))
		split := strip(parseCommandsMode(in, []int{int(chunk%32) + 1, 1}, false, crlf))
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("split changes the result:\n%+v\n%+v", whole, split)
		}
		p := rylr998.CommandParser{DataEndsAtCRLF: crlf}
		p.Feed(in, func(*rylr998.Command) {})
		if p.Buffered() > rylr998.MaxLine {
			t.Fatalf("buffered %d", p.Buffered())
		}
		p.Idle(func(*rylr998.Command) {})
	})
}
