package refnode

import (
	"bytes"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/sequence"
)

var testApp = packet.NewAppID("test", "refnode tests", 1)

// probe is a scripted peer of the board on the same medium: it records
// what the board sends it and, when told, answers the board's RNS with NIA.
type probe struct {
	t         *testing.T
	clk       *clock.Virtual
	r         *sim.Radio
	b         *Board
	got       []packet.Packet
	answerRNS bool
	id        [32]byte
	delivered []Message
}

func (p *probe) DeliverFrame(f link.Frame) {
	var q packet.Packet
	if err := q.UnmarshalBinary(f.Data); err != nil {
		p.t.Errorf("the board sent bytes that do not parse: %v", err)
		return
	}
	q.Body = bytes.Clone(q.Body)
	p.got = append(p.got, q)
	if q.Flags.RNS() && p.answerRNS {
		nia := packet.Packet{Schema: 0}
		nia.Flags = nia.Flags.WithEncoded(packet.EncNIA)
		p.send(nia)
	}
}

func (p *probe) TxDone(link.Tag, error) {}

func (p *probe) send(q packet.Packet) {
	b, err := q.AppendTo(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.r.Send(p.b.Addr(), b, 0); err != nil {
		p.t.Fatal(err)
	}
}

func (p *probe) take() []packet.Packet {
	g := p.got
	p.got = nil
	return g
}

// beacon introduces the probe to the board (op 0: the board answers).
func (p *probe) beacon() {
	m := beacon.Message{Op: beacon.OpBeacon, NodeID: p.id, Apps: []packet.AppID{beacon.AppID}}
	blob, _ := m.AppendTo(nil)
	p.send(packet.Packet{Schema: 0, Body: packet.NewPackage(beacon.AppID, blob).AppendTo(nil)})
}

// newPair puts a board (sleep as given, no periodic beacons) and a probe
// on a lossless medium.
func newPair(t *testing.T, sleep bool, phase time.Duration) *probe {
	clk := clock.NewVirtual(time.Time{})
	med := sim.NewMedium(clk, phys.ESPNOW(), 1)
	rb, rp := med.AddRadio(sim.Position{}), med.AddRadio(sim.Position{X: 5})
	med.Connect(rb, rp, sim.Loss{}, sim.Loss{})
	b := New(Config{Clock: clk, Link: rb, NodeID: [32]byte{0xb1}, Seed: 1, Sleep: sleep, Phase: phase, BeaconPeriod: -1})
	p := &probe{t: t, clk: clk, r: rp, b: b, id: [32]byte{0x9a}}
	b.Register(testApp, func(m Message) { p.delivered = append(p.delivered, m) })
	rp.Attach(p)
	b.Start()
	return p
}

// A sleeping board is awake 40 ms of every 130 (when nothing earns it a
// skipped sleep), whatever its phase.
func TestSleepCycle(t *testing.T) {
	for _, ph := range []time.Duration{0, 20 * time.Millisecond, 60 * time.Millisecond, 129 * time.Millisecond} {
		p := newPair(t, true, ph)
		p.clk.RunFor(time.Second)
		r := p.b.l.(*sim.Radio)
		aw0, t0 := r.AwakeTime(), p.clk.Now()
		p.clk.RunFor(13 * time.Second)
		frac := float64(r.AwakeTime()-aw0) / float64(p.clk.Now().Sub(t0))
		// 40 ms plus the loop's last pass, of 130 ms.
		if frac < 0.30 || frac > 0.33 {
			t.Errorf("phase %v: awake %.3f of the time", ph, frac)
		}
	}
}

// A beacon makes the probe a peer and is answered (op 1, unicast, schema
// 0); RNS from a stranger is ignored, from a peer answered with NIA.
func TestBeaconRNSNIA(t *testing.T) {
	p := newPair(t, false, 0)
	rns := packet.Packet{Schema: 0}
	rns.Flags = rns.Flags.WithEncoded(packet.EncRNS)
	p.send(rns)
	p.clk.RunFor(100 * time.Millisecond)
	if got := p.take(); len(got) != 0 {
		t.Fatalf("answered a stranger's RNS: %v", got)
	}
	p.beacon()
	p.clk.RunFor(100 * time.Millisecond)
	got := p.take()
	if len(got) != 1 || got[0].Schema != 0 || got[0].Flags.Encoded() != packet.EncNone {
		t.Fatalf("beacon answered with %v", got)
	}
	var pkg packet.Package
	var bm beacon.Message
	if pkg.UnmarshalBinary(got[0].Body) != nil || bm.UnmarshalBinary(pkg.Blob) != nil || bm.Op != beacon.OpResponse || bm.NodeID != p.b.ID() {
		t.Fatal("not a beacon response")
	}
	if ids := p.b.Peers(); len(ids) != 1 || ids[0] != p.id {
		t.Fatalf("peers %x", ids)
	}
	p.send(rns)
	p.clk.RunFor(100 * time.Millisecond)
	if got := p.take(); len(got) != 1 || !got[0].Flags.NIA() || len(got[0].Body) != 0 {
		t.Fatalf("RNS answered with %v", got)
	}
}

// split cuts blob's Package into schema-2 packets with seq_id id.
func split(t *testing.T, blob []byte, id uint8) []packet.Packet {
	raw, err := sequence.Split(packet.MustLookup(2), packet.NewPackage(testApp, blob).AppendTo(nil), &packet.Packet{SeqID: id})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]packet.Packet, len(raw))
	for i, b := range raw {
		if err := out[i].UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The board acks exactly the packets that ask, once it has woken its peer
// (it has not heard the probe's beacon or NIA for 800 ms: RNS first), and
// delivers the Package.
func TestAcksAskedPacketsAfterRNS(t *testing.T) {
	p := newPair(t, false, 0)
	p.answerRNS = true
	p.beacon()
	p.clk.RunFor(time.Second) // now more than 800 ms since the board heard us
	p.take()
	blob := bytes.Repeat([]byte{7}, 1000)
	pkts := split(t, blob, 4) // 5 packets: ask on 0, 2, 4
	for _, q := range pkts {
		p.send(q)
		p.clk.RunFor(5 * time.Millisecond)
	}
	p.clk.RunFor(200 * time.Millisecond)
	var acks []int
	rnsFirst := false
	for i, q := range p.take() {
		if i == 0 {
			rnsFirst = q.Flags.RNS()
		}
		if q.Flags.Ack() {
			if q.Schema != 2 || q.SeqID != 4 || q.SeqSize != 4 || len(q.Body) != 0 {
				t.Fatalf("ack %+v", q)
			}
			acks = append(acks, int(q.PacketID))
		}
	}
	if !rnsFirst || len(acks) != 3 || acks[0] != 0 || acks[1] != 2 || acks[2] != 4 {
		t.Fatalf("rns first %v, acks %v", rnsFirst, acks)
	}
	if len(p.delivered) != 1 || !bytes.Equal(p.delivered[0].Blob, blob) {
		t.Fatalf("delivered %d", len(p.delivered))
	}
}

// Its reassembly quirks: a Package that fills its last packet is never
// delivered (and the last packet not acked); a second copy of the last
// packet before the Package is complete corrupts it, while every ask is
// acked.
func TestReassemblyQuirks(t *testing.T) {
	p := newPair(t, false, 0)
	p.answerRNS = true
	p.beacon()
	p.clk.RunFor(100 * time.Millisecond)
	p.take()
	exact := split(t, make([]byte, 243*3-32), 1)
	for _, q := range exact {
		p.send(q)
		p.clk.RunFor(5 * time.Millisecond)
	}
	p.clk.RunFor(100 * time.Millisecond)
	for _, q := range p.take() {
		if q.Flags.Ack() && int(q.PacketID) == len(exact)-1 {
			t.Fatal("acked the last packet of a Package it cannot deliver")
		}
	}
	if len(p.delivered) != 0 {
		t.Fatal("delivered a Package that fills its last packet")
	}
	pkts := split(t, bytes.Repeat([]byte{3}, 1000), 2)
	for i := range pkts {
		pkts[i].Flags = pkts[i].Flags.WithEncoded(packet.EncAsk)
	}
	last := pkts[len(pkts)-1]
	order := append([]packet.Packet{last, last}, pkts[:len(pkts)-1]...)
	for _, q := range order {
		p.send(q)
		p.clk.RunFor(5 * time.Millisecond)
	}
	p.clk.RunFor(100 * time.Millisecond)
	acks := map[int]bool{}
	for _, q := range p.take() {
		if q.Flags.Ack() {
			acks[int(q.PacketID)] = true
		}
	}
	if len(acks) != len(pkts) || len(p.delivered) != 0 || p.b.Stats().Undelivered != 1 {
		t.Fatalf("%d of %d acked, %d delivered, %d undelivered", len(acks), len(pkts), len(p.delivered), p.b.Stats().Undelivered)
	}
}

// An ack filed as a chunk: 30 s later the board asks for the "missing"
// indices of a sequence that never was, and asks again every 30 s.
func TestStrayChunkRequests(t *testing.T) {
	p := newPair(t, false, 0)
	p.answerRNS = true
	p.beacon()
	p.clk.RunFor(100 * time.Millisecond)
	p.take()
	ack := packet.Packet{Schema: 2, SeqID: 0, SeqSize: 3, PacketID: 1}
	ack.Flags = ack.Flags.WithEncoded(packet.EncAck)
	p.send(ack)
	p.clk.RunFor(29 * time.Second)
	if len(p.take()) != 0 || p.b.Stats().StraySequences != 1 {
		t.Fatal("asked early, or no stray reassembly")
	}
	p.clk.RunFor(2 * time.Second)
	var rtx []int
	for _, q := range p.take() {
		if q.Flags.Rtx() && q.SeqID == 0 && q.SeqSize == 3 {
			rtx = append(rtx, int(q.PacketID))
		}
	}
	if len(rtx) != 3 || rtx[0] != 0 || rtx[1] != 2 || rtx[2] != 3 {
		t.Fatalf("requests %v", rtx)
	}
	p.clk.RunFor(5 * time.Minute)
	if got := p.b.Stats().RtxSent; got != 9 {
		t.Fatalf("%d requests in all, want three rounds of three", got)
	}
}

// Its own sequence to a peer it has not heard for 800 ms waits behind an
// RNS in a queue of ten: the first packets fall out.
func TestSendQueueOfTen(t *testing.T) {
	p := newPair(t, false, 0)
	p.answerRNS = true
	p.beacon()
	p.clk.RunFor(time.Second)
	p.take()
	if !p.b.Send(p.id, testApp, make([]byte, 13*243-40)) {
		t.Fatal("send refused")
	}
	p.clk.RunFor(time.Second)
	var ids []int
	for _, q := range p.take() {
		if q.Schema == 2 {
			if q.SeqID != 0 {
				t.Fatalf("unicast sequence with seq_id %d", q.SeqID)
			}
			ids = append(ids, int(q.PacketID))
		}
	}
	if len(ids) != 10 || ids[0] != 3 || p.b.Stats().QueueDropped != 3 {
		t.Fatalf("sent %v, dropped %d", ids, p.b.Stats().QueueDropped)
	}
	// Right after our beacon it sends at once: all thirteen.
	p.beacon()
	p.clk.RunFor(50 * time.Millisecond)
	p.take()
	p.b.Send(p.id, testApp, make([]byte, 13*243-40))
	p.clk.RunFor(time.Second)
	n := 0
	for _, q := range p.take() {
		if q.Schema == 2 {
			n++
		}
	}
	if n != 13 {
		t.Fatalf("sent %d of 13 to a peer heard lately", n)
	}
}
