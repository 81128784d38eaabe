package addr

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/vectors"
)

// vectorFileName is the spec-derived vector file (see its README: computed from
// the design text, not executed on the reference).
const vectorFileName = "tree_addresses_spec.json"

// The JSON holds coordinates as number arrays; []uint8 would make
// encoding/json expect base64, so they are read as []int and converted.
type vectorFile struct {
	Encode []struct {
		Coords  []int   `json:"coords"`
		Address *string `json:"address"`
		Decoded []int   `json:"decoded"`
		Error   string  `json:"error"`
	} `json:"encode"`
	DecodeOnly []struct {
		Address      string `json:"address"`
		Coords       []int  `json:"coords"`
		AfterNonzero bool   `json:"nibbles_after_terminator_nonzero"`
	} `json:"decode_only"`
	Distances []distVector `json:"distances"`
}

type distVector struct {
	A      []int    `json:"a"`
	B      []int    `json:"b"`
	AAddr  string   `json:"a_address"`
	BAddr  string   `json:"b_address"`
	CPL    int      `json:"cpl"`
	LenA   int      `json:"len_a"`
	LenB   int      `json:"len_b"`
	DTree  int      `json:"d_tree_mode0"`
	DCPL   float64  `json:"d_cpl_mode1"`
	DExact [2]int64 `json:"d_cpl_mode1_exact"`
}

func loadVectors(t testing.TB) *vectorFile {
	t.Helper()
	b, err := vectors.Read(vectorFileName)
	if err != nil {
		t.Fatalf("vectors: %v", err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("vectors: %v", err)
	}
	if len(v.Encode) == 0 || len(v.DecodeOnly) == 0 || len(v.Distances) == 0 {
		t.Fatalf("vectors: a section is empty: %d encode, %d decode_only, %d distances",
			len(v.Encode), len(v.DecodeOnly), len(v.Distances))
	}
	return &v
}

func u8s(t testing.TB, in []int) []uint8 {
	t.Helper()
	out := make([]uint8, len(in))
	for i, v := range in {
		if v < 0 || v > 255 {
			t.Fatalf("vector coordinate %d does not fit a byte", v)
		}
		out[i] = uint8(v)
	}
	return out
}

func mustHex(t testing.TB, s string) Address {
	t.Helper()
	a, err := ParseHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// nibbleWidth is the nibble count of coords per the spec text, computed
// independently of the package's encoder.
func nibbleWidth(coords []uint8) int {
	n := 0
	for _, c := range coords {
		if c < 8 || n == Nibbles-1 {
			n++
		} else {
			n += 2
		}
	}
	return n
}

func TestEncodeVectors(t *testing.T) {
	v := loadVectors(t)
	var nOK, nErr int
	for _, tc := range v.Encode {
		coords := u8s(t, tc.Coords)
		name := FormatCoords(coords)
		got, err := Encode(coords)
		if tc.Address == nil {
			nErr++
			var want error
			switch {
			case strings.Contains(tc.Error, "out of range"):
				want = ErrCoord
			case strings.Contains(tc.Error, "longer than 32 nibbles"):
				want = ErrTooDeep
			default:
				t.Fatalf("[%s]: unknown vector error %q", name, tc.Error)
			}
			if !errors.Is(err, want) {
				t.Errorf("Encode(%s) = %v, %v; want error wrapping %v (vector: %q)", name, got, err, want, tc.Error)
			}
			continue
		}
		nOK++
		if err != nil {
			t.Errorf("Encode(%s): %v", name, err)
			continue
		}
		if got.Hex() != *tc.Address {
			t.Errorf("Encode(%s) = %s, want %s", name, got.Hex(), *tc.Address)
		}
		if m := MustEncode(coords...); m != got {
			t.Errorf("MustEncode(%s) = %s, Encode gave %s", name, m.Hex(), got.Hex())
		}
		a := mustHex(t, *tc.Address)
		want := u8s(t, tc.Decoded)
		if dec := a.Coords(); !slices.Equal(dec, want) {
			t.Errorf("%s.Coords() = %v, want %v", *tc.Address, dec, want)
		}
		if a.Depth() != len(want) {
			t.Errorf("%s.Depth() = %d, want %d", *tc.Address, a.Depth(), len(want))
		}
		if a.NibbleLen() != nibbleWidth(want) {
			t.Errorf("%s.NibbleLen() = %d, want %d", *tc.Address, a.NibbleLen(), nibbleWidth(want))
		}
		if a.Canonical() != a {
			t.Errorf("%s is an encoder output but Canonical changed it to %s", a.Hex(), a.Canonical().Hex())
		}
		if s := a.String(); s != FormatCoords(want) {
			t.Errorf("%s.String() = %q, want %q", a.Hex(), s, FormatCoords(want))
		}
		back, err := ParseCoords(a.String())
		if err != nil || !slices.Equal(back, want) {
			t.Errorf("ParseCoords(%q) = %v, %v; want %v", a.String(), back, err, want)
		}
	}
	if nOK == 0 || nErr == 0 {
		t.Fatalf("expected both valid and error encode vectors, got %d and %d", nOK, nErr)
	}
}

func TestDecodeOnlyVectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.DecodeOnly {
		a := mustHex(t, tc.Address)
		want := u8s(t, tc.Coords)
		if got := a.Coords(); !slices.Equal(got, want) {
			t.Errorf("%s.Coords() = %v, want %v", tc.Address, got, want)
		}
		if a.Depth() != len(want) {
			t.Errorf("%s.Depth() = %d, want %d", tc.Address, a.Depth(), len(want))
		}
		if a.Hex() != tc.Address {
			t.Errorf("Hex changed the bytes: %s -> %s", tc.Address, a.Hex())
		}
		c := a.Canonical()
		enc, err := Encode(want)
		if err != nil {
			t.Errorf("Encode(%v): %v", want, err)
		} else if c != enc {
			t.Errorf("%s.Canonical() = %s, want Encode(coords) = %s", tc.Address, c.Hex(), enc.Hex())
		}
		if changed := c != a; changed != tc.AfterNonzero {
			t.Errorf("%s: Canonical changed bytes = %v, vector says nibbles after terminator nonzero = %v",
				tc.Address, changed, tc.AfterNonzero)
		}
		if !a.Equal(c) || !c.Equal(a) || !a.Equal(enc) {
			t.Errorf("%s: not Equal to its canonical form %s", tc.Address, c.Hex())
		}
		if CPL(a, c) != len(want) || DistTree(a, c) != 0 || MetricCPL.Key(a, c) != 0 {
			t.Errorf("%s: lease bits leak into routing: cpl %d, dtree %d, key %d",
				tc.Address, CPL(a, c), DistTree(a, c), MetricCPL.Key(a, c))
		}
	}
}

// cmpRat compares n1/d1 with n2/d2 (positive denominators) exactly.
func cmpRat(n1, d1, n2, d2 int64) int {
	l, r := n1*d2, n2*d1
	switch {
	case l < r:
		return -1
	case l > r:
		return 1
	}
	return 0
}

func cmpU32(x, y uint32) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func cmpInt(x, y int) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func TestDistanceVectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Distances {
		ca, cb := u8s(t, tc.A), u8s(t, tc.B)
		name := "[" + FormatCoords(ca) + "]-[" + FormatCoords(cb) + "]"
		a, b := mustHex(t, tc.AAddr), mustHex(t, tc.BAddr)
		if ea, err := Encode(ca); err != nil || ea != a {
			t.Errorf("%s: Encode(a) = %s, %v; vector address %s", name, ea.Hex(), err, tc.AAddr)
		}
		if eb, err := Encode(cb); err != nil || eb != b {
			t.Errorf("%s: Encode(b) = %s, %v; vector address %s", name, eb.Hex(), err, tc.BAddr)
		}
		if a.Depth() != tc.LenA || b.Depth() != tc.LenB {
			t.Errorf("%s: depths %d,%d want %d,%d", name, a.Depth(), b.Depth(), tc.LenA, tc.LenB)
		}
		for _, p := range [][2]Address{{a, b}, {b, a}} { // both orders: every metric is symmetric
			x, y := p[0], p[1]
			if got := CPL(x, y); got != tc.CPL {
				t.Errorf("%s: CPL = %d, want %d", name, got, tc.CPL)
			}
			if got := DistTree(x, y); got != tc.DTree {
				t.Errorf("%s: DistTree = %d, want %d", name, got, tc.DTree)
			}
			if got := MetricTree.Key(x, y); got != uint32(tc.DTree) {
				t.Errorf("%s: MetricTree.Key = %d, want %d", name, got, tc.DTree)
			}
			if got := MetricTree.Distance(x, y); got != float64(tc.DTree) {
				t.Errorf("%s: MetricTree.Distance = %v, want %d", name, got, tc.DTree)
			}
			if got := MetricTree.FormatDistance(x, y); got != strconv.Itoa(tc.DTree) {
				t.Errorf("%s: MetricTree.FormatDistance = %q, want %d", name, got, tc.DTree)
			}
			num, den := DistCPL(x, y)
			if den <= 0 || cmpRat(int64(num), int64(den), tc.DExact[0], tc.DExact[1]) != 0 {
				t.Errorf("%s: DistCPL = %d/%d, want %d/%d", name, num, den, tc.DExact[0], tc.DExact[1])
			}
			if int64(num) != tc.DExact[0] || int64(den) != tc.DExact[1] {
				t.Errorf("%s: DistCPL = %d/%d, vector has the same value as %d/%d (not reduced alike)",
					name, num, den, tc.DExact[0], tc.DExact[1])
			}
			d := MetricCPL.Distance(x, y)
			if math.Abs(d-tc.DCPL) > 1e-12 {
				t.Errorf("%s: MetricCPL.Distance = %v, want %v", name, d, tc.DCPL)
			}
			s := MetricCPL.FormatDistance(x, y)
			if f, err := strconv.ParseFloat(s, 64); err != nil || f != d {
				t.Errorf("%s: MetricCPL.FormatDistance = %q, does not round-trip to %v", name, s, d)
			}
		}
	}
}

// TestKeyOrdersDistanceVectors checks every pair of distance vectors: the
// integer keys must order them exactly as the vectors' exact distances do,
// ties included (many vectors share 98/3), since a relay ranks peers by Key
// alone.
func TestKeyOrdersDistanceVectors(t *testing.T) {
	v := loadVectors(t)
	type row struct {
		name     string
		k0, k1   uint32
		dt       int
		num, den int64
	}
	rows := make([]row, len(v.Distances))
	for i, tc := range v.Distances {
		a, b := mustHex(t, tc.AAddr), mustHex(t, tc.BAddr)
		rows[i] = row{tc.AAddr + "/" + tc.BAddr, MetricTree.Key(a, b), MetricCPL.Key(a, b),
			tc.DTree, tc.DExact[0], tc.DExact[1]}
	}
	for _, x := range rows {
		for _, y := range rows {
			if want, got := cmpInt(x.dt, y.dt), cmpU32(x.k0, y.k0); got != want {
				t.Errorf("mode 0: %s vs %s: key order %d, distance order %d", x.name, y.name, got, want)
			}
			want, got := cmpRat(x.num, x.den, y.num, y.den), cmpU32(x.k1, y.k1)
			if got != want {
				t.Errorf("mode 1: %s (%d/%d, key %#x) vs %s (%d/%d, key %#x): key order %d, distance order %d",
					x.name, x.num, x.den, x.k1, y.name, y.num, y.den, y.k1, got, want)
			}
		}
	}
}

// TestKeyOrderExhaustive checks the mode-1 key against exact rationals for
// every reachable (cpl, |a|, |b|), not just the vectors: sorted by exact
// distance, keys must never decrease and must tie exactly when distances do.
func TestKeyOrderExhaustive(t *testing.T) {
	type entry struct {
		d   *big.Rat
		key uint32
		tag string
	}
	var es []entry
	ones := make([]uint8, Nibbles)
	for i := range ones {
		ones[i] = 1
	}
	for la := 0; la <= Nibbles; la++ {
		for lb := 0; lb <= Nibbles; lb++ {
			for cpl := 0; cpl <= min(la, lb); cpl++ {
				ca := append(slices.Clone(ones[:cpl]), slices.Repeat([]uint8{2}, la-cpl)...)
				cb := append(slices.Clone(ones[:cpl]), slices.Repeat([]uint8{3}, lb-cpl)...)
				a, b := MustEncode(ca...), MustEncode(cb...)
				if CPL(a, b) != cpl || a.Depth() != la || b.Depth() != lb {
					t.Fatalf("built (%v,%v): cpl %d depths %d,%d", ca, cb, CPL(a, b), a.Depth(), b.Depth())
				}
				d := new(big.Rat)
				if cpl != la || cpl != lb {
					d.SetInt64(int64(L - cpl))
					d.Sub(d, big.NewRat(1, int64(la+lb+1)))
				}
				num, den := DistCPL(a, b)
				if d.Cmp(big.NewRat(int64(num), int64(den))) != 0 {
					t.Fatalf("DistCPL(%v,%v) = %d/%d, want %v", ca, cb, num, den, d)
				}
				es = append(es, entry{d, MetricCPL.Key(a, b), a.String() + " / " + b.String()})
			}
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].d.Cmp(es[j].d) < 0 })
	for i := 1; i < len(es); i++ {
		p, q := es[i-1], es[i]
		if want, got := p.d.Cmp(q.d), cmpU32(p.key, q.key); want != got {
			t.Fatalf("%s (%v, key %#x) vs %s (%v, key %#x): key order %d, distance order %d",
				p.tag, p.d, p.key, q.tag, q.d, q.key, got, want)
		}
	}
	t.Logf("%d (cpl,|a|,|b|) combinations", len(es))
}

func TestEncodeErrors(t *testing.T) {
	rep := func(c uint8, n int) []uint8 { return slices.Repeat([]uint8{c}, n) }
	cat := func(parts ...[]uint8) []uint8 { return slices.Concat(parts...) }
	tests := []struct {
		coords []uint8
		want   error  // nil: must encode
		msg    string // substring naming the offender
	}{
		{[]uint8{0}, ErrCoord, "coords[0] = 0"},
		{[]uint8{136}, ErrCoord, "coords[0] = 136"},
		{[]uint8{255}, ErrCoord, "coords[0] = 255"},
		{[]uint8{3, 1, 0}, ErrCoord, "coords[2] = 0"},
		{[]uint8{3, 200, 1}, ErrCoord, "coords[1] = 200"},
		{rep(1, 33), ErrTooDeep, "coords[32] = 1"},
		{rep(135, 17), ErrTooDeep, "coords[16] = 135"},
		{cat(rep(1, 31), []uint8{16}), ErrTooDeep, "coords[31] = 16"},
		{cat(rep(1, 31), []uint8{135}), ErrTooDeep, "coords[31] = 135"},
		{cat(rep(1, 31), []uint8{15, 1}), ErrTooDeep, "coords[32] = 1"},
		{cat(rep(8, 16), []uint8{1}), ErrTooDeep, "coords[16] = 1"},
		{cat(rep(1, 32), []uint8{0}), ErrCoord, "coords[32] = 0"}, // range is checked first
		{rep(1, 32), nil, ""},
		{rep(135, 16), nil, ""},
		{cat(rep(1, 30), []uint8{16}), nil, ""}, // a pair at nibbles 30..31 fits
		{cat(rep(1, 31), []uint8{15}), nil, ""}, // 8..15 alone in the last nibble
		{cat(rep(1, 31), []uint8{7}), nil, ""},
		{cat([]uint8{9}, rep(1, 29), []uint8{12}), nil, ""}, // 2+29 nibbles, then 12 alone at 31
	}
	for _, tc := range tests {
		a, err := Encode(tc.coords)
		if tc.want == nil {
			if err != nil {
				t.Errorf("Encode(%v): %v", tc.coords, err)
			} else if got := a.Coords(); !slices.Equal(got, tc.coords) {
				t.Errorf("Encode(%v) = %s decodes to %v", tc.coords, a.Hex(), got)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("Encode(%v) = %s, %v; want %v", tc.coords, a.Hex(), err, tc.want)
			continue
		}
		other := ErrCoord
		if tc.want == ErrCoord {
			other = ErrTooDeep
		}
		if errors.Is(err, other) {
			t.Errorf("Encode(%v): %v wraps both sentinels", tc.coords, err)
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Encode(%v): %q does not name %q", tc.coords, err, tc.msg)
		}
		if a != (Address{}) {
			t.Errorf("Encode(%v) returned %s with its error, want zero", tc.coords, a.Hex())
		}
	}
}

func TestMustEncodePanics(t *testing.T) {
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, ErrCoord) {
			t.Errorf("MustEncode(0) panicked with %v, want an error wrapping ErrCoord", r)
		}
	}()
	MustEncode(0)
}

func TestParseCoords(t *testing.T) {
	good := []struct {
		in   string
		want []uint8
		out  string
	}{
		{"", []uint8{}, ""},
		{"   ", []uint8{}, ""},
		{"3,1", []uint8{3, 1}, "3,1"},
		{" 3 , 1 ", []uint8{3, 1}, "3,1"},
		{"\t8,3\n", []uint8{8, 3}, "8,3"},
		{"135", []uint8{135}, "135"},
		{"007,1", []uint8{7, 1}, "7,1"},
	}
	for _, tc := range good {
		got, err := ParseCoords(tc.in)
		if err != nil || got == nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseCoords(%q) = %#v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		if s := FormatCoords(got); s != tc.out {
			t.Errorf("FormatCoords(%v) = %q, want %q", got, s, tc.out)
		}
	}
	bad := []struct {
		in       string
		coordErr bool
	}{
		{"0", true}, {"136", true}, {"3,256", true}, {"1,99999999999999999999999", true},
		{"a", false}, {"1,,2", false}, {"1,", false}, {",1", false}, {"-1", false},
		{"+1", false}, {"1 2", false}, {"0x10", false}, {"1;2", false}, {"1.5", false},
	}
	for _, tc := range bad {
		got, err := ParseCoords(tc.in)
		if err == nil {
			t.Errorf("ParseCoords(%q) = %v, want an error", tc.in, got)
			continue
		}
		if errors.Is(err, ErrCoord) != tc.coordErr {
			t.Errorf("ParseCoords(%q): %v; wraps ErrCoord = %v, want %v", tc.in, err, !tc.coordErr, tc.coordErr)
		}
	}
	// Every coordinate value round-trips through the text form.
	all := make([]uint8, MaxCoord)
	for i := range all {
		all[i] = uint8(i + 1)
	}
	if got, err := ParseCoords(FormatCoords(all)); err != nil || !slices.Equal(got, all) {
		t.Errorf("round trip of 1..135: %v, %v", got, err)
	}
}

func TestHex(t *testing.T) {
	a := MustEncode(12, 1, 3)
	if a.Hex() != "84130000000000000000000000000000" {
		t.Errorf("Hex = %s", a.Hex())
	}
	for _, s := range []string{"84130000000000000000000000000000", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "0123456789abcdefABCDEF0000000000"} {
		b, err := ParseHex(s)
		if err != nil || b.Hex() != strings.ToLower(s) {
			t.Errorf("ParseHex(%q) = %s, %v", s, b.Hex(), err)
		}
	}
	for _, s := range []string{"", "8413", "841300000000000000000000000000000", "8413000000000000000000000000000",
		"8413000000000000000000000000000g", "84130000000000000000000000000 00", "0x130000000000000000000000000000"} {
		if b, err := ParseHex(s); err == nil {
			t.Errorf("ParseHex(%q) = %s, want an error", s, b.Hex())
		}
	}
}

func TestString(t *testing.T) {
	if s := (Address{}).String(); s != "" {
		t.Errorf("root String = %q, want \"\"", s)
	}
	if s := MustEncode(3, 1).String(); s != "3,1" {
		t.Errorf("String = %q, want 3,1", s)
	}
	if c := (Address{}).Coords(); c == nil || len(c) != 0 {
		t.Errorf("root Coords = %#v, want non-nil empty", c)
	}
	if s := mustHex(t, "30111111111111111111111111111111").String(); s != "3" {
		t.Errorf("leased String = %q, want 3", s)
	}
}

func TestChildParentAncestor(t *testing.T) {
	v := loadVectors(t)
	root := Address{}
	if p, ok := root.Parent(); ok || p != root {
		t.Errorf("root.Parent() = %s, %v; want root, false", p.Hex(), ok)
	}
	if p, ok := mustHex(t, "01ffffffffffffffffffffffffffffff").Parent(); ok || p != root {
		t.Errorf("leased root Parent() = %s, %v; want root, false", p.Hex(), ok)
	}
	// Build every vector address from the root one Child at a time, and walk
	// it back with Parent.
	for _, tc := range v.Encode {
		if tc.Address == nil {
			continue
		}
		coords := u8s(t, tc.Coords)
		want := mustHex(t, *tc.Address)
		a := root
		for i, c := range coords {
			next, err := a.Child(c)
			if err != nil {
				t.Fatalf("%v: Child(%d) at depth %d: %v", coords, c, i, err)
			}
			if !a.IsAncestorOf(next) || next.IsAncestorOf(a) {
				t.Errorf("%s / %s: ancestry wrong", a, next)
			}
			a = next
		}
		if a != want {
			t.Errorf("Child chain for %v = %s, want %s", coords, a.Hex(), want.Hex())
		}
		for i := len(coords) - 1; i >= 0; i-- {
			p, ok := a.Parent()
			if !ok || p != MustEncode(coords[:i]...) {
				t.Fatalf("%v: Parent at depth %d = %s, %v", coords, i+1, p.Hex(), ok)
			}
			if !p.IsAncestorOf(want) {
				t.Errorf("%s is not an ancestor of %s", p, want)
			}
			a = p
		}
		if a != root {
			t.Errorf("%v: walked up to %s, not the root", coords, a.Hex())
		}
		if want.IsAncestorOf(want) {
			t.Errorf("%s is its own ancestor", want)
		}
	}
	// Lease bits: dropped by Child and Parent, ignored by IsAncestorOf.
	leased := mustHex(t, "30111111111111111111111111111111") // coordinates: 3
	if c, err := leased.Child(1); err != nil || c != MustEncode(3, 1) {
		t.Errorf("leased.Child(1) = %s, %v", c.Hex(), err)
	}
	if p, ok := mustHex(t, "31011111111111111111111111111111").Parent(); !ok || p != MustEncode(3) {
		t.Errorf("Parent of leased 3,1 = %s, %v", p.Hex(), ok)
	}
	if !leased.IsAncestorOf(MustEncode(3, 1)) || leased.IsAncestorOf(MustEncode(3)) {
		t.Error("IsAncestorOf looks at lease bits")
	}
	if MustEncode(3).IsAncestorOf(MustEncode(4, 1)) || MustEncode(3, 1).IsAncestorOf(MustEncode(3)) {
		t.Error("IsAncestorOf true for a non-ancestor")
	}
	if !root.IsAncestorOf(MustEncode(135)) || root.IsAncestorOf(root) {
		t.Error("root ancestry wrong")
	}
	// Child errors are Encode's.
	full := MustEncode(slices.Repeat([]uint8{1}, 32)...)
	if _, err := full.Child(1); !errors.Is(err, ErrTooDeep) {
		t.Errorf("full.Child(1): %v", err)
	}
	last := MustEncode(slices.Repeat([]uint8{1}, 31)...)
	if _, err := last.Child(16); !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), "coords[31] = 16") {
		t.Errorf("Child(16) at the last nibble: %v", err)
	}
	if c, err := last.Child(15); err != nil || c.Hex() != "1111111111111111111111111111111f" {
		t.Errorf("Child(15) at the last nibble = %s, %v", c.Hex(), err)
	}
	for _, bad := range []uint8{0, 136, 255} {
		if _, err := root.Child(bad); !errors.Is(err, ErrCoord) {
			t.Errorf("Child(%d): %v", bad, err)
		}
	}
}

func TestEqualAndCanonical(t *testing.T) {
	a := mustHex(t, "12003400000000000000000000000000")
	b := MustEncode(1, 2)
	if !a.Equal(b) || a == b || a.Canonical() != b {
		t.Errorf("Equal/Canonical ignore the terminator wrong: %s %s", a.Hex(), a.Canonical().Hex())
	}
	if MustEncode(1, 2).Equal(MustEncode(1, 2, 1)) || MustEncode(1).Equal(Address{}) {
		t.Error("Equal true for different coordinates")
	}
	// A terminator in the middle of a byte keeps the high nibble.
	if c := mustHex(t, "8030ffffffffffffffffffffffffffff").Canonical(); c != MustEncode(8, 3) {
		t.Errorf("Canonical = %s", c.Hex())
	}
	if n := mustHex(t, "8030ffffffffffffffffffffffffffff").NibbleLen(); n != 3 {
		t.Errorf("NibbleLen = %d, want 3", n)
	}
}

func TestFormatDistance(t *testing.T) {
	root := Address{}
	tests := []struct {
		m    Metric
		a, b Address
		want string
	}{
		{MetricTree, root, root, "0"},
		{MetricCPL, root, root, "0"},
		{MetricCPL, MustEncode(3, 1), mustHex(t, "310fffffffffffffffffffffffffffff"), "0"},
		{MetricTree, MustEncode(3, 1), MustEncode(3), "1"},
		{MetricCPL, MustEncode(3, 1), MustEncode(3), "31.75"},
		{MetricCPL, MustEncode(3), MustEncode(1), "32.666666666666664"},
		{MetricCPL, root, MustEncode(8), "32.5"},
	}
	for _, tc := range tests {
		if got := tc.m.FormatDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("mode %d FormatDistance(%s, %s) = %q, want %q", tc.m, tc.a, tc.b, got, tc.want)
		}
	}
}

// The mode bit is bit 0 of the flags byte; Key must not depend on the rest.
func TestMetricLowBit(t *testing.T) {
	a, b := MustEncode(3, 1, 4), MustEncode(3, 9)
	for m := 0; m < 256; m++ {
		want := MetricTree.Key(a, b)
		if m&1 == 1 {
			want = MetricCPL.Key(a, b)
		}
		if got := Metric(m).Key(a, b); got != want {
			t.Errorf("Metric(%#x).Key = %d, want %d", m, got, want)
		}
	}
}

var (
	sinkInt   int
	sinkU32   uint32
	sinkBytes []uint8
)

func TestZeroAllocs(t *testing.T) {
	a := MustEncode(6, 2, 132, 5, 5, 3, 6, 2, 2, 3, 26, 7, 60, 60, 82, 35, 2, 3, 5, 5, 38, 56, 4, 7)
	b := MustEncode(6, 2, 132, 5, 5, 3, 6, 2, 2, 3, 26, 7, 60, 61)
	buf := make([]uint8, 0, Nibbles)
	checks := []struct {
		name string
		f    func()
	}{
		{"CPL", func() { sinkInt = CPL(a, b) }},
		{"Depth", func() { sinkInt = a.Depth() }},
		{"NibbleLen", func() { sinkInt = a.NibbleLen() }},
		{"DistTree", func() { sinkInt = DistTree(a, b) }},
		{"DistCPL", func() { n, d := DistCPL(a, b); sinkInt = n + d }},
		{"MetricTree.Key", func() { sinkU32 = MetricTree.Key(a, b) }},
		{"MetricCPL.Key", func() { sinkU32 = MetricCPL.Key(a, b) }},
		{"AppendCoords", func() { sinkBytes = a.AppendCoords(buf[:0]) }},
		{"Child", func() { c, _ := b.Child(9); sinkInt = int(c[0]) }},
		{"Parent", func() { p, _ := a.Parent(); sinkInt = int(p[0]) }},
		{"Equal", func() {
			if a.Equal(b) {
				sinkInt++
			}
		}},
	}
	for _, c := range checks {
		if n := testing.AllocsPerRun(100, c.f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", c.name, n)
		}
	}
}

// benchAddrs are the valid encode vectors, so benchmarks see realistic depths.
func benchAddrs(b *testing.B) ([][]uint8, []Address) {
	v := loadVectors(b)
	var cs [][]uint8
	var as []Address
	for _, tc := range v.Encode {
		if tc.Address != nil {
			cs = append(cs, u8s(b, tc.Coords))
			as = append(as, mustHex(b, *tc.Address))
		}
	}
	return cs, as
}

func BenchmarkEncode(b *testing.B) {
	cs, _ := benchAddrs(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a, _ := Encode(cs[i%len(cs)])
		sinkInt = int(a[0])
		i++
	}
}

func BenchmarkCoords(b *testing.B) {
	_, as := benchAddrs(b)
	buf := make([]uint8, 0, Nibbles)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sinkBytes = as[i%len(as)].AppendCoords(buf[:0])
		i++
	}
}

func BenchmarkKey(b *testing.B) {
	_, as := benchAddrs(b)
	for _, m := range []Metric{MetricTree, MetricCPL} {
		b.Run([]string{"tree", "cpl"}[m], func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkU32 = m.Key(as[i%len(as)], as[(i*7+3)%len(as)])
				i++
			}
		})
	}
}
