package meshsim

import (
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
)

// TestPathInnerKinds: a probe carried in a path header counts as a probe
// in the airtime by kind, whatever the header holds after its address
// lists (the origin's list, the attempt's nonce, the destination tag:
// route/path.go); before, a header with a nonce counted as "other".
func TestPathInnerKinds(t *testing.T) {
	probe := packet.NewPackage(RouteApp, []byte("probe"))
	k := newAirKinds(nil)
	for _, flags := range []byte{0, 0x01, 0x02, 0x04, 0x07} {
		b := []byte{flags, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		b = append(b, 1, 0x10, 2, 3, 1) // one destination address
		if flags&0x01 != 0 {
			b = append(b, 1, 0x10, 1, 2) // one origin address
		}
		lists := len(b)
		if flags&0x02 != 0 {
			b = append(b, 1, 2, 3, 4, 5, 6, 7, 8)
		}
		if flags&0x04 != 0 {
			b = append(b, 0xd5, 1, 2, 3, 4, 5, 6, 7)
		}
		b = probe.AppendTo(b)
		pkg := packet.NewPackage(route.PathApp, b)
		if got := k.name(int(k.packageKind(pkg.AppendTo(nil)))); got != "probe" {
			t.Errorf("flags %#x: a probe in a path header counted as %q", flags, got)
		}
		if _, ok := pathInner(b[:lists+4]); flags&0x06 != 0 && ok {
			t.Errorf("flags %#x: a header cut inside its nonce or tag read", flags)
		}
	}
}
