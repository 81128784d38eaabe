// Package addr converts between spanning-tree coordinates and the 16-byte tree
// addresses carried in packets (PROTOCOL.md 6.2), and computes the common
// prefix length (cpl) and the two routing distances a relay ranks its peers by
// (PROTOCOL.md 6.3).
//
// Addresses arrive from the radio, so everything that reads one (decoding,
// CPL, Depth, Metric.Key) accepts all 2^128 byte patterns without failing or
// panicking: the format has no invalid addresses, only bits after the
// terminator that routing ignores (leased addresses put data there, 6.4).
// Only Encode, which builds addresses, can fail.
package addr

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Format constants from PROTOCOL.md 6.2 and 6.3.
const (
	// Size is the number of bytes in an address.
	Size = 16
	// Nibbles is the number of nibbles in an address; coordinates are packed
	// by nibble, high nibble of each byte first.
	Nibbles = 32
	// MaxCoord is the largest coordinate (a child's index at its parent): the
	// two-nibble form holds 7 bits of c-8, so 8+127.
	MaxCoord = 135
	// L is the mode-1 constant. It must exceed every possible cpl (at most
	// 32) so that mode-1 distances stay positive for distinct addresses;
	// the design text's 17 does not (PROTOCOL.md 6.3).
	L = 33
)

// Kinds of coordinate lists that have no address. Every error Encode, Child
// and ParseCoords return for them wraps one of these, so callers test with
// errors.Is and still get a message naming the offending coordinate.
var (
	// ErrCoord is a coordinate of 0 (0 is the terminator nibble, so it
	// cannot be a child index) or above MaxCoord.
	ErrCoord = errors.New("coordinate out of range 1..135")
	// ErrTooDeep means the coordinates need more than Nibbles nibbles.
	ErrTooDeep = errors.New("address longer than 32 nibbles")
)

// Address is a 16-byte tree address. The root is the zero Address.
//
// It is an array, not a slice, so it is comparable and usable as a map key,
// and passing it around allocates nothing. Two addresses that differ only
// after the terminator hold the same coordinates but are different array
// values: compare with Equal, or compare Canonical forms.
type Address [Size]byte

// nib returns nibble i (0..31), high nibble first. The mask keeps the index
// provably in range so the compiler drops the bounds check on the hot path.
func (a *Address) nib(i int) uint8 {
	b := a[(i>>1)&(Size-1)]
	if i&1 == 0 {
		return b >> 4
	}
	return b & 0xf
}

// setNib writes nibble i of a, which must be zero.
func (a *Address) setNib(i int, v uint8) {
	if i&1 == 0 {
		a[i>>1] |= v << 4
	} else {
		a[i>>1] |= v & 0xf
	}
}

// coordAt decodes the coordinate that starts at nibble i, whose nibble is
// known to be non-zero, and returns it with the number of nibbles it takes.
// The last nibble cannot be the first of a pair, so there it stands alone
// and may hold 8..15 directly (PROTOCOL.md 6.2).
func (a *Address) coordAt(i int) (c uint8, width int) {
	x := a.nib(i)
	if x < 8 || i == Nibbles-1 {
		return x, 1
	}
	return ((x&7)<<4 | a.nib(i+1)) + 8, 2
}

// put appends coordinate c (coords[idx] for the error message) at nibble pos
// of a, whose nibbles from pos on are zero, and returns the next position.
// Encode and Child share it so that they agree on every edge case.
func (a *Address) put(pos int, c uint8, idx int) (int, error) {
	if c == 0 || c > MaxCoord {
		return pos, fmt.Errorf("addr: coords[%d] = %d: %w", idx, c, ErrCoord)
	}
	// The last nibble cannot start a pair, so 8..15 may sit there alone;
	// 16..135 need a pair and do not fit there at all.
	w := 2
	if c < 8 || pos == Nibbles-1 && c <= 15 {
		w = 1
	}
	if pos+w > Nibbles {
		return pos, fmt.Errorf("addr: coords[%d] = %d would take nibbles %d..%d of 0..%d: %w",
			idx, c, pos, pos+w-1, Nibbles-1, ErrTooDeep)
	}
	if w == 1 {
		a.setNib(pos, c)
	} else {
		v := 0x80 | (c - 8)
		a.setNib(pos, v>>4)
		a.setNib(pos+1, v&0xf)
	}
	return pos + w, nil
}

// Encode packs coordinates (each 1..135) into an address: 1..7 one nibble 0ccc;
// 8..135 two nibbles 1xxxxxxx (c-8), not necessarily byte aligned; a coordinate
// 8..15 that starts at the very last (32nd) nibble is written there directly as
// one nibble. The rest is zero, as senders must leave it (PROTOCOL.md 6.2).
// Errors wrap ErrCoord or ErrTooDeep and name the first offending coordinate;
// coordinates are checked in order, so a list with both problems reports the
// one that comes first.
func Encode(coords []uint8) (Address, error) {
	var a Address
	pos := 0
	for i, c := range coords {
		var err error
		if pos, err = a.put(pos, c, i); err != nil {
			return Address{}, err
		}
	}
	return a, nil
}

// MustEncode is Encode for tests and constants, where a bad coordinate list is
// a programming error: it panics instead of returning the error.
func MustEncode(coords ...uint8) Address {
	a, err := Encode(coords)
	if err != nil {
		panic(err)
	}
	return a
}

// AppendCoords decodes a and appends its coordinates to dst; it stops at the
// first zero nibble that starts a coordinate and ignores everything after it
// (leased addresses use those bits). Every byte pattern decodes, so it never
// fails or panics, and it allocates nothing when dst has room for Depth()
// more coordinates, which lets a relay reuse one buffer per packet.
func (a Address) AppendCoords(dst []uint8) []uint8 {
	for i := 0; i < Nibbles; {
		if a.nib(i) == 0 {
			break
		}
		c, w := a.coordAt(i)
		dst = append(dst, c)
		i += w
	}
	return dst
}

// Coords returns a's coordinates in a new slice. The root gives a non-nil
// empty slice, so callers can tell "the root" from "no address".
func (a Address) Coords() []uint8 {
	return a.AppendCoords(make([]uint8, 0, a.Depth()))
}

// scan walks coordinates from nibble i, having already counted n of them, to
// the terminator; it returns the total count and the terminator's position.
func (a *Address) scan(i, n int) (depth, end int) {
	for i < Nibbles {
		x := a.nib(i)
		if x == 0 {
			break
		}
		if x < 8 || i == Nibbles-1 {
			i++
		} else {
			i += 2
		}
		n++
	}
	return n, i
}

// Depth is the number of coordinates (|a|), i.e. the node's depth below the
// root. It allocates nothing.
func (a Address) Depth() int {
	d, _ := a.scan(0, 0)
	return d
}

// NibbleLen is the number of nibbles the coordinates occupy, which is the
// position of the terminator (32 when there is none). Nibbles from here on
// are free for leased sub-addresses (PROTOCOL.md 6.4).
func (a Address) NibbleLen() int {
	_, n := a.scan(0, 0)
	return n
}

// canonicalFrom returns a with nibbles from position p on zeroed.
func (a Address) canonicalFrom(p int) Address {
	if p&1 == 1 {
		a[p>>1] &= 0xf0
		p++
	}
	for i := p >> 1; i < Size; i++ {
		a[i] = 0
	}
	return a
}

// Canonical returns a with every nibble after the coordinates zeroed: the
// form a sender puts on the wire and the one to use as a map key.
func (a Address) Canonical() Address {
	return a.canonicalFrom(a.NibbleLen())
}

// Equal reports whether a and b hold the same coordinates, ignoring bits
// after the terminator, which is what routing means by a = b.
func (a Address) Equal(b Address) bool {
	return a.Canonical() == b.Canonical()
}

// String formats a's coordinates as "3,1", the form ParseCoords reads back,
// so log lines can be pasted into the command line. The root is "".
func (a Address) String() string {
	var buf [Nibbles]uint8
	return FormatCoords(a.AppendCoords(buf[:0]))
}

// Hex returns the 32 lowercase hex digits of the 16 bytes as they are,
// including any bits after the terminator, for showing what was on the wire.
func (a Address) Hex() string {
	return hex.EncodeToString(a[:])
}

// ParseHex parses exactly 32 hex digits (either case) into an address, the
// inverse of Hex. Bits after the terminator are kept.
func ParseHex(s string) (Address, error) {
	var a Address
	if len(s) != 2*Size {
		return a, fmt.Errorf("addr: hex address %q has %d characters, want %d", s, len(s), 2*Size)
	}
	if _, err := hex.Decode(a[:], []byte(s)); err != nil {
		return Address{}, fmt.Errorf("addr: hex address %q: %w", s, err)
	}
	return a, nil
}

// ParseCoords parses "3,1" (spaces around numbers allowed; an empty or blank
// string is the root) into coordinates. A field that is not a decimal number
// is an error; 0 and numbers above 135 give errors wrapping ErrCoord. It does
// not check that the list fits in an address: Encode does that.
func ParseCoords(s string) ([]uint8, error) {
	if strings.TrimSpace(s) == "" {
		return []uint8{}, nil
	}
	fields := strings.Split(s, ",")
	out := make([]uint8, 0, len(fields))
	for i, f := range fields {
		f = strings.TrimSpace(f)
		v, err := strconv.ParseUint(f, 10, 64)
		switch {
		case err != nil && errors.Is(err, strconv.ErrRange):
			return nil, fmt.Errorf("addr: coordinate %d in %q is %s: %w", i, s, f, ErrCoord)
		case err != nil:
			return nil, fmt.Errorf("addr: coordinate %d in %q: %q is not a decimal number", i, s, f)
		case v == 0 || v > MaxCoord:
			return nil, fmt.Errorf("addr: coordinate %d in %q is %d: %w", i, s, v, ErrCoord)
		}
		out = append(out, uint8(v))
	}
	return out, nil
}

// FormatCoords formats coordinates as "3,1" (no spaces), the form ParseCoords
// reads. An empty list gives "".
func FormatCoords(c []uint8) string {
	b := make([]byte, 0, 4*len(c))
	for i, v := range c {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return string(b)
}

// Child returns the address of child number index (1..135) of parent a, as a
// parent does when it assigns addresses (PROTOCOL.md 6.1). Bits after a's
// terminator are dropped. Errors are Encode's.
func (a Address) Child(index uint8) (Address, error) {
	depth, end := a.scan(0, 0)
	c := a.canonicalFrom(end)
	if _, err := c.put(end, index, depth); err != nil {
		return Address{}, err
	}
	return c, nil
}

// Parent returns the canonical address with the last coordinate removed and
// true; for the root, which has no parent, it returns the root and false.
func (a Address) Parent() (Address, bool) {
	last := -1
	for i := 0; i < Nibbles; {
		if a.nib(i) == 0 {
			break
		}
		last = i
		_, w := a.coordAt(i)
		i += w
	}
	if last < 0 {
		return Address{}, false
	}
	return a.canonicalFrom(last), true
}

// IsAncestorOf reports whether a's coordinates are a proper prefix of b's,
// i.e. b is in the subtree below a. No address is its own ancestor.
func (a Address) IsAncestorOf(b Address) bool {
	cpl, da, db := relate(&a, &b)
	return cpl == da && da < db
}

// relate walks a and b together in one pass and returns cpl(a,b), |a| and |b|.
// Because a coordinate's encoding depends only on its value and its starting
// nibble, equal leading coordinates are equal leading nibbles, so the shared
// prefix is compared nibble by nibble and only the two tails are walked
// separately. This is the routing hot path: it allocates nothing.
func relate(a, b *Address) (cpl, da, db int) {
	i := 0
	for i < Nibbles {
		x := a.nib(i)
		if x == 0 || x != b.nib(i) {
			break
		}
		if x < 8 || i == Nibbles-1 {
			i++
		} else {
			if a.nib(i+1) != b.nib(i+1) {
				break
			}
			i += 2
		}
		cpl++
	}
	da, _ = a.scan(i, cpl)
	db, _ = b.scan(i, cpl)
	return cpl, da, db
}

// CPL is the number of leading coordinates a and b share (PROTOCOL.md 6.3).
// It allocates nothing.
func CPL(a, b Address) int {
	cpl, _, _ := relate(&a, &b)
	return cpl
}

// DistTree is the mode-0 tree distance |a|+|b|-2*cpl(a,b): the number of hops
// between a and b along the tree.
func DistTree(a, b Address) int {
	cpl, da, db := relate(&a, &b)
	return da + db - 2*cpl
}

// DistCPL is the mode-1 common-prefix distance: 0 if a and b hold the same
// coordinates, else L - cpl - 1/(|a|+|b|+1), as an exact fraction num/den
// (den = |a|+|b|+1; num = (L-cpl)*den - 1), because float64 cannot be trusted
// to order or tie these distances exactly. The fraction is always in lowest
// terms (num = k*den - 1); for a = b it is 0/1.
func DistCPL(a, b Address) (num, den int) {
	cpl, da, db := relate(&a, &b)
	if cpl == da && cpl == db {
		return 0, 1
	}
	den = da + db + 1
	return (L-cpl)*den - 1, den
}

// Metric is a routing metric, selected by the mode bit (0x01) of a routed
// packet's flags byte (PROTOCOL.md 2.1).
type Metric uint8

// The two metrics of PROTOCOL.md 6.3.
const (
	// MetricTree is mode 0, the tree (hop count) distance.
	MetricTree Metric = 0
	// MetricCPL is mode 1, the common-prefix distance.
	MetricCPL Metric = 1
)

// Key returns an integer that orders destinations exactly as the metric's
// distance does (smaller = closer; equal keys = equal distances), so a relay
// can rank peers with integer compares: mode 0 the tree distance itself;
// mode 1 0 when equal, else (L-cpl)<<8 | (|a|+|b|). That works because the
// mode-1 distance L-cpl-1/(n+1), n = |a|+|b| <= 64 < 256, lies strictly
// between L-cpl-1 and L-cpl and grows with n. Only the low bit of m is used,
// like the mode bit it comes from, so Key is defined for every Metric value.
// It allocates nothing; this is the routing hot path.
func (m Metric) Key(a, b Address) uint32 {
	cpl, da, db := relate(&a, &b)
	if m&1 == 0 {
		return uint32(da + db - 2*cpl)
	}
	if cpl == da && cpl == db {
		return 0
	}
	return uint32(L-cpl)<<8 | uint32(da+db)
}

// Distance returns the metric's distance as a float64 (mode 1: num/den), for
// display only: route with Key, which is exact.
func (m Metric) Distance(a, b Address) float64 {
	if m&1 == 0 {
		return float64(DistTree(a, b))
	}
	num, den := DistCPL(a, b)
	return float64(num) / float64(den)
}

// FormatDistance formats Distance for the command line: mode 0 as an integer
// ("3"), mode 1 as the shortest float that round-trips (strconv 'g', -1), but
// an exact integer such as 0 prints as "0" so both modes agree on it.
func (m Metric) FormatDistance(a, b Address) string {
	if m&1 == 0 {
		return strconv.Itoa(DistTree(a, b))
	}
	num, den := DistCPL(a, b)
	if num%den == 0 {
		return strconv.Itoa(num / den)
	}
	return strconv.FormatFloat(float64(num)/float64(den), 'g', -1, 64)
}
