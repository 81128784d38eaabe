package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
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
