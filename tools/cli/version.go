package cli

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is the release, set at link time by a release build
// (-ldflags "-X github.com/mycelium-mesh/mycelium/tools/cli.Version=v1.2.3");
// otherwise the module version the Go tool recorded, "(devel)" for a build
// from a checkout.
var Version = ""

// version says what `mycelium --version` prints: the release, the commit it
// was built from (with "+dirty" for uncommitted changes) and the Go release.
func version() string {
	v := Version
	var rev string
	dirty := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	parts := []string{v}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		parts = append(parts, "commit "+rev)
	}
	parts = append(parts, runtime.Version())
	return strings.Join(parts, ", ")
}
