package node

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/bsig"
	"github.com/mycelium-mesh/mycelium/l2-seq/hop"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/sequence"
)

// FuzzReceive feeds a node arbitrary packet streams from a handful of
// senders: no input may panic it, and its memory stays within its budgets.
// The stream is a sequence of records: sender (1 byte), time step in ms
// (1 byte), length (1 byte), then that many bytes of datagram.
func FuzzReceive(f *testing.F) {
	// Seeds: a beacon, a sequence, acks, rtx, probes, RNS, garbage.
	add := func(recs ...[]byte) {
		var b []byte
		for i, r := range recs {
			b = append(b, byte(i%3), 1, byte(len(r)))
			b = append(b, r...)
		}
		f.Add(b)
	}
	bm := beacon.Message{Op: beacon.OpBeacon, NodeID: [32]byte{5}, Apps: []packet.AppID{beacon.AppID, beacon.CapabilitiesID}}
	bb, _ := bm.AppendTo(nil)
	bpkt := mustPack(packet.Packet{Schema: 0, Body: packet.NewPackage(beacon.AppID, bb).AppendTo(nil)})
	tmpl := packet.Packet{SeqID: 3}
	seq, _ := sequence.Split(packet.MustLookup(2), packet.NewPackage(testApp, make([]byte, 600)).AppendTo(nil), &tmpl)
	add(append([][]byte{bpkt}, seq...)...)
	add(bpkt, seq[0], seq[2], mustPack(packet.Packet{Schema: 2, SeqID: 3, SeqSize: 2, PacketID: 2, Flags: packet.Flags(0).WithEncoded(packet.EncAsk)}))
	add(mustPack(packet.Packet{Schema: 4, SeqID: 1, SeqSize: 65535, PacketID: 65535, Body: make([]byte, 237)}))
	add(mustPack(packet.Packet{Schema: 2, SeqID: 9, SeqSize: 9, PacketID: 1, Flags: packet.Flags(0).WithEncoded(packet.EncRtx)}))
	add(mustPack(packet.Packet{Schema: 0, Flags: packet.Flags(0).WithEncoded(packet.EncRNS)}), []byte{0, 0, 0}, []byte{1, 2, 3, 4, 5, 6})
	add(mustPack(packet.Packet{Schema: 2, SeqID: 0, SeqSize: 1, Flags: packet.Flags(0).WithEncoded(packet.EncAck), Body: []byte{0, 0, 5, 0, 0, 0xff}}))
	// A signed broadcast from an unproven sender, and one cut short.
	env := bsig.Append(nil, identity.FromSeed([32]byte{5}), identity.FromSeed([32]byte{5}).ID(), [8]byte{1}, 3, testApp, []byte("signed"))
	benv := mustPack(packet.Packet{Schema: 0, Body: packet.NewPackage(bsig.AppID, env).AppendTo(nil)})
	add(bpkt, benv, mustPack(packet.Packet{Schema: 0, Body: packet.NewPackage(bsig.AppID, env[:40]).AppendTo(nil)}))
	// A frame marked as hop-authenticated (from an address not proven to
	// the node: its trailer is stripped), and one too short for a trailer.
	marked := append(mustPack(packet.Packet{Schema: 0, Body: packet.NewPackage(testApp, []byte("hi")).AppendTo(nil)}), make([]byte, hop.Overhead)...)
	marked[1] = hop.Marker
	add(bpkt, marked, []byte{0, hop.Marker, 0, 0, 1})
	f.Fuzz(fuzzReceiveBody)
}

func fuzzReceiveBody(t *testing.T, stream []byte) {
	{
		clk := clock.NewVirtual(time.Time{})
		fl := newFakeLink(clk, "espnow", espnow.MAC{2, 0, 0, 0, 0, 1}, link.SchemasESPNOW, espnow.Bitrate, time.Millisecond, link.CapBroadcast|link.CapSleep)
		bud := Budgets{RxTotal: 64 << 10, RxPerPeer: 32 << 10, SendCache: 64 << 10}
		n, err := New(Config{Clock: clk, Links: []link.Link{fl}, BeaconPeriod: -1, Identity: identity.FromSeed([32]byte{1}), Budgets: bud})
		if err != nil {
			t.Fatal(err)
		}
		n.Register(testApp, func(Message) {})
		n.Start()
		// Something of ours in flight, so acks and rtx have a target.
		n.SendTo(peer.Endpoint{Addr: espnow.MAC{0x24, 0, 0, 0, 0, 0}}, testApp, make([]byte, 3000), nil)
		for len(stream) >= 3 {
			src, step, l := stream[0], stream[1], int(stream[2])
			stream = stream[3:]
			l = min(l, len(stream))
			fl.deliver(espnow.MAC{0x24, 0, 0, 0, 0, src % 8}, stream[:l])
			stream = stream[l:]
			runBounded(t, clk, time.Duration(step)*time.Millisecond)
			if n.RxBytes() > bud.RxTotal {
				t.Fatalf("reassembly holds %d bytes, budget %d", n.RxBytes(), bud.RxTotal)
			}
			if n.CacheBytes() > bud.SendCache {
				t.Fatalf("send cache %d bytes", n.CacheBytes())
			}
		}
		runBounded(t, clk, 10*time.Minute)
		if n.RxBytes() != 0 || n.rxSeqs != 0 {
			t.Fatalf("after ten quiet minutes %d bytes in %d reassemblies", n.RxBytes(), n.rxSeqs)
		}
		if len(n.eps) > maxStrangers+n.peers.Len()+1 {
			t.Fatalf("%d endpoints", len(n.eps))
		}
	}
}

// runBounded runs the clock for d but fails on a runaway: a node that
// schedules without end at one instant, or floods the event queue.
func runBounded(t *testing.T, clk *clock.Virtual, d time.Duration) {
	t.Helper()
	end := clk.Now().Add(d)
	start := clk.Ran()
	for {
		next, ok := clk.Next()
		if !ok || next.After(end) {
			clk.RunUntil(end)
			return
		}
		clk.Step()
		if clk.Ran()-start > 200000 {
			t.Fatalf("runaway: 200000 events within %v (now %v)", d, clk.Now())
		}
	}
}
