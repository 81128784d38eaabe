package release

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/tools/daemon"
)

// The .deb holds the binary, the unit and the example configuration (a
// conffile the node accepts as it is), and the maintainer scripts.
func TestDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("needs dpkg-deb to read the package back (Debian: the dpkg package)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mycelium")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path, err := Deb(DebOptions{Binary: bin, Arch: "armhf", Version: "v1.2.3", OutDir: dir, MTime: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "mycelium_1.2.3_armhf.deb" {
		t.Fatalf("package name %s", path)
	}
	field := func(name string) string {
		out, err := exec.Command("dpkg-deb", "-f", path, name).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	if field("Package") != "mycelium" || field("Architecture") != "armhf" || field("Version") != "1.2.3" {
		t.Fatalf("control: %s %s %s", field("Package"), field("Architecture"), field("Version"))
	}
	root := filepath.Join(dir, "root")
	if out, err := exec.Command("dpkg-deb", "-R", path, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -R: %v %s", err, out)
	}
	for _, p := range []string{BinPath, UnitPath, ConfigPath, "/DEBIAN/postinst", "/DEBIAN/prerm"} {
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if (p == BinPath || strings.HasPrefix(p, "/DEBIAN/")) && st.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable", p)
		}
	}
	conf, _ := os.ReadFile(filepath.Join(root, "DEBIAN", "conffiles"))
	if strings.TrimSpace(string(conf)) != ConfigPath {
		t.Errorf("conffiles %q", conf)
	}
	cfgText, _ := os.ReadFile(filepath.Join(root, ConfigPath))
	cfg, err := daemon.Parse(string(cfgText), ConfigPath)
	if err != nil {
		t.Fatalf("the packaged configuration: %v", err)
	}
	if cfg.Control.Socket != Socket || cfg.Control.Group != "mycelium" || cfg.Resolve(cfg.Node.Identity) != "/var/lib/mycelium/identity.pem" {
		t.Fatalf("packaged paths: %+v %+v", cfg.Control, cfg.Node)
	}
	unit, _ := os.ReadFile(filepath.Join(root, UnitPath))
	for _, want := range []string{"ExecStart=" + BinPath + " node --config " + ConfigPath, "User=mycelium", "RuntimeDirectory=mycelium",
		"CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN", "ProtectSystem=strict", "NoNewPrivileges=yes"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	post, _ := os.ReadFile(filepath.Join(root, "DEBIAN", "postinst"))
	if !strings.Contains(string(post), "mycelium init --key-only --dir "+StateDir) {
		t.Error("postinst does not create the identity")
	}
	// The unit is one systemd accepts (with ExecStart pointing at a binary
	// that exists here).
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		u := strings.ReplaceAll(string(unit), "ExecStart="+BinPath, "ExecStart="+bin)
		up := filepath.Join(dir, "mycelium.service")
		os.WriteFile(up, []byte(u), 0o644)
		if out, err := exec.Command("systemd-analyze", "verify", "--man=no", up).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}

func TestDebArch(t *testing.T) {
	for _, tc := range []struct{ goarch, goarm, want string }{{"amd64", "", "amd64"}, {"arm64", "", "arm64"}, {"arm", "6", "armhf"}, {"arm", "7", "armhf"}} {
		if got, err := DebArch(tc.goarch, tc.goarm); err != nil || got != tc.want {
			t.Errorf("%s/%s: %s %v", tc.goarch, tc.goarm, got, err)
		}
	}
	if _, err := DebArch("arm", "5"); err == nil {
		t.Error("armv5 has an architecture")
	}
}

func TestDebVersionMustStartWithDigit(t *testing.T) {
	if _, err := Deb(DebOptions{Binary: "/nonexistent", Arch: "amd64", Version: "abc123", OutDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "digit") {
		t.Fatalf("version abc123: %v", err)
	}
}
