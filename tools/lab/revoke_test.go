package lab

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// TestRevocation: three `mycelium node` processes in a ring, each listing
// one operator key in [trust] operators. A revocation of node 2 signed by
// another key is refused; the operator's, pushed to node 0, spreads by
// gossip to node 1, both drop node 2 (a ping to it fails), node 1 keeps
// it in a private file and still refuses node 2's proofs after a restart.
func TestRevocation(t *testing.T) {
	ring := newOperatorRing(t, "rv", nil)
	startAll(t, ring.nodes)
	a, b, c := ring.nodes[0], ring.nodes[1], ring.nodes[2]
	mustPoll(t, time.Minute, "a reaches c", func(ctx context.Context) bool {
		p, err := a.Client().Ping(ctx, control.PingRequest{Target: c.Name, Count: 1, TimeoutMS: 2000})
		return err == nil && p.Received == 1
	})

	rogue, good := filepath.Join(ring.dir, "rogue.rev"), filepath.Join(ring.dir, "c.rev")
	if out, err := ring.cli("keys", "operator", "revoke", "--key", ring.rogueKey, c.ID, "--out", rogue); err != nil {
		t.Fatalf("sign: %v %s", err, out)
	}
	if out, err := ring.cli("keys", "revocations", "push", rogue, "--socket", a.Socket()); err == nil || !strings.Contains(out, "operator not configured") {
		t.Fatalf("a revocation by another key was taken: %v %s", err, out)
	}
	if out, err := ring.cli("keys", "operator", "revoke", "--key", ring.opKey, c.ID, "--out", good); err != nil {
		t.Fatalf("sign: %v %s", err, out)
	}
	if out, err := ring.cli("keys", "revocations", "push", good, "--socket", a.Socket()); err != nil || !strings.Contains(out, "honoured now") {
		t.Fatalf("push: %v %s", err, out)
	}
	revoked := func(ctx context.Context, n *Node) bool {
		rs, err := n.Client().Revocations(ctx)
		return err == nil && slices.ContainsFunc(rs.Revocations, func(r control.Revocation) bool { return r.NodeID == c.ID && r.Operator == ring.op })
	}
	mustPoll(t, 30*time.Second, "the revocation reaches b by gossip", func(ctx context.Context) bool { return revoked(ctx, b) })
	rs, err := a.Client().Revocations(context.Background())
	if err != nil || rs.Stats["untrusted"] != 1 || rs.Stats["neighbours_dropped"] != 1 {
		t.Fatalf("a's counters: %+v %v", rs.Stats, err)
	}
	// a's sends to c end at once in a typed error instead of reaching it.
	p, err := a.Client().Ping(context.Background(), control.PingRequest{Target: c.ID, Count: 1, TimeoutMS: 2000})
	var apiErr *control.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "revoked" || apiErr.Status != http.StatusForbidden {
		t.Fatalf("ping a -> revoked c: %+v, %v", p, err)
	}

	// Kept in a private file of 137 bytes; honoured after a restart.
	path := filepath.Join(b.Dir, "revocations")
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != revoke.Size {
		t.Fatalf("b's file: %v %v", st, err)
	}
	b.Kill()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	mustPoll(t, 30*time.Second, "b honours it after a restart and refuses c's proofs", func(ctx context.Context) bool {
		rs, err := b.Client().Revocations(ctx)
		return err == nil && revoked(ctx, b) && rs.Stats["proofs_revoked"] > 0
	})
}
