package node

import (
	"runtime"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// An idle node (started, beaconing, with a few peers) holds under 64 KiB.
func TestIdleNodeHeap(t *testing.T) {
	const count = 100
	net := simnet.New()
	clk := net.Clock
	net.AddMedium("espnow", phys.ESPNOW(), 1)
	for i := range count {
		net.AddStation(sim.Position{X: float64(i)}, "espnow")
	}
	for i := 1; i < count; i++ {
		net.Connect("espnow", i-1, i, sim.Loss{}, sim.Loss{})
	}
	ids := make([]identity.Identity, count)
	for i := range ids {
		ids[i] = identity.FromSeed([32]byte{byte(i), byte(i >> 8), 1})
	}
	before := heapInUse()
	nodes := make([]*Node, count)
	for i := range nodes {
		n, err := New(Config{Clock: clk, Links: net.Links(i), Identity: ids[i], Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		n.Register(testApp, func(Message) {})
		n.Start()
		nodes[i] = n
	}
	// Ten minutes of beacons: peers known, nothing else.
	clk.RunFor(10 * time.Minute)
	after := heapInUse()
	per := (int64(after) - int64(before)) / count
	for _, n := range nodes {
		if n.peers.Len() == 0 {
			t.Fatal("nodes did not find their neighbours")
		}
	}
	if per > 64<<10 {
		t.Fatalf("an idle node holds %d bytes of heap, budget 64 KiB", per)
	}
	t.Logf("an idle node (2 peers, 10 min of beacons) holds %d bytes of heap", per)
	runtime.KeepAlive(nodes)
}
