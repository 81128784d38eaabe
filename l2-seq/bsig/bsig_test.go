package bsig

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

var app = packet.NewAppID("test", "bsig", 1)

func TestRoundTrip(t *testing.T) {
	id := identity.FromSeed([32]byte{1})
	other := identity.FromSeed([32]byte{2})
	boot := proof.Boot{1, 2, 3, 4, 5, 6, 7, 8}
	b := Append(nil, id, id.ID(), boot, 7, app, []byte("hello"))
	if len(b) != Overhead+len("hello") {
		t.Fatalf("%d bytes, want %d", len(b), Overhead+5)
	}
	var e Envelope
	if err := e.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if e.Boot != boot || e.Counter != 7 || e.App != app || !bytes.Equal(e.Blob, []byte("hello")) {
		t.Fatalf("%+v", e)
	}
	if err := e.Verify(id.ID()); err != nil {
		t.Fatal(err)
	}
	if err := e.Verify(other.ID()); !errors.Is(err, ErrBadSig) {
		t.Fatalf("verified under another key: %v", err)
	}
	// Every byte is covered: the header, the app_id, the blob, the signature.
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		var e Envelope
		if err := e.UnmarshalBinary(c); err == nil && e.Verify(id.ID()) == nil {
			t.Fatalf("byte %d changed and still verified", i)
		}
	}
	// Signed for a node_id: the same signature does not verify for
	// another node_id even with the same key (the id is in the input).
	b2 := Append(nil, id, other.ID(), boot, 7, app, []byte("hello"))
	if err := e.UnmarshalBinary(b2); err != nil || e.Verify(id.ID()) == nil {
		t.Fatal("signed for another node_id, verified for ours")
	}
	for _, bad := range [][]byte{nil, b[:Min-1], append([]byte{2}, b[1:]...)} {
		if err := e.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("% x: %v", bad, err)
		}
	}
}

// FuzzEnvelope: no input panics the decoder, and whatever decodes
// re-encodes to the same bytes (the layout has no slack).
func FuzzEnvelope(f *testing.F) {
	id := identity.FromSeed([32]byte{1})
	f.Add(Append(nil, id, id.ID(), proof.Boot{1}, 0, app, nil))
	f.Add(Append(nil, id, id.ID(), proof.Boot{2}, 1<<31, app, []byte("a blob")))
	f.Add([]byte{Version})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Envelope
		if err := e.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		_ = e.Verify(id.ID())
		re := Append(nil, fixedSig(e.Sig), id.ID(), e.Boot, e.Counter, e.App, e.Blob)
		if !bytes.Equal(re, b) {
			t.Fatalf("re-encoded % x, was % x", re, b)
		}
	})
}

// fixedSig "signs" with a given signature (to re-encode a decoded envelope).
type fixedSig [SigSize]byte

func (s fixedSig) Sign([]byte) []byte { return s[:] }
