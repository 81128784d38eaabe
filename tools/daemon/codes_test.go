package daemon

import (
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
)

// Every error code the node has is named in the API: a send that fails
// with one (e.g. an end-to-end ErrUnauthenticated) says which in `code`.
func TestEveryNodeCodeNamed(t *testing.T) {
	for c := 1; c < 255; c++ {
		err := node.ErrorForCode(uint8(c))
		if node.CodeOf(err) != uint8(c) {
			continue // no such code
		}
		if errorCode(err) == "" {
			t.Errorf("node error %d (%v) has no name in the API", c, err)
		}
	}
	if got := errorCode(&node.RemoteError{Err: node.ErrUnauthenticated, From: "x"}); got != "unauthenticated" {
		t.Errorf("a reported ErrUnauthenticated is named %q", got)
	}
}
