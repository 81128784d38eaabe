package route

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// A hub that misses most of what its neighbours send says so in its
// beacons (l2-seq/node, busy.go): its neighbours then send their
// neighbourhood lists BusyPace times less often, and as often as before
// once it hears well again.
func TestNeighboursSlowForABusyHub(t *testing.T) {
	const leaves = 8
	me := newHMesh(t, tree.Config{Trees: 2}, 11)
	for range leaves + 1 {
		me.add(hspec{})
	}
	for i := 1; i <= leaves; i++ {
		me.connect("espnow", 0, i)
	}
	me.start()
	me.mustConverge(10 * time.Minute)
	leaf := me.nodes[1].rt
	ticks := func(d time.Duration) int {
		before := leaf.hood.ticks
		end := me.clk.Now().Add(d)
		me.run(end.Sub(me.clk.Now()), func() bool { return false })
		return leaf.hood.ticks - before
	}
	normal := ticks(10 * time.Minute)
	for i := 1; i <= leaves; i++ {
		me.net.Connect("espnow", i, 0, sim.Loss{P: 0.7}, sim.Loss{})
	}
	if !me.run(10*time.Minute, func() bool { return leaf.b.AirBusy() }) {
		t.Fatal("the leaf never heard the hub say it is busy")
	}
	busy := ticks(10 * time.Minute)
	if !leaf.b.AirBusy() {
		t.Fatal("the hub stopped saying it is busy under the same loss")
	}
	for i := 1; i <= leaves; i++ {
		me.connect("espnow", 0, i)
	}
	if !me.run(10*time.Minute, func() bool { return !leaf.b.AirBusy() }) {
		t.Fatal("the hub still says it is busy 10 minutes after the loss ended")
	}
	after := ticks(10 * time.Minute)
	t.Logf("neighbourhood-list rounds in 10 minutes: %d before, %d while busy, %d after", normal, busy, after)
	if busy*3 > normal || busy == 0 {
		t.Errorf("while the hub was busy the leaf sent %d rounds in 10 minutes against %d before", busy, normal)
	}
	if after*2 < normal {
		t.Errorf("after, %d rounds against %d before", after, normal)
	}
}
