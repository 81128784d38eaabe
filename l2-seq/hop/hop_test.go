package hop

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

func pair(t testing.TB, na, nb [NonceSize]byte) (a, b *Keys) {
	t.Helper()
	ia, ib := identity.FromSeed([32]byte{1}), identity.FromSeed([32]byte{2})
	key := func(i identity.Identity) *ecdh.PrivateKey {
		priv, _ := i.X25519()
		k, err := ecdh.X25519().NewPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a, err := Derive(key(ia), ia.ID(), ib.ID(), na, nb)
	if err != nil {
		t.Fatal(err)
	}
	b, err = Derive(key(ib), ib.ID(), ia.ID(), nb, na)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

var frame = []byte{0, 0, 0, 0x08, 1, 'h', 'e', 'l', 'l', 'o'}

func TestSealOpen(t *testing.T) {
	a, b := pair(t, [NonceSize]byte{1}, [NonceSize]byte{2})
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
	// Reflected back to its sender: the other direction's key.
	if _, err := a.Open(bytes.Clone(f)); !errors.Is(err, ErrTag) {
		t.Fatalf("reflected: %v", err)
	}
	// Any byte changed, the counter included.
	for i := range f {
		g := bytes.Clone(f)
		g[i] ^= 0x40
		if _, err := b.Open(g); err == nil {
			t.Fatalf("byte %d changed: accepted", i)
		}
	}
	// b answers; a opens.
	r, _ := b.Seal(nil, frame)
	if _, err := a.Open(r); err != nil {
		t.Fatal(err)
	}
}

// A fresh exchange (other nonces) gives other keys: a frame of an earlier
// exchange does not verify under the new one.
func TestFreshKeys(t *testing.T) {
	a1, _ := pair(t, [NonceSize]byte{1}, [NonceSize]byte{2})
	_, b2 := pair(t, [NonceSize]byte{3}, [NonceSize]byte{2})
	f, _ := a1.Seal(nil, frame)
	if _, err := b2.Open(f); !errors.Is(err, ErrTag) {
		t.Fatalf("old key's frame under a new key: %v", err)
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
	if _, err := Derive(k, ia.ID(), bad, [NonceSize]byte{}, [NonceSize]byte{}); !errors.Is(err, ErrKey) {
		t.Fatalf("keyless peer: %v", err)
	}
	if _, err := Derive(k, ia.ID(), ia.ID(), [NonceSize]byte{}, [NonceSize]byte{}); !errors.Is(err, ErrKey) {
		t.Fatalf("itself: %v", err)
	}
}

func TestSealNoAlloc(t *testing.T) {
	a, b := pair(t, [NonceSize]byte{1}, [NonceSize]byte{2})
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
	a, _ := pair(f, [NonceSize]byte{1}, [NonceSize]byte{2})
	s, _ := a.Seal(nil, frame)
	f.Add(s)
	f.Add([]byte{0, Marker, 0, 0})
	f.Add(make([]byte, minFrame))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, k := pair(t, [NonceSize]byte{1}, [NonceSize]byte{2})
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
	x, y := pair(b, [NonceSize]byte{1}, [NonceSize]byte{2})
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
