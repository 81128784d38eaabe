package revoke

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

var (
	op     = identity.FromSeed([32]byte{'o', 'p'})
	other  = identity.FromSeed([32]byte{'x'})
	victim = identity.FromSeed([32]byte{'v'}).ID()
	date   = time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
)

func TestRoundTrip(t *testing.T) {
	r := Sign(op, victim, date)
	b, _ := r.MarshalBinary()
	if len(b) != Size {
		t.Fatalf("%d bytes", len(b))
	}
	var got Revocation
	if err := got.UnmarshalBinary(b); err != nil || got != r || got.Verify() != nil {
		t.Fatalf("binary: %v %v", err, got.Verify())
	}
	p, err := ParsePEM(r.PEM())
	if err != nil || p != r {
		t.Fatalf("PEM: %v", err)
	}
	if _, err := ParsePEM([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("other PEM: %v", err)
	}
	for _, bad := range [][]byte{nil, b[:Size-1], append(b, 0), append([]byte{2}, b[1:]...)} {
		if err := new(Revocation).UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
	// Every field is under the signature.
	for _, i := range []int{0 + 1, 40, 70} {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		var x Revocation
		if x.UnmarshalBinary(c) == nil && x.Verify() == nil {
			t.Fatalf("byte %d flipped still verifies", i)
		}
	}
}

func TestSetRefusesAndCounts(t *testing.T) {
	s, err := Open(Config{Operators: []identity.NodeID{op.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	r := Sign(op, victim, date)
	if s.Revoked(victim) {
		t.Fatal("revoked before any revocation")
	}
	// Signed by a key not configured.
	stranger := Sign(other, victim, date)
	b, _ := stranger.MarshalBinary()
	if _, _, err := s.Add(b); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("untrusted: %v", err)
	}
	// Claiming the operator's key without its signature.
	forged := stranger
	forged.Operator = op.ID()
	b, _ = forged.MarshalBinary()
	if _, _, err := s.Add(b); !errors.Is(err, ErrForged) {
		t.Fatalf("forged: %v", err)
	}
	if _, _, err := s.Add(b[:10]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed: %v", err)
	}
	if s.Revoked(victim) {
		t.Fatal("a refused revocation took effect")
	}
	b, _ = r.MarshalBinary()
	if _, added, err := s.Add(b); err != nil || !added || !s.Revoked(victim) {
		t.Fatalf("good: %v %v", added, err)
	}
	if _, added, err := s.Add(b); err != nil || added {
		t.Fatalf("again: %v %v", added, err)
	}
	want := Stats{Accepted: 1, Known: 1, Malformed: 1, Untrusted: 1, Forged: 1}
	if st := s.Stats(); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

func TestSetBounded(t *testing.T) {
	s, _ := Open(Config{Operators: []identity.NodeID{op.ID()}, Max: 3})
	for i := range 4 {
		_, _, err := s.AddRevocation(Sign(op, identity.NodeID{byte(i)}, date))
		if (i < 3) != (err == nil) || i == 3 && !errors.Is(err, ErrFull) {
			t.Fatalf("revocation %d: %v", i, err)
		}
	}
	if len(s.List()) != 3 || s.Stats().Full != 1 {
		t.Fatalf("%d kept, %+v", len(s.List()), s.Stats())
	}
}

func TestSetPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "revocations")
	cfg := Config{Operators: []identity.NodeID{op.ID()}, Path: path}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, _, err := s.AddRevocation(Sign(op, identity.NodeID{byte(i + 1)}, date)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 3*Size {
		t.Fatalf("file: %v %v", st, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	again, err := Open(cfg)
	if err != nil || len(again.List()) != 3 || !again.Revoked(identity.NodeID{2}) {
		t.Fatalf("reopened: %v %d", err, len(again.List()))
	}
	// The operator no longer configured: its revocations no longer count.
	if s, err := Open(Config{Operators: []identity.NodeID{other.ID()}, Path: path}); err != nil || s.Revoked(identity.NodeID{2}) {
		t.Fatalf("without the operator: %v", err)
	}
	// A file others can read is refused, as a key file is.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg); !errors.Is(err, identity.ErrPermissions) {
		t.Fatalf("open file: %v", err)
	}
	// A file that is not whole revocations, or holds a forged one.
	os.Chmod(path, 0o600)
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	b[Size+100] ^= 1
	os.WriteFile(path, b, 0o600)
	if _, err := Open(cfg); !errors.Is(err, ErrForged) {
		t.Fatalf("forged in file: %v", err)
	}
}
