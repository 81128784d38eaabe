package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
)

// A node in modem sleep: its radio is off most of the time; peers learn it
// sleeps from its beacons, wake it with RNS, and deliver.
func TestModemSleepAndWake(t *testing.T) {
	me := newMesh(t, 2, phys.ESPNOW(), sim.Loss{}, 21, func(i int, c *Config) { c.Sleep = i == 1 })
	me.start()
	me.discover()
	a, b := me.nodes[0], me.nodes[1]
	if p := a.Peer(b.ID()); p == nil || !p.Sleeps {
		t.Fatalf("a does not know b sleeps: %+v", p)
	}
	// Let b fall back into its sleep rhythm, then measure how much it sleeps.
	me.clk.RunFor(5 * time.Second)
	r := me.radios[1]
	aw0, t0 := r.AwakeTime(), me.clk.Now()
	me.clk.RunFor(20 * time.Second)
	awake := float64(r.AwakeTime()-aw0) / float64(me.clk.Now().Sub(t0))
	// 40 ms on, 90 ms off (plus beacon bursts): about 31 % awake.
	if awake > 0.45 || awake < 0.25 {
		t.Fatalf("sleeping node awake %.0f%% of the time", 100*awake)
	}
	rns := a.Stats().RNSSent
	for k, size := range []int{100, 8000} {
		data := blob(size, byte(k))
		res := a.Send(b.ID(), testApp, data, nil)
		if err := me.wait(res, time.Minute); err != nil {
			t.Fatalf("size %d to a sleeping node: %v", size, err)
		}
		if got := me.got[1]; len(got) != k+1 || !bytes.Equal(got[k].Blob, data) {
			t.Fatalf("size %d not delivered", size)
		}
		me.clk.RunFor(2 * time.Second) // b goes back to sleep
	}
	if a.Stats().RNSSent == rns {
		t.Fatal("no RNS sent to a sleeping node")
	}
	if b.Stats().NIASent == 0 {
		t.Fatal("the sleeping node never answered NIA")
	}
	t.Logf("sleeping node awake %.0f%% of the time; %d RNS sent for 2 sends", 100*awake, a.Stats().RNSSent-rns)
}
