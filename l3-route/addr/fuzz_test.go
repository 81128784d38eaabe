package addr

import (
	"errors"
	"slices"
	"testing"
)

// refEncode is a second, deliberately naive encoder written from the text of
// PROTOCOL.md 6.2 (build a nibble list, then pack it), used as the oracle for
// FuzzEncode. It reports the first problem in coordinate order, as Encode
// promises to.
func refEncode(coords []uint8) (Address, error) {
	var nibs []uint8
	for _, c := range coords {
		if c == 0 || c > MaxCoord {
			return Address{}, ErrCoord
		}
		if c < 8 || len(nibs) == Nibbles-1 && c <= 15 {
			nibs = append(nibs, c)
		} else {
			nibs = append(nibs, 8|(c-8)>>4, (c-8)&0xf)
		}
		if len(nibs) > Nibbles {
			return Address{}, ErrTooDeep
		}
	}
	var a Address
	for i, n := range nibs {
		if i%2 == 0 {
			a[i/2] = n << 4
		} else {
			a[i/2] |= n
		}
	}
	return a, nil
}

// refCPL is cpl from coordinate slices, the definition in PROTOCOL.md 6.3.
func refCPL(a, b []uint8) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func seedAddresses(f *testing.F) []Address {
	v := loadVectors(f)
	var out []Address
	for _, tc := range v.Encode {
		if tc.Address != nil {
			out = append(out, mustHex(f, *tc.Address))
		}
	}
	for _, tc := range v.DecodeOnly {
		out = append(out, mustHex(f, tc.Address))
	}
	for _, tc := range v.Distances {
		out = append(out, mustHex(f, tc.AAddr), mustHex(f, tc.BAddr))
	}
	return out
}

// FuzzDecode: every 16 bytes decode without panicking, to coordinates that
// encode back to the canonical form of the input.
func FuzzDecode(f *testing.F) {
	for _, a := range seedAddresses(f) {
		f.Add(a[:])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Address
		copy(a[:], data) // shorter input is zero-padded, longer truncated
		coords := a.AppendCoords(nil)
		for i, c := range coords {
			if c == 0 || c > MaxCoord {
				t.Fatalf("%s: coordinate %d is %d", a.Hex(), i, c)
			}
		}
		if len(coords) > Nibbles {
			t.Fatalf("%s: %d coordinates", a.Hex(), len(coords))
		}
		if a.Depth() != len(coords) || a.NibbleLen() != nibbleWidth(coords) {
			t.Fatalf("%s: Depth %d NibbleLen %d, decoded %v", a.Hex(), a.Depth(), a.NibbleLen(), coords)
		}
		e, err := Encode(coords)
		if err != nil {
			t.Fatalf("%s decodes to %v, which does not encode: %v", a.Hex(), coords, err)
		}
		c := a.Canonical()
		if e != c {
			t.Fatalf("%s: Encode(%v) = %s, Canonical = %s", a.Hex(), coords, e.Hex(), c.Hex())
		}
		if !a.Equal(c) || CPL(a, c) != len(coords) || MetricTree.Key(a, c) != 0 || MetricCPL.Key(a, c) != 0 {
			t.Fatalf("%s: not at distance 0 from its canonical form", a.Hex())
		}
		// Appending keeps what is already in dst.
		pre := []uint8{9, 9}
		if got := a.AppendCoords(pre); !slices.Equal(got[:2], pre) || !slices.Equal(got[2:], coords) {
			t.Fatalf("%s: AppendCoords onto %v = %v", a.Hex(), pre, got)
		}
		// Text and hex forms round-trip.
		if p, err := ParseCoords(a.String()); err != nil || !slices.Equal(p, coords) {
			t.Fatalf("%s: ParseCoords(%q) = %v, %v", a.Hex(), a.String(), p, err)
		}
		if h, err := ParseHex(a.Hex()); err != nil || h != a {
			t.Fatalf("%s: ParseHex(Hex) = %s, %v", a.Hex(), h.Hex(), err)
		}
		// Parent and Child are inverses.
		p, ok := a.Parent()
		if ok != (len(coords) > 0) {
			t.Fatalf("%s: Parent ok = %v at depth %d", a.Hex(), ok, len(coords))
		}
		if ok {
			if back, err := p.Child(coords[len(coords)-1]); err != nil || back != c {
				t.Fatalf("%s: Parent %s, Child back = %s, %v", a.Hex(), p.Hex(), back.Hex(), err)
			}
			if !p.IsAncestorOf(a) || a.IsAncestorOf(p) {
				t.Fatalf("%s: ancestry with parent %s wrong", a.Hex(), p.Hex())
			}
		}
	})
}

// FuzzEncode: any byte slice as coordinates either fails with exactly the
// error the naive encoder predicts, or encodes to the naive encoder's bytes
// and decodes back to itself.
func FuzzEncode(f *testing.F) {
	v := loadVectors(f)
	for _, tc := range v.Encode {
		f.Add(u8s(f, tc.Coords))
	}
	for _, tc := range v.Distances {
		f.Add(u8s(f, tc.A))
	}
	f.Fuzz(func(t *testing.T, coords []byte) {
		want, wantErr := refEncode(coords)
		a, err := Encode(coords)
		if wantErr != nil {
			other := ErrCoord
			if wantErr == ErrCoord {
				other = ErrTooDeep
			}
			if !errors.Is(err, wantErr) || errors.Is(err, other) {
				t.Fatalf("Encode(%v) = %s, %v; want only %v", coords, a.Hex(), err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("Encode(%v): %v", coords, err)
		}
		if a != want {
			t.Fatalf("Encode(%v) = %s, naive encoder %s", coords, a.Hex(), want.Hex())
		}
		if got := a.Coords(); !slices.Equal(got, coords) {
			t.Fatalf("Encode(%v) = %s decodes to %v", coords, a.Hex(), got)
		}
		if a.Canonical() != a || a.Depth() != len(coords) {
			t.Fatalf("Encode(%v) = %s: not canonical or wrong depth %d", coords, a.Hex(), a.Depth())
		}
	})
}

// FuzzMetric: the one-pass CPL/Key/distances agree with the definitions of
// PROTOCOL.md 6.3 applied to decoded coordinate slices, for any two inputs.
func FuzzMetric(f *testing.F) {
	v := loadVectors(f)
	for _, tc := range v.Distances {
		a, b := mustHex(f, tc.AAddr), mustHex(f, tc.BAddr)
		f.Add(a[:], b[:])
	}
	f.Fuzz(func(t *testing.T, x, y []byte) {
		var a, b Address
		copy(a[:], x)
		copy(b[:], y)
		ca, cb := a.Coords(), b.Coords()
		cpl := refCPL(ca, cb)
		n := len(ca) + len(cb)
		equal := slices.Equal(ca, cb)
		if got := CPL(a, b); got != cpl {
			t.Fatalf("CPL(%s, %s) = %d, want %d", a.Hex(), b.Hex(), got, cpl)
		}
		if got := DistTree(a, b); got != n-2*cpl {
			t.Fatalf("DistTree(%s, %s) = %d, want %d", a.Hex(), b.Hex(), got, n-2*cpl)
		}
		if got := MetricTree.Key(a, b); got != uint32(n-2*cpl) {
			t.Fatalf("MetricTree.Key(%s, %s) = %d", a.Hex(), b.Hex(), got)
		}
		num, den := DistCPL(a, b)
		wantKey := uint32(0)
		if equal {
			if num != 0 || den != 1 {
				t.Fatalf("DistCPL of equal %s, %s = %d/%d", a.Hex(), b.Hex(), num, den)
			}
		} else {
			wantKey = uint32(L-cpl)<<8 | uint32(n)
			if den != n+1 || num != (L-cpl)*(n+1)-1 {
				t.Fatalf("DistCPL(%s, %s) = %d/%d", a.Hex(), b.Hex(), num, den)
			}
		}
		if got := MetricCPL.Key(a, b); got != wantKey {
			t.Fatalf("MetricCPL.Key(%s, %s) = %#x, want %#x", a.Hex(), b.Hex(), got, wantKey)
		}
		if a.Equal(b) != equal {
			t.Fatalf("Equal(%s, %s) = %v", a.Hex(), b.Hex(), !equal)
		}
		if anc := cpl == len(ca) && len(ca) < len(cb); a.IsAncestorOf(b) != anc {
			t.Fatalf("IsAncestorOf(%s, %s) = %v", a.Hex(), b.Hex(), !anc)
		}
		if CPL(b, a) != cpl || MetricCPL.Key(b, a) != wantKey {
			t.Fatalf("CPL/Key not symmetric for %s, %s", a.Hex(), b.Hex())
		}
	})
}
