package lab

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/udp"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/refnode"
)

// keylessBoard runs a reference board (refnode: the MicroPython Packager
// modelled in Go) with a keyless node_id on UDP at listen, its one
// neighbour peer, in this process, until the test ends; it beacons every
// second. The daemon has no keyless mode of its own.
func keylessBoard(t *testing.T, listen, peer string) identity.NodeID {
	t.Helper()
	id := identity.NodeID{0xb0}
	for {
		if _, err := identity.X25519Public(id); err != nil {
			break // no Ed25519 key: a keyless board's node_id
		}
		id[1]++
	}
	loop := clock.NewLoop()
	l, err := udp.Open(udp.Config{Clock: loop, Listen: netip.MustParseAddrPort(listen), Peers: []netip.AddrPort{netip.MustParseAddrPort(peer)}, NoGroup: true})
	if err != nil {
		t.Fatal(err)
	}
	b := refnode.New(refnode.Config{Clock: loop, Link: l, NodeID: id, Seed: 1, BeaconPeriod: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { loop.Run(ctx); close(ran) }()
	loop.AfterFunc(0, b.Start)
	t.Cleanup(func() {
		done := make(chan struct{})
		loop.AfterFunc(0, func() { b.Close(); close(done) })
		<-done
		cancel()
		<-ran
		l.Close()
	})
	return id
}
