package replay

import (
	"math/rand/v2"
	"testing"
)

func TestWindow(t *testing.T) {
	var w Window
	seen := map[uint64]bool{}
	var hi uint64
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		c := hi + uint64(rng.IntN(64))
		if rng.IntN(3) == 0 && hi > 2000 {
			c = hi - uint64(rng.IntN(2000))
		}
		want := !seen[c] && (c+Size-64 >= hi || c >= hi)
		got := w.Fresh(c)
		if got && seen[c] {
			t.Fatalf("counter %d accepted twice", c)
		}
		if want && !got {
			t.Fatalf("counter %d (hi %d) refused", c, hi)
		}
		if got {
			w.Mark(c)
			seen[c] = true
			hi = max(hi, c+1)
		}
	}
}
