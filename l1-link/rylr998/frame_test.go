package rylr998_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
)

// pattern is n bytes counting from start, with a CR LF pair every 16
// bytes: up to 240 bytes, nearly every byte value and many pairs.
func pattern(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
		if i%16 == 15 {
			b[i-1], b[i] = '\r', '\n'
		}
	}
	return b
}

// The LF-free encoding: a worked example, and the properties that matter
// on every payload up to the limit: no LF in the frame (so no CR LF),
// exactly one byte more, and the payload back.
func TestLFFree(t *testing.T) {
	got, err := rylr998.AppendLFFree(nil, []byte("HI\n\r\n"))
	// Runs "HI", "\r", "": length bytes 11+2, 11+1, 11+0.
	if want := "\x0dHI\x0c\r\x0b"; err != nil || string(got) != want {
		t.Fatalf("encoded %q, %v; want %q", got, err, want)
	}
	payloads := [][]byte{
		{}, {'\n'}, {'\r'}, {0}, {0xff}, []byte("\r\n"), []byte("\n\n"),
		bytes.Repeat([]byte{'\n'}, rylr998.MaxLFFree),     // every byte a LF: 240 runs
		bytes.Repeat([]byte{'x'}, rylr998.MaxLFFree),      // one long run
		bytes.Repeat([]byte("\r\n"), rylr998.MaxLFFree/2), // 119 pairs and a CR
		pattern(rylr998.MaxLFFree, 0), pattern(rylr998.MaxLFFree, 0x0b),
	}
	for _, p := range payloads {
		f, err := rylr998.AppendLFFree([]byte("keep"), p)
		if err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		if string(f[:4]) != "keep" {
			t.Fatal("AppendLFFree overwrote what it appends to")
		}
		f = f[4:]
		if len(f) != len(p)+1 || bytes.IndexByte(f, '\n') >= 0 || len(f) > rylr998.MTU {
			t.Fatalf("%q framed as %q (%d bytes)", p, f, len(f))
		}
		back, err := rylr998.DecodeLFFree(nil, f)
		if err != nil || !bytes.Equal(back, p) {
			t.Fatalf("%q came back as %q, %v", p, back, err)
		}
	}
	if _, err := rylr998.AppendLFFree(nil, make([]byte, rylr998.MaxLFFree+1)); !errors.Is(err, rylr998.ErrFrame) {
		t.Fatalf("%d bytes: %v", rylr998.MaxLFFree+1, err)
	}
}

// Only a frame the encoder could have made decodes: anything else is
// ErrFrame, never a different payload.
func TestLFFreeRefused(t *testing.T) {
	for _, f := range []string{
		"",             // nothing
		"\x0a",         // a LF where a length byte goes
		"\x00",         // a length byte under 11
		"\x0dH",        // a run of 2 with 1 byte left
		"\x0cH\n",      // a LF inside a run
		"HELLO",        // text from a sender that does not frame: 'H' says 61 bytes
		"\x0bx",        // a run of 0, then 'x' as a length byte (109 bytes)
		"\x0c\x0a\x0b", // a run holding a LF
	} {
		if p, err := rylr998.DecodeLFFree(nil, []byte(f)); !errors.Is(err, rylr998.ErrFrame) {
			t.Errorf("%q decoded to %q, %v", f, p, err)
		}
	}
}

// The three framings: their limits, what they cost and what they refuse.
func TestFramings(t *testing.T) {
	cases := []struct {
		f        rylr998.Framing
		name     string
		max, add int
	}{
		{rylr998.FramePacket, "packet", 240, 0},
		{rylr998.FrameBytes, "bytes", 239, 1},
		{rylr998.FrameNone, "none", 240, 0},
	}
	for _, c := range cases {
		if c.f.String() != c.name || c.f.MaxDatagram() != c.max {
			t.Fatalf("%v: max %d", c.f, c.f.MaxDatagram())
		}
		if p, err := rylr998.ParseFraming(c.name); err != nil || p != c.f {
			t.Fatalf("parse %q: %v %v", c.name, p, err)
		}
		d := pattern(c.max, 0) // starts with 0x00, as a packet does, and holds CR LF
		fr, err := c.f.AppendFrame(nil, d)
		if err != nil || len(fr) != c.max+c.add || len(fr) != c.f.FrameLen(len(d)) || len(fr) > rylr998.MTU {
			t.Fatalf("%v: %d bytes framed as %d, %v", c.f, len(d), len(fr), err)
		}
		if c.f != rylr998.FrameNone && bytes.Contains(fr, []byte("\r\n")) {
			t.Fatalf("%v: CR LF in the frame", c.f)
		}
		back, err := c.f.DecodeFrame(nil, fr)
		if err != nil || !bytes.Equal(back, d) {
			t.Fatalf("%v: came back %x, %v", c.f, back, err)
		}
		if _, err := c.f.AppendFrame(nil, make([]byte, c.max+1)); !errors.Is(err, rylr998.ErrFrame) {
			t.Fatalf("%v: %d bytes: %v", c.f, c.max+1, err)
		}
	}
	// A packet starts with its version, 0: anything else is not a packet.
	for _, d := range [][]byte{nil, {1}, []byte("hello")} {
		if _, err := rylr998.FramePacket.AppendFrame(nil, d); !errors.Is(err, rylr998.ErrFrame) {
			t.Fatalf("packet %q: %v", d, err)
		}
	}
	// The smallest packet, its version alone, is one length byte.
	if fr, err := rylr998.FramePacket.AppendFrame(nil, []byte{0}); err != nil || string(fr) != "\x0b" {
		t.Fatalf("packet 00: %q %v", fr, err)
	}
	if _, err := rylr998.ParseFraming("cobs"); !errors.Is(err, rylr998.ErrConfig) {
		t.Fatalf("unknown framing: %v", err)
	}
}

// FuzzLFFree: any data field either decodes to the one payload whose
// encoding it is, or is refused; any payload round-trips with one byte
// more and no LF; a packet round-trips at its own length.
func FuzzLFFree(f *testing.F) {
	for _, s := range []string{
		"", "\n", "\r\n", "\x0dHI\x0c\r\x0b", "HELLO", "\x0b", "\x0a\x0a", "\x00\x00\x14\x08",
		string(pattern(240, 0)), string(bytes.Repeat([]byte{'\n'}, 239)),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if p, err := rylr998.DecodeLFFree(nil, in); err == nil {
			again, err := rylr998.AppendLFFree(nil, p)
			if len(in) <= rylr998.MTU && (err != nil || !bytes.Equal(again, in)) {
				t.Fatalf("%q decoded to %q, which encodes to %q, %v", in, p, again, err)
			}
			if len(p) != len(in)-1 {
				t.Fatalf("%d bytes decoded to %d", len(in), len(p))
			}
		} else if !errors.Is(err, rylr998.ErrFrame) {
			t.Fatalf("untyped error %v", err)
		}
		p := in[:min(len(in), rylr998.MaxLFFree)]
		fr, err := rylr998.AppendLFFree(nil, p)
		if err != nil || len(fr) != len(p)+1 || bytes.IndexByte(fr, '\n') >= 0 {
			t.Fatalf("%q framed as %q, %v", p, fr, err)
		}
		if back, err := rylr998.DecodeLFFree(nil, fr); err != nil || !bytes.Equal(back, p) {
			t.Fatalf("%q back as %q, %v", p, back, err)
		}
		pkt := append([]byte{0}, p...)
		fr, err = rylr998.FramePacket.AppendFrame(nil, pkt)
		if err != nil || len(fr) != len(pkt) {
			t.Fatalf("packet of %d framed in %d, %v", len(pkt), len(fr), err)
		}
		if back, err := rylr998.FramePacket.DecodeFrame(nil, fr); err != nil || !bytes.Equal(back, pkt) {
			t.Fatalf("packet %x back as %x, %v", pkt, back, err)
		}
	})
}

// The vectors docs/protocol.md points board implementers to: each
// datagram frames to its frame, and back.
func TestFramingVectors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "framing_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct{ Name, Framing, Datagram, Frame string }
	if err := json.Unmarshal(b, &vs); err != nil || len(vs) < 10 {
		t.Fatalf("%d vectors, %v", len(vs), err)
	}
	for _, v := range vs {
		f, err := rylr998.ParseFraming(v.Framing)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := hex.DecodeString(v.Datagram)
		want, _ := hex.DecodeString(v.Frame)
		got, err := f.AppendFrame(nil, d)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: framed as %x, %v; want %x", v.Name, got, err, want)
		}
		if back, err := f.DecodeFrame(nil, want); err != nil || !bytes.Equal(back, d) {
			t.Fatalf("%s: back as %x, %v", v.Name, back, err)
		}
	}
}

// Framing into a reused buffer allocates nothing.
func TestLFFreeNoAlloc(t *testing.T) {
	p := append([]byte{0}, pattern(239, 1)...)
	fr := make([]byte, 0, rylr998.MTU)
	back := make([]byte, 0, rylr998.MTU)
	if a := testing.AllocsPerRun(100, func() {
		fr, _ = rylr998.FramePacket.AppendFrame(fr[:0], p)
		back, _ = rylr998.FramePacket.DecodeFrame(back[:0], fr)
	}); a != 0 || !bytes.Equal(back, p) {
		t.Fatalf("%v allocations", a)
	}
}

func BenchmarkLFFree(b *testing.B) {
	p := append([]byte{0}, pattern(239, 1)...)
	fr := make([]byte, 0, rylr998.MTU)
	back := make([]byte, 0, rylr998.MTU)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		fr, _ = rylr998.FramePacket.AppendFrame(fr[:0], p)
		back, _ = rylr998.FramePacket.DecodeFrame(back[:0], fr)
	}
}
