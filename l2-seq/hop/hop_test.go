package hop

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// pair returns the key of the direction a → b for the proof of nonce, as
// a (sender) and b (receiver) derive it.
func pair(t testing.TB, nonce [NonceSize]byte) (a, b *Key) {
	t.Helper()
	ia, ib := identity.FromSeed([32]byte{1}), identity.FromSeed([32]byte{2})
	sa, err := Agree(xkey(t, ia), ia.ID(), ib.ID())
	if err != nil {
		t.Fatal(err)
	}
	sb, err := Agree(xkey(t, ib), ib.ID(), ia.ID())
	if err != nil {
		t.Fatal(err)
	}
	if sa != sb {
		t.Fatal("the two sides agree different secrets")
	}
	return sa.Key(ia.ID(), ib.ID(), nonce), sb.Key(ia.ID(), ib.ID(), nonce)
}

func xkey(t testing.TB, i identity.Identity) *ecdh.PrivateKey {
	t.Helper()
	priv, _ := i.X25519()
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var frame = []byte{0, 0, 0, 0x08, 1, 'h', 'e', 'l', 'l', 'o'}

func TestSealOpen(t *testing.T) {
	a, b := pair(t, [NonceSize]byte{1})
	f, err := a.Seal(nil, frame)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != len(frame)+Overhead || !Marked(f) {
		t.Fatalf("sealed frame % x", f)
	}
	got, err := b.Open(bytes.Clone(f))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[2:], frame[2:]) || got[0] != 0 {
		t.Fatalf("opened % x", got)
	}
	// The same frame again is a replay.
	if _, err := b.Open(bytes.Clone(f)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	// Any byte changed, the counter included.
	for i := range f {
		g := bytes.Clone(f)
		g[i] ^= 0x40
		if _, err := b.Open(g); err == nil {
			t.Fatalf("byte %d changed: accepted", i)
		}
	}
	// Out of order within the window: accepted once each.
	f2, _ := a.Seal(nil, frame)
	f3, _ := a.Seal(nil, frame)
	if _, err := b.Open(f3); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(f2); err != nil {
		t.Fatal(err)
	}
}

// The other direction, another proof (another nonce): other keys. A frame
// reflected to its sender, or of an earlier proof, does not verify.
func TestKeysApart(t *testing.T) {
	ia, ib := identity.FromSeed([32]byte{1}), identity.FromSeed([32]byte{2})
	s, err := Agree(xkey(t, ia), ia.ID(), ib.ID())
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := [NonceSize]byte{1}, [NonceSize]byte{2}
	f, _ := s.Key(ia.ID(), ib.ID(), n1).Seal(nil, frame)
	if _, err := s.Key(ib.ID(), ia.ID(), n1).Open(bytes.Clone(f)); !errors.Is(err, ErrTag) {
		t.Fatalf("reflected: %v", err)
	}
	if _, err := s.Key(ia.ID(), ib.ID(), n2).Open(bytes.Clone(f)); !errors.Is(err, ErrTag) {
		t.Fatalf("another proof's key: %v", err)
	}
	if _, err := s.Key(ia.ID(), ib.ID(), n1).Open(bytes.Clone(f)); err != nil {
		t.Fatalf("its own key: %v", err)
	}
	// A third node, with the nonce and both ids, has not the secret.
	ic := identity.FromSeed([32]byte{3})
	sc, err := Agree(xkey(t, ic), ic.ID(), ib.ID())
	if err != nil {
		t.Fatal(err)
	}
	g, _ := sc.Key(ia.ID(), ib.ID(), n1).Seal(nil, frame)
	if _, err := s.Key(ia.ID(), ib.ID(), n1).Open(g); !errors.Is(err, ErrTag) {
		t.Fatalf("forged by a third node: %v", err)
	}
}

func TestDeriveRefusesKeyless(t *testing.T) {
	ia := identity.FromSeed([32]byte{1})
	priv, _ := ia.X25519()
	k, _ := ecdh.X25519().NewPrivateKey(priv)
	var bad identity.NodeID
	for i := range 256 {
		bad[0] = byte(i)
		if _, err := identity.X25519Public(bad); err != nil {
			break // not a point: no key
		}
	}
	if _, err := Agree(k, ia.ID(), bad); !errors.Is(err, ErrKey) {
		t.Fatalf("keyless peer: %v", err)
	}
	if _, err := Agree(k, ia.ID(), ia.ID()); !errors.Is(err, ErrKey) {
		t.Fatalf("itself: %v", err)
	}
}

func TestSealNoAlloc(t *testing.T) {
	a, b := pair(t, [NonceSize]byte{1})
	buf := make([]byte, 0, 300)
	allocs := testing.AllocsPerRun(100, func() {
		f, _ := a.Seal(buf[:0], frame)
		if _, err := b.Open(f); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
}

func FuzzOpen(f *testing.F) {
	a, _ := pair(f, [NonceSize]byte{1})
	s, _ := a.Seal(nil, frame)
	f.Add(s)
	f.Add([]byte{0, Marker, 0, 0})
	f.Add(make([]byte, minFrame))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, k := pair(t, [NonceSize]byte{1})
		got, err := k.Open(bytes.Clone(b))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTag) && !errors.Is(err, ErrReplayed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(b, s) || len(got) != len(b)-Overhead {
			t.Fatalf("a frame not sealed by a opened: % x", b)
		}
	})
}

func BenchmarkSealOpen(b *testing.B) {
	x, y := pair(b, [NonceSize]byte{1})
	f := make([]byte, 238)
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		s, _ := x.Seal(buf[:0], f)
		if _, err := y.Open(s); err != nil {
			b.Fatal(err)
		}
	}
}
