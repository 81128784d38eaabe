package node

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/internal/vectors"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/sequence"
)

// vectorNode is a node whose node_id is the vectors' a0a0… (the id is the
// public key, so the beacon's bytes are patched: we test the layout with
// our id, and compare bytes with the vector's id swapped in).
type beaconVec struct {
	Kind      string        `json:"kind"`
	Schemas   []uint8       `json:"interface_schemas"`
	Apps      []vectors.Hex `json:"registered_app_ids"`
	NodeID    vectors.Hex   `json:"node_id"`
	PidBefore int           `json:"packet_id_before"`
	Datagrams []struct {
		Data vectors.Hex `json:"data"`
	} `json:"datagrams"`
	Title   string      `json:"title"`
	FromMAC string      `json:"from_mac"`
	OwnID   vectors.Hex `json:"own_node_id"`
	Input   vectors.Hex `json:"input"`
	Output  []struct {
		Addr string      `json:"addr"`
		Data vectors.Hex `json:"data"`
	} `json:"output"`
	StateAfter struct {
		PacketID int      `json:"packet_id"`
		Peers    []string `json:"peers"`
	} `json:"state_after"`
}

// swapID replaces our node_id by the vector's in a beacon datagram and
// recomputes the Package hash, so bytes compare with the reference's.
func swapID(t *testing.T, dgram []byte, ours identity.NodeID, theirs []byte) []byte {
	t.Helper()
	var p packet.Packet
	if err := p.UnmarshalBinary(dgram); err != nil {
		t.Fatal(err)
	}
	var pkg packet.Package
	if err := pkg.UnmarshalBinary(p.Body); err != nil {
		t.Fatal(err)
	}
	blob := bytes.Replace(pkg.Blob, ours[:], theirs, 1)
	np := packet.NewPackage(pkg.AppID, blob)
	p.Body = np.AppendTo(nil)
	out, err := p.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBeaconVectors(t *testing.T) {
	var f vectors.File[beaconVec]
	vectors.Load(t, "beacon.json", &f)
	seen := 0
	for _, v := range f.Vectors {
		switch v.Kind {
		case "broadcast":
			seen++
			clk := clock.NewVirtual(time.Time{})
			fl := newFakeLink(clk, "rylr998", rylr998.Addr(1), v.Schemas, rylr998.Bitrate, time.Millisecond, link.CapBroadcast)
			n, _ := New(Config{Clock: clk, Links: []link.Link{fl}, Reference: true, BeaconPeriod: -1, Identity: identity.FromSeed([32]byte{7})})
			for _, a := range v.Apps[1:] {
				var id packet.AppID
				copy(id[:], a)
				n.Register(id, func(Message) {})
			}
			n.Start()
			n.pid = uint16(v.PidBefore)
			n.SendBeacon(0, beacon.OpBeacon)
			clk.RunFor(time.Second)
			got := fl.take()
			if len(got) != len(v.Datagrams) {
				t.Fatalf("broadcast: %d datagrams, want %d", len(got), len(v.Datagrams))
			}
			for i, g := range got {
				if !g.dst.IsBroadcast() {
					t.Fatalf("beacon to %v", g.dst)
				}
				if b := swapID(t, g.data, n.ID(), v.NodeID); !bytes.Equal(b, v.Datagrams[i].Data) {
					t.Errorf("broadcast datagram:\n got %x\nwant %x", b, []byte(v.Datagrams[i].Data))
				}
			}
		case "receive":
			seen++
			clk := clock.NewVirtual(time.Time{})
			fl := newFakeLink(clk, "espnow", espnow.MAC{2, 0, 0, 0, 0, 9}, link.SchemasESPNOW, espnow.Bitrate, 2*time.Millisecond, link.CapBroadcast)
			n, _ := New(Config{Clock: clk, Links: []link.Link{fl}, Reference: true, BeaconPeriod: -1, Identity: identity.FromSeed([32]byte{7})})
			n.Register(packet.AppID(mustHex("9580e5aff95dea1fdb4c986f5aba7acf")), func(Message) {})
			n.Start()
			n.pid = 48
			from, _ := espnow.ParseMAC(v.FromMAC)
			fl.broadcast(from, v.Input)
			clk.RunFor(time.Second)
			got := fl.take()
			if len(got) != len(v.Output) {
				t.Fatalf("%s: %d datagrams, want %d", v.Title, len(got), len(v.Output))
			}
			for i, g := range got {
				if g.dst.String() != "24:0a:c4:00:00:02" {
					t.Fatalf("%s: response to %v", v.Title, g.dst)
				}
				if b := swapID(t, g.data, n.ID(), v.OwnID); !bytes.Equal(b, v.Output[i].Data) {
					t.Errorf("%s:\n got %x\nwant %x", v.Title, b, []byte(v.Output[i].Data))
				}
			}
			var id identity.NodeID
			copy(id[:], mustHex("b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"))
			p := n.Peer(id)
			if bytes.Contains(v.Input, []byte{0xff, 0xb2}) {
				// Disconnect: the reference (wrongly) adds the peer; we forget it.
				if p != nil {
					t.Errorf("%s: disconnect added the peer", v.Title)
				}
				continue
			}
			if p == nil || p.Timeout != peer.DefaultTimeout || p.Full {
				t.Errorf("%s: peer %+v", v.Title, p)
			}
		}
	}
	if seen != 3 {
		t.Fatalf("%d beacon node vectors", seen)
	}
}

// refPeer scripts a reference node (PROTOCOL 11) on a fake ESP-NOW link.
type refPeer struct {
	t    *testing.T
	clk  *clock.Virtual
	fl   *fakeLink
	n    *Node
	mac  espnow.MAC
	id   identity.NodeID
	pid  uint8
	seen []Message
}

func newRefPeer(t *testing.T) *refPeer {
	clk := clock.NewVirtual(time.Time{})
	// Like espnow.Link: no CapSleep.
	fl := newFakeLink(clk, "espnow", espnow.MAC{2, 0, 0, 0, 0, 1}, link.SchemasESPNOW, espnow.Bitrate, 2*time.Millisecond, link.CapBroadcast)
	n, err := New(Config{Clock: clk, Links: []link.Link{fl}, BeaconPeriod: -1, Identity: identity.FromSeed([32]byte{8})})
	if err != nil {
		t.Fatal(err)
	}
	rp := &refPeer{t: t, clk: clk, fl: fl, n: n, mac: espnow.MAC{0x24, 0x0a, 0xc4, 0, 0, 2}}
	copy(rp.id[:], bytes.Repeat([]byte{0xb2}, 32))
	n.Register(testApp, func(m Message) { rp.seen = append(rp.seen, m) })
	n.Start()
	return rp
}

// packet sends a reference-built packet to the node.
func (rp *refPeer) send(p packet.Packet) {
	b, err := p.AppendTo(nil)
	if err != nil {
		rp.t.Fatal(err)
	}
	rp.fl.deliver(rp.mac, b)
}

// beacon makes the node know the reference peer (no capabilities app).
func (rp *refPeer) beacon() {
	m := beacon.Message{Op: beacon.OpBeacon, NodeID: rp.id, Apps: []packet.AppID{beacon.AppID}}
	b, _ := m.AppendTo(nil)
	pkg := packet.NewPackage(beacon.AppID, b)
	rp.send(packet.Packet{Schema: 0, PacketID: uint16(rp.pid), Body: pkg.AppendTo(nil)})
	rp.pid++
	rp.clk.RunFor(time.Second)
	rp.fl.take()
}

func TestReferencePeerIsReference(t *testing.T) {
	rp := newRefPeer(t)
	rp.beacon()
	p := rp.n.Peer(rp.id)
	if p == nil || p.Full {
		t.Fatalf("reference peer %+v", p)
	}
	// A Package that would take schema 4 with one of ours is too large for
	// a reference node (only 0 and 2).
	r := rp.n.Send(rp.id, testApp, make([]byte, 70000), nil)
	if !errors.Is(r.Err(), ErrTooLarge) {
		t.Fatalf("70 kB to a reference node: %v", r.Err())
	}
	// A sequence goes out in schema 2, after an RNS (a reference node may
	// sleep, and we have not heard it lately), although our link cannot
	// sleep: waking is the peer's business.
	rp.clk.RunFor(2 * time.Second)
	r = rp.n.Send(rp.id, testApp, blob(1000, 1), nil)
	rp.clk.RunFor(10 * time.Millisecond)
	got := rp.fl.take()
	if len(got) != 1 || !got[0].decoded().Flags.RNS() || got[0].decoded().Schema != 0 {
		t.Fatalf("expected one RNS first, got %d frames", len(got))
	}
	// The reference answers NIA: two packets go, each asking, seq_id not 0.
	rp.send(packet.Packet{Schema: 0, PacketID: 5, Flags: packet.Flags(0).WithEncoded(packet.EncNIA)})
	rp.clk.RunFor(20 * time.Millisecond)
	got = rp.fl.take()
	count := sequence.Count(packet.MustLookup(2), 1000+32)
	if len(got) != 2 {
		t.Fatalf("%d packets before any ack, want 2", len(got))
	}
	seqID := got[0].decoded().SeqID
	ack := func(f sentFrame) {
		d := f.decoded()
		var a packet.Packet
		packet.AckFor(&d, &a)
		rp.send(a)
	}
	seen := map[int]int{}
	for round := 0; len(got) > 0 && round < 20; round++ {
		for _, g := range got {
			d := g.decoded()
			if d.Schema != 2 || !d.Flags.Ask() || d.SeqID != seqID || seqID == 0 {
				t.Fatalf("packet %d: schema %d flags %v seq_id %d", d.PacketID, d.Schema, d.Flags, d.SeqID)
			}
			seen[int(d.PacketID)]++
			if int(d.PacketID) == count-1 && len(seen) != count {
				t.Fatal("the last packet went before every other one was acked")
			}
		}
		// The reference acks each (the last only once it is there).
		for _, g := range got {
			if int(g.decoded().PacketID) != count-1 {
				ack(g)
			}
		}
		rp.clk.RunFor(10 * time.Millisecond)
		if len(seen) == count {
			break
		}
		got = rp.fl.take()
	}
	if len(seen) != count {
		t.Fatalf("sent %d distinct packets of %d", len(seen), count)
	}
	if r.Finished() {
		t.Fatal("finished before the last ack")
	}
	// The last ack is lost: the last packet goes again, after a wake-up
	// (the board has been quiet), and once acked the send is confirmed.
	rp.clk.RunFor(150 * time.Millisecond)
	got = rp.fl.take()
	if len(got) == 0 || !got[0].decoded().Flags.RNS() {
		t.Fatalf("no wake-up before the retransmission: %d frames", len(got))
	}
	rp.send(packet.Packet{Schema: 0, PacketID: 6, Flags: packet.Flags(0).WithEncoded(packet.EncNIA)})
	rp.clk.RunFor(10 * time.Millisecond)
	got = rp.fl.take()
	var last *sentFrame
	for i, g := range got {
		if d := g.decoded(); d.Schema == 2 {
			if int(d.PacketID) != count-1 {
				t.Fatalf("packet %d sent again after its ack", d.PacketID)
			}
			last = &got[i]
		}
	}
	if last == nil {
		t.Fatalf("no retransmission of the last packet: %d frames", len(got))
	}
	ack(*last)
	rp.clk.RunFor(10 * time.Millisecond)
	if !r.Finished() || r.Err() != nil {
		t.Fatalf("after the last ack: finished %v err %v", r.Finished(), r.Err())
	}
	if rp.n.CacheBytes() != 0 {
		t.Fatalf("%d bytes kept after the send", rp.n.CacheBytes())
	}
	// 30 s later the reference asks for a chunk (its rtx): nothing is sent,
	// nothing was kept for it; it is counted.
	rp.clk.RunFor(30 * time.Second)
	rp.fl.take()
	drops := rp.n.Stats().Drops[DropStray]
	rtx := packet.Packet{Schema: 2, PacketID: 1, SeqID: seqID, SeqSize: uint16(count - 1), Flags: packet.Flags(0).WithEncoded(packet.EncRtx)}
	rp.send(rtx)
	rtx.SeqID = 0
	rp.send(rtx)
	rp.clk.RunFor(100 * time.Millisecond)
	if got := rp.fl.take(); len(got) != 0 || rp.n.Stats().Drops[DropStray] != drops+2 {
		t.Fatalf("rtx answered with %d frames, or not counted", len(got))
	}
}

func TestReferenceRNSAnsweredInWindow(t *testing.T) {
	rp := newRefPeer(t)
	rp.beacon()
	rns := packet.Packet{Schema: 0, PacketID: 9, Flags: packet.Flags(0).WithEncoded(packet.EncRNS)}
	at := rp.clk.Now()
	rp.send(rns)
	rp.clk.RunFor(IntersectSpacing * IntersectTries)
	got := rp.fl.take()
	if len(got) != 1 || !got[0].decoded().Flags.NIA() || got[0].decoded().Schema != 0 || len(got[0].decoded().Body) != 0 {
		t.Fatalf("RNS answered with %d frames", len(got))
	}
	if d := got[0].at.Sub(at); d > IntersectSpacing {
		t.Fatalf("NIA after %v, the reference's window is %v", d, IntersectSpacing*IntersectTries)
	}
	// An RNS from a stranger is not answered.
	rp.fl.deliver(espnow.MAC{9, 9, 9, 9, 9, 9}, mustPack(rns))
	rp.clk.RunFor(time.Second)
	if len(rp.fl.take()) != 0 {
		t.Fatal("answered a stranger's RNS")
	}
}

func mustPack(p packet.Packet) []byte {
	b, err := p.AppendTo(nil)
	if err != nil {
		panic(err)
	}
	return b
}

func TestPeerNeverWakes(t *testing.T) {
	rp := newRefPeer(t)
	rp.beacon()
	rp.clk.RunFor(2 * time.Second)
	r1 := rp.n.Send(rp.id, testApp, blob(100, 1), nil)
	r2 := rp.n.Send(rp.id, testApp, blob(1000, 2), nil)
	rp.clk.RunFor(time.Second)
	got := rp.fl.take()
	rns := 0
	beacons := 0
	for _, g := range got {
		d := g.decoded()
		var pkg packet.Package
		switch {
		case d.Flags.RNS():
			rns++
		case d.Schema == 0 && d.Flags.Encoded() == packet.EncNone && pkg.UnmarshalBinary(d.Body) == nil && pkg.AppID == beacon.AppID:
			beacons++ // it may not know us: our beacon between rounds of RNS
		default:
			t.Fatalf("sent %v to a sleeping peer", d.Flags)
		}
	}
	if beacons != WakeTries/IntersectTries-1 {
		t.Fatalf("%d beacons during the wake-up", beacons)
	}
	if rns != WakeTries {
		t.Fatalf("%d RNS, want %d", rns, WakeTries)
	}
	for _, r := range []*Result{r1, r2} {
		if !errors.Is(r.Err(), ErrPeerAsleep) {
			t.Fatalf("send to a peer that never woke: %v", r.Err())
		}
	}
}

func TestReferenceSequenceReceived(t *testing.T) {
	rp := newRefPeer(t)
	rp.beacon()
	// The reference sends every unicast sequence as seq_id 0, with asks on
	// 0, middle and last; we ack those asks and deliver.
	data := blob(700, 5)
	pkg := packet.NewPackage(testApp, data)
	tmpl := packet.Packet{SeqID: 0}
	pkts, _ := sequence.Split(packet.MustLookup(2), pkg.AppendTo(nil), &tmpl)
	for _, b := range pkts {
		rp.fl.deliver(rp.mac, b)
	}
	rp.clk.RunFor(time.Second)
	if len(rp.seen) != 1 || !bytes.Equal(rp.seen[0].Blob, data) {
		t.Fatalf("delivered %d", len(rp.seen))
	}
	acks := 0
	for _, g := range rp.fl.take() {
		d := g.decoded()
		if d.Flags.Ack() && len(d.Body) == 0 && d.SeqID == 0 {
			acks++
		}
	}
	if acks != 3 {
		t.Fatalf("%d plain acks for 3 asks", acks)
	}
	// Its next sequence reuses seq_id 0 with other content: a new Package.
	data2 := blob(700, 6)
	pkts, _ = sequence.Split(packet.MustLookup(2), packet.NewPackage(testApp, data2).AppendTo(nil), &tmpl)
	for _, b := range pkts {
		rp.fl.deliver(rp.mac, b)
	}
	rp.clk.RunFor(time.Second)
	if len(rp.seen) != 2 || !bytes.Equal(rp.seen[1].Blob, data2) {
		t.Fatalf("second sequence with seq_id 0: delivered %d", len(rp.seen))
	}
	// Its bogus empty "chunks" (acks it files under a seq_id) cost nothing.
	before := rp.n.RxBytes()
	rp.send(packet.Packet{Schema: 2, SeqID: 3, SeqSize: 4, PacketID: 2})
	if rp.n.RxBytes() != before {
		t.Fatal("empty chunk stored")
	}
	hexOK := hex.EncodeToString(data[:2])
	_ = hexOK
}

// A copy of a sequence's last packet with seq_size 0 (what we send a
// reference node, refNext) is read as the last packet of the sequence of
// that id: acked, and neither a new reassembly nor a second delivery.
func TestLastPacketCopyWithSeqSizeZero(t *testing.T) {
	rp := newRefPeer(t)
	rp.beacon()
	tmpl := packet.Packet{SeqID: 5}
	pkts, _ := sequence.Split(packet.MustLookup(2), packet.NewPackage(testApp, blob(600, 3)).AppendTo(nil), &tmpl)
	var last packet.Packet
	if err := last.UnmarshalBinary(pkts[len(pkts)-1]); err != nil {
		t.Fatal(err)
	}
	// Everything but the last; then the last as a copy would come.
	for _, b := range pkts[:len(pkts)-1] {
		rp.fl.deliver(rp.mac, b)
	}
	last.SeqSize = 0
	last.Flags = last.Flags.WithEncoded(packet.EncAsk)
	rp.send(last)
	rp.clk.RunFor(100 * time.Millisecond)
	if len(rp.seen) != 1 {
		t.Fatalf("delivered %d", len(rp.seen))
	}
	acked := false
	for _, g := range rp.fl.take() {
		if d := g.decoded(); d.Flags.Ack() && int(d.PacketID) == len(pkts)-1 && d.SeqID == 5 {
			acked = true
		}
	}
	// Again, after delivery: acked again, not delivered again.
	rp.send(last)
	rp.clk.RunFor(100 * time.Millisecond)
	again := false
	for _, g := range rp.fl.take() {
		if d := g.decoded(); d.Flags.Ack() && int(d.PacketID) == len(pkts)-1 {
			again = true
		}
	}
	if !acked || !again || len(rp.seen) != 1 || rp.n.Stats().Drops[DropMalformed] != 0 {
		t.Fatalf("acked %v/%v, delivered %d, malformed %d", acked, again, len(rp.seen), rp.n.Stats().Drops[DropMalformed])
	}
}
