package meshsim

import (
	"fmt"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
)

// TestFailNameOneKeyPerKind: a failure reported by another node ("…
// (reported by 02:…)") and the same failure found here count under one
// key, with no trailing space; hubs seed 7 listed "no route to the
// destination" and "no route to the destination " side by side.
func TestFailNameOneKeyPerKind(t *testing.T) {
	local := probeFailName(node.ErrNoRoute)
	if local != "no route to the destination" {
		t.Fatalf("local: %q", local)
	}
	for _, err := range []error{
		&node.RemoteError{Err: node.ErrNoRoute, From: "02:00:00:00:00:07"},
		fmt.Errorf("forwarding: %w", &node.RemoteError{Err: node.ErrNoRoute, From: "x"}),
	} {
		if got := probeFailName(err); got != local {
			t.Errorf("%v: named %q, want %q", err, got, local)
		}
	}
	if got := probeFailName(node.ErrAbandoned); got != "sequence abandoned" {
		t.Errorf("abandoned: %q", got)
	}
}
