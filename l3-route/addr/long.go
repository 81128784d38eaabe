package addr

import (
	"fmt"
)

// Long addresses [ours]. The wire's 16 bytes hold 32 nibbles, so no node
// deeper than 32 levels (fewer where indices above 7 take two nibbles) has
// an Address: a line of 40 nodes, or a random mesh of 10,000, has nodes
// no tree can number on the wire. Inside the stack every position is a
// Long: the same coordinates in the same nibble code (1–7 one nibble,
// 8–135 two, a zero nibble ending them), over LongNibbles nibbles. A Long
// that fits the wire converts to the Address a packet header carries
// (Wire); one that does not travels in a routed Package's path header
// (route), never in to_addr.

// Long address limits.
const (
	// LongSize is the number of bytes in a Long.
	LongSize = 64
	// LongNibbles is the number of nibbles in a Long.
	LongNibbles = 2 * LongSize
	// LongL is the mode-1 constant for Longs: more than any cpl of two
	// Longs (at most LongNibbles coordinates), so distances stay positive.
	LongL = LongNibbles + 1
)

// Long is a tree address of up to LongNibbles nibbles, comparable and
// allocation-free like Address. The root is the zero Long. Two Longs that
// differ only after the terminator hold the same coordinates: compare with
// Equal, or compare Canonical forms. Unlike Address, no nibble holds a
// two-nibble coordinate alone: the last nibble of a Long can only start a
// coordinate of 1–7.
type Long [LongSize]byte

// lnib returns nibble i of a.
func (a *Long) lnib(i int) uint8 {
	b := a[(i>>1)&(LongSize-1)]
	if i&1 == 0 {
		return b >> 4
	}
	return b & 0xf
}

func (a *Long) setNib(i int, v uint8) {
	if i&1 == 0 {
		a[i>>1] |= v << 4
	} else {
		a[i>>1] |= v & 0xf
	}
}

// lscan walks coordinates from nibble i, n counted so far, to the
// terminator; it returns the total count and the terminator's position. A
// two-nibble coordinate that would run past the end ends the address.
func (a *Long) lscan(i, n int) (depth, end int) {
	for i < LongNibbles {
		x := a.lnib(i)
		if x == 0 || (x >= 8 && i == LongNibbles-1) {
			break
		}
		if x < 8 {
			i++
		} else {
			i += 2
		}
		n++
	}
	return n, i
}

// Depth is the number of coordinates.
func (a Long) Depth() int {
	d, _ := a.lscan(0, 0)
	return d
}

// NibbleLen is the number of nibbles the coordinates take: the position of
// the terminator (LongNibbles when there is none).
func (a Long) NibbleLen() int {
	_, n := a.lscan(0, 0)
	return n
}

// AppendCoords decodes a and appends its coordinates to dst.
func (a Long) AppendCoords(dst []uint8) []uint8 {
	for i := 0; i < LongNibbles; {
		x := a.lnib(i)
		if x == 0 || (x >= 8 && i == LongNibbles-1) {
			break
		}
		if x < 8 {
			dst = append(dst, x)
			i++
			continue
		}
		dst = append(dst, ((x&7)<<4|a.lnib(i+1))+8)
		i += 2
	}
	return dst
}

// Coords returns a's coordinates in a new slice (non-nil for the root).
func (a Long) Coords() []uint8 {
	return a.AppendCoords(make([]uint8, 0, a.Depth()))
}

// put appends coordinate c at nibble pos (nibbles from pos on are zero) and
// returns the next position.
func (a *Long) put(pos int, c uint8, idx int) (int, error) {
	if c == 0 || c > MaxCoord {
		return pos, fmt.Errorf("addr: coords[%d] = %d: %w", idx, c, ErrCoord)
	}
	w := 2
	if c < 8 {
		w = 1
	}
	if pos+w > LongNibbles {
		return pos, fmt.Errorf("addr: coords[%d] = %d would take nibbles %d..%d of 0..%d: %w",
			idx, c, pos, pos+w-1, LongNibbles-1, ErrTooDeep)
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

// EncodeLong packs coordinates into a Long; errors wrap ErrCoord or
// ErrTooDeep, as Encode's do.
func EncodeLong(coords []uint8) (Long, error) {
	var a Long
	pos := 0
	for i, c := range coords {
		var err error
		if pos, err = a.put(pos, c, i); err != nil {
			return Long{}, err
		}
	}
	return a, nil
}

// MustEncodeLong is EncodeLong for tests and constants: it panics on error.
func MustEncodeLong(coords ...uint8) Long {
	a, err := EncodeLong(coords)
	if err != nil {
		panic(err)
	}
	return a
}

// canonicalFrom returns a with nibbles from position p on zeroed.
func (a Long) canonicalFrom(p int) Long {
	if p&1 == 1 {
		a[p>>1] &= 0xf0
		p++
	}
	for i := p >> 1; i < LongSize; i++ {
		a[i] = 0
	}
	return a
}

// Canonical returns a with every nibble after the coordinates zeroed.
func (a Long) Canonical() Long { return a.canonicalFrom(a.NibbleLen()) }

// Equal reports whether a and b hold the same coordinates.
func (a Long) Equal(b Long) bool { return a.Canonical() == b.Canonical() }

// IsZero reports whether a is the root (no coordinates).
func (a Long) IsZero() bool { return a.lnib(0) == 0 }

// String formats the coordinates as "3,1" (the root is "").
func (a Long) String() string {
	var buf [LongNibbles]uint8
	return FormatCoords(a.AppendCoords(buf[:0]))
}

// Child returns the address of child index (1..135) of a; bits after a's
// terminator are dropped.
func (a Long) Child(index uint8) (Long, error) {
	depth, end := a.lscan(0, 0)
	c := a.canonicalFrom(end)
	if _, err := c.put(end, index, depth); err != nil {
		return Long{}, err
	}
	return c, nil
}

// Parent returns the canonical address without the last coordinate and
// true; the root has none.
func (a Long) Parent() (Long, bool) {
	last := -1
	for i := 0; i < LongNibbles; {
		x := a.lnib(i)
		if x == 0 || (x >= 8 && i == LongNibbles-1) {
			break
		}
		last = i
		if x < 8 {
			i++
		} else {
			i += 2
		}
	}
	if last < 0 {
		return Long{}, false
	}
	return a.canonicalFrom(last), true
}

// IsAncestorOf reports whether a's coordinates are a proper prefix of b's.
func (a Long) IsAncestorOf(b Long) bool {
	cpl, da, db := relateLong(&a, &b)
	return cpl == da && da < db
}

// relateLong returns cpl(a,b), |a| and |b| in one pass (see relate).
func relateLong(a, b *Long) (cpl, da, db int) {
	cpl, da, db, _, _ = relateEnds(a, b)
	return cpl, da, db
}

// relateEnds is relateLong, with the positions of a's and b's
// terminators (NibbleLen) as well.
func relateEnds(a, b *Long) (cpl, da, db, ea, eb int) {
	i := 0
	for i < LongNibbles {
		x := a.lnib(i)
		if x == 0 || x != b.lnib(i) {
			break
		}
		if x < 8 {
			i++
		} else {
			if i == LongNibbles-1 || a.lnib(i+1) != b.lnib(i+1) {
				break
			}
			i += 2
		}
		cpl++
	}
	da, ea = a.lscan(i, cpl)
	db, eb = b.lscan(i, cpl)
	return cpl, da, db, ea, eb
}

// CPLLong is the number of leading coordinates a and b share.
func CPLLong(a, b Long) int {
	cpl, _, _ := relateLong(&a, &b)
	return cpl
}

// DistTreeLong is the tree distance |a|+|b|-2·cpl(a,b).
func DistTreeLong(a, b Long) int {
	cpl, da, db := relateLong(&a, &b)
	return da + db - 2*cpl
}

// KeyLong orders destinations as the metric does, for Longs: mode 0 the
// tree distance; mode 1 0 when equal, else (LongL-cpl)<<9 | (|a|+|b|)
// (|a|+|b| ≤ 256 < 512). Only the low bit of m is used.
func (m Metric) KeyLong(a, b Long) uint32 {
	cpl, da, db := relateLong(&a, &b)
	if m&1 == 0 {
		return uint32(da + db - 2*cpl)
	}
	if cpl == da && cpl == db {
		return 0
	}
	return uint32(LongL-cpl)<<9 | uint32(da+db)
}

// Long returns a's coordinates as a Long. Nibbles after the terminator (a
// lease) are kept where the Long has them at the same place.
func (a Address) Long() Long {
	var l Long
	n := a.NibbleLen()
	if n < Nibbles-1 {
		copy(l[:], a[:]) // the same code, nibble for nibble
		return l
	}
	// A coordinate that starts at the last wire nibble may hold 8–15 there
	// alone; a Long writes it in two.
	var buf [Nibbles]uint8
	l, _ = EncodeLong(a.AppendCoords(buf[:0])) // at most 32 coordinates: always fits
	return l
}

// Wire returns a as the 16-byte Address a packet header carries, and
// whether it fits there, nibbles after the terminator (a lease) included.
func (a Long) Wire() (Address, bool) {
	n := a.NibbleLen()
	if n < Nibbles-1 {
		for _, b := range a[Size:] {
			if b != 0 {
				// Nibbles after the terminator (a lease) that the wire
				// cannot hold: the address would name another node.
				return Address{}, false
			}
		}
		var w Address
		copy(w[:], a[:Size]) // the same code, nibble for nibble
		return w, true
	}
	if a.canonicalFrom(n) != a {
		return Address{}, false // a lease where the wire has no room for one
	}
	var buf [LongNibbles]uint8
	w, err := Encode(a.AppendCoords(buf[:0]))
	return w, err == nil
}

// Truncate returns the deepest ancestor-or-self of a that fits the wire:
// what a packet header carries for a destination that does not.
func (a Long) Truncate() Address {
	if w, ok := a.Wire(); ok {
		return w
	}
	var buf [LongNibbles]uint8
	cs := a.AppendCoords(buf[:0])
	var w Address
	pos := 0
	for i, c := range cs {
		var err error
		if pos, err = w.put(pos, c, i); err != nil {
			break
		}
	}
	return w
}

// AppendCompact appends a's compact form: its length in bytes (1) and its
// bytes up to the last non-zero one, as name records and path headers
// carry it.
func (a Long) AppendCompact(b []byte) []byte {
	n := LongSize
	for n > 0 && a[n-1] == 0 {
		n--
	}
	b = append(b, byte(n))
	return append(b, a[:n]...)
}

// ErrCompact reports a compact Long that does not parse.
var ErrCompact = fmt.Errorf("addr: malformed compact address")

// ReadCompact reads a compact Long from the front of b and returns it and
// the rest of b. Its one form ends at the last non-zero byte: a trailing
// zero is refused, as is a length above LongSize.
func ReadCompact(b []byte) (Long, []byte, error) {
	var a Long
	if len(b) < 1 {
		return a, b, fmt.Errorf("%w: empty", ErrCompact)
	}
	n := int(b[0])
	if n > LongSize || len(b) < 1+n {
		return a, b, fmt.Errorf("%w: %d bytes of %d", ErrCompact, n, len(b)-1)
	}
	if n > 0 && b[n] == 0 {
		return a, b, fmt.Errorf("%w: a trailing zero byte", ErrCompact)
	}
	copy(a[:], b[1:1+n])
	return a, b[1+n:], nil
}

// Leases [ours]. A lease is its proxy's coordinates, the terminating zero
// nibble, then one more coordinate (1–135, in the same code) naming the
// leaseholder: routing toward it reaches the proxy, which hands it on one
// hop (PROTOCOL 6.4). For distances a lease counts as a child of its proxy
// that no real child can be: the metrics of Route see it one level below.

// Lease returns the lease under a numbered id (1..135), and whether a has
// room for it. Nibbles after a's terminator are dropped first.
func (a Long) Lease(id uint8) (Long, bool) {
	if id == 0 || id > MaxCoord {
		return Long{}, false
	}
	n := a.NibbleLen()
	c := a.canonicalFrom(n)
	if _, err := c.put(n+1, id, 0); err != nil || n+1 >= LongNibbles {
		return Long{}, false
	}
	return c, true
}

// LeaseID returns the lease coordinate after a's terminator (0: none).
func (a Long) LeaseID() uint8 { return a.leaseAt(a.NibbleLen()) }

// leaseAt is LeaseID for an a whose terminator is at nibble end.
func (a *Long) leaseAt(end int) uint8 {
	i := end + 1
	if i >= LongNibbles {
		return 0
	}
	x := a.lnib(i)
	switch {
	case x == 0:
		return 0
	case x < 8:
		return x
	case i == LongNibbles-1:
		return 0
	}
	return ((x&7)<<4 | a.lnib(i+1)) + 8
}

// relateRoute is relateLong with leases one level below their proxies.
// relateLong reads no nibble past either terminator, so a lease's
// coordinate there changes nothing of what it returns: one pass gives
// the prefix, the depths and where each lease would be (once a look-up
// of each lease scanned each address whole first: 2 % of a 2,000-node
// simulation's CPU, in the relays' ranking of their neighbours).
func relateRoute(a, b *Long) (cpl, da, db int) {
	cpl, da, db, ea, eb := relateEnds(a, b)
	la, lb := a.leaseAt(ea), b.leaseAt(eb)
	if la != 0 && la == lb && cpl == da && cpl == db {
		cpl++ // the same lease
	}
	if la != 0 {
		da++
	}
	if lb != 0 {
		db++
	}
	return cpl, da, db
}

// RouteKey orders positions toward a destination as the metric does, for
// Longs, leases counted one level below their proxies: mode 0 the tree
// distance; mode 1 0 when equal, else (LongL-cpl)<<9 | (|a|+|b|). It is
// what relays rank neighbours by.
func (m Metric) RouteKey(a, b Long) uint32 {
	cpl, da, db := relateRoute(&a, &b)
	if m&1 == 0 {
		return uint32(da + db - 2*cpl)
	}
	if cpl == da && cpl == db {
		return 0
	}
	return uint32(LongL-cpl)<<9 | uint32(da+db)
}

// PathKey is RouteKey made comparable across trees, for the potentials
// of a path header (PROTOCOL.md 8, ours), which rank a position by its
// least distance over the destination's addresses in every tree, then
// their sum. Mode 0: RouteKey (a hop count is one in every tree). Mode 1:
// 0 when equal, else (|b|−cpl+1)<<9 | (|a|−cpl): the lengths of the two
// addresses past their common prefix, the destination's first (the
// levels of its address still to descend into), ours second (the levels
// up to the common ancestor). Toward one destination b, in one tree, |b|
// is fixed, so PathKey orders every two positions exactly as RouteKey
// does, that is as the common-prefix distance L − cpl − 1/(|a|+|b|+1):
// the longer common prefix first, then the shallower position. The metric
// is mode 1's; what changes is only how trees compare with each other.
// With the constant L a prefix of 10 levels toward a destination 25
// levels deep in one tree outranks a prefix of 2 toward one 3 levels deep
// in another (inside the subtree of its parent), so the least over trees
// followed the tree where the destination lies deepest and held a Package
// in ever deeper subtrees of it, however far round they reach (mode 1 at
// 1,000 random nodes: stretch 1.09–1.21, p95 1.38–1.92;
// docs/routing-notes.md, h19mode1). |b|−cpl+1 ≤ 130 and |a|−cpl ≤ 129 <
// 512, so a key stays below 2^17; it is 0 only for the same holder
// (cpl = |a| = |b|), and at least 512 otherwise.
func (m Metric) PathKey(a, b Long) uint32 {
	if m&1 == 0 {
		return m.RouteKey(a, b)
	}
	cpl, da, db := relateRoute(&a, &b)
	if cpl == da && cpl == db {
		return 0
	}
	return uint32(db-cpl+1)<<9 | uint32(da-cpl)
}

// SameHolder reports whether a and b name the same holder: the same
// coordinates and the same lease (or none).
func (a Long) SameHolder(b Long) bool {
	return a.Equal(b) && a.LeaseID() == b.LeaseID()
}
