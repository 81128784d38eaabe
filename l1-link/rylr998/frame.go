package rylr998

import (
	"errors"
	"fmt"
)

// The LF-free framing [ours]. The module's guide calls AT+SEND's data
// "ASCII" and says nothing of binary data; a module that reads its commands
// line by line ends the data at the first CR LF, cutting any datagram that
// holds that pair (about one 240-byte packet in 270). So the data field
// never carries a LF (0x0A): the datagram is split at every LF into runs,
// and each run goes as one length byte, 11 + the run's length (so never
// 0x0A), followed by the run. The LFs themselves are not sent; the
// receiver puts one back between consecutive runs. A payload of n bytes
// (n ≤ MaxLFFree) becomes exactly n+1 bytes, whatever it holds. Without a
// LF in it, a +RCV line also ends at its own LF, so a line reader (a
// board's uart.readline()) reads it whole. CR, 0x00 and 0xFF still cross
// as they are; Probe checks that a module takes them.

// MaxLFFree is the longest payload the LF-free encoding takes: its 240-byte
// result is what one AT+SEND carries.
const MaxLFFree = MTU - 1

// lfBase is added to a run's length to make its length byte: 11, the
// smallest base that keeps every length byte above 0x0A.
const lfBase = 0x0B

// ErrFrame is a +RCV whose data is not a frame of the link's framing (or a
// datagram the framing cannot carry); errors.Is matches it through the
// wrapping that says why.
var ErrFrame = errors.New("rylr998: not a frame of the link's framing")

// AppendLFFree appends the LF-free encoding of p (at most MaxLFFree bytes)
// to b: for each run of p between LFs, the byte 11+len(run), then the run.
func AppendLFFree(b, p []byte) ([]byte, error) {
	if len(p) > MaxLFFree {
		return b, fmt.Errorf("%w: %d bytes to frame, at most %d", ErrFrame, len(p), MaxLFFree)
	}
	start := 0
	for i, c := range p {
		if c == '\n' {
			b = append(b, byte(lfBase+i-start))
			b = append(b, p[start:i]...)
			start = i + 1
		}
	}
	b = append(b, byte(lfBase+len(p)-start))
	return append(b, p[start:]...), nil
}

// DecodeLFFree appends the payload a LF-free frame f carries to b. A frame
// holding a LF, a length byte under 11, or a run past its end is refused
// (ErrFrame), so every frame accepted is the one encoding of its payload.
func DecodeLFFree(b, f []byte) ([]byte, error) {
	if len(f) == 0 {
		return b, fmt.Errorf("%w: empty", ErrFrame)
	}
	for i := 0; i < len(f); {
		if i > 0 {
			b = append(b, '\n')
		}
		c := int(f[i])
		if c < lfBase {
			return b, fmt.Errorf("%w: length byte 0x%02x at %d", ErrFrame, c, i)
		}
		end := i + 1 + c - lfBase
		if end > len(f) {
			return b, fmt.Errorf("%w: run of %d bytes at %d past the end (%d)", ErrFrame, c-lfBase, i, len(f))
		}
		for _, x := range f[i+1 : end] {
			if x == '\n' {
				return b, fmt.Errorf("%w: LF inside a run", ErrFrame)
			}
		}
		b = append(b, f[i+1:end]...)
		i = end
	}
	return b, nil
}

// Framing is how a link's datagrams go in AT+SEND's data field (and come
// back in +RCV's). Every module on a network must use the same.
type Framing uint8

const (
	// FramePacket carries mesh packets (PROTOCOL 9, [ours]): the packet's
	// first byte, its version, is 0 in every packet this protocol version
	// sends, so it is not sent, and the rest goes LF-free encoded. The
	// frame is exactly as long as the packet: the LoRa schemas keep their
	// 240-byte budget. A datagram that does not start with 0x00 is refused
	// (ErrFrame); a frame received is given back with the 0x00 in front.
	FramePacket Framing = iota
	// FrameBytes carries any bytes, LF-free encoded: one byte more than
	// the datagram, so at most 239 bytes.
	FrameBytes
	// FrameNone puts the bytes in the data field as they are, as
	// third-party clients do: up to 240 bytes, but a module that ends the
	// data at CR LF cuts a datagram holding that pair (+ERR=5).
	FrameNone
)

var framingNames = [...]string{"packet", "bytes", "none"}

// String names the framing: "packet", "bytes" or "none".
func (f Framing) String() string {
	if int(f) < len(framingNames) {
		return framingNames[f]
	}
	return fmt.Sprintf("framing(%d)", int(f))
}

// ParseFraming is String's inverse.
func ParseFraming(s string) (Framing, error) {
	for i, n := range framingNames {
		if n == s {
			return Framing(i), nil
		}
	}
	return 0, fmt.Errorf("%w: framing %q: want packet, bytes or none", ErrConfig, s)
}

func (f Framing) valid() bool { return int(f) < len(framingNames) }

// MaxDatagram is the largest datagram the framing carries in one AT+SEND.
func (f Framing) MaxDatagram() int {
	if f == FrameBytes {
		return MaxLFFree
	}
	return MTU
}

// FrameLen is the length of the data field that carries a datagram of n
// bytes.
func (f Framing) FrameLen(n int) int {
	if f == FrameBytes {
		return n + 1
	}
	return n
}

// AppendFrame appends the data field that carries datagram d to b.
func (f Framing) AppendFrame(b, d []byte) ([]byte, error) {
	switch f {
	case FramePacket:
		if len(d) == 0 || d[0] != 0 {
			return b, fmt.Errorf("%w: a packet starts with its version, 0x00", ErrFrame)
		}
		return AppendLFFree(b, d[1:])
	case FrameBytes:
		return AppendLFFree(b, d)
	}
	if len(d) > MTU {
		return b, fmt.Errorf("%w: %d bytes, at most %d", ErrFrame, len(d), MTU)
	}
	return append(b, d...), nil
}

// DecodeFrame appends the datagram data field fr carries to b.
func (f Framing) DecodeFrame(b, fr []byte) ([]byte, error) {
	switch f {
	case FramePacket:
		return DecodeLFFree(append(b, 0), fr)
	case FrameBytes:
		return DecodeLFFree(b, fr)
	}
	return append(b, fr...), nil
}
