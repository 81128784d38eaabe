package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
)

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := run("init", "--dir", dir, "--name", "alpha"); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	cfg := filepath.Join(dir, "mycelium.toml")
	key := filepath.Join(dir, "identity.pem")
	id, err := identity.Load(key)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run("keys", "show", "--config", cfg)
	_, x := id.X25519()
	if code != 0 || !strings.Contains(out, id.ID().String()) || !strings.Contains(out, hexOf(x)) {
		t.Fatalf("show: %d %q %q", code, out, errOut)
	}
	pub := filepath.Join(dir, "alpha.pub")
	if _, errOut, code := run("keys", "export", "--identity", key, "--out", pub); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	b, _ := os.ReadFile(pub)
	if got, err := identity.ParsePublicPEM(b); err != nil || got != id.ID() || strings.Contains(string(b), "PRIVATE") {
		t.Fatalf("exported %q (%v)", b, err)
	}
	if _, _, code := run("keys", "export", "--identity", key, "--out", pub); code == 0 {
		t.Fatal("export overwrote a file")
	}
	out, errOut, code = run("keys", "rotate", "--config", cfg)
	nid, err := identity.Load(key)
	if code != 0 || err != nil || strings.TrimSpace(out) != nid.ID().String() || nid.ID() == id.ID() {
		t.Fatalf("rotate: %d %q %q (%v)", code, out, errOut, err)
	}
	// Too open a key file is refused, not read.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run("keys", "show", "--identity", key); code == 0 || !strings.Contains(errOut, "permissions") {
		t.Fatalf("a 0644 key was read: %q", errOut)
	}
	if _, _, code := run("keys", "show"); code == 0 {
		t.Fatal("show without a file succeeded")
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestKeysOperator(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "op.pem")
	out, errOut, code := run("keys", "operator", "new", "--out", key)
	op, err := identity.Load(key)
	if code != 0 || err != nil || strings.TrimSpace(out) != op.ID().String() {
		t.Fatalf("new: %d %q %q (%v)", code, out, errOut, err)
	}
	if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
		t.Fatalf("operator key mode %v", st.Mode().Perm())
	}
	if _, _, code := run("keys", "operator", "new", "--out", key); code == 0 {
		t.Fatal("new overwrote an operator key")
	}
	node := identity.FromSeed([32]byte{7})
	pub := filepath.Join(dir, "n.pub")
	os.WriteFile(pub, identity.PublicPEM(node.ID()), 0o644)
	for _, arg := range []string{node.ID().String(), pub} {
		out, errOut, code = run("keys", "operator", "revoke", "--key", key, arg, "--date", "2026-12-05T04:00:00Z")
		r, err := revoke.ParsePEM([]byte(out))
		if code != 0 || err != nil || r.Verify() != nil || r.Operator != op.ID() || r.Node != node.ID() || r.Date != 1796443200 {
			t.Fatalf("revoke %s: %d %q %q (%v) %+v", arg, code, out, errOut, err, r)
		}
	}
	for _, bad := range [][]string{
		{"keys", "operator", "revoke", "--key", key, "not-a-node"},
		{"keys", "operator", "revoke", "--key", key, op.ID().String()},
		{"keys", "operator", "revoke", node.ID().String()},
	} {
		if _, _, code := run(bad...); code == 0 {
			t.Fatalf("%v succeeded", bad)
		}
	}
}

// TestKeysOperatorCertifyProxy: the certificate names the board and the
// proxy, verifies under the operator's key, holds for --valid; a board
// that has a key, or no key file, is refused.
func TestKeysOperatorCertifyProxy(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "op.pem")
	if _, errOut, code := run("keys", "operator", "new", "--out", key); code != 0 {
		t.Fatalf("new: %q", errOut)
	}
	op, _ := identity.Load(key)
	proxy := identity.FromSeed([32]byte{8})
	board := identity.NodeID{0xb0}
	for {
		if _, err := identity.X25519Public(board); err != nil {
			break
		}
		board[1]++
	}
	certFile := filepath.Join(dir, "board.cert")
	before := time.Now()
	_, errOut, code := run("keys", "operator", "certify-proxy", "--key", key, "--board", board.String(), proxy.ID().String(), "--valid", "48h", "--out", certFile)
	b, _ := os.ReadFile(certFile)
	c, err := revoke.ParseProxyPEM(b)
	if code != 0 || err != nil || c.Verify() != nil || c.Operator != op.ID() || c.Board != board || c.Proxy != proxy.ID() {
		t.Fatalf("certify-proxy: %d %q (%v) %+v", code, errOut, err, c)
	}
	if until := time.Unix(c.Until, 0); until.Before(before.Add(47*time.Hour)) || until.After(time.Now().Add(49*time.Hour)) {
		t.Fatalf("valid until %v, want 48 h on", until)
	}
	if err := c.Check([]identity.NodeID{op.ID()}, board, proxy.ID(), time.Now()); err != nil {
		t.Fatalf("a fresh certificate does not check: %v", err)
	}
	for _, bad := range [][]string{
		{"keys", "operator", "certify-proxy", "--key", key, "--board", proxy.ID().String(), op.ID().String()},                    // a board with a key
		{"keys", "operator", "certify-proxy", "--board", board.String(), proxy.ID().String()},                                    // no key
		{"keys", "operator", "certify-proxy", "--key", key, "--board", "b0", proxy.ID().String()},                                // not a node_id
		{"keys", "operator", "certify-proxy", "--key", key, "--board", board.String(), proxy.ID().String(), "--out", certFile},   // never overwritten
		{"keys", "operator", "certify-proxy", "--key", key, "--board", board.String(), proxy.ID().String(), "--valid", "0s"},     // no life
		{"keys", "operator", "certify-proxy", "--key", key, "--board", board.String(), proxy.ID().String(), "--valid", "87601h"}, // past ten years
	} {
		if _, _, code := run(bad...); code == 0 {
			t.Fatalf("%v succeeded", bad)
		}
	}
}

// TestKeysOperatorRevokeProxy: revoke-proxy signs the revocation of the
// certificate in --cert (that one, by its date), or with --board of every
// certificate for the board and PROXY; bad input is one error line and
// exit 1, and nothing is written.
func TestKeysOperatorRevokeProxy(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "op.pem")
	if _, errOut, code := run("keys", "operator", "new", "--out", key); code != 0 {
		t.Fatalf("new: %q", errOut)
	}
	op, _ := identity.Load(key)
	proxy := identity.FromSeed([32]byte{8})
	board := identity.NodeID{0xb0}
	for {
		if _, err := identity.X25519Public(board); err != nil {
			break
		}
		board[1]++
	}
	certFile := filepath.Join(dir, "board.cert")
	if _, errOut, code := run("keys", "operator", "certify-proxy", "--key", key, "--board", board.String(), proxy.ID().String(), "--out", certFile); code != 0 {
		t.Fatalf("certify-proxy: %q", errOut)
	}
	b, _ := os.ReadFile(certFile)
	cert, _ := revoke.ParseProxyPEM(b)
	later := revoke.SignProxy(op, board, proxy.ID(), time.Unix(cert.Until, 0).Add(time.Hour))

	one := filepath.Join(dir, "one.revoked")
	if _, errOut, code := run("keys", "operator", "revoke-proxy", "--key", key, "--cert", certFile, "--out", one); code != 0 {
		t.Fatalf("revoke-proxy --cert: %q", errOut)
	}
	b, _ = os.ReadFile(one)
	r, err := revoke.ParseProxyRevocationPEM(b)
	if err != nil || r.Verify() != nil || r.Operator != op.ID() || !r.Covers(&cert) || r.Covers(&later) {
		t.Fatalf("one certificate's revocation: %+v %v", r, err)
	}
	out, errOut, code := run("keys", "operator", "revoke-proxy", "--key", key, "--board", board.String(), proxy.ID().String(), "--date", "2026-12-05T09:00:00Z")
	r, err = revoke.ParseProxyRevocationPEM([]byte(out))
	if code != 0 || err != nil || r.Verify() != nil || !r.Covers(&cert) || !r.Covers(&later) || r.Date != time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC).Unix() {
		t.Fatalf("every certificate's revocation: %d %q %+v %v", code, errOut, r, err)
	}
	keyed := filepath.Join(dir, "keyed.pem")
	run("keys", "operator", "new", "--out", keyed) // a key file is no certificate
	for _, bad := range [][]string{
		{"keys", "operator", "revoke-proxy", "--cert", certFile},                                                               // no key
		{"keys", "operator", "revoke-proxy", "--key", key},                                                                     // neither --cert nor --board
		{"keys", "operator", "revoke-proxy", "--key", key, "--cert", certFile, "--board", board.String(), proxy.ID().String()}, // both
		{"keys", "operator", "revoke-proxy", "--key", key, "--cert", certFile, proxy.ID().String()},                            // --cert takes no PROXY
		{"keys", "operator", "revoke-proxy", "--key", key, "--board", board.String()},                                          // no PROXY
		{"keys", "operator", "revoke-proxy", "--key", key, "--board", "b0", proxy.ID().String()},                               // not a node_id
		{"keys", "operator", "revoke-proxy", "--key", key, "--cert", keyed},                                                    // not a certificate
		{"keys", "operator", "revoke-proxy", "--key", key, "--cert", filepath.Join(dir, "missing")},                            // no file
		{"keys", "operator", "revoke-proxy", "--key", key, "--cert", certFile, "--date", "yesterday"},                          // a bad date
		{"keys", "operator", "revoke-proxy", "--key", key, "--cert", certFile, "--out", one},                                   // never overwritten
	} {
		out, errOut, code := run(bad...)
		if code != 1 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || errOut == "" {
			t.Errorf("%v: exit %d, out %q, err %q: want exit 1 and one error line", bad[3:], code, out, errOut)
		}
	}
}
