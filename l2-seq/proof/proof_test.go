package proof

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

func TestProofBinding(t *testing.T) {
	v := identity.FromSeed([32]byte{1})
	mallory := identity.FromSeed([32]byte{2})
	a, vAddr, mAddr := espnow.MAC{2, 0, 0, 0, 0, 1}, espnow.MAC{2, 0, 0, 0, 0, 2}, espnow.MAC{2, 0, 0, 0, 0, 3}
	nonce, boot := Nonce{9}, Boot{7}
	decode := func(b []byte) *Message {
		t.Helper()
		var m Message
		if err := m.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		return &m
	}
	good := AppendProof(nil, v, nonce, boot, vAddr, a)
	if len(good) != ProofSize {
		t.Fatalf("proof of %d bytes, want %d", len(good), ProofSize)
	}
	if err := decode(good).Verify(nonce, vAddr, a); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		nonce         Nonce
		prover, chall espnow.MAC
		b             []byte
	}{
		// Mallory relays a's challenge to v from her own address and v's
		// proof back: v signed mallory's address as its challenger.
		"relayed":      {nonce, mAddr, a, AppendProof(nil, v, nonce, boot, vAddr, mAddr)},
		"replayed":     {Nonce{10}, vAddr, a, good},
		"other sender": {nonce, mAddr, a, good},
		"forged":       {nonce, vAddr, a, forgeAs(AppendProof(nil, mallory, nonce, boot, vAddr, a), v)},
	} {
		if err := decode(c.b).Verify(c.nonce, c.prover, c.chall); !errors.Is(err, ErrBadSig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// forgeAs rewrites a proof's node_id to id's, keeping its signature.
func forgeAs(b []byte, id identity.Identity) []byte {
	b = bytes.Clone(b)
	copy(b[1:], id.Public())
	return b
}

func TestGoodbye(t *testing.T) {
	v := identity.FromSeed([32]byte{1})
	id := [NodeIDSize]byte(v.Public())
	boot := Boot{3}
	tail := AppendGoodbyeTail(nil, v, boot)
	if len(tail) != GoodbyeTail || VerifyGoodbye(id, boot, tail) != nil {
		t.Fatal("a good goodbye does not verify")
	}
	if VerifyGoodbye(id, Boot{4}, tail) == nil {
		t.Fatal("a goodbye of another run verifies")
	}
	if VerifyGoodbye(id, boot, nil) == nil || VerifyGoodbye(id, boot, tail[:GoodbyeTail-1]) == nil {
		t.Fatal("an unsigned goodbye verifies")
	}
	other := AppendGoodbyeTail(nil, identity.FromSeed([32]byte{2}), boot)
	if VerifyGoodbye(id, boot, other) == nil {
		t.Fatal("another key's goodbye verifies")
	}
}

// TestRekey: a Rekey decodes with its nonce and type; cut
// short or too long, it is malformed.
func TestRekey(t *testing.T) {
	b := AppendRekey(nil, Nonce{7, 8})
	var m Message
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if m.Type != TypeRekey || m.Nonce != (Nonce{7, 8}) {
		t.Fatalf("decoded %+v", m)
	}
	for _, bad := range [][]byte{b[:len(b)-1], append(b, 0)} {
		if err := m.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%d bytes: %v", len(bad), err)
		}
	}
}

func FuzzMessage(f *testing.F) {
	f.Add(AppendChallenge(nil, Nonce{1}))
	f.Add(AppendProof(nil, identity.FromSeed([32]byte{1}), Nonce{1}, Boot{2}, espnow.MAC{1}, espnow.MAC{2}))
	f.Add([]byte{0x03})
	f.Add(AppendRekey(nil, Nonce{3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		_ = m.Verify(m.Nonce, espnow.MAC{1}, espnow.MAC{2})
	})
}
