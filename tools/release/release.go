// Package release packages the mycelium command for Debian and Raspberry
// Pi OS: a .deb (built with nfpm, the packaging library) holding the
// binary, the systemd unit, an example configuration and the maintainer
// scripts that create the node's user and identity.
package release

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/mycelium-mesh/mycelium/tools/daemon"
)

// Paths on the installed system.
const (
	BinPath    = "/usr/bin/mycelium"
	UnitPath   = "/lib/systemd/system/mycelium.service"
	ConfigPath = "/etc/mycelium/mycelium.toml"
	StateDir   = "/var/lib/mycelium"
	Socket     = "/run/mycelium/mycelium.sock"
)

// DebArch maps a Go target to a Debian architecture. linux/arm with GOARM
// 6 is armhf as Raspberry Pi OS defines it (ARMv6 with VFP: every Pi, the
// Zero and 1 included; it runs on ARMv7 too).
func DebArch(goarch, goarm string) (string, error) {
	switch goarch {
	case "amd64", "arm64":
		return goarch, nil
	case "arm":
		if goarm == "6" || goarm == "7" {
			return "armhf", nil
		}
	}
	return "", fmt.Errorf("no Debian architecture for GOARCH=%s GOARM=%s", goarch, goarm)
}

// PackagedConfig is the example configuration the package installs: the
// defaults, with the paths the unit and the maintainer scripts use.
func PackagedConfig() (string, error) {
	return daemon.Template(daemon.InitOptions{
		Socket: Socket, Group: "mycelium", Identity: filepath.Join(StateDir, daemon.IdentityFile),
	})
}

// DebOptions say what to package.
type DebOptions struct {
	Binary  string // the mycelium binary for Arch
	Arch    string // Debian architecture
	Version string // e.g. 0.1.0 or v0.1.0-3-gabcdef
	OutDir  string
	// MTime stamps every file (reproducible packages); zero: now.
	MTime time.Time
}

// deployDir is where the unit and scripts live in the source tree.
func deployDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(filepath.Dir(file)), "deploy")
}

// Deb writes mycelium_VERSION_ARCH.deb into OutDir and returns its path.
func Deb(opt DebOptions) (string, error) {
	if opt.MTime.IsZero() {
		opt.MTime = time.Now()
	}
	cfg, err := PackagedConfig()
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "mycelium-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cfgFile := filepath.Join(tmp, "mycelium.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return "", err
	}
	dd := deployDir()
	version := strings.TrimPrefix(opt.Version, "v")
	if version == "" || version[0] < '0' || version[0] > '9' {
		return "", fmt.Errorf("version %q: a Debian version starts with a digit", opt.Version)
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name: "mycelium", Arch: opt.Arch, Platform: "linux", Version: version, VersionSchema: "none",
		Section: "net", Priority: "optional", Maintainer: "Mycelium developers <mycelium@localhost>",
		Description: "Mycelium mesh node: ESP-NOW, LoRa (RYLR-998) and UDP links, signed spanning trees, routing\n" +
			"Joins Linux machines and ESP32 boards in one mesh. Runs as a systemd service\n" +
			"(mycelium node) with a control API on a unix socket; the mycelium command\n" +
			"talks to it (status, peers, ping, traceroute, send, listen).",
		Vendor: "Mycelium", Homepage: "https://github.com/mycelium-mesh/mycelium", License: "ISC", MTime: opt.MTime,
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				{Source: opt.Binary, Destination: BinPath, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
				{Source: filepath.Join(dd, "mycelium.service"), Destination: UnitPath, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: cfgFile, Destination: ConfigPath, Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
			},
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(dd, "postinstall.sh"),
				PreRemove:   filepath.Join(dd, "preremove.sh"),
			},
			Depends: []string{"adduser"},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("deb: %w", err)
	}
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(opt.OutDir, fmt.Sprintf("mycelium_%s_%s.deb", version, opt.Arch))
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(out)
		return "", fmt.Errorf("deb: %w", err)
	}
	return out, f.Close()
}
