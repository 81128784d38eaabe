package revoke

import (
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// FuzzRevocation: any bytes decode to a revocation or a typed error, a
// decoded one encodes back to the same bytes, and a Set handed them never
// panics and revokes only what the operator signed.
func FuzzRevocation(f *testing.F) {
	r := Sign(op, victim, date)
	b, _ := r.MarshalBinary()
	f.Add(b)
	f.Add(r.PEM())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Revocation
		if err := r.UnmarshalBinary(b); err == nil {
			back, _ := r.MarshalBinary()
			if string(back) != string(b) {
				t.Fatalf("round trip %x -> %x", b, back)
			}
		}
		_, _ = ParsePEM(b)
		s, _ := Open(Config{Operators: []identity.NodeID{op.ID()}, Max: 4})
		got, added, err := s.Add(b)
		if added && (err != nil || got.Verify() != nil || got.Operator != op.ID() || !s.Revoked(got.Node)) {
			t.Fatalf("added %+v: %v", got, err)
		}
	})
}
