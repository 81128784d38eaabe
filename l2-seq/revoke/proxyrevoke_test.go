package revoke

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// TestProxyRevocation: a proxy revocation names one certificate (by its
// board, proxy and date) or, with Until 0, every certificate for its
// board and proxy; it survives its bytes and PEM; a changed byte breaks
// its signature; it is not taken for another kind of PEM block.
func TestProxyRevocation(t *testing.T) {
	c := SignProxy(op, board, proxy, date.Add(24*time.Hour))
	later := SignProxy(op, board, proxy, date.Add(48*time.Hour))
	one := SignProxyRevocation(op, board, proxy, c.Until, date)
	all := SignProxyRevocation(op, board, proxy, 0, date)
	if !one.Covers(&c) || one.Covers(&later) || !all.Covers(&c) || !all.Covers(&later) {
		t.Fatal("coverage: one certificate, or all of a board's for a proxy")
	}
	elsewhere := SignProxy(op, board, other.ID(), time.Unix(c.Until, 0))
	if one.Covers(&elsewhere) || all.Covers(&elsewhere) {
		t.Fatal("a revocation covers another proxy's certificate")
	}
	b, _ := one.MarshalBinary()
	if len(b) != ProxyRevocationSize || ProxyRevocationSize != 177 {
		t.Fatalf("%d bytes", len(b))
	}
	var got ProxyRevocation
	if err := got.UnmarshalBinary(b); err != nil || got != one || got.Verify() != nil {
		t.Fatalf("binary: %+v %v", got, err)
	}
	if p, err := ParseProxyRevocationPEM(one.PEM()); err != nil || p != one {
		t.Fatalf("PEM: %v", err)
	}
	if _, err := ParseProxyRevocationPEM(c.PEM()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a certificate taken for a revocation: %v", err)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(b, 0), append([]byte{2}, b[1:]...)} {
		if err := new(ProxyRevocation).UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
	for _, i := range []int{1, 40, 70, 100, 110, 150} {
		x := append([]byte(nil), b...)
		x[i] ^= 1
		var f ProxyRevocation
		if f.UnmarshalBinary(x) == nil && !errors.Is(f.Verify(), ErrForged) {
			t.Fatalf("byte %d flipped still verifies", i)
		}
	}
}

// TestSetProxyRevocations: a Set honours a proxy revocation only by a
// configured operator with a good signature, counts what it refuses,
// holds one that a wider one covers as known, bounds them apart from the
// keys' revocations, and keeps them in their own private file.
func TestSetProxyRevocations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy-revocations")
	cfg := Config{Operators: []identity.NodeID{op.ID()}, Max: 2, ProxyPath: path}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := SignProxy(op, board, proxy, date.Add(24*time.Hour))
	if s.CertRevoked(&c) {
		t.Fatal("revoked before any revocation")
	}
	stranger := SignProxyRevocation(other, board, proxy, c.Until, date)
	if _, _, err := s.AddProxyRevocation(stranger); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("untrusted: %v", err)
	}
	forged := stranger
	forged.Operator = op.ID()
	fb, _ := forged.MarshalBinary()
	if _, _, err := s.AddProxy(fb); !errors.Is(err, ErrForged) {
		t.Fatalf("forged: %v", err)
	}
	if _, _, err := s.AddProxy(fb[:9]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed: %v", err)
	}
	if s.CertRevoked(&c) {
		t.Fatal("a refused revocation took effect")
	}
	one := SignProxyRevocation(op, board, proxy, c.Until, date)
	if _, added, err := s.AddProxyRevocation(one); !added || err != nil || !s.CertRevoked(&c) {
		t.Fatalf("good: %v %v", added, err)
	}
	later := SignProxy(op, board, proxy, date.Add(48*time.Hour))
	if s.CertRevoked(&later) {
		t.Fatal("one certificate's revocation revoked another")
	}
	if _, added, err := s.AddProxyRevocation(one); added || err != nil {
		t.Fatalf("again: %v %v", added, err)
	}
	all := SignProxyRevocation(op, board, proxy, 0, date)
	if _, added, err := s.AddProxyRevocation(all); !added || err != nil || !s.CertRevoked(&later) {
		t.Fatalf("all: %v %v", added, err)
	}
	// Covered by the wider one: known, not kept again; held are only the
	// two taken.
	covered := SignProxyRevocation(op, board, proxy, later.Until, date)
	if _, added, err := s.AddProxyRevocation(covered); added || err != nil || s.ProxyHeld(&covered) || !s.ProxyHeld(&one) || !s.ProxyHeld(&all) {
		t.Fatalf("covered: %v %v", added, err)
	}
	if _, _, err := s.AddProxyRevocation(SignProxyRevocation(op, victim, proxy, 0, date)); !errors.Is(err, ErrFull) {
		t.Fatalf("over Max: %v", err)
	}
	// The keys' revocations have their own bound.
	if _, added, err := s.AddRevocation(Sign(op, victim, date)); !added || err != nil {
		t.Fatalf("a key's revocation beside full proxy revocations: %v %v", added, err)
	}
	want := Stats{Accepted: 3, Known: 2, Malformed: 1, Untrusted: 1, Forged: 1, Full: 1}
	if st := s.Stats(); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 2*ProxyRevocationSize {
		t.Fatalf("file: %v %v", st, err)
	}
	again, err := Open(cfg)
	if err != nil || len(again.ListProxy()) != 2 || !again.CertRevoked(&later) || len(again.List()) != 0 {
		t.Fatalf("reopened: %v %+v", err, again.ListProxy())
	}
	if s, err := Open(Config{Operators: []identity.NodeID{other.ID()}, ProxyPath: path}); err != nil || s.CertRevoked(&c) {
		t.Fatalf("without the operator: %v", err)
	}
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-1], 0o600)
	if _, err := Open(cfg); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	b[ProxyRevocationSize+120] ^= 1
	os.WriteFile(path, b, 0o600)
	if _, err := Open(cfg); !errors.Is(err, ErrForged) {
		t.Fatalf("forged in file: %v", err)
	}
	os.WriteFile(path, b[:ProxyRevocationSize], 0o644)
	os.Chmod(path, 0o644)
	if _, err := Open(cfg); !errors.Is(err, identity.ErrPermissions) {
		t.Fatalf("open file: %v", err)
	}
}

// FuzzProxyRevocation: any bytes decode to a proxy revocation or a typed
// error, a decoded one encodes back to the same bytes, and a Set handed
// them never panics and honours only what the operator signed.
func FuzzProxyRevocation(f *testing.F) {
	r := SignProxyRevocation(op, board, proxy, date.Add(time.Hour).Unix(), date)
	b, _ := r.MarshalBinary()
	f.Add(b)
	f.Add(r.PEM())
	f.Add(b[:ProxyRevocationSize-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r ProxyRevocation
		if err := r.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped: %v", err)
			}
		} else if back, _ := r.MarshalBinary(); string(back) != string(b) {
			t.Fatalf("round trip %x -> %x", b, back)
		}
		if _, err := ParseProxyRevocationPEM(b); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("PEM: untyped: %v", err)
		}
		s, _ := Open(Config{Operators: []identity.NodeID{op.ID()}, Max: 4})
		got, added, err := s.AddProxy(b)
		c := ProxyCert{Board: got.Board, Proxy: got.Proxy, Until: got.Until}
		if added && (err != nil || got.Verify() != nil || got.Operator != op.ID() || !s.CertRevoked(&c)) {
			t.Fatalf("added %+v: %v", got, err)
		}
		if !added && s.CertRevoked(&c) {
			t.Fatalf("refused but honoured: %+v", got)
		}
	})
}
