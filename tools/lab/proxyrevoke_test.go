package lab

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// TestProxyRevocation: three `mycelium node` processes in a ring list one
// operator key and take only certified proxies; node 1 is the certified
// proxy ([trust] proxy_certificates) of a keyless reference board next to
// it (refnode, the MicroPython Packager modelled in Go, run in this
// process over UDP: the daemon has no keyless mode). Node 1 leases the
// board an address and registers its record with the certificate; node 0
// finds the board there. A revocation of the certificate signed by
// another key is refused; the operator's, pushed to node 0, spreads by
// gossip to nodes 1 and 2; the record is dropped where it was held
// (counted), node 0 no longer finds the board, node 1 reports its own
// certificate revoked and keeps the revocation in a private file of 177
// bytes; pushed again it is known; a certificate pushed as a revocation is
// one error line.
func TestProxyRevocation(t *testing.T) {
	ring := newOperatorRing(t, "pr", map[string]string{"trust.certified_proxies": "true"})
	a, b, c := ring.nodes[0], ring.nodes[1], ring.nodes[2]
	boardAddr, err := FreeUDP(1)
	if err != nil {
		t.Fatal(err)
	}
	board := keylessBoard(t, boardAddr[0], b.Listen)
	cert := filepath.Join(ring.dir, "board.cert")
	if out, err := ring.cli("keys", "operator", "certify-proxy", "--key", ring.opKey, "--board", board.String(), b.ID, "--out", cert); err != nil {
		t.Fatalf("certify: %v %s", err, out)
	}
	// Node 1 has the board as a static UDP neighbour besides the ring's.
	if err := b.Set(map[string]string{"trust.proxy_certificates": `["` + cert + `"]`,
		"link.peers": `["` + a.Listen + `", "` + c.Listen + `", "` + boardAddr[0] + `"]`}); err != nil {
		t.Fatal(err)
	}
	startAll(t, ring.nodes)
	ownCert := func(ctx context.Context) (control.ProxyCertificate, bool) {
		rs, err := b.Client().Revocations(ctx)
		if err != nil || len(rs.ProxyCertificates) != 1 {
			return control.ProxyCertificate{}, false
		}
		return rs.ProxyCertificates[0], true
	}
	mustPoll(t, 20*time.Second, "every node has both neighbours, and node 1 its certificate", func(ctx context.Context) bool {
		for _, n := range ring.nodes {
			if s, err := n.Client().Status(ctx); err != nil || s.Peers < 2 {
				return false
			}
		}
		own, ok := ownCert(ctx)
		return ok && own.Board == board.String() && !own.Revoked
	})
	lookup := func(ctx context.Context, wait time.Duration) bool {
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		r, err := a.Client().Lookup(ctx, board.String())
		return err == nil && len(r.Addrs) > 0
	}
	mustPoll(t, 25*time.Second, "node 0 finds the board at its certified proxy", func(ctx context.Context) bool { return lookup(ctx, 2*time.Second) })
	refused := func(ctx context.Context) (n uint64) {
		for _, nd := range ring.nodes {
			if rs, err := nd.Client().Revocations(ctx); err == nil {
				n += rs.Stats["records_refused"]
			}
		}
		return n
	}
	if n := refused(context.Background()); n != 0 {
		t.Fatalf("%d records refused before any revocation", n)
	}

	rogue, good := filepath.Join(ring.dir, "rogue.revoked"), filepath.Join(ring.dir, "board.revoked")
	if out, err := ring.cli("keys", "operator", "revoke-proxy", "--key", ring.rogueKey, "--cert", cert, "--out", rogue); err != nil {
		t.Fatalf("sign: %v %s", err, out)
	}
	if out, err := ring.cli("keys", "revocations", "push", rogue, "--socket", a.Socket()); err == nil || !strings.Contains(out, "operator not configured") {
		t.Fatalf("a revocation by another key was taken: %v %s", err, out)
	}
	if out, err := ring.cli("keys", "operator", "revoke-proxy", "--key", ring.opKey, "--cert", cert, "--out", good); err != nil {
		t.Fatalf("sign: %v %s", err, out)
	}
	if out, err := ring.cli("keys", "revocations", "push", good, "--socket", a.Socket()); err != nil || !strings.Contains(out, "honoured now") {
		t.Fatalf("push: %v %s", err, out)
	}
	held := func(ctx context.Context, n *Node) bool {
		rs, err := n.Client().Revocations(ctx)
		return err == nil && slices.ContainsFunc(rs.ProxyRevocations, func(r control.Revocation) bool {
			return r.Board == board.String() && r.Proxy == b.ID && r.Operator == ring.op && r.NodeID == ""
		})
	}
	// Broadcast once on a ring of three (no relay echoes it); a copy lost
	// on the way is repaired by the next hello lacking it, 10–15 s on
	// (FastTiming), a second loss 5 s later.
	mustPoll(t, 30*time.Second, "the revocation reaches nodes 1 and 2 by gossip, node 1 sees its certificate revoked, the record is dropped where it was held", func(ctx context.Context) bool {
		own, ok := ownCert(ctx)
		return held(ctx, b) && held(ctx, c) && ok && own.Revoked && refused(ctx) > 0
	})
	// Every node holds the revocation and dropped what rested on it: a
	// lookup has nothing to find (it is not answered within 3 s, where
	// the first one was answered within 2 s of the record's registration).
	if lookup(context.Background(), 3*time.Second) {
		t.Fatal("node 0 still finds the board after its proxy's certificate was revoked")
	}
	path := filepath.Join(b.Dir, "proxy-revocations")
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 || st.Size() != revoke.ProxyRevocationSize {
		t.Fatalf("node 1's file: %v %v", st, err)
	}
	if out, err := ring.cli("keys", "revocations", "push", good, "--socket", c.Socket()); err != nil || !strings.Contains(out, "honoured already") {
		t.Fatalf("pushed again: %v %s", err, out)
	}
	if out, err := ring.cli("keys", "revocations", "push", cert, "--socket", a.Socket()); err == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "malformed") {
		t.Fatalf("a certificate pushed as a revocation: %v %q", err, out)
	}
	rs, err := a.Client().Revocations(context.Background())
	if err != nil || rs.Stats["untrusted"] != 1 || rs.Stats["malformed"] != 1 || len(rs.Revocations) != 0 {
		t.Fatalf("node 0's counters: %+v %v", rs.Stats, err)
	}
}
