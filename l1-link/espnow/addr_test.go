package espnow

import (
	"math/rand/v2"
	"testing"
)

// TestMACAppendText: AppendText appends exactly String's text, after what
// the buffer held, for MACs of every byte value.
func TestMACAppendText(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	macs := []MAC{{}, BroadcastMAC, {0x00, 0x09, 0x0a, 0x0f, 0x10, 0xa0}}
	for range 1000 {
		var m MAC
		for i := range m {
			m[i] = byte(rng.Uint32())
		}
		macs = append(macs, m)
	}
	for _, m := range macs {
		b, err := m.AppendText([]byte("x"))
		if err != nil || string(b) != "x"+m.String() || len(b) != 1+MACTextSize {
			t.Fatalf("%v: AppendText = %q, %v; want %q", m, b, err, "x"+m.String())
		}
	}
}
