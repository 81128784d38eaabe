package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/hop"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// hopMesh is trustMesh with authenticated hops on.
func hopMesh(t *testing.T, phy sim.PHY, ref bool) *mesh {
	return trustMeshWith(t, phy, ref, true)
}

// single encodes a one-packet Package to app in schema 0 (ESP-NOW) or 20.
func single(t *testing.T, schema uint8, pid uint16, app packet.AppID, blob []byte) []byte {
	t.Helper()
	pkg := packet.NewPackage(app, blob)
	p := packet.Packet{Schema: schema, PacketID: pid, Body: pkg.AppendTo(nil)}
	b, err := p.AppendSealed(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHopAuthenticated: after the proof, what two of our neighbours send
// each other is tagged and checked, a transfer in each direction works,
// and the reference neighbour gets nothing tagged.
func TestHopAuthenticated(t *testing.T) {
	for _, phy := range []sim.PHY{phys.ESPNOW(), phys.LoRa(lora.Default)} {
		t.Run(phy.Name, func(t *testing.T) {
			me := hopMesh(t, phy, true)
			me.proveAll()
			a, b, r := me.nodes[0], me.nodes[1], me.nodes[3]
			for _, pair := range [][2]int{{0, 1}, {1, 0}} {
				from, to := me.nodes[pair[0]], me.nodes[pair[1]]
				data := blob(3000, 7)
				before := len(me.got[pair[1]])
				if err := me.wait(from.Send(to.ID(), testApp, data, nil), 5*time.Minute); err != nil {
					t.Fatal(err)
				}
				if len(me.got[pair[1]]) != before+1 || !bytes.Equal(me.got[pair[1]][before].Blob, data) {
					t.Fatal("not delivered once")
				}
			}
			if phy.Name == "espnow" {
				// To the reference node: still plain, and it takes it. (On
				// LoRa the simulated board never answers a wake-up in this
				// mesh, before hop authentication as after.)
				if err := me.wait(a.Send(r.ID(), testApp, []byte("to a board"), nil), 5*time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			sa, sb := a.Stats().Hop, b.Stats().Hop
			if sa.Sealed == 0 || sa.Opened == 0 || sb.Sealed == 0 || sb.Opened == 0 {
				t.Fatalf("hop counters a %+v b %+v", sa, sb)
			}
			if sa.BadTag+sa.Replayed+sb.BadTag+sb.Replayed != 0 {
				t.Fatalf("honest frames refused: a %+v b %+v", sa, sb)
			}
			if s := r.Stats(); s.Drops[DropMalformed]+s.Drops[DropChecksum] != 0 {
				t.Fatalf("the reference node dropped frames: %+v", s.Drops)
			}
		})
	}
}

// TestSpoofedNeighbour: c spoofs b's address at a. Without hop
// authentication a took the frame as b's (the proof showed who held the
// address once, not who sends now); now a plain frame from b's address is
// refused, a tagged one with a wrong tag too, and a genuine tagged frame
// replayed delivers nothing twice.
func TestSpoofedNeighbour(t *testing.T) {
	me := hopMesh(t, phys.ESPNOW(), false)
	me.proveAll()
	a, b := me.nodes[0], me.nodes[1]
	// b's first frame to a, under the key of a's proof, arms a.
	if err := me.wait(b.Send(a.ID(), testApp, []byte("first"), nil), time.Minute); err != nil {
		t.Fatal(err)
	}
	epB := epOf(a, b)
	at := a.links[epB.Link]
	deliver := func(data []byte) {
		at.DeliverFrame(link.Frame{Src: epB.Addr, Data: bytes.Clone(data), Time: me.clk.Now()})
		me.clk.RunFor(10 * time.Millisecond)
	}
	got := func() int { return len(me.got[0]) }
	n0 := got()
	// A one-hop Package to an application, as from b.
	deliver(single(t, 0, 200, testApp, []byte("forged")))
	if got() != n0 {
		t.Fatal("a took a forged frame from b's address as b's")
	}
	if s := a.Stats().Hop; s.Unauthenticated != 1 || s.Opened == 0 {
		t.Fatalf("hop counters %+v", s)
	}
	// Tagged, but not with the pair's key.
	f := single(t, 0, 201, testApp, []byte("forged, tagged"))
	f[1] = hop.Marker
	f = append(f, make([]byte, hop.Overhead)...)
	f[len(f)-hop.Overhead+3] = 1
	deliver(f)
	if got() != n0 || a.Stats().Hop.BadTag != 1 {
		t.Fatalf("tagged forgery: delivered %d, counters %+v", got()-n0, a.Stats().Hop)
	}
	// A genuine tagged frame from b (as b's link would send it), twice.
	keys := b.eps[epOf(b, a)].pf.hop.send
	g, err := keys.Seal(nil, single(t, 0, 202, testApp, []byte("genuine")))
	if err != nil {
		t.Fatal(err)
	}
	deliver(g)
	if a.dec.Reserved != 0 {
		t.Fatal("the hop marker left in the decoded packet: a packet re-encoded from it would claim a trailer")
	}
	deliver(g)
	if got() != n0+1 || string(me.got[0][n0].Blob) != "genuine" {
		t.Fatalf("genuine frame delivered %d times", got()-n0)
	}
	if s := a.Stats().Hop; s.Replayed != 1 {
		t.Fatalf("replay not counted: %+v", s)
	}
	// b is still a's proven neighbour, and they still talk.
	if err := me.wait(b.Send(a.ID(), testApp, []byte("after"), nil), time.Minute); err != nil {
		t.Fatal(err)
	}
	if p := a.Peer(b.ID()); p == nil || !p.Proven {
		t.Fatalf("b's standing: %+v", p)
	}
}

// restart makes x forget everything about y, as a restarted x would.
func restart(x, y *Node) {
	ep := x.eps[epOf(x, y)]
	ep.pf = proofState{}
	x.peers.Remove(y.ID())
}

// TestHopRekeyAfterRestart: one of the pair restarts (a new run, no keys):
// the pair proves itself again with the exchange it always had, agrees new
// keys, and sends get through, tagged again.
func TestHopRekeyAfterRestart(t *testing.T) {
	// The sender restarted: it sends plain, the receiver refuses, asks
	// it to agree keys again, and takes what it sends under them.
	t.Run("sender", func(t *testing.T) {
		me := hopMesh(t, phys.ESPNOW(), false)
		me.proveAll()
		a, b := me.nodes[0], me.nodes[1]
		if err := me.wait(b.Send(a.ID(), testApp, []byte("before"), nil), time.Minute); err != nil {
			t.Fatal(err)
		}
		old := a.eps[epOf(a, b)].pf.hop.cur
		if old == nil {
			t.Fatal("a holds no key for b")
		}
		restart(b, a)
		b.SendBeacon(0, 0)
		me.clk.RunWhile(me.clk.Now().Add(5*time.Minute), func() bool { p := b.Peer(a.ID()); return p == nil || !p.Proven })
		if err := me.wait(b.Send(a.ID(), testApp, []byte("after restart"), nil), 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		if cur := a.eps[epOf(a, b)].pf.hop.cur; cur == old || cur == nil {
			t.Fatal("a kept the old key")
		}
		if s := a.Stats().Hop; s.BadTag+s.Replayed != 0 {
			t.Fatalf("a refused b's frames: %+v", s)
		}
	})
	// The receiver restarted: the sender's frames come under a key it no
	// longer holds; it takes them as an unproven neighbour's, asks for a
	// rekey, and from then on opens them.
	t.Run("receiver", func(t *testing.T) {
		me := hopMesh(t, phys.ESPNOW(), false)
		me.proveAll()
		a, b := me.nodes[0], me.nodes[1]
		if err := me.wait(b.Send(a.ID(), testApp, []byte("before"), nil), time.Minute); err != nil {
			t.Fatal(err)
		}
		oldSend := b.eps[epOf(b, a)].pf.hop.send
		restart(a, b)
		a.SendBeacon(0, 0) // a restarted node beacons
		for i := range 3 {
			me.clk.RunFor(3 * time.Second)
			if err := me.wait(b.Send(a.ID(), testApp, []byte{byte(i)}, nil), 2*time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if b.eps[epOf(b, a)].pf.hop.send == oldSend {
			t.Fatal("b still sends under the key a lost")
		}
		if !a.armed(a.eps[epOf(a, b)]) {
			t.Fatal("a does not open b's frames again")
		}
		if s := a.Stats().Hop; s.Rekeys == 0 || s.Unverified+s.BadTag == 0 {
			t.Fatalf("hop counters %+v", s)
		}
	})
}

// TestSpoofedNeighbourNoRxDest: on a link that cannot tell a broadcast
// from a unicast (RYLR-998, UDP with peers), an untagged frame from a
// neighbour we hold keys for could be one of its broadcasts: it is handed
// up as a broadcast (never as the neighbour's word to us), and anything a
// broadcast cannot be (an ack, a routed or error packet) is refused.
func TestSpoofedNeighbourNoRxDest(t *testing.T) {
	phy := phys.LoRa(lora.Default)
	phy.Caps |= link.CapNoRxDest
	me := hopMesh(t, phy, false)
	me.proveAll()
	a, b := me.nodes[0], me.nodes[1]
	if err := me.wait(b.Send(a.ID(), testApp, []byte("first"), nil), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	epB := epOf(a, b)
	at := a.links[epB.Link]
	deliver := func(data []byte) {
		at.DeliverFrame(link.Frame{Src: epB.Addr, Data: bytes.Clone(data), Time: me.clk.Now()})
		me.clk.RunFor(10 * time.Millisecond)
	}
	n0 := len(me.got[0])
	deliver(single(t, 20, 200, testApp, []byte("forged")))
	if len(me.got[0]) != n0+1 || !me.got[0][n0].Broadcast {
		t.Fatalf("a plain frame from b's address: %d delivered, %+v", len(me.got[0])-n0, me.got[0][n0:])
	}
	before := a.Stats().Hop.Unauthenticated
	var ack packet.Packet
	packet.AckFor(&packet.Packet{Schema: 20, PacketID: 7, Flags: packet.Flags(0).WithEncoded(packet.EncAsk)}, &ack)
	ackB, _ := ack.AppendSealed(nil)
	deliver(ackB)
	if got := a.Stats().Hop.Unauthenticated - before; got != 1 {
		t.Fatalf("a forged ack: %d refused", got)
	}
}

// TestRoomOnlyForKeys: senders keep room for the hop trailer only towards
// neighbours of ours that can hold keys; our keyless board firmware speaks
// the whole protocol but places a sequence's chunks at fixed offsets, so
// it gets them full (the HIL suite's node-to-board sequences stalled
// otherwise).
func TestRoomOnlyForKeys(t *testing.T) {
	me := hopMesh(t, phys.ESPNOW(), false)
	me.proveAll()
	a, b := me.nodes[0], me.nodes[1]
	if got := a.eps[epOf(a, b)].room(); got != hop.Overhead {
		t.Fatalf("room towards b: %d", got)
	}
	var keyless identity.NodeID
	for i := range 256 {
		keyless[0] = byte(i)
		if _, err := identity.X25519Public(keyless); err != nil {
			break
		}
	}
	key := peer.Endpoint{Link: 0, Addr: me.radios[2].Addr()}
	a.peers.Remove(me.nodes[2].ID())
	p, _ := a.peers.Refresh(keyless, key, me.clk.Now())
	p.Full = true
	if got := a.endpointFor(key).room(); got != 0 {
		t.Fatalf("room towards a keyless peer of ours: %d", got)
	}
}

// TestHopAuthOff: without Config.HopAuth nothing is tagged and no room is
// kept, as before authenticated hops.
func TestHopAuthOff(t *testing.T) {
	me := trustMesh(t, phys.ESPNOW(), false)
	me.proveAll()
	a, b := me.nodes[0], me.nodes[1]
	if err := me.wait(a.Send(b.ID(), testApp, blob(3000, 3), nil), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := a.eps[epOf(a, b)].room(); got != 0 {
		t.Fatalf("room towards b: %d", got)
	}
	if sa, sb := a.Stats().Hop, b.Stats().Hop; sa.Sealed+sb.Sealed+sa.Opened+sb.Opened != 0 {
		t.Fatalf("hop counters with HopAuth off: a %+v b %+v", sa, sb)
	}
}

// TestSchemaWithRoom: with room kept for the hop trailer, a Package that
// fits an unsequenced schema's shortened body still goes in it, as it
// does without room. (Compared with the sequenced schemas' full bodies,
// 243 against 245-12 on ESP-NOW, the sequenced ones won: every small
// Package went as a one-packet sequence, a seq_id and a status ack each,
// and dense meshes converged three times slower.)
func TestSchemaWithRoom(t *testing.T) {
	espnow := []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, routed := range []bool{false, true} {
		allowed := func(s *packet.Schema) bool { return s.Routed() == routed }
		for _, size := range []int{1, 100, 150} {
			plain, err := chooseSchema(espnow, allowed, size, 0)
			if err != nil {
				t.Fatal(err)
			}
			roomy, err := chooseSchema(espnow, allowed, size, hop.Overhead)
			if err != nil {
				t.Fatal(err)
			}
			if plain.Sequenced() || roomy.Sequenced() || roomy.ID != plain.ID {
				t.Fatalf("routed %v, %d bytes: schema %d without room, %d with", routed, size, plain.ID, roomy.ID)
			}
			if roomy.MaxBody != plain.MaxBody-hop.Overhead {
				t.Fatalf("routed %v: body %d with room, %d without", routed, roomy.MaxBody, plain.MaxBody)
			}
		}
	}
	// Past the shortened body, a sequence with room in its first packet.
	s, err := chooseSchema(espnow, func(s *packet.Schema) bool { return !s.Routed() }, 240, hop.Overhead)
	if err != nil || !s.Sequenced() {
		t.Fatalf("240 bytes with room: %v, %v", s, err)
	}
}

// strangerForAMoment sets up what TestRecutFirstPacket and
// TestSingleRoomForStranger start from: a and b proven, b armed by a's
// first tagged frame (it refuses a's plain frames from then on), and then
// b a stranger to a, a holding no key for it (as when a Package is queued
// to an address before its beacon or proof), so a leaves no room for the
// tag. known makes b a's peer again with its key (its proof stands).
func strangerForAMoment(t *testing.T) (me *mesh, a, b *Node, key peer.Endpoint, known func()) {
	t.Helper()
	me = hopMesh(t, phys.ESPNOW(), false)
	me.proveAll()
	a, b = me.nodes[0], me.nodes[1]
	if err := me.wait(a.Send(b.ID(), testApp, []byte("arm"), nil), time.Minute); err != nil {
		t.Fatal(err)
	}
	key = epOf(a, b)
	ep := a.eps[key]
	if ep == nil || ep.pf.hop.send == nil || !b.armed(b.eps[epOf(b, a)]) {
		t.Fatal("a holds no key for b, or b is not armed")
	}
	p := *a.Peer(b.ID())
	a.peers.Remove(b.ID())
	k := ep.pf.hop.send
	ep.pf.hop.send = nil
	if ep.room() != 0 {
		t.Fatal("room towards a stranger")
	}
	return me, a, b, key, func() {
		ep.pf.hop.send = k
		q, _ := a.peers.Refresh(p.ID, key, me.clk.Now())
		q.Proven, q.Full = true, true
	}
}

// TestRecutFirstPacket: a sequence whose first packet went without room
// for the tag (the receiver was no peer of ours yet) and must go again
// once the receiver takes only tagged frames from us is cut again with
// room, so its first packet is tagged and taken. Before, the receiver
// refused it every time and the send was abandoned.
func TestRecutFirstPacket(t *testing.T) {
	me, a, b, key, known := strangerForAMoment(t)
	data := blob(1000, 9)
	before := len(me.got[1])
	res := a.SendTo(key, testApp, data, nil)
	me.clk.RunFor(20 * time.Millisecond) // the first packets go, untagged
	known()
	if err := me.wait(res, time.Minute); err != nil {
		t.Fatal(err)
	}
	if len(me.got[1]) != before+1 || !bytes.Equal(me.got[1][before].Blob, data) {
		t.Fatal("not delivered once")
	}
	if s := a.Stats().Hop; s.Recut == 0 {
		t.Fatalf("a's counters %+v", s)
	}
	if s := b.Stats().Hop; s.Unauthenticated == 0 {
		t.Fatalf("b took the untagged first packet: %+v", s)
	}
}

// routedLayer is a Layer that counts the routed Packages handed to it.
type routedLayer struct{ routed int }

func (l *routedLayer) HandleMessage(Message) {}
func (l *routedLayer) HandleRouted(RouteHeader, *packet.Package, peer.Endpoint, time.Time) {
	l.routed++
}
func (l *routedLayer) PeerChanged(*peer.Peer, bool) {}

// TestChallengeLapsed: a neighbour that routes to us took our proof; when
// it is not proven to us and no challenge of ours to it is alive (its
// answers were lost), the routed Package is refused and we challenge it
// at once instead of waiting for its next beacon (an hour here), so that
// what it routes to us is not refused for long.
func TestChallengeLapsed(t *testing.T) {
	me := emptyMesh(t, phys.ESPNOW(), 5)
	for i := range 2 {
		me.add(sim.Position{}, Config{Identity: identity.FromSeed([32]byte{byte(i + 1), 5}), Seed: uint64(i), HopAuth: true, BeaconPeriod: time.Hour})
	}
	me.connect(0, 1, sim.Loss{})
	me.start()
	me.discover()
	me.proveAll()
	a, b := me.nodes[0], me.nodes[1]
	la := &routedLayer{}
	if _, err := a.Attach(la); err != nil {
		t.Fatal(err)
	}
	bb, err := b.Attach(&routedLayer{})
	if err != nil {
		t.Fatal(err)
	}
	route := func(blob string) {
		t.Helper()
		pkg := packet.NewPackage(testApp, []byte(blob))
		r := bb.SendRouted(epOf(b, a), RouteHeader{TTL: 8, TreeState: 1}, &pkg, nil)
		me.clk.RunWhile(me.clk.Now().Add(time.Minute), func() bool { return !r.Finished() })
	}
	// a forgets b's proof, and its challenge has lapsed: b still takes a
	// for proven and routes to it.
	ep := a.eps[epOf(a, b)]
	a.forgetProofs(a.Peer(b.ID()))
	ep.pf.drawn = time.Time{}
	challenges := a.Stats().Trust.ChallengesSent
	route("refused")
	if s := a.Stats(); la.routed != 0 || s.Trust.UnprovenRouted != 1 || s.Hop.Lapsed != 1 || s.Trust.ChallengesSent == challenges {
		t.Fatalf("routed %d; a's counters %+v, %+v", la.routed, s.Hop, s.Trust)
	}
	me.clk.RunFor(5 * time.Second)
	if p := a.Peer(b.ID()); p == nil || !p.Proven {
		t.Fatalf("b not proven to a again: %+v", p)
	}
	route("taken")
	if la.routed != 1 {
		t.Fatalf("routed %d after the proof", la.routed)
	}
	// With a challenge alive, none more for more refusals.
	a.forgetProofs(a.Peer(b.ID()))
	ep.pf.drawn = me.clk.Now()
	lapsed := a.Stats().Hop.Lapsed
	route("refused again")
	if got := a.Stats().Hop.Lapsed; got != lapsed {
		t.Fatalf("challenged with a challenge alive: %d", got-lapsed)
	}
}

// TestStrangerKeysKept: with maxStrangers strangers held, a new one makes
// us forget a stranger holding no hop keys before one whose challenge we
// answered, however stale: that neighbour took our proof and sends under
// the answered nonce's key, and forgotten, its frames failed once we
// proved it (BadTag) until a rekey went through (a gateway of the
// simulator forgot such keys 31 times while its trees formed).
func TestStrangerKeysKept(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	fl := newFakeLink(clk, "espnow", espnow.MAC{2, 0, 0, 0, 0, 1}, link.SchemasESPNOW, espnow.Bitrate, time.Millisecond, link.CapBroadcast)
	n, err := New(Config{Clock: clk, Links: []link.Link{fl}, BeaconPeriod: -1, Identity: identity.FromSeed([32]byte{1}), HopAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	at := func(i int) peer.Endpoint {
		return peer.Endpoint{Addr: espnow.MAC{0x24, 0, 0, 0, byte(i >> 8), byte(i)}}
	}
	now := clk.Now()
	keyed := n.strangerEndpoint(at(0), now)
	keyed.lastSeen = now // the stalest of all
	n.answeredChallenge(keyed, proof.Nonce{1})
	for i := 1; i < maxStrangers; i++ {
		n.strangerEndpoint(at(i), now).lastSeen = now.Add(time.Duration(i) * time.Second)
	}
	n.strangerEndpoint(at(maxStrangers), now.Add(time.Hour)).lastSeen = now.Add(time.Hour)
	if n.eps[at(0)] != keyed {
		t.Fatal("forgot the stranger holding hop keys")
	}
	if n.eps[at(1)] != nil {
		t.Fatal("kept the stalest stranger without keys")
	}
	if len(n.eps) != maxStrangers {
		t.Fatalf("%d strangers held, want %d", len(n.eps), maxStrangers)
	}
	// Among strangers that all hold keys, the stalest still goes: the
	// bound holds whatever they hold.
	for i := 2; i <= maxStrangers; i++ {
		n.answeredChallenge(n.eps[at(i)], proof.Nonce{byte(i)})
	}
	n.strangerEndpoint(at(maxStrangers+1), now.Add(2*time.Hour))
	if n.eps[at(0)] != nil || len(n.eps) != maxStrangers {
		t.Fatalf("all keyed: the stalest kept, or %d strangers held", len(n.eps))
	}
}

// TestRoomWithKeyWithoutPeer: a neighbour we hold a key for, whose peer
// entry we lost (its beacons did not come through), still gets the room
// for the hop trailer: it takes only tagged frames from us, and a
// sequence's first packet cut full went untagged, refused every time it
// went again, until the send was abandoned.
func TestRoomWithKeyWithoutPeer(t *testing.T) {
	me := emptyMesh(t, phys.ESPNOW(), 5)
	for i := range 2 {
		me.add(sim.Position{}, Config{Identity: identity.FromSeed([32]byte{byte(i + 1), 5}), Seed: uint64(i), HopAuth: true, BeaconPeriod: time.Hour})
	}
	me.connect(0, 1, sim.Loss{})
	me.start()
	me.discover()
	me.proveAll()
	a, b := me.nodes[0], me.nodes[1]
	key := epOf(a, b)
	// b's frames to a come tagged: a is armed against plain ones.
	if err := me.wait(b.Send(a.ID(), testApp, []byte("tagged"), nil), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := me.wait(a.Send(b.ID(), testApp, []byte("tagged"), nil), time.Minute); err != nil {
		t.Fatal(err)
	}
	if !b.armed(b.eps[epOf(b, a)]) {
		t.Fatal("b takes plain frames from a")
	}
	a.peers.Remove(b.ID())
	if got := a.eps[key].room(); got != hop.Overhead {
		t.Fatalf("room %d for a neighbour we hold a key for, want %d", got, hop.Overhead)
	}
	data := blob(3000, 9)
	before := len(me.got[1])
	if err := me.wait(a.SendTo(key, testApp, data, nil), 5*time.Minute); err != nil {
		t.Fatalf("%v (b refused %d plain frames)", err, b.Stats().Hop.Unauthenticated)
	}
	if len(me.got[1]) != before+1 || !bytes.Equal(me.got[1][before].Blob, data) {
		t.Fatal("not delivered once")
	}
	if n := b.Stats().Hop.Unauthenticated; n != 0 {
		t.Fatalf("b refused %d plain frames", n)
	}
}

// TestSingleRoomForStranger: a Package that fits one packet only without
// the hop trailer's room, queued to an address we know nothing of yet,
// used to be encoded full as a single; if the neighbour proved itself
// before the packet went again, it went untagged and was refused every
// time (as an armed receiver refuses plain frames) until the send was
// abandoned. A single to a stranger keeps the room now: the Package goes as
// a sequence, whose first packet is cut again with room once the
// neighbour is known, and is delivered once.
func TestSingleRoomForStranger(t *testing.T) {
	me, a, b, key, known := strangerForAMoment(t)
	// A Package four bytes short of schema 0's body: a single without
	// room, not with it.
	s0, err := packet.Lookup(0)
	if err != nil {
		t.Fatal(err)
	}
	data := blob(s0.MaxBody-4-packet.PackageOverhead, 4)
	before := len(me.got[1])
	refused := b.Stats().Hop.Unauthenticated
	res := a.SendTo(key, testApp, data, nil)
	me.clk.RunFor(20 * time.Millisecond) // the first transmission goes, untagged: refused
	known()
	if err := me.wait(res, time.Minute); err != nil {
		t.Fatalf("%v (b refused %d plain frames)", err, b.Stats().Hop.Unauthenticated-refused)
	}
	if len(me.got[1]) != before+1 || !bytes.Equal(me.got[1][before].Blob, data) {
		t.Fatal("not delivered once")
	}
	if n := b.Stats().Hop.Unauthenticated - refused; n > 1 {
		t.Fatalf("b refused %d plain frames: the packet went again untagged", n)
	}
}
