package cert

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
	"testing"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

// Fixed times (Unix ns) so signatures, and so the golden encodings, are
// deterministic.
const (
	testTerm = int64(1_750_000_000_000_000_000)
	testNow  = testTerm + 30_000_000_000
)

var (
	keysMu sync.Mutex
	keys   = map[int]Key{}
)

// key returns test node i's deterministic private key.
func key(i int) Key {
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[i]; ok {
		return k
	}
	var seed [ed25519.SeedSize]byte
	binary.BigEndian.PutUint32(seed[:], uint32(i))
	copy(seed[4:], "cert test node")
	k := Key(ed25519.NewKeyFromSeed(seed[:]))
	keys[i] = k
	return k
}

func pub(i int) ed25519.PublicKey { return key(i).Public() }

// buildChain makes the chain of tree/termStart rooted at node 0, where node
// l+1 sits at level l+1 with index indices[l] under node l (keys offset by
// base for l ≥ 1, so two chains can share or not share their nodes).
func buildChain(t testing.TB, tree uint8, termStart int64, base int, indices ...uint8) Chain {
	t.Helper()
	ch := Chain{Claim: NewClaim(key(0), tree, termStart, testNow)}
	for l, idx := range indices {
		parent := key(0)
		if l > 0 {
			parent = key(base + l)
		}
		next, err := ch.Extend(parent, pub(base+l+1), idx)
		if err != nil {
			t.Fatalf("Extend level %d index %d: %v", l+1, idx, err)
		}
		ch = next
	}
	return ch
}

// indices20 mixes one- and two-nibble coordinates: 20 levels in 30 nibbles.
var indices20 = []uint8{3, 1, 8, 135, 2, 7, 40, 1, 1, 9, 4, 5, 100, 6, 3, 16, 2, 1, 77, 7}

func encode(ch *Chain) []byte { return ch.AppendTo(nil) }

func mustVerify(t *testing.T, v *Verifier, ch *Chain) addr.Long {
	t.Helper()
	a, err := v.Verify(ch)
	if err != nil {
		t.Fatalf("Verify (depth %d): %v", ch.Depth(), err)
	}
	return a
}

func TestClaimEncoding(t *testing.T) {
	c := NewClaim(key(0), 5, testTerm, testNow)
	b := c.AppendTo([]byte{0xaa})
	if len(b) != 1+ClaimSize || ClaimSize != 113 {
		t.Fatalf("AppendTo gave %d bytes after a 1-byte prefix; ClaimSize = %d", len(b), ClaimSize)
	}
	if b[0] != 0xaa {
		t.Fatal("AppendTo overwrote the prefix")
	}
	// The layout of the brief, field by field.
	w := b[1:]
	if w[0] != 5 || !bytes.Equal(w[1:33], pub(0)) ||
		binary.BigEndian.Uint64(w[33:41]) != uint64(testTerm) ||
		binary.BigEndian.Uint64(w[41:49]) != uint64(testNow) || !bytes.Equal(w[49:], c.Sig[:]) {
		t.Fatalf("claim layout wrong: %x", w)
	}
	var d Claim
	if err := d.UnmarshalBinary(w); err != nil {
		t.Fatal(err)
	}
	if d != c {
		t.Fatalf("round trip: %+v != %+v", d, c)
	}
	m, _ := c.MarshalBinary()
	if !bytes.Equal(m, w) {
		t.Fatal("MarshalBinary differs from AppendTo")
	}
	// Negative times survive too (the fields are signed).
	c.TermStart, c.Time = -1, -1<<63
	if err := d.UnmarshalBinary(c.AppendTo(nil)); err != nil || d != c {
		t.Fatalf("negative times: %v %+v", err, d)
	}
	buf := make([]byte, 0, ClaimSize)
	if n := testing.AllocsPerRun(100, func() { buf = c.AppendTo(buf[:0]) }); n != 0 {
		t.Errorf("Claim.AppendTo allocates %v times with room", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = d.UnmarshalBinary(buf) }); n != 0 {
		t.Errorf("Claim.UnmarshalBinary allocates %v times", n)
	}
}

func TestClaimDecodeErrors(t *testing.T) {
	good := NewClaim(key(0), 1, testTerm, testNow)
	enc := good.AppendTo(nil)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTooShort},
		{"one short", enc[:ClaimSize-1], ErrTooShort},
		{"trailing byte", append(slices.Clone(enc), 0), ErrLength},
	} {
		d := good
		err := d.UnmarshalBinary(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if d != good {
			t.Errorf("%s: claim modified on error", tc.name)
		}
	}
}

func TestSignedBytes(t *testing.T) {
	c := NewClaim(key(0), 7, testTerm, testNow)
	msg := c.SignedBytes(nil)
	want := []byte("mycelium/claim/v1")
	want = append(want, 7)
	want = append(want, pub(0)...)
	want = binary.BigEndian.AppendUint64(want, uint64(testTerm))
	want = binary.BigEndian.AppendUint64(want, uint64(testNow))
	if !bytes.Equal(msg, want) {
		t.Fatalf("SignedBytes = %q\nwant          %q", msg, want)
	}
	if !ed25519.Verify(pub(0), want, c.Sig[:]) {
		t.Fatal("claim signature is not over SignedBytes")
	}

	// The certificate message: domain ‖ tree ‖ tree_state ‖ root ‖ term
	// start ‖ child ‖ child address, signed by the parent.
	a := addr.MustEncode(3, 40)
	term := Term{Tree: 7, TreeState: 0x5c, Start: 123456789}
	copy(term.Root[:], pub(0))
	ce := IssueCert(key(1), term, pub(2), a.Long(), 40)
	cm := []byte("mycelium/cert/v1")
	cm = append(cm, 7, 0x5c)
	cm = append(cm, pub(0)...)
	cm = binary.BigEndian.AppendUint64(cm, 123456789)
	cm = append(cm, pub(2)...)
	cm = append(cm, a[:]...)
	if !ed25519.Verify(pub(1), cm, ce.Sig[:]) {
		t.Fatal("certificate signature is not over the specified message")
	}
	if ce.Index != 40 || !bytes.Equal(ce.Child[:], pub(2)) {
		t.Fatalf("IssueCert fields: %+v", ce)
	}
}

func TestCertEncoding(t *testing.T) {
	c := IssueCert(key(1), Term{TreeState: 9}, pub(2), addr.MustEncode(4, 135).Long(), 135)
	b := c.AppendTo(nil)
	if len(b) != CertSize || CertSize != 97 {
		t.Fatalf("cert encodes to %d bytes, CertSize %d", len(b), CertSize)
	}
	if !bytes.Equal(b[:32], pub(2)) || b[32] != 135 || !bytes.Equal(b[33:], c.Sig[:]) {
		t.Fatalf("cert layout wrong: %x", b)
	}
	var d Cert
	if err := d.UnmarshalBinary(b); err != nil || d != c {
		t.Fatalf("round trip: %v, %+v", err, d)
	}
	m, _ := c.MarshalBinary()
	if !bytes.Equal(m, b) {
		t.Fatal("MarshalBinary differs from AppendTo")
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTooShort},
		{"one short", b[:CertSize-1], ErrTooShort},
		{"trailing byte", append(slices.Clone(b), 1), ErrLength},
		{"index 0", withByte(b, 32, 0), ErrIndex},
		{"index 136", withByte(b, 32, 136), ErrIndex},
		{"index 255", withByte(b, 32, 255), ErrIndex},
	} {
		e := c
		err := e.UnmarshalBinary(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if e != c {
			t.Errorf("%s: cert modified on error", tc.name)
		}
	}
	if err := d.UnmarshalBinary(withByte(b, 32, 1)); err != nil || d.Index != 1 {
		t.Errorf("index 1: %v", err)
	}
}

func withByte(b []byte, i int, v byte) []byte {
	c := slices.Clone(b)
	c[i] = v
	return c
}

func TestChainRoundTrip(t *testing.T) {
	for _, idx := range [][]uint8{nil, {7}, {1, 8, 3, 135, 2}, indices20} {
		ch := buildChain(t, 2, testTerm, 0, idx...)
		b := ch.AppendTo([]byte{0xee})[1:]
		if len(b) != ch.Size() || ch.Size() != ClaimSize+1+CertSize*len(idx) {
			t.Fatalf("depth %d: %d bytes, Size %d", len(idx), len(b), ch.Size())
		}
		if b[ClaimSize] != uint8(len(idx)) {
			t.Fatalf("depth %d: count byte %d", len(idx), b[ClaimSize])
		}
		var d Chain
		if err := d.UnmarshalBinary(b); err != nil {
			t.Fatalf("depth %d: %v", len(idx), err)
		}
		if d.Claim != ch.Claim || !slices.Equal(d.Certs, ch.Certs) {
			t.Fatalf("depth %d: round trip differs", len(idx))
		}
		if !bytes.Equal(encode(&d), b) {
			t.Fatalf("depth %d: re-encoding differs", len(idx))
		}
		m, err := ch.MarshalBinary()
		if err != nil || !bytes.Equal(m, b) {
			t.Fatalf("depth %d: MarshalBinary: %v", len(idx), err)
		}
	}

	// Decoding reuses the backing array, and neither direction allocates
	// when there is room: a relay decodes every chain it sees into one.
	long := buildChain(t, 2, testTerm, 0, indices20...)
	short := buildChain(t, 2, testTerm, 0, 1, 2, 3)
	var d Chain
	if err := d.UnmarshalBinary(encode(&long)); err != nil {
		t.Fatal(err)
	}
	first := &d.Certs[0]
	sb := encode(&short)
	if err := d.UnmarshalBinary(sb); err != nil {
		t.Fatal(err)
	}
	if &d.Certs[0] != first || d.Depth() != 3 {
		t.Fatal("UnmarshalBinary did not reuse the Certs backing array")
	}
	// The decoded chain holds no reference to the input.
	sb[ClaimSize+1] ^= 0xff
	if d.Certs[0] != short.Certs[0] {
		t.Fatal("decoded chain aliases its input")
	}
	lb := encode(&long)
	buf := make([]byte, 0, MaxChainSize)
	if n := testing.AllocsPerRun(50, func() {
		if err := d.UnmarshalBinary(lb); err != nil {
			t.Fatal(err)
		}
		buf = d.AppendTo(buf[:0])
	}); n != 0 {
		t.Errorf("chain decode+encode allocates %v times", n)
	}
}

// rawChain encodes a chain with the given indices and dummy keys and
// signatures, for structure errors that Extend refuses to build.
func rawChain(count int, indices ...uint8) []byte {
	c := NewClaim(key(0), 0, testTerm, testNow)
	b := c.AppendTo(nil)
	b = append(b, uint8(count))
	for _, idx := range indices {
		ce := Cert{Index: idx}
		ce.Child[0] = idx
		b = ce.AppendTo(b)
	}
	return b
}

func TestChainDecodeErrors(t *testing.T) {
	good := buildChain(t, 0, testTerm, 0, 1, 2)
	enc := encode(&good)
	ones := func(n int) []uint8 {
		s := make([]uint8, n)
		for i := range s {
			s[i] = 1
		}
		return s
	}
	sixteens := func(n int) []uint8 {
		s := make([]uint8, n)
		for i := range s {
			s[i] = 16
		}
		return s
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTooShort},
		{"claim only, no count", enc[:ClaimSize], ErrTooShort},
		{"one cert byte missing", enc[:len(enc)-1], ErrTooShort},
		{"count says 3, has 2", withByte(enc, ClaimSize, 3), ErrTooShort},
		{"trailing byte", append(slices.Clone(enc), 0), ErrLength},
		{"count says 1, has 2", withByte(enc, ClaimSize, 1), ErrLength},
		{"count 129", rawChain(129, ones(129)...), ErrTooLong},
		{"count 255", rawChain(255, ones(129)...), ErrTooLong},
		{"index 0", withByte(enc, ClaimSize+1+32, 0), ErrIndex},
		{"index 136", withByte(enc, ClaimSize+1+CertSize+32, 136), ErrIndex},
		// 65 two-nibble coordinates need 130 nibbles.
		{"address overflow", rawChain(65, sixteens(65)...), ErrTooLong},
		// 127 one-nibble coordinates, then 9 needs a pair at the last
		// nibble (a Long's last nibble holds only 1-7).
		{"overflow at the last nibble", rawChain(128, append(ones(127), 9)...), ErrTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := buildChain(t, 0, testTerm, 0, 5)
			before := encode(&d)
			err := d.UnmarshalBinary(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !bytes.Equal(encode(&d), before) {
				t.Fatal("chain modified on error")
			}
		})
	}
	// Overflow errors also name addr's reason.
	var d Chain
	if err := d.UnmarshalBinary(rawChain(65, sixteens(65)...)); !errors.Is(err, addr.ErrTooDeep) {
		t.Errorf("overflow error %v does not wrap addr.ErrTooDeep", err)
	}
	// The limits themselves decode: 128 levels of 1, 64 of 16, and the
	// wire's limits (32 levels of 1, 31 of 1 then 15, which the wire
	// writes in its last nibble alone, PROTOCOL.md 6.2).
	for _, idx := range [][]uint8{ones(128), sixteens(64), ones(32), append(ones(31), 15), sixteens(16)} {
		if err := d.UnmarshalBinary(rawChain(len(idx), idx...)); err != nil {
			t.Errorf("%v: %v", idx, err)
		}
		a, err := d.Address()
		if want := addr.MustEncodeLong(idx...); err != nil || a != want {
			t.Errorf("%v: Address = %v, %v; want %v", idx, a, err, want)
		}
	}
}

func TestAddressErrors(t *testing.T) {
	// Chains built in code (not decoded) get the same checks from Address.
	for _, tc := range []struct {
		name    string
		indices []uint8
		n       int // certificates (padded with index 1)
		want    error
	}{
		{"index 0", []uint8{1, 0}, 2, ErrIndex},
		{"index 136", []uint8{136}, 1, ErrIndex},
		{"129 levels", nil, 129, ErrTooLong},
		{"overflow", slices.Repeat([]uint8{100}, 65), 65, ErrTooLong},
	} {
		ch := Chain{Claim: NewClaim(key(0), 0, testTerm, testNow), Certs: make([]Cert, tc.n)}
		for i := range ch.Certs {
			ch.Certs[i].Index = 1
			if i < len(tc.indices) {
				ch.Certs[i].Index = tc.indices[i]
			}
		}
		if _, err := ch.Address(); !errors.Is(err, tc.want) {
			t.Errorf("%s: Address err = %v, want %v", tc.name, err, tc.want)
		}
		v := NewVerifier(nil)
		if _, err := v.Verify(&ch); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify err = %v, want %v", tc.name, err, tc.want)
		}
		if s := v.Stats(); s.Checked != 0 || s.Rejected != 1 {
			t.Errorf("%s: a malformed chain cost signature checks: %+v", tc.name, s)
		}
		if tc.n > MaxDepth {
			if _, err := ch.MarshalBinary(); !errors.Is(err, ErrTooLong) {
				t.Errorf("%s: MarshalBinary err = %v", tc.name, err)
			}
		}
	}
}

func TestVerifyDepths(t *testing.T) {
	v := NewVerifier(nil)
	for _, idx := range [][]uint8{nil, {9}, {1, 8, 3, 135, 2}, indices20} {
		ch := buildChain(t, 3, testTerm, 100, idx...)
		want := addr.MustEncodeLong(idx...)
		if got := mustVerify(t, v, &ch); got != want {
			t.Errorf("depth %d: Verify = %v, want %v", len(idx), got, want)
		}
		if got, err := ch.Address(); err != nil || got != want {
			t.Errorf("depth %d: Address = %v, %v", len(idx), got, err)
		}
		if ch.Depth() != len(idx) {
			t.Errorf("Depth = %d, want %d", ch.Depth(), len(idx))
		}
		holder := pub(0)
		if len(idx) > 0 {
			holder = pub(100 + len(idx))
		}
		if !bytes.Equal(ch.Holder(), holder) {
			t.Errorf("depth %d: wrong holder", len(idx))
		}
		if err := ch.CheckHolder(holder); err != nil {
			t.Errorf("depth %d: CheckHolder: %v", len(idx), err)
		}
		if err := ch.CheckHolder(pub(999)); !errors.Is(err, ErrNotHolder) {
			t.Errorf("depth %d: CheckHolder(other) = %v", len(idx), err)
		}
		// Decoded, it verifies the same.
		var d Chain
		if err := d.UnmarshalBinary(encode(&ch)); err != nil {
			t.Fatal(err)
		}
		if got := mustVerify(t, NewVerifier(nil), &d); got != want {
			t.Errorf("depth %d: decoded chain verifies to %v", len(idx), got)
		}
	}
	if s := v.Stats(); s.Rejected != 0 || s.Checked != 1+1+5+20 || s.Cached != 3 {
		// The claim is shared: checked once, then cached for each chain.
		t.Errorf("stats %+v", s)
	}
}

func TestExtendLimits(t *testing.T) {
	v := NewVerifier(nil)
	// 128 one-nibble levels fill a Long exactly.
	ch := buildChain(t, 0, testTerm, 2000, slices.Repeat([]uint8{1}, 128)...)
	if a := mustVerify(t, v, &ch); a != addr.MustEncodeLong(slices.Repeat([]uint8{1}, 128)...) {
		t.Fatalf("depth 128 address %v", a)
	}
	if _, err := ch.Extend(key(2128), pub(2129), 1); !errors.Is(err, ErrTooLong) {
		t.Fatalf("129th level: err = %v, want ErrTooLong", err)
	}
	// 64 two-nibble levels fill it too; the next has no room even for 1.
	ch = buildChain(t, 0, testTerm, 3000, slices.Repeat([]uint8{135}, 64)...)
	mustVerify(t, v, &ch)
	_, err := ch.Extend(key(3064), pub(3065), 1)
	if !errors.Is(err, ErrTooLong) || !errors.Is(err, addr.ErrTooDeep) {
		t.Fatalf("overflow: err = %v, want ErrTooLong and addr.ErrTooDeep", err)
	}
	// At a Long's last nibble 1..7 fit, 8 does not.
	ch = buildChain(t, 0, testTerm, 4000, slices.Repeat([]uint8{2}, 127)...)
	if _, err := ch.Extend(key(4127), pub(4128), 8); !errors.Is(err, ErrTooLong) {
		t.Fatalf("8 at the last nibble: err = %v", err)
	}
	last, err := ch.Extend(key(4127), pub(4128), 7)
	if err != nil {
		t.Fatalf("7 at the last nibble: %v", err)
	}
	if a := mustVerify(t, v, &last); a.Depth() != 128 || a.Coords()[127] != 7 {
		t.Fatalf("last nibble chain: %v", a)
	}
	// Past the wire's 32 nibbles the certificates sign the Long (v2): a
	// chain of 40 levels verifies, and its holder has no wire address.
	deep := buildChain(t, 0, testTerm, 5000, slices.Repeat([]uint8{3}, 40)...)
	if a := mustVerify(t, NewVerifier(nil), &deep); a.Depth() != 40 {
		t.Fatalf("deep chain: %v", a)
	} else if _, ok := a.Wire(); ok {
		t.Fatal("a 40-level address on the wire")
	} else {
		term := deep.Claim.Term()
		cm := []byte("mycelium/cert/v2")
		cm = append(cm, term.Tree, term.TreeState)
		cm = append(cm, term.Root[:]...)
		cm = binary.BigEndian.AppendUint64(cm, uint64(term.Start))
		cm = append(cm, deep.Certs[39].Child[:]...)
		cm = append(cm, a[:]...)
		if !ed25519.Verify(deep.Certs[38].Child[:], cm, deep.Certs[39].Sig[:]) {
			t.Fatal("a deep certificate is not signed over the v2 message with the Long")
		}
	}
	// Other refusals.
	base := buildChain(t, 0, testTerm, 500, 4)
	for _, tc := range []struct {
		name   string
		parent Key
		child  ed25519.PublicKey
		index  uint8
		want   error
	}{
		{"not the holder", key(0), pub(502), 1, ErrNotHolder},
		{"short private key", key(501)[:10], pub(502), 1, ErrNotHolder},
		{"short child key", key(501), pub(502)[:31], 1, ErrLength},
		{"index 0", key(501), pub(502), 0, ErrIndex},
		{"index 136", key(501), pub(502), 136, ErrIndex},
	} {
		if _, err := base.Extend(tc.parent, tc.child, tc.index); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Extend copies: extending twice from one chain gives independent siblings.
	a, _ := base.Extend(key(501), pub(502), 1)
	b, _ := base.Extend(key(501), pub(503), 2)
	a.Certs[0].Index = 99
	if base.Certs[0].Index != 4 || b.Certs[0].Index != 4 || base.Depth() != 1 {
		t.Fatal("Extend shares certificates between chains")
	}
}

// mutate returns a copy of ch (certificates included) changed by f.
func mutate(ch Chain, f func(*Chain)) Chain {
	ch.Certs = slices.Clone(ch.Certs)
	f(&ch)
	return ch
}

func TestForgeries(t *testing.T) {
	idx := []uint8{2, 9, 1, 3, 120}
	good := buildChain(t, 0, testTerm, 600, idx...)
	// Same nodes and positions, another term of the same root, whose
	// tree_state differs.
	otherTerm := testTerm + 1
	for TreeState(pub(0), 0, otherTerm) == good.Claim.TreeState() {
		otherTerm++
	}
	epoch2 := buildChain(t, 0, otherTerm, 600, idx...)
	// Same nodes and positions in tree 1.
	tree1 := buildChain(t, 1, testTerm, 600, idx...)

	type forgery struct {
		name  string
		ch    Chain
		level int // first bad level, -1 for the claim
	}
	var cases []forgery
	for _, bit := range []int{0, 7, 511} {
		cases = append(cases, forgery{fmt.Sprintf("claim sig bit %d", bit), mutate(good, func(c *Chain) {
			c.Claim.Sig[bit/8] ^= 1 << (bit % 8)
		}), -1})
		for l := range good.Certs {
			cases = append(cases, forgery{fmt.Sprintf("cert %d sig bit %d", l, bit), mutate(good, func(c *Chain) {
				c.Certs[l].Sig[bit/8] ^= 1 << (bit % 8)
			}), l})
		}
	}
	cases = append(cases,
		forgery{"claim time changed", mutate(good, func(c *Chain) { c.Claim.Time++ }), -1},
		forgery{"claim term changed", mutate(good, func(c *Chain) { c.Claim.TermStart++ }), -1},
		forgery{"claim tree changed", mutate(good, func(c *Chain) { c.Claim.Tree = 1 }), -1},
		forgery{"claim signed by another key", mutate(good, func(c *Chain) {
			msg := c.Claim.SignedBytes(nil)
			copy(c.Claim.Sig[:], key(99).Sign(msg))
		}), -1},
		forgery{"claim by another key with the root's certs", mutate(good, func(c *Chain) {
			c.Claim = NewClaim(key(99), 0, testTerm, testNow)
		}), 0},
		forgery{"cert 2 signed by a non-parent", mutate(good, func(c *Chain) {
			a, _ := addr.EncodeLong(idx[:3])
			c.Certs[2] = IssueCert(key(99), good.Claim.Term(), pub(603), a, idx[2])
		}), 2},
		forgery{"cert 2 signed by the child itself", mutate(good, func(c *Chain) {
			a, _ := addr.EncodeLong(idx[:3])
			c.Certs[2] = IssueCert(key(603), good.Claim.Term(), pub(603), a, idx[2])
		}), 2},
		forgery{"cert 3 index changed", mutate(good, func(c *Chain) { c.Certs[3].Index = 4 }), 3},
		forgery{"last index changed", mutate(good, func(c *Chain) { c.Certs[4].Index = 1 }), 4},
		forgery{"child key swapped", mutate(good, func(c *Chain) { c.Certs[1].Child = c.Certs[2].Child }), 1},
		// A node claiming to be nearer the root: skip its parent's level.
		forgery{"level skipped", mutate(good, func(c *Chain) { c.Certs = slices.Delete(c.Certs, 2, 3) }), 2},
		forgery{"certs replayed into another epoch", mutate(good, func(c *Chain) { c.Claim = epoch2.Claim }), 0},
		forgery{"old-epoch cert below a new-epoch prefix", mutate(epoch2, func(c *Chain) { c.Certs[3] = good.Certs[3] }), 3},
		forgery{"certs replayed into another tree", mutate(good, func(c *Chain) { c.Claim = tree1.Claim }), 0},
		forgery{"spliced from two trees", mutate(good, func(c *Chain) {
			c.Certs = append(slices.Clone(good.Certs[:2]), tree1.Certs[2:]...)
		}), 2},
		forgery{"tree-1 cert in tree 0", mutate(good, func(c *Chain) { c.Certs[4] = tree1.Certs[4] }), 4},
	)

	// Each forgery fails in a cold Verifier and in one that has already
	// verified every genuine chain involved (the cache must not vouch for a
	// forgery), and neither is poisoned: the genuine chains still verify.
	warm := NewVerifier(nil)
	for _, g := range []*Chain{&good, &epoch2, &tree1} {
		mustVerify(t, warm, g)
	}
	for _, tc := range cases {
		for _, v := range []*Verifier{NewVerifier(nil), warm} {
			before := v.Stats()
			a, err := v.Verify(&tc.ch)
			if !errors.Is(err, ErrSignature) {
				t.Errorf("%s: Verify = %v, %v; want ErrSignature", tc.name, a, err)
				continue
			}
			if a != (addr.Long{}) {
				t.Errorf("%s: an address came with the error", tc.name)
			}
			want := "claim"
			if tc.level >= 0 {
				want = fmt.Sprintf("certificate %d ", tc.level)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(want)) {
				t.Errorf("%s: error %q does not name %q", tc.name, err, want)
			}
			if after := v.Stats(); after.Rejected != before.Rejected+1 {
				t.Errorf("%s: Rejected %d -> %d", tc.name, before.Rejected, after.Rejected)
			}
		}
		if err := NewVerifier(nil).VerifyClaim(&tc.ch.Claim); tc.level < 0 && !errors.Is(err, ErrSignature) {
			t.Errorf("%s: VerifyClaim = %v", tc.name, err)
		}
	}
	for _, g := range []*Chain{&good, &epoch2, &tree1} {
		mustVerify(t, warm, g)
	}
}

func TestCaching(t *testing.T) {
	v := NewVerifier(nil)
	ch := buildChain(t, 0, testTerm, 700, indices20...)
	mustVerify(t, v, &ch)
	if s := v.Stats(); s.Checked != 21 || s.Cached != 0 {
		t.Fatalf("first verification: %+v, want 21 checked", s)
	}
	// Again (decoded afresh, as from another packet): nothing to compute.
	var d Chain
	if err := d.UnmarshalBinary(encode(&ch)); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, v, &d)
	if s := v.Stats(); s.Checked != 21 || s.Cached != 21 {
		t.Fatalf("second verification: %+v, want 21 checked and 21 cached", s)
	}
	// The warm path allocates nothing.
	if n := testing.AllocsPerRun(20, func() { mustVerify(t, v, &d) }); n != 0 {
		t.Errorf("warm Verify allocates %v times", n)
	}
	// A sibling of the holder: only its own certificate is new.
	parent := Chain{Claim: ch.Claim, Certs: ch.Certs[:19]}
	sib, err := parent.Extend(key(719), pub(799), 50)
	if err != nil {
		t.Fatal(err)
	}
	before := v.Stats()
	mustVerify(t, v, &sib)
	if s := v.Stats(); s.Checked != before.Checked+1 || s.Cached != before.Cached+20 {
		t.Fatalf("sibling: %+v -> %+v, want 1 new check and 20 cached", before, s)
	}
	// The claim alone is cached too; a re-issued claim (new time) is new.
	before = v.Stats()
	if err := v.VerifyClaim(&ch.Claim); err != nil {
		t.Fatal(err)
	}
	fresh := NewClaim(key(0), 0, testTerm, testNow+1)
	if err := v.VerifyClaim(&fresh); err != nil {
		t.Fatal(err)
	}
	if s := v.Stats(); s.Checked != before.Checked+1 || s.Cached != before.Cached+1 {
		t.Fatalf("claims: %+v -> %+v", before, s)
	}
	// The re-issued claim keeps the epoch: the certificates stay cached.
	before = v.Stats()
	reclaimed := Chain{Claim: fresh, Certs: ch.Certs}
	mustVerify(t, v, &reclaimed)
	if s := v.Stats(); s.Checked != before.Checked || s.Cached != before.Cached+21 {
		t.Fatalf("re-claimed chain: %+v -> %+v", before, s)
	}
	// Forgetting the epoch forgets everything of it.
	v.Forget(0, ch.Claim.TreeState())
	before = v.Stats()
	mustVerify(t, v, &ch)
	if s := v.Stats(); s.Checked != before.Checked+21 {
		t.Fatalf("after Forget: %+v -> %+v", before, s)
	}
	// Forgetting another epoch does not.
	v.Forget(1, ch.Claim.TreeState())
	v.Forget(0, ch.Claim.TreeState()+1)
	before = v.Stats()
	mustVerify(t, v, &ch)
	if s := v.Stats(); s.Checked != before.Checked {
		t.Fatalf("Forget of other epochs dropped this one: %+v -> %+v", before, s)
	}
}

func TestMemo(t *testing.T) {
	memo := NewMemo()
	ch := buildChain(t, 0, testTerm, 800, 1, 2, 3, 4, 5)
	a := NewVerifier(memo)
	mustVerify(t, a, &ch)
	if m := memo.Stats(); m.Misses != 6 || m.Hits != 0 || m.Len != 6 {
		t.Fatalf("memo after the first node: %+v", m)
	}
	// A second node: the memo answers every check, but the node still did
	// (and counts) its own logical verification.
	b := NewVerifier(memo)
	mustVerify(t, b, &ch)
	if m := memo.Stats(); m.Misses != 6 || m.Hits != 6 {
		t.Fatalf("memo after the second node: %+v", m)
	}
	if s := b.Stats(); s.Checked != 6 || s.Cached != 0 {
		t.Fatalf("second node's stats %+v, want 6 checked", s)
	}
	// Its own cache then answers without asking the memo.
	mustVerify(t, b, &ch)
	if m := memo.Stats(); m.Hits != 6 {
		t.Fatalf("memo asked for cached certificates: %+v", m)
	}
	// Invalid results are memoized too, and still rejected by every node.
	bad := mutate(ch, func(c *Chain) { c.Certs[2].Sig[0] ^= 1 })
	for _, v := range []*Verifier{a, b, NewVerifier(memo)} {
		if _, err := v.Verify(&bad); !errors.Is(err, ErrSignature) {
			t.Fatalf("forgery with memo: %v", err)
		}
	}
	if m := memo.Stats(); m.Misses != 7 {
		t.Fatalf("forgery computed %d times", m.Misses-6)
	}

	// Many nodes on many goroutines share one memo (run with -race).
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			v := NewVerifier(memo)
			if _, err := v.Verify(&ch); err != nil {
				errs <- err
			}
			if _, err := v.Verify(&bad); err == nil {
				errs <- errors.New("forgery accepted")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := memo.Stats(); m.Misses != 7 {
		t.Fatalf("concurrent nodes recomputed: %+v", m)
	}
}

func TestMemoBound(t *testing.T) {
	m := NewMemo()
	// Fill it with synthetic digests (no signatures needed to test the
	// bound), then one more check resets it.
	for i := range memoMax {
		var d digest
		binary.BigEndian.PutUint64(d[:], uint64(i))
		m.m[d] = false
	}
	c := NewClaim(key(0), 0, testTerm, testNow)
	if err := NewVerifier(m).VerifyClaim(&c); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.Resets != 1 || s.Len != 1 {
		t.Fatalf("memo over its bound: %+v", s)
	}
}

func TestVerifierBounds(t *testing.T) {
	v := NewVerifier(nil)
	pk := func(i int) *[32]byte {
		var k [32]byte
		binary.BigEndian.PutUint64(k[:], uint64(i))
		return &k
	}
	// Per epoch: never more than maxEpochCerts holders; past the bound a
	// new one is not on record, nor are its children.
	ep := v.epoch(keyOf(0, 0), Term{})
	root := v.rememberHolder(ep, keyOf(0, 0), pk(0), -1, 0, 0)
	for i := 1; i < maxEpochCerts+100; i++ {
		v.rememberHolder(ep, keyOf(0, 0), pk(i), root, 1, 0)
	}
	if len(ep.entries) != maxEpochCerts || len(ep.holders) != maxEpochCerts || v.certs != maxEpochCerts {
		t.Fatalf("epoch holds %d holders (total %d), bound %d", len(ep.entries), v.certs, maxEpochCerts)
	}
	if e := v.rememberHolder(ep, keyOf(0, 0), pk(1<<30), noEntry, 1, 0); e != noEntry {
		t.Fatal("a holder under one not on record was remembered")
	}
	// Over all epochs: the least recently used go first.
	for e := 1; e < 5; e++ {
		v.tick++
		k := keyOf(uint8(e), 0)
		ep := v.epoch(k, Term{Tree: uint8(e)})
		r := v.rememberHolder(ep, k, pk(e<<20), -1, 0, 0)
		for i := 1; i < maxEpochCerts; i++ {
			v.rememberHolder(ep, k, pk(e<<20|i), r, 2, 0)
		}
	}
	if v.certs > maxCerts {
		t.Fatalf("%d holders remembered, bound %d", v.certs, maxCerts)
	}
	if v.epochs[keyOf(0, 0)] != nil || v.epochs[keyOf(4, 0)] == nil {
		t.Fatal("the wrong epoch was forgotten")
	}
	total := 0
	for _, ep := range v.epochs {
		total += len(ep.entries)
	}
	if total != v.certs {
		t.Fatalf("count %d, actual %d", v.certs, total)
	}
	// Addresses are read off the entries: 2 then 7 under the root.
	{
		v := NewVerifier(nil)
		ep := v.epoch(keyOf(5, 0), Term{Tree: 5})
		r := v.rememberHolder(ep, keyOf(5, 0), pk(1), -1, 0, 0)
		mid := v.rememberHolder(ep, keyOf(5, 0), pk(2), r, 2, 0)
		child := v.rememberHolder(ep, keyOf(5, 0), pk(3), mid, 7, 0)
		if a := ep.address(child); a != addr.MustEncodeLong(2, 7) {
			t.Fatalf("address %v", a)
		}
	}
	// Number of epochs: bounded, LRU out. Epoch (4,0) is used throughout.
	for e := range 3 * maxEpochs {
		v.tick++
		v.epoch(keyOf(4, 0), Term{Tree: 4})
		v.epoch(keyOf(100, uint8(e)), Term{Tree: 100, TreeState: uint8(e)})
	}
	if len(v.epochs) != maxEpochs || v.epochs[keyOf(4, 0)] == nil {
		t.Fatalf("%d epochs, bound %d; recent one kept: %v", len(v.epochs), maxEpochs, v.epochs[keyOf(4, 0)] != nil)
	}
	// Claims per epoch: a ring.
	for i := range 10 {
		c := NewClaim(key(0), 9, testTerm, testNow+int64(i))
		if err := v.VerifyClaim(&c); err != nil {
			t.Fatal(err)
		}
	}
	ep = v.epochs[keyOf(9, TreeState(pub(0), 9, testTerm))]
	if ep.nclaim != maxEpochClaims {
		t.Fatalf("%d claims remembered", ep.nclaim)
	}
	// The latest ones are the remembered ones.
	before := v.Stats()
	latest := NewClaim(key(0), 9, testTerm, testNow+9)
	oldest := NewClaim(key(0), 9, testTerm, testNow)
	_ = v.VerifyClaim(&latest)
	_ = v.VerifyClaim(&oldest)
	if s := v.Stats(); s.Cached != before.Cached+1 || s.Checked != before.Checked+1 {
		t.Fatalf("claim ring: %+v -> %+v", before, s)
	}
	// Failures create no epoch: garbage cannot push real epochs out.
	n := len(v.epochs)
	v.Forget(4, 0)
	bad := NewClaim(key(0), 200, testTerm, testNow)
	bad.Sig[0] ^= 1
	if err := v.VerifyClaim(&bad); err == nil || len(v.epochs) != n-1 {
		t.Fatalf("a bad claim made an epoch: %v, %d epochs", err, len(v.epochs))
	}
}

func TestScore(t *testing.T) {
	for i := range 5 {
		pk := pub(i)
		for tree := range uint8(16) {
			s := Score(pk, tree)
			// Independently: SHA-256(pk) XOR SHA-256("mycelium" ‖ tree).
			h := sha256.Sum256(pk)
			salt := sha256.Sum256(append([]byte("mycelium"), tree))
			for j := range h {
				h[j] ^= salt[j]
			}
			if s != h || Salt(tree) != salt {
				t.Fatalf("Score(%d, %d) wrong", i, tree)
			}
			if Score(pk, tree) != s {
				t.Fatal("Score is not deterministic")
			}
			c := NewClaim(key(i), tree, testTerm, testNow)
			if c.Score() != s {
				t.Fatal("Claim.Score differs from Score")
			}
			if tree > 0 && Score(pk, tree-1) == s {
				t.Fatalf("trees %d and %d give key %d the same score", tree-1, tree, i)
			}
		}
	}
	// The salt makes trees elect different roots: among 16 keys, the best
	// per tree is not the same key for all 16 trees.
	winners := map[int]bool{}
	for tree := range uint8(16) {
		best := 0
		for i := 1; i < 16; i++ {
			if Less(Score(pub(i), tree), Score(pub(best), tree)) {
				best = i
			}
		}
		winners[best] = true
	}
	if len(winners) < 2 {
		t.Fatalf("one key wins every tree: %v", winners)
	}

	var lo, hi [32]byte
	hi[31] = 1
	var big [32]byte
	big[0] = 1
	for _, tc := range []struct {
		a, b [32]byte
		want bool
	}{
		{lo, hi, true}, {hi, lo, false}, {lo, lo, false},
		{hi, big, true}, // big-endian: the first byte matters most
		{big, hi, false},
	} {
		if got := Less(tc.a, tc.b); got != tc.want {
			t.Errorf("Less(%x, %x) = %v", tc.a, tc.b, got)
		}
	}
}

// refCRC32 is a bitwise IEEE CRC-32 (reflected, polynomial 0xEDB88320),
// written from its definition rather than with hash/crc32.
func refCRC32(b []byte) uint32 {
	crc := ^uint32(0)
	for _, x := range b {
		crc ^= uint32(x)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xEDB88320
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func TestTreeState(t *testing.T) {
	if refCRC32([]byte("123456789")) != 0xCBF43926 {
		t.Fatal("reference CRC-32 wrong on the check string")
	}
	seen := map[uint8]bool{}
	for i := range 4 {
		for tree := range uint8(16) {
			for _, term := range []int64{0, 1, testTerm, -5} {
				salt := sha256.Sum256(append([]byte("mycelium"), tree))
				in := append(append(slices.Clone([]byte(pub(i))), salt[:]...), binary.BigEndian.AppendUint64(nil, uint64(term))...)
				want := uint8(refCRC32(in) >> 24) // first byte, big-endian
				got := TreeState(pub(i), tree, term)
				if got != want {
					t.Fatalf("TreeState(key %d, tree %d, term %d) = %#x, want %#x", i, tree, term, got, want)
				}
				c := NewClaim(key(i), tree, term, testNow)
				if c.TreeState() != got {
					t.Fatal("Claim.TreeState differs")
				}
				// The claim's time is not part of the epoch.
				c2 := NewClaim(key(i), tree, term, testNow+1e9)
				if c2.TreeState() != got {
					t.Fatal("TreeState depends on the claim time")
				}
				seen[got] = true
			}
		}
	}
	// 256 inputs over 256 values: a constant or near-constant would show.
	if len(seen) < 100 {
		t.Fatalf("only %d distinct tree states", len(seen))
	}
	// Salted per tree: the same root and term differ between some trees.
	differ := false
	for tree := range uint8(15) {
		differ = differ || TreeState(pub(0), tree, testTerm) != TreeState(pub(0), tree+1, testTerm)
	}
	if !differ {
		t.Fatal("tree state does not depend on the tree")
	}
}

func TestCheckFreshAndTerm(t *testing.T) {
	c := NewClaim(key(0), 2, testTerm, testNow)
	const age = int64(30e9)
	for _, tc := range []struct {
		now  int64
		want error
	}{
		{testNow, nil},
		{testNow + age, nil},
		{testNow + age + 1, ErrStale},
		{testNow - age, nil},
		{testNow - age - 1, ErrStale},
	} {
		if err := c.CheckFresh(tc.now, age); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("CheckFresh(now %+d) = %v, want %v", tc.now-testNow, err, tc.want)
		}
	}
	if err := c.CheckTerm(2, pub(0), testTerm); err != nil {
		t.Errorf("CheckTerm: %v", err)
	}
	for _, tc := range []struct {
		tree uint8
		root ed25519.PublicKey
		term int64
	}{{3, pub(0), testTerm}, {2, pub(1), testTerm}, {2, pub(0), testTerm + 1}, {2, pub(0)[:4], testTerm}} {
		if err := c.CheckTerm(tc.tree, tc.root, tc.term); !errors.Is(err, ErrTerm) {
			t.Errorf("CheckTerm(%d, %x, %d) = %v", tc.tree, tc.root[:4], tc.term, err)
		}
	}
}

func BenchmarkVerifyChain20(b *testing.B) {
	ch := buildChain(b, 0, testTerm, 900, indices20...)
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := NewVerifier(nil).Verify(&ch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		v := NewVerifier(nil)
		if _, err := v.Verify(&ch); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(&ch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memo", func(b *testing.B) {
		// A new node in a simulation whose memo has seen the chain.
		memo := NewMemo()
		if _, err := NewVerifier(memo).Verify(&ch); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := NewVerifier(memo).Verify(&ch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkIssueCert(b *testing.B) {
	a := addr.MustEncodeLong(indices20...)
	child := pub(2)
	b.ReportAllocs()
	for b.Loop() {
		IssueCert(key(1), Term{TreeState: 7}, child, a, 7)
	}
}

func BenchmarkChainDecode20(b *testing.B) {
	ch := buildChain(b, 0, testTerm, 900, indices20...)
	enc := encode(&ch)
	var d Chain
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if err := d.UnmarshalBinary(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// A certificate of one term does not verify in another term that happens to
// have the same tree_state byte: certificates bind the root and the term's
// start.
func TestCertBindsTerm(t *testing.T) {
	v := NewVerifier(nil)
	ch := buildChain(t, 0, testTerm, 900, 3, 1, 2)
	a, err := v.Verify(&ch)
	if err != nil {
		t.Fatal(err)
	}
	term := ch.Claim.Term()
	other := term
	other.Start++ // same tree_state byte in this test by construction
	last := ch.Certs[len(ch.Certs)-1]
	parent := ed25519.PublicKey(ch.Certs[len(ch.Certs)-2].Child[:])
	if got, err := v.VerifyCert(term, parent, &last); err != nil || got != a {
		t.Fatalf("the certificate in its own term: %v %v", got, err)
	}
	if _, err := v.VerifyCert(other, parent, &last); !errors.Is(err, ErrUnknownParent) {
		t.Fatalf("another term: %v", err)
	}
	// Replayed under a chain of another term (same parent keys, same
	// addresses): the signatures do not match.
	replay := ch
	replay.Claim = NewClaim(key(900), 0, testTerm+1, testTerm+1)
	if _, err := NewVerifier(nil).Verify(&replay); !errors.Is(err, ErrSignature) {
		t.Fatalf("certificates replayed into another term: %v", err)
	}
}

// The salts are hashed once and the CRC runs eight bytes a step: both must
// give what the definitions give, for every tree byte and every length
// (the tails of 0..7 bytes, and a CRC continued across calls).
func TestSaltTableAndCRC(t *testing.T) {
	for tree := range 256 {
		want := sha256.Sum256(append([]byte(ProtocolName), byte(tree)))
		if Salt(uint8(tree)) != want {
			t.Fatalf("Salt(%d) is not SHA-256(ProtocolName ‖ tree)", tree)
		}
	}
	buf := make([]byte, 100)
	for i := range buf {
		buf[i] = byte(i*131 + 7)
	}
	for n := range len(buf) + 1 {
		if got, want := crcUpdate(0, buf[:n]), crc32.ChecksumIEEE(buf[:n]); got != want {
			t.Fatalf("crcUpdate over %d bytes = %#x, want %#x", n, got, want)
		}
		if got, want := crcUpdate(crcUpdate(0, buf[:n/3]), buf[n/3:n]), crc32.ChecksumIEEE(buf[:n]); got != want {
			t.Fatalf("crcUpdate continued over %d bytes = %#x, want %#x", n, got, want)
		}
	}
}
