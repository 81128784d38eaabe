package daemon

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
)

// A republishing round publishes only the revocations the mesh has not
// passed round for a period: one heard from a neighbour's round keeps
// this node quiet.
func TestRepublishDue(t *testing.T) {
	op := identity.FromSeed([32]byte{'o'})
	now := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	a, b, c := revoke.Sign(op, identity.NodeID{1}, now), revoke.Sign(op, identity.NodeID{2}, now), revoke.Sign(op, identity.NodeID{3}, now)
	heard := map[identity.NodeID]time.Time{
		a.Node: now.Add(-time.Hour),     // went round an hour ago
		b.Node: now.Add(-7 * time.Hour), // not for longer than a period
	}
	got := due([]revoke.Revocation{a, b, c}, heard, now, 6*time.Hour)
	if len(got) != 2 || got[0] != b || got[1] != c {
		t.Fatalf("due: %+v", got)
	}
}
