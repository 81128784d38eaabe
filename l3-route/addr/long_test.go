package addr

import (
	"cmp"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomCoords draws a coordinate list: mostly small indices (a mesh's
// parents have few children), now and then a large one.
func randomCoords(rng *rand.Rand, depth int) []uint8 {
	cs := make([]uint8, depth)
	for i := range cs {
		if rng.IntN(8) == 0 {
			cs[i] = uint8(8 + rng.IntN(MaxCoord-7))
		} else {
			cs[i] = uint8(1 + rng.IntN(7))
		}
	}
	return cs
}

// TestLongAgreesWithAddress: for every coordinate list the wire can hold,
// a Long holds the same coordinates, converts both ways without loss, and
// ranks destinations exactly as Address does in both metrics.
func TestLongAgreesWithAddress(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var pairs int
	for range 20000 {
		ca := randomCoords(rng, rng.IntN(33))
		a, err := Encode(ca)
		if err != nil {
			continue
		}
		cb := slices.Clone(ca[:rng.IntN(len(ca)+1)])
		cb = append(cb, randomCoords(rng, rng.IntN(8))...)
		b, err := Encode(cb)
		if err != nil {
			continue
		}
		la, lb := a.Long(), b.Long()
		if !slices.Equal(la.Coords(), ca) || la.Depth() != len(ca) {
			t.Fatalf("%v: Long holds %v", ca, la.Coords())
		}
		if w, ok := la.Wire(); !ok || w != a {
			t.Fatalf("%v: Wire gives %x %v, want %x", ca, w, ok, a)
		}
		if got, _ := EncodeLong(ca); got != la {
			t.Fatalf("%v: EncodeLong %x, Address.Long %x", ca, got, la)
		}
		for _, m := range []Metric{MetricTree, MetricCPL} {
			c := rand.New(rand.NewPCG(uint64(len(ca)), 9))
			cc := randomCoords(c, c.IntN(30))
			x, err := Encode(cc)
			if err != nil {
				continue
			}
			lx := x.Long()
			if cmpU32(m.Key(a, x), m.Key(b, x)) != cmpU32(m.KeyLong(la, lx), m.KeyLong(lb, lx)) {
				t.Fatalf("mode %d: %v and %v toward %v ordered differently", m, ca, cb, cc)
			}
			pairs++
		}
		if CPLLong(la, lb) != refCPL(ca, cb) || DistTreeLong(la, lb) != DistTree(a, b) {
			t.Fatalf("%v %v: cpl %d dist %d", ca, cb, CPLLong(la, lb), DistTreeLong(la, lb))
		}
	}
	if pairs < 1000 {
		t.Fatalf("only %d comparisons", pairs)
	}
}

// TestLongBeyondTheWire: coordinates far deeper than 32 nibbles have a
// Long, no wire form, and a truncation that is their deepest ancestor that
// fits; a child too deep for a Long is ErrTooDeep.
func TestLongBeyondTheWire(t *testing.T) {
	cs := slices.Repeat([]uint8{3}, 100)
	l, err := EncodeLong(cs)
	if err != nil {
		t.Fatal(err)
	}
	if l.Depth() != 100 || l.NibbleLen() != 100 {
		t.Fatalf("depth %d, %d nibbles", l.Depth(), l.NibbleLen())
	}
	if _, ok := l.Wire(); ok {
		t.Fatal("a 100-level address fits the wire")
	}
	tr := l.Truncate()
	if tr.Depth() != 32 || !slices.Equal(tr.Coords(), cs[:32]) {
		t.Fatalf("truncated to %v", tr)
	}
	if !tr.Long().IsAncestorOf(l) {
		t.Fatal("the truncation is not an ancestor")
	}
	p, ok := l.Parent()
	if !ok || p.Depth() != 99 || !p.IsAncestorOf(l) {
		t.Fatalf("parent %v", p)
	}
	c, err := p.Child(3)
	if err != nil || c != l {
		t.Fatalf("child %v %v", c, err)
	}
	full, _ := EncodeLong(slices.Repeat([]uint8{1}, LongNibbles))
	if _, err := full.Child(1); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("child of a full Long: %v", err)
	}
	if _, err := EncodeLong(append(slices.Repeat([]uint8{1}, LongNibbles-1), 9)); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("two nibbles at the last: %v", err)
	}
	// The last wire nibble: 8..15 there alone on the wire, two nibbles in
	// a Long; the two convert into each other.
	w := MustEncode(append(slices.Repeat([]uint8{1}, 31), 12)...)
	lw := w.Long()
	if lw.NibbleLen() != 33 || !slices.Equal(lw.Coords(), w.Coords()) {
		t.Fatalf("quirk coordinate: %v in %d nibbles", lw.Coords(), lw.NibbleLen())
	}
	if back, ok := lw.Wire(); !ok || back != w {
		t.Fatalf("back to the wire: %x %v", back, ok)
	}
}

// TestLongLease: nibbles after the terminator survive the conversions
// while they fit the wire, and a Long whose lease does not fit has no wire
// form (it would name the proxy itself).
func TestLongLease(t *testing.T) {
	a := MustEncode(3, 1)
	a[1] = 0x05 // terminator, then lease nibble 5
	l := a.Long()
	if !l.Equal(MustEncodeLong(3, 1)) || l[1] != 0x05 {
		t.Fatalf("lease lost: %x", l[:2])
	}
	if w, ok := l.Wire(); !ok || w != a {
		t.Fatalf("lease to the wire: %x %v", w, ok)
	}
	deep := MustEncodeLong(slices.Repeat([]uint8{2}, 31)...)
	deep[16] = 0x50 // a lease nibble past the wire's 32
	if _, ok := deep.Wire(); ok {
		t.Fatal("a lease beyond the wire converted")
	}
}

func TestCompactLong(t *testing.T) {
	for _, cs := range [][]uint8{nil, {1}, {3, 1, 4}, slices.Repeat([]uint8{9}, 60)} {
		l := MustEncodeLong(cs...)
		b := l.AppendCompact([]byte{0xee})
		got, rest, err := ReadCompact(b[1:])
		if err != nil || got != l || len(rest) != 0 {
			t.Fatalf("%v: %v %x %v", cs, got, rest, err)
		}
	}
	for _, bad := range [][]byte{{}, {3, 1, 2}, {2, 1, 0}, {65}} {
		if _, _, err := ReadCompact(bad); !errors.Is(err, ErrCompact) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
}

// FuzzLong: every 64 bytes decode without panicking to coordinates that
// encode back to the canonical form, and the metrics agree with their
// definitions on the coordinates.
func FuzzLong(f *testing.F) {
	f.Add(make([]byte, 2*LongSize))
	deep := MustEncodeLong(slices.Repeat([]uint8{7, 100}, 40)...)
	other := MustEncodeLong(7, 100, 7)
	f.Add(append(deep[:], other[:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var a, c Long
		copy(a[:], b)
		if len(b) > LongSize {
			copy(c[:], b[LongSize:])
		}
		ca, cc := a.Coords(), c.Coords()
		back, err := EncodeLong(ca)
		if err != nil || back != a.Canonical() {
			t.Fatalf("%x: coords %v encode to %x (%v)", a, ca, back, err)
		}
		cpl := refCPL(ca, cc)
		if CPLLong(a, c) != cpl || DistTreeLong(a, c) != len(ca)+len(cc)-2*cpl {
			t.Fatalf("cpl %d/%d dist %d", CPLLong(a, c), cpl, DistTreeLong(a, c))
		}
		if (MetricCPL.KeyLong(a, c) == 0) != a.Equal(c) {
			t.Fatalf("mode-1 key 0 for unequal addresses, or not for equal ones")
		}
		if w, ok := a.Wire(); ok && !slices.Equal(w.Coords(), ca) {
			t.Fatalf("wire form %v of %v", w.Coords(), ca)
		}
		_ = a.Truncate()
		_, _ = a.Parent()
	})
}

// TestLeaseDistances: a lease sits one level below its proxy, beside its
// proxy's children and other leases, and is reached only through it.
func TestLeaseDistances(t *testing.T) {
	p := MustEncodeLong(3, 1)
	l5, ok := p.Lease(5)
	if !ok || l5.LeaseID() != 5 || !l5.Equal(p) || l5.SameHolder(p) {
		t.Fatalf("lease 5: %x %v", l5[:3], ok)
	}
	l100, ok := p.Lease(100)
	if !ok || l100.LeaseID() != 100 {
		t.Fatalf("lease 100: %x", l100[:3])
	}
	child, _ := p.Child(5)
	far := MustEncodeLong(2, 2, 2)
	for _, tc := range []struct {
		a, b Long
		d    uint32
	}{
		{l5, l5, 0}, {p, l5, 1}, {l5, p, 1}, {l5, l100, 2}, {child, l5, 2},
		{far, l5, 6}, {l5, far, 6}, {p, far, 5},
	} {
		if got := MetricTree.RouteKey(tc.a, tc.b); got != tc.d {
			t.Errorf("%v(%d) to %v(%d): %d, want %d", tc.a, tc.a.LeaseID(), tc.b, tc.b.LeaseID(), got, tc.d)
		}
		if (MetricCPL.RouteKey(tc.a, tc.b) == 0) != (tc.d == 0) {
			t.Errorf("mode 1 zero for %v %v", tc.a, tc.b)
		}
	}
	if _, ok := MustEncodeLong(slices.Repeat([]uint8{1}, LongNibbles-1)...).Lease(1); ok {
		t.Fatal("a lease with no room")
	}
	if _, ok := p.Lease(0); ok {
		t.Fatal("lease 0")
	}
	// A wire lease (the nibble after the terminator) reads the same.
	w := MustEncode(3, 1)
	w[1] = 0x07
	if w.Long().LeaseID() != 7 {
		t.Fatalf("wire lease reads %d", w.Long().LeaseID())
	}
}

// TestPathKeyOrdersAsRouteKey: toward one destination, PathKey ranks any
// two positions (leases included) exactly as RouteKey does, in both
// metrics, and is 0 only at the destination's holder: the common-prefix
// metric is still mode 1's in every tree. Across trees it compares the
// levels of each destination's address still to descend into: inside the
// subtree of the destination's parent in a tree where the destination is
// 3 levels deep ranks nearer than a prefix of 10 levels toward one 25
// levels deep, which RouteKey (L constant) ranks the other way round and
// so followed the deepest tree (mode 1 stretch 1.10–1.21 at 1,000 nodes).
func TestPathKeyOrdersAsRouteKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 1))
	draw := func(from []uint8) Long {
		// A position near from: a shared prefix, then coordinates of its own.
		cs := slices.Clone(from[:rng.IntN(len(from)+1)])
		cs = append(cs, randomCoords(rng, rng.IntN(6))...)
		a := MustEncodeLong(cs...)
		if rng.IntN(5) == 0 {
			if l, ok := a.Lease(uint8(1 + rng.IntN(MaxCoord))); ok {
				a = l
			}
		}
		return a
	}
	for range 2000 {
		dc := randomCoords(rng, rng.IntN(30))
		d := draw(dc)
		dc = d.Canonical().AppendCoords(nil)
		for range 20 {
			a, b := draw(dc), draw(dc)
			for _, m := range []Metric{MetricTree, MetricCPL} {
				if got, want := cmp.Compare(m.PathKey(a, d), m.PathKey(b, d)), cmp.Compare(m.RouteKey(a, d), m.RouteKey(b, d)); got != want {
					t.Fatalf("mode %d toward %v(%d): %v(%d) against %v(%d) ranked %d, RouteKey %d", m, d, d.LeaseID(), a, a.LeaseID(), b, b.LeaseID(), got, want)
				}
				if (m.PathKey(a, d) == 0) != a.SameHolder(d) {
					t.Fatalf("mode %d: PathKey(%v(%d), %v(%d)) = %d", m, a, a.LeaseID(), d, d.LeaseID(), m.PathKey(a, d))
				}
			}
		}
	}
	shallow := MustEncodeLong(1, 1, 1)
	sibling := MustEncodeLong(1, 1, 2)
	deep := MustEncodeLong(slices.Repeat([]uint8{2}, 25)...)
	tenShared := MustEncodeLong(append(slices.Repeat([]uint8{2}, 10), 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3)...)
	if a, b := MetricCPL.PathKey(sibling, shallow), MetricCPL.PathKey(tenShared, deep); a >= b {
		t.Errorf("the parent's subtree in a shallow tree %#x, 10 of 25 levels shared in a deep one %#x: want the first nearer", a, b)
	}
	if a, b := MetricCPL.PathKey(MustEncodeLong(1, 1, 1, 4), shallow), MetricCPL.PathKey(sibling, shallow); a >= b {
		t.Errorf("a child of the destination %#x ranks no nearer than its sibling %#x", a, b)
	}
}

// relateRouteRef is relateRoute as it was written first: each lease read
// off its address whole, the canonical forms related when there is one.
func relateRouteRef(a, b *Long) (cpl, da, db int) {
	la, lb := a.LeaseID(), b.LeaseID()
	if la == 0 && lb == 0 {
		return relateLong(a, b)
	}
	ca, cb := a.Canonical(), b.Canonical()
	cpl, da, db = relateLong(&ca, &cb)
	if la != 0 && la == lb && cpl == da && cpl == db {
		cpl++
	}
	if la != 0 {
		da++
	}
	if lb != 0 {
		db++
	}
	return cpl, da, db
}

// relatedPair draws two Longs that share a prefix: either may hold a
// lease, random bytes after its terminator, or fill every nibble.
func relatedPair(rng *rand.Rand) (a, b Long) {
	draw := func(cs []uint8) Long {
		l, err := EncodeLong(cs)
		for err != nil && len(cs) > 0 {
			cs = cs[:len(cs)-1]
			l, err = EncodeLong(cs)
		}
		switch rng.IntN(4) {
		case 0:
			if le, ok := l.Lease(uint8(1 + rng.IntN(MaxCoord))); ok {
				l = le
			}
		case 1:
			for i := l.NibbleLen() + 1; i < LongNibbles; i++ {
				l.setNib(i, uint8(rng.IntN(16)))
			}
		}
		return l
	}
	ca := randomCoords(rng, rng.IntN(LongNibbles+4))
	cb := slices.Clone(ca[:rng.IntN(len(ca)+1)])
	cb = append(cb, randomCoords(rng, rng.IntN(12))...)
	a, b = draw(ca), draw(cb)
	if rng.IntN(8) == 0 {
		b = a // the same holder, or the same proxy's two leases
		if le, ok := b.Canonical().Lease(uint8(1 + rng.IntN(MaxCoord))); ok && rng.IntN(2) == 0 {
			b = le
		}
	}
	return a, b
}

// TestRelateRouteAgainstReference: relateRoute's one pass gives what
// relating the canonical forms after reading each lease gave, for
// addresses with and without leases, bytes past the terminator, and
// addresses that fill the Long.
func TestRelateRouteAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	leases := 0
	for range 200000 {
		a, b := relatedPair(rng)
		c, da, db := relateRoute(&a, &b)
		rc, rda, rdb := relateRouteRef(&a, &b)
		if c != rc || da != rda || db != rdb {
			t.Fatalf("%x (lease %d) and %x (lease %d): %d %d %d, want %d %d %d", a, a.LeaseID(), b, b.LeaseID(), c, da, db, rc, rda, rdb)
		}
		if a.LeaseID() != 0 && b.LeaseID() != 0 {
			leases++
		}
	}
	if leases < 1000 {
		t.Fatalf("only %d pairs of leases drawn", leases)
	}
}

// BenchmarkRouteKey: a relay's ranking of one neighbour's address toward
// a destination, 20 to 40 levels deep (a 2,000-node mesh's trees).
func BenchmarkRouteKey(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	var as, bs [64]Long
	for i := range as {
		ca := randomCoords(rng, 20+rng.IntN(20))
		cb := slices.Clone(ca[:rng.IntN(len(ca))])
		cb = append(cb, randomCoords(rng, 1+rng.IntN(10))...)
		as[i], _ = EncodeLong(ca)
		bs[i], _ = EncodeLong(cb)
	}
	var sum uint32
	for i := 0; b.Loop(); i++ {
		sum += MetricTree.RouteKey(as[i&63], bs[i&63])
	}
	_ = sum
}
