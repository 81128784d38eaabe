package daemon

import (
	"errors"
	"os"
	"path/filepath"
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
	got := due([]revoke.Revocation{a, b, c}, nodeOf, heard, now, 6*time.Hour)
	if len(got) != 2 || got[0] != b || got[1] != c {
		t.Fatalf("due: %+v", got)
	}
	// Proxy revocations the same way, named by board, proxy and
	// certificate: one certificate's heard lately does not keep the
	// pair's every-certificate revocation quiet.
	one := revoke.SignProxyRevocation(op, identity.NodeID{4}, identity.NodeID{5}, now.Unix(), now)
	all := revoke.SignProxyRevocation(op, identity.NodeID{4}, identity.NodeID{5}, 0, now)
	pgot := due([]revoke.ProxyRevocation{one, all}, proxyKeyOf, map[proxyKey]time.Time{proxyKeyOf(one): now.Add(-time.Hour)}, now, 6*time.Hour)
	if len(pgot) != 1 || pgot[0] != all {
		t.Fatalf("due proxy revocations: %+v", pgot)
	}
}

// [trust] proxy_certificates: a certificate naming this node as the proxy
// is read; one naming another proxy, one whose signature fails, and a file
// that is no certificate stop the node with a configuration error; and
// certified_proxies needs an operator to certify anyone.
func TestProxyCertificates(t *testing.T) {
	dir := t.TempDir()
	op := identity.FromSeed([32]byte{'o'})
	self, other := identity.FromSeed([32]byte{'s'}).ID(), identity.FromSeed([32]byte{'t'}).ID()
	board := identity.NodeID{0xb0, 0x1d}
	write := func(name string, b []byte) string {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	good := revoke.SignProxy(op, board, self, time.Now().Add(time.Hour))
	forged := good
	forged.Until++
	theirs := revoke.SignProxy(op, board, other, time.Now().Add(time.Hour))
	cfg := Defaults()
	cfg.Path = filepath.Join(dir, "mycelium.toml")
	cfg.Trust.ProxyCertificates = []string{write("good.cert", good.PEM())}
	got, err := readProxyCerts(&cfg, self)
	if err != nil || len(got) != 1 || got[0] != good {
		t.Fatalf("a good certificate: %+v, %v", got, err)
	}
	for name, b := range map[string][]byte{"forged.cert": forged.PEM(), "theirs.cert": theirs.PEM(), "junk.cert": []byte("not a certificate")} {
		cfg.Trust.ProxyCertificates = []string{write(name, b)}
		if _, err := readProxyCerts(&cfg, self); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	cfg.Trust.ProxyCertificates = []string{"missing.cert"}
	if _, err := readProxyCerts(&cfg, self); !errors.Is(err, ErrConfig) {
		t.Errorf("a missing file: %v", err)
	}
	cfg = Defaults()
	cfg.Trust.CertifiedProxies = true
	if err := cfg.checkTrust(); !errors.Is(err, ErrConfig) {
		t.Errorf("certified_proxies with no operator: %v", err)
	}
	cfg.Trust.Operators = []string{op.ID().String()}
	if err := cfg.checkTrust(); err != nil {
		t.Errorf("certified_proxies with an operator: %v", err)
	}
}
