package node

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// starMesh is a hub (node 0) and leaves that hear only the hub, started
// and discovered.
func starMesh(t *testing.T, leaves int, seed byte) *mesh {
	me := emptyMesh(t, phys.ESPNOW(), uint64(seed))
	for i := range leaves + 1 {
		me.add(sim.Position{}, Config{Identity: identity.FromSeed([32]byte{byte(i + 1), seed}), Seed: uint64(seed)*1000 + uint64(i)})
	}
	for i := 1; i <= leaves; i++ {
		me.connect(0, i, sim.Loss{})
	}
	me.start()
	me.discover()
	return me
}

// A hub that misses most of its neighbours' beacons says it is busy in its
// own beacons, its neighbours hear it, and both go back once it hears
// well again.
func TestBusyHubSaysSoAndRecovers(t *testing.T) {
	const leaves = 8
	me := starMesh(t, leaves, 3)
	hub, leaf := me.nodes[0], me.nodes[1]
	run := func(d time.Duration) { me.clk.RunWhile(me.clk.Now().Add(d), func() bool { return true }) }
	run(5 * time.Minute)
	if hub.Busy() || leaf.neighbourBusy() {
		t.Fatal("busy on a clean channel")
	}
	// What the leaves send is mostly lost at the hub (hidden from each
	// other, they collide there); the hub is heard well.
	for i := 1; i <= leaves; i++ {
		me.net.Connect("m", i, 0, sim.Loss{P: 0.7}, sim.Loss{})
	}
	ok := me.clk.RunWhile(me.clk.Now().Add(10*time.Minute), func() bool { return !leaf.neighbourBusy() })
	if !ok || !hub.Busy() {
		t.Fatalf("hub busy %v, leaf hears it %v, after 10 minutes of 70 %% loss", hub.Busy(), leaf.neighbourBusy())
	}
	if leaf.Busy() {
		t.Fatal("a leaf that hears everything says it is busy")
	}
	for i := 1; i <= leaves; i++ {
		me.connect(0, i, sim.Loss{})
	}
	ok = me.clk.RunWhile(me.clk.Now().Add(10*time.Minute), func() bool { return leaf.neighbourBusy() })
	if !ok || hub.Busy() {
		t.Fatalf("hub busy %v, leaf hears it %v, 10 minutes after the loss ended", hub.Busy(), leaf.neighbourBusy())
	}
	if hub.Stats().BusyWindows == 0 {
		t.Fatal("busy windows not counted")
	}
}

// A few neighbours' lost beacons are chance, not crowding: a node with two
// neighbours is never busy.
func TestBusyNeedsEnoughNeighbours(t *testing.T) {
	me := newMesh(t, 3, phys.ESPNOW(), sim.Loss{}, 4, nil)
	me.start()
	me.discover()
	me.net.Connect("m", 0, 1, sim.Loss{P: 0.8}, sim.Loss{})
	me.net.Connect("m", 2, 1, sim.Loss{P: 0.8}, sim.Loss{})
	me.clk.RunWhile(me.clk.Now().Add(10*time.Minute), func() bool { return !me.nodes[1].Busy() })
	if me.nodes[1].Busy() {
		t.Fatal("busy with two neighbours")
	}
}

// Only a neighbour that proved its key slows us by saying it is busy: a
// beacon from a node_id that never proved itself is anyone's to send.
func TestBusyBelievedOnlyWhenProven(t *testing.T) {
	for _, canProve := range []bool{false, true} {
		me := emptyMesh(t, phys.ESPNOW(), 6)
		for i := range 2 {
			me.add(sim.Position{}, Config{Identity: identity.FromSeed([32]byte{byte(i + 1), 6}), Seed: uint64(i)})
		}
		if !canProve {
			me.nodes[1].Unregister(proof.AppID)
		}
		me.connect(0, 1, sim.Loss{})
		me.start()
		me.discover()
		me.clk.RunFor(time.Minute)
		a, b := me.nodes[0], me.nodes[1]
		if p := a.Peer(b.ID()); p == nil || p.Proven != canProve {
			t.Fatalf("can prove %v: b's entry at a: %+v", canProve, p)
		}
		// b's next beacon burst says busy (a node with one neighbour
		// never measures itself so; the message is built as its beacons
		// would be).
		for _, m := range beacon.Messages(beacon.OpBeacon, b.ID(), append(b.announced(0), beacon.BusyID)) {
			blob, _ := m.AppendTo(nil)
			b.Broadcast(beacon.AppID, blob, nil)
		}
		me.clk.RunFor(50 * time.Millisecond)
		if p := a.Peer(b.ID()); p == nil || !p.Busy {
			t.Fatalf("can prove %v: a did not hear b's busy beacon: %+v", canProve, p)
		}
		if got := a.neighbourBusy(); got != canProve {
			t.Errorf("can prove %v: a slows for b: %v", canProve, got)
		}
	}
}

// A crowded hub's quick weigh says busy within a minute of its hearing
// collapsing, and its neighbours hear so at once (a burst sent then), not
// three to four minutes later as the three-period window alone; it says
// clear again within a minute of hearing well.
func TestQuickBusySaysSoWithinAMinute(t *testing.T) {
	const leaves = 100 // 400 beacons a period: above quickMin
	me := starMesh(t, leaves, 7)
	hub, leaf := me.nodes[0], me.nodes[1]
	me.clk.RunFor(6 * time.Minute)
	if hub.Busy() || leaf.neighbourBusy() {
		t.Fatal("busy on a clean channel")
	}
	for i := 1; i <= leaves; i++ {
		me.net.Connect("m", i, 0, sim.Loss{P: 0.8}, sim.Loss{})
	}
	start := me.clk.Now()
	ok := me.clk.RunWhile(start.Add(80*time.Second), func() bool { return !leaf.neighbourBusy() })
	if !ok || !hub.Busy() || hub.Stats().QuickBusy == 0 {
		t.Fatalf("80 s into 80 %% loss at the hub: hub busy %v (quick %d), leaf hears it %v", hub.Busy(), hub.Stats().QuickBusy, leaf.neighbourBusy())
	}
	t.Logf("leaf heard busy %v after the loss began", me.clk.Now().Sub(start))
	for i := 1; i <= leaves; i++ {
		me.connect(0, i, sim.Loss{})
	}
	start = me.clk.Now()
	ok = me.clk.RunWhile(start.Add(80*time.Second), func() bool { return leaf.neighbourBusy() })
	if !ok || hub.Busy() {
		t.Fatalf("80 s after the loss ended: hub busy %v, leaf hears it %v", hub.Busy(), leaf.neighbourBusy())
	}
}
