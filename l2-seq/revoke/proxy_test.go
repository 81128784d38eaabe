package revoke

import (
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

var (
	board = identity.NodeID{0xb0, 0xa4, 0xd}
	proxy = identity.FromSeed([32]byte{'p', 'x'}).ID()
)

// TestProxyCert: an operator's certificate holds for its board and proxy
// until its date, by an operator listed, and for nothing else; it survives
// its PEM form; a changed byte breaks it.
func TestProxyCert(t *testing.T) {
	c := SignProxy(op, board, proxy, date.Add(24*time.Hour))
	ops := []identity.NodeID{op.ID()}
	if err := c.Check(ops, board, proxy, date); err != nil {
		t.Fatalf("a good certificate: %v", err)
	}
	for _, tc := range []struct {
		name         string
		ops          []identity.NodeID
		board, proxy identity.NodeID
		at           time.Time
		want         error
	}{
		{"an operator not listed", []identity.NodeID{other.ID()}, board, proxy, date, ErrUntrusted},
		{"no operator listed", nil, board, proxy, date, ErrUntrusted},
		{"another board", ops, victim, proxy, date, ErrMalformed},
		{"another proxy", ops, board, other.ID(), date, ErrMalformed},
		{"expired", ops, board, proxy, date.Add(25 * time.Hour), ErrExpired},
	} {
		if err := c.Check(tc.ops, tc.board, tc.proxy, tc.at); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	got, err := ParseProxyPEM(c.PEM())
	if err != nil || got != c {
		t.Fatalf("PEM round trip: %+v, %v", got, err)
	}
	b, _ := c.MarshalBinary()
	if len(b) != ProxyCertSize {
		t.Fatalf("%d bytes, want %d", len(b), ProxyCertSize)
	}
	for _, i := range []int{1, 40, 70, 100, 150} {
		bad := append([]byte(nil), b...)
		bad[i] ^= 1
		var f ProxyCert
		if err := f.UnmarshalBinary(bad); err != nil {
			t.Fatal(err)
		}
		if err := f.Verify(); !errors.Is(err, ErrForged) {
			t.Errorf("byte %d changed: %v", i, err)
		}
	}
	if _, err := ParseProxyPEM((&Revocation{}).PEM()); !errors.Is(err, ErrMalformed) {
		t.Errorf("a revocation taken for a certificate: %v", err)
	}
}

// FuzzProxyCert: any bytes decode to a certificate or a typed error, a
// decoded one encodes back to the same bytes, and one that checks is what
// the operator signed for that board and proxy.
func FuzzProxyCert(f *testing.F) {
	c := SignProxy(op, board, proxy, date.Add(time.Hour))
	b, _ := c.MarshalBinary()
	f.Add(b)
	f.Add(c.PEM())
	f.Add(b[:ProxyCertSize-1])
	f.Add([]byte{})
	ops := []identity.NodeID{op.ID()}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c ProxyCert
		if err := c.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped: %v", err)
			}
		} else {
			back, _ := c.MarshalBinary()
			if string(back) != string(b) {
				t.Fatalf("round trip %x -> %x", b, back)
			}
			if c.Check(ops, c.Board, c.Proxy, date) == nil && (c.Operator != op.ID() || c != SignProxy(op, c.Board, c.Proxy, time.Unix(c.Until, 0))) {
				t.Fatalf("checked a certificate the operator did not sign: %+v", c)
			}
		}
		if _, err := ParseProxyPEM(b); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("PEM: untyped: %v", err)
		}
	})
}
