package route

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// leaves is the number of nodes round the hub of hubWithLeaves.
const leaves = 8

// hubWithLeaves builds a hub (node 0) with leaves neighbours that hear
// only it, converged, and returns the mesh and the first leaf's router.
func hubWithLeaves(t *testing.T, cfg tree.Config) (*hmesh, *Router) {
	t.Helper()
	me := newHMesh(t, cfg, 11)
	for range leaves + 1 {
		me.add(hspec{})
	}
	for i := 1; i <= leaves; i++ {
		me.connect("espnow", 0, i)
	}
	me.start()
	me.mustConverge(10 * time.Minute)
	return me, me.nodes[1].rt
}

// A hub that misses most of what its neighbours send says so in its
// beacons (l2-seq/node, busy.go): its neighbours then send their
// neighbourhood lists BusyPace times less often, and as often as before
// once it hears well again.
func TestNeighboursSlowForABusyHub(t *testing.T) {
	me, leaf := hubWithLeaves(t, tree.Config{Trees: 2})
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

// A registration's wait that busy air lengthened ends soon after the air
// clears. A node that says it is busy slows its neighbours' registrations
// (BusyPace); set once for the whole wait, a retry's wait outlived the
// spell (and a retry's doubling came on top of the pace: 16 minutes,
// past BusyMaxWait): at 3,000 nodes hundreds of records stayed
// unconfirmed minutes after the air had cleared. Now the wait is looked
// at again every unpaced interval: still paced while the air is busy, and
// over at the first look after.
func TestBusyPacedRegistrationEndsWithTheSpell(t *testing.T) {
	me, leaf := hubWithLeaves(t, tree.Config{Trees: 2, EpochPeriods: 1000})
	for i := 1; i <= leaves; i++ {
		me.net.Connect("espnow", i, 0, sim.Loss{P: 0.7}, sim.Loss{})
	}
	if !me.run(10*time.Minute, func() bool { return leaf.b.AirBusy() }) {
		t.Fatal("the leaf never heard the hub say it is busy")
	}
	// A registration no home will confirm (its signature broken), its
	// fourth try sent: the next waits 4×registerRetry, and longer while
	// the air is busy.
	var other identity.NodeID
	other[0] = 0xee
	rec := Record{ID: other, Signer: leaf.self, Time: me.clk.Now().UnixNano(), Addrs: leaf.Addrs()}
	rec.Sign(leaf.b.Signer())
	rec.Sig[0] ^= 0xff
	key := regKey{id: other, tree: 0}
	st := &regState{rec: rec, tries: 3}
	leaf.regs[key] = st
	leaf.sendRegister(key, st)
	sentAt := me.clk.Now()
	unpaced := leaf.paced(registerRetry, 200) << 2
	if me.run(unpaced+time.Minute, func() bool { return st.tries > 4 || !leaf.b.AirBusy() }) {
		t.Fatalf("after %v of busy air: tries %d, busy %v (the wait should be paced while the air is busy)", unpaced+time.Minute, st.tries, leaf.b.AirBusy())
	}
	for i := 1; i <= leaves; i++ {
		me.connect("espnow", 0, i)
	}
	if !me.run(20*time.Minute, func() bool { return st.tries > 4 || !leaf.b.AirBusy() }) {
		t.Fatal("no try, and the hub still says it is busy, 20 minutes after the loss ended")
	}
	if st.tries <= 4 {
		cleared := me.clk.Now()
		if !me.run(unpaced+time.Second, func() bool { return st.tries > 4 }) {
			t.Fatalf("no try %v after the air cleared (the wait outlived the busy spell)", me.clk.Now().Sub(cleared))
		}
	}
	if waited := me.clk.Now().Sub(sentAt); waited > tree.BusyMaxWait+time.Second {
		t.Fatalf("the next try came %v after the last (busy air may lengthen a wait to %v, no more)", waited, tree.BusyMaxWait)
	}
}
