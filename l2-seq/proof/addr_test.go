package proof

import (
	"bytes"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// TestAppendAddrMAC: a MAC goes into a proof's input as every address
// does (its network and its text, each after its length), written
// without formatting a string.
func TestAppendAddrMAC(t *testing.T) {
	generic := func(b []byte, a link.Addr) []byte {
		net, s := a.Network(), a.String()
		b = append(b, byte(len(net)))
		b = append(b, net...)
		b = append(b, byte(len(s)))
		return append(b, s...)
	}
	for _, m := range []espnow.MAC{{}, espnow.BroadcastMAC, {0x02, 0x00, 0x5e, 0xa0, 0x0f, 0xf1}} {
		if got, want := appendAddr([]byte{9}, m), generic([]byte{9}, m); !bytes.Equal(got, want) {
			t.Fatalf("%v: %q, want %q", m, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { appendAddr(make([]byte, 0, 64), espnow.MAC{1}) }); n > 1 {
		t.Fatalf("%v allocations, want at most the buffer's", n)
	}
}
