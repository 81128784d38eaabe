package tree

import (
	"bytes"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// TestWorseClaimAnsweredByFew: a gateway that claims a root worse than
// the one its many neighbours follow (here its trees start after the
// mesh formed, and its election fires before any claim reaches it) is
// told of the better root by a few of them, not by every one at once:
// forty neighbours hidden from each other, each sending it the same
// answer at the same instant by a hop the MAC retries, kept its air
// full for the two seconds it took to follow (on a rooftop gateway of
// two hundred, while six trees formed, answers to its claims were one
// of the storms that left it deaf). It follows the better root within a
// claim period either way.
func TestWorseClaimAnsweredByFew(t *testing.T) {
	const spokes = 40
	gw, other := 0, spokes+1
	var edges [][2]int
	for i := 1; i <= spokes; i++ {
		edges = append(edges, [2]int{other, i}, [2]int{gw, i})
	}
	m := newMesh(t, spokes+2, edges, Config{Trees: 1, EpochPeriods: -1}, 4)
	var mesh []int
	for i := 1; i <= other; i++ {
		mesh = append(mesh, i)
	}
	best := m.bestScore(0, mesh)
	if m.bestScore(0, append([]int{gw}, mesh...)) != best {
		t.Fatal("the gateway's score is the best: pick another seed")
	}
	// The gateway's trees start once the mesh has formed and it knows
	// its neighbours (as when it reboots): its election happens to fire
	// before any claim reaches it, and it claims.
	m.nodes[gw].Start()
	for _, i := range mesh {
		m.nodes[i].Start()
		m.trees[i].Start()
	}
	bestKey := m.nodes[best].Signer().Public()
	follows := func(i int) bool {
		r, alive := m.trees[i].Root(0)
		_, placed := m.trees[i].Current(0)
		return alive && placed && bytes.Equal(r, bestKey)
	}
	if _, ok := m.runUntil(10*beaconPeriod, func() bool {
		for _, i := range mesh {
			if !follows(i) {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatal("the mesh did not form")
	}
	if _, ok := m.runUntil(5*beaconPeriod, func() bool {
		for i := 1; i <= spokes; i++ {
			if !m.trees[i].b.SpeaksOurs(m.ep(gw)) || !m.trees[gw].b.SpeaksOurs(m.ep(i)) {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatal("the gateway and its neighbours do not know each other")
	}
	cp := m.trees[0].Config().ClaimPeriod
	m.trees[gw].Start()
	m.trees[gw].trees[0].startTerm()
	gwAddr := m.radios[gw].Addr().String()
	frames, air := 0, time.Duration(0)
	m.med.SetAttemptLog(func(a *sim.Attempt) {
		if a.From != m.radios[gw] && a.Dst != nil && a.Dst.String() == gwAddr {
			frames++
			air += a.End.Sub(a.Start)
		}
	})
	took, ok := m.runUntil(cp, func() bool { return follows(gw) })
	m.med.SetAttemptLog(nil)
	t.Logf("the gateway followed the mesh's root after %v; %d frames to it (%v on the air)", took, frames, air)
	if !ok {
		t.Fatalf("the gateway did not follow the mesh's root within %v", took)
	}
	// Its answers and request take a few milliseconds; forty answers at
	// once, and their retries, took most of its air.
	if air > took/10 {
		t.Errorf("frames to the gateway took %v of the %v it took to follow the better root (want at most a tenth)", air, took)
	}
}
