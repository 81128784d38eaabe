package tree

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// run is what one simulated run produced.
type run struct {
	positions []string
	air       [32]byte // digest of every frame on the air, with its time and sender
	frames    uint64
	stats     string
}

func runMesh(t *testing.T, seed uint64) run {
	m := newMesh(t, 20, randomEdges(20, 30, seed), Config{Trees: 2}, seed)
	h := sha256.New()
	var frames uint64
	m.med.SetMonitor(func(at time.Time, from *sim.Radio, dst link.Addr, data []byte) {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(at.UnixNano()))
		h.Write(b[:])
		h.Write([]byte(from.Addr().String()))
		h.Write(data)
		frames++
	})
	m.start()
	m.waitConverged(10 * beaconPeriod)
	m.clk.RunFor(time.Minute) // and a while after, re-claims and all
	var r run
	r.positions = m.positions()
	copy(r.air[:], h.Sum(nil))
	r.frames = frames
	for _, tr := range m.trees {
		r.stats += fmt.Sprintf("%+v\n", tr.Stats())
	}
	return r
}

// TestDeterminism: the same seed gives the same run, to the frame (no map
// order, no wall clock, no shared randomness leaks into behaviour); and
// the comparison is sharp enough to tell another seed's run apart.
func TestDeterminism(t *testing.T) {
	a, b := runMesh(t, 41), runMesh(t, 41)
	if !slices.Equal(a.positions, b.positions) {
		for i := range a.positions {
			if a.positions[i] != b.positions[i] {
				t.Errorf("first difference:\n%s\n%s", a.positions[i], b.positions[i])
				break
			}
		}
	}
	if a.air != b.air || a.frames != b.frames {
		t.Errorf("the air differs: %d frames %x, %d frames %x", a.frames, a.air[:8], b.frames, b.air[:8])
	}
	if a.stats != b.stats {
		t.Errorf("the counters differ:\n%s\n%s", a.stats, b.stats)
	}
	if c := runMesh(t, 42); c.air == a.air || slices.Equal(c.positions, a.positions) {
		t.Error("another seed gave the same run: the comparison cannot tell runs apart")
	}
}
