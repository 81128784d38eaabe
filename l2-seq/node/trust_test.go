package node

import (
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// trustMesh is a (0) with two neighbours: b (1), honest, and c (2), an
// attacker running our software (so it holds a key of its own) that also
// injects what it likes. b and c do not hear each other. ref makes node 3,
// a reference node, a's neighbour too.
func trustMesh(t *testing.T, phy sim.PHY, ref bool) *mesh {
	return trustMeshWith(t, phy, ref, false)
}

// trustMeshWith is trustMesh with authenticated hops on or off.
func trustMeshWith(t *testing.T, phy sim.PHY, ref, hopAuth bool) *mesh {
	me := emptyMesh(t, phy, 5)
	n := 3
	if ref {
		n = 4
	}
	for i := range n {
		c := Config{Identity: identity.FromSeed([32]byte{byte(i + 1), 5}), Seed: uint64(i), Reference: i == 3, HopAuth: hopAuth}
		me.add(sim.Position{}, c)
	}
	for i := 1; i < n; i++ {
		me.connect(0, i, sim.Loss{})
	}
	me.start()
	me.discover()
	return me
}

// proveAll runs until every non-reference pair of neighbours is proven.
func (me *mesh) proveAll() {
	me.t.Helper()
	ok := me.clk.RunWhile(me.clk.Now().Add(5*time.Minute), func() bool {
		for _, n := range me.nodes {
			if n.cfg.Reference {
				continue // it proves nothing and asks for no proof
			}
			for _, p := range n.Peers() {
				if p.Full && !p.Proven {
					return true
				}
			}
		}
		return false
	})
	if !ok {
		me.t.Fatal("neighbours not proven in 5 minutes")
	}
}

func epOf(a, b *Node) peer.Endpoint {
	p := a.Peer(b.ID())
	if p == nil || len(p.Endpoints) != 1 {
		return peer.Endpoint{}
	}
	return p.Endpoints[0]
}

func TestNeighbourProof(t *testing.T) {
	for _, phy := range []sim.PHY{phys.ESPNOW(), phys.LoRa(lora.Default)} {
		t.Run(phy.Name, func(t *testing.T) {
			me := trustMesh(t, phy, true)
			me.proveAll()
			a, b, r := me.nodes[0], me.nodes[1], me.nodes[3]
			bind := &Bind{n: a}
			if p := a.Peer(b.ID()); p == nil || !p.Proven || !bind.SpeaksOurs(p.Endpoints[0]) {
				t.Fatalf("a's view of b: %+v", p)
			}
			if p := b.Peer(a.ID()); p == nil || !p.Proven {
				t.Fatalf("b's view of a: %+v", p)
			}
			// The reference node is a peer, reference-grade: no routing through it.
			p := a.Peer(r.ID())
			if p == nil || p.Proven || p.Full || bind.SpeaksOurs(p.Endpoints[0]) {
				t.Fatalf("a's view of the reference node: %+v", p)
			}
			if s := r.Stats(); s.Trust.ProofsSent != 0 || s.Trust.ChallengesSent != 0 {
				t.Fatalf("the reference node took part in proofs: %+v", s.Trust)
			}
			if s := a.Stats().Trust; s.ProofsOK != 2 || s.ProofsBad != 0 {
				t.Fatalf("a's proof counters: %+v", s)
			}
			// The proof exchange fits the smallest frame: a proof is a
			// single packet on every link.
			if proof.ProofSize+30 > 240 {
				t.Fatalf("proof of %d bytes", proof.ProofSize)
			}
		})
	}
}

// TestForgedGoodbye: a goodbye carrying b's node_id sent by c, unsigned
// or with a signature not b's, must not evict b (today's code evicted it);
// b's own goodbye does.
func TestForgedGoodbye(t *testing.T) {
	me := trustMesh(t, phys.ESPNOW(), true)
	me.proveAll()
	a, b, c, r := me.nodes[0], me.nodes[1], me.nodes[2], me.nodes[3]
	// A broadcast may be lost on the air (collisions): each forgery is
	// sent until a has counted it, or ten times.
	forge := func(id identity.NodeID, tail []byte) {
		t.Helper()
		m := beacon.Message{Op: beacon.OpDisconnect, NodeID: id}
		blob, _ := m.AppendTo(nil)
		before := a.Stats().Trust.ForgedGoodbyes
		for range 10 {
			if err := me.wait(c.Broadcast(beacon.AppID, append(blob, tail...), nil), time.Minute); err != nil {
				t.Fatal(err)
			}
			me.clk.RunFor(time.Second)
			if a.Stats().Trust.ForgedGoodbyes > before {
				return
			}
		}
		t.Fatalf("forgery for %v never counted", id.Short())
	}
	forge(b.ID(), nil)
	// Signed by c for b's id, with b's boot (which c could have heard).
	forge(b.ID(), proof.AppendGoodbyeTail(nil, identity.FromSeed([32]byte{3, 5}), b.boot))
	// A reference node cannot sign: its goodbye counts only from its own address.
	forge(r.ID(), nil)
	if a.Peer(b.ID()) == nil || !a.Peer(b.ID()).Proven || a.Peer(r.ID()) == nil {
		t.Fatal("a forged goodbye evicted a peer")
	}
	if got := a.Stats().Trust.ForgedGoodbyes; got != 3 {
		t.Fatalf("forged goodbyes counted %d, want 3", got)
	}
	// b's goodbye from an earlier run (another boot nonce) is a replay.
	old := b.boot
	old[0] ^= 1
	forge(b.ID(), proof.AppendGoodbyeTail(nil, b.id, old))
	if a.Peer(b.ID()) == nil {
		t.Fatal("a replayed goodbye of another run evicted b")
	}
	// One after the other: b and r do not hear each other, and their
	// goodbyes would collide at a.
	b.shutdown(GoodbyeWait, func() {})
	me.clk.RunFor(time.Second)
	r.shutdown(GoodbyeWait, func() {})
	me.clk.RunFor(time.Second)
	if a.Peer(b.ID()) != nil || a.Peer(r.ID()) != nil {
		t.Fatalf("real goodbyes did not count: b %v r %v %+v", a.Peer(b.ID()), a.Peer(r.ID()), a.Stats().Trust)
	}
}

// TestForgedBeacon: c beacons b's node_id. On today's code that put c's
// address in b's peer entry, so c could replay b's tree certificate to a
// (the tree checks cert.Child against the peer at the sender's address).
// Now the claim joins nothing until c proves b's key, which it cannot.
func TestForgedBeacon(t *testing.T) {
	me := trustMesh(t, phys.ESPNOW(), false)
	me.proveAll()
	a, b, c := me.nodes[0], me.nodes[1], me.nodes[2]
	epB, epC := epOf(a, b), epOf(a, c)
	for _, op := range []beacon.Op{beacon.OpBeacon, beacon.OpResponse} {
		for _, m := range beacon.Messages(op, b.ID(), a.announced(0)) {
			blob, _ := m.AppendTo(nil)
			c.Broadcast(beacon.AppID, blob, nil)
		}
		me.clk.RunFor(time.Second)
	}
	if p := a.PeerAt(epC); p == nil || p.ID != c.ID() {
		t.Fatalf("c's address now belongs to %v", p)
	}
	if p := a.Peer(b.ID()); p == nil || len(p.Endpoints) != 1 || p.Endpoints[0] != epB || !p.Proven {
		t.Fatalf("b's entry: %+v", p)
	}
	if got := a.Stats().Trust.ClaimsRefused; got == 0 {
		t.Fatal("no refused claim counted")
	}
	if !(&Bind{n: a}).SpeaksOurs(epC) {
		t.Fatal("c, proven as itself, lost its standing")
	}
}

// TestUnprovenNeighbourCarriesNoRoutedTraffic: a neighbour that says it
// speaks our protocol but never proves its key is reference-grade: the
// layer above is told it does not speak ours, and routed sends refuse it.
func TestUnprovenNeighbourCarriesNoRoutedTraffic(t *testing.T) {
	me := emptyMesh(t, phys.ESPNOW(), 6)
	for i := range 2 {
		me.add(sim.Position{}, Config{Identity: identity.FromSeed([32]byte{byte(i + 1), 6}), Seed: uint64(i)})
	}
	me.nodes[1].Unregister(proof.AppID) // it cannot prove
	me.connect(0, 1, sim.Loss{})
	me.start()
	me.discover()
	me.clk.RunFor(time.Minute)
	a, b := me.nodes[0], me.nodes[1]
	p := a.Peer(b.ID())
	if p == nil || !p.Full || p.Proven {
		t.Fatalf("a's view of b: %+v", p)
	}
	bind := &Bind{n: a}
	if bind.SpeaksOurs(p.Endpoints[0]) {
		t.Fatal("an unproven neighbour passes for a full one")
	}
	pkg := packet.NewPackage(testApp, []byte("x"))
	if err := bind.SendRouted(p.Endpoints[0], RouteHeader{TTL: 3}, &pkg, nil).Err(); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("routed send to an unproven neighbour: %v", err)
	}
}

// TestProofOnLoRaStar: on LoRa (no carrier sense) a node whose eight
// neighbours do not hear each other is proven by all of them, and proves
// them all, within an hour and a half of hourly beacons. Every neighbour
// of a beacon's sender challenges it: sent at once, the challenges collide
// at the sender, and the next try waited for its next beacon (a mesh of
// 100 proved too few neighbours to form a tree in 12 hours).
func TestProofOnLoRaStar(t *testing.T) {
	const leaves = 8
	me := emptyMesh(t, phys.LoRa(lora.Default), 9)
	for i := range leaves + 1 {
		c := Config{Identity: identity.FromSeed([32]byte{byte(i + 1), 9}), Seed: uint64(i), BeaconPeriod: time.Hour}
		me.add(sim.Position{}, c)
	}
	for i := 1; i <= leaves; i++ {
		me.connect(0, i, sim.Loss{})
	}
	me.start()
	hub := me.nodes[0]
	proven := func() (hubSide, leafSide int) {
		for _, n := range me.nodes[1:] {
			if p := hub.Peer(n.ID()); p != nil && p.Proven {
				hubSide++
			}
			if p := n.Peer(hub.ID()); p != nil && p.Proven {
				leafSide++
			}
		}
		return
	}
	me.clk.RunWhile(me.clk.Now().Add(90*time.Minute), func() bool {
		h, l := proven()
		return h < leaves || l < leaves
	})
	if h, l := proven(); h < leaves || l < leaves {
		t.Fatalf("after 90 minutes the hub has proven %d of %d neighbours and been proven by %d (challenges sent %d)", h, leaves, l, hub.Stats().Trust.ChallengesSent)
	}
}

// TestNoBeaconResponseAfterBroadcast: a neighbour we know is not answered
// when we broadcast on the link within the last beacon period (our frame
// refreshed us in its table); a new one is.
func TestNoBeaconResponseAfterBroadcast(t *testing.T) {
	me := newMesh(t, 2, phys.ESPNOW(), sim.Loss{}, 4, nil)
	me.start()
	me.discover()
	a, b := me.nodes[0], me.nodes[1]
	ep := a.eps[epOf(a, b)]
	ep.lastResp = time.Time{} // as if never answered: only the broadcast rule holds it back
	a.Broadcast(testApp, []byte("hello"), nil)
	me.clk.RunFor(time.Second)
	before := a.Stats().PacketsSent
	a.receiveBeacon(beaconFrom(t, b))
	me.clk.RunFor(time.Second)
	if got := a.Stats().PacketsSent - before; got != 0 {
		t.Fatalf("answered a known neighbour's beacon a second after broadcasting: %d packets", got)
	}
	ep.lastResp = time.Time{}
	ep.tl.lastBcast = me.clk.Now().Add(-2 * a.cfg.BeaconPeriod)
	a.receiveBeacon(beaconFrom(t, b))
	me.clk.RunFor(time.Second)
	if got := a.Stats().PacketsSent - before; got == 0 {
		t.Fatal("no answer to a known neighbour's beacon when we had not broadcast for two periods")
	}
}

// beaconFrom is b's beacon as a Message from b's endpoint.
func beaconFrom(t *testing.T, b *Node) Message {
	t.Helper()
	ms := beacon.Messages(beacon.OpBeacon, b.nodeID, b.announced(0))
	blob, err := ms[0].AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Message{App: beacon.AppID, Blob: blob, Via: peer.Endpoint{Link: 0, Addr: b.links[0].info.Addr}, Broadcast: true}
}

// revokedSet is a revocation list for tests.
type revokedSet map[identity.NodeID]bool

func (r revokedSet) Revoked(id identity.NodeID) bool { return r[id] }

// A node whose key an operator revoked is never proven, however true its
// proof; one revoked while proven is dropped and not proven again.
func TestRevokedNeighbour(t *testing.T) {
	me := emptyMesh(t, phys.ESPNOW(), 5)
	ids := []identity.Identity{identity.FromSeed([32]byte{1, 5}), identity.FromSeed([32]byte{2, 5}), identity.FromSeed([32]byte{3, 5})}
	revoked := revokedSet{ids[2].ID(): true}
	for i, id := range ids {
		c := Config{Identity: id, Seed: uint64(i)}
		if i == 0 {
			c.Revocations = revoked
		}
		me.add(sim.Position{}, c)
	}
	me.connect(0, 1, sim.Loss{})
	me.connect(0, 2, sim.Loss{})
	me.start()
	me.discover()
	a, b, c := me.nodes[0], me.nodes[1], me.nodes[2]
	me.clk.RunFor(2 * time.Minute)
	bind := &Bind{n: a}
	if p := a.Peer(b.ID()); p == nil || !p.Proven || !bind.SpeaksOurs(p.Endpoints[0]) {
		t.Fatalf("b not proven: %+v", p)
	}
	if p := a.Peer(c.ID()); p != nil && (p.Proven || bind.SpeaksOurs(p.Endpoints[0])) {
		t.Fatalf("revoked c proven: %+v", p)
	}
	if st := a.Stats().Trust; st.ProofsRevoked == 0 {
		t.Fatalf("c's proofs not refused as revoked: %+v", st)
	}
	if p := c.Peer(a.ID()); p == nil || !p.Proven {
		t.Fatal("c, which revokes nobody, should still prove a")
	}
	// b's key is revoked while b is proven.
	revoked[b.ID()] = true
	ep := epOf(a, b)
	if bind.SpeaksOurs(ep) {
		t.Fatal("a revoked neighbour still speaks ours")
	}
	if got := a.DropRevoked(); got != 2 {
		t.Fatalf("dropped %d, want b and c", got)
	}
	me.clk.RunFor(5 * time.Minute)
	if p := a.Peer(b.ID()); p != nil && p.Proven {
		t.Fatalf("b proven again: %+v", p)
	}
	if st := a.Stats().Trust; st.RevokedDropped != 1 {
		t.Fatalf("RevokedDropped %d, want 1 (b)", st.RevokedDropped)
	}
}

// TestGoodbyeSurvivesALoss: the goodbye is an unacknowledged broadcast,
// and the first copy can be lost (a collision; a neighbour whose receive
// queue was full — the lab's ring once kept a node that said goodbye). The
// second copy, a gap later, still takes b out of a's table, long before a
// beacon timeout; and between the copies b says nothing that would make a
// take it back (asked to prove itself, it does not answer).
func TestGoodbyeSurvivesALoss(t *testing.T) {
	me := trustMesh(t, phys.ESPNOW(), false)
	me.proveAll()
	a, b := me.nodes[0], me.nodes[1]
	byes, later := 0, 0 // b's frames on the air: goodbyes, and any after the first
	me.m.SetMonitor(func(_ time.Time, from *sim.Radio, _ link.Addr, data []byte) {
		if from != me.radios[1] {
			return
		}
		if byes > 0 {
			later++
		}
		var p packet.Packet
		var pkg packet.Package
		var bm beacon.Message
		if p.UnmarshalBinary(data) == nil && pkg.UnmarshalBinary(p.Body) == nil && pkg.AppID == beacon.AppID &&
			bm.UnmarshalBinary(pkg.Blob) == nil && bm.Op == beacon.OpDisconnect {
			byes++
		}
	})
	// The first copy is lost: a cannot hear b as it leaves.
	me.m.Disconnect(me.radios[0], me.radios[1])
	b.shutdown(GoodbyeWait, func() {})
	me.clk.RunWhile(me.clk.Now().Add(time.Second), func() bool { return byes == 0 })
	if byes != 1 || a.Peer(b.ID()) == nil {
		t.Fatalf("after the lost copy: %d goodbyes, a holds b: %v", byes, a.Peer(b.ID()) != nil)
	}
	me.m.Connect(me.radios[0], me.radios[1], sim.Loss{}, sim.Loss{})
	// a asks b to prove itself: a proof now would make a take b back.
	ep := a.eps[epOf(a, b)]
	ep.pf.lastChallng, ep.pf.drawn = time.Time{}, time.Time{}
	a.challenge(ep, me.clk.Now())
	me.clk.RunFor(time.Second)
	if a.Peer(b.ID()) != nil {
		t.Fatalf("b's second goodbye did not count: %+v", a.Stats().Trust)
	}
	if byes != 2 || later != 1 {
		t.Fatalf("b sent %d goodbyes and %d frames after the first, want 2 and 1 (the second copy)", byes, later)
	}
}

// TestBeaconBurstLength: four beacons a burst where a beacon is short
// beside the burst's spacing (ESP-NOW), one on LoRa at any setting, even
// a fast one with no duty-cycle budget (SF7/BW500: four went back to back
// and took a tenth of the virtual rack's channel at a 2 s period).
func TestBeaconBurstLength(t *testing.T) {
	for _, c := range []struct {
		name string
		phy  sim.PHY
		want int
	}{
		{"espnow", phys.ESPNOW(), BeaconBurst},
		{"lora SF7/BW500", phys.LoRa(lora.Params{SF: 7, Bandwidth: 500_000, CR: 1, Preamble: 12}), 1},
		{"lora default", phys.LoRa(lora.Default), 1},
	} {
		me := emptyMesh(t, c.phy, 1)
		me.add(sim.Position{}, Config{Identity: identity.FromSeed([32]byte{1}), Seed: 1})
		if got := me.nodes[0].links[0].burstLen(); got != c.want {
			t.Errorf("%s: %d beacons a burst, want %d", c.name, got, c.want)
		}
	}
}

// TestQueuedChallengesSuperseded: on a busy air a node's turns to a
// neighbour come round slower than it challenges it (each beacon of the
// neighbour, each retry), and a nonce lives 30 s. Queued first in, first
// out, every challenge went, each one later than the last: on h22quiet's
// dense seed 4 challenges waited up to 12 minutes, went with nonces long
// replaced, and their proofs were refused as stale, so that pairs of core
// nodes never proved each other. A newer challenge takes the queued
// one's place: what goes on the air carries a nonce still alive.
func TestQueuedChallengesSuperseded(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	fl := newFakeLink(clk, "espnow", espnow.MAC{2, 0, 0, 0, 0, 1}, link.SchemasESPNOW, espnow.Bitrate, time.Millisecond, link.CapBroadcast)
	fl.slow = 12 * time.Second // one frame every 12 s
	n, err := New(Config{Clock: clk, Links: []link.Link{fl}, BeaconPeriod: -1, Identity: identity.FromSeed([32]byte{1})})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	bl := newFakeLink(clk, "espnow", espnow.MAC{2, 0, 0, 0, 0, 2}, link.SchemasESPNOW, espnow.Bitrate, time.Millisecond, link.CapBroadcast)
	b, err := New(Config{Clock: clk, Links: []link.Link{bl}, BeaconPeriod: -1, Identity: identity.FromSeed([32]byte{2})})
	if err != nil {
		t.Fatal(err)
	}
	drawn := map[proof.Nonce]time.Time{}
	start := clk.Now()
	for clk.Now().Sub(start) < 5*time.Minute {
		// b's beacons, every 4 s, never proven (its proofs never come):
		// each asks for a challenge, the nonce redrawn every nonceLife.
		n.receiveBeacon(beaconFrom(t, b))
		if ep := n.eps[peer.Endpoint{Addr: bl.info.Addr}]; ep != nil && !ep.pf.drawn.IsZero() {
			if _, ok := drawn[ep.pf.nonce]; !ok {
				drawn[ep.pf.nonce] = ep.pf.drawn
			}
		}
		clk.RunUntil(clk.Now().Add(4 * time.Second))
	}
	var sent int
	var oldest time.Duration
	for _, f := range fl.take() {
		if f.dst == nil || f.dst.String() != bl.info.Addr.String() {
			continue
		}
		var pkg packet.Package
		var m proof.Message
		if pkg.UnmarshalBinary(f.decoded().Body) != nil || pkg.AppID != proof.AppID || m.UnmarshalBinary(pkg.Blob) != nil || m.Type != proof.TypeChallenge {
			continue
		}
		d, ok := drawn[m.Nonce]
		if !ok {
			t.Fatalf("a challenge with a nonce never drawn")
		}
		sent++
		oldest = max(oldest, f.at.Sub(d))
	}
	// A challenge handed to the link may wait behind the two frames the
	// link holds (24 s) on top of its nonce's life.
	if sent == 0 || oldest > nonceLife+2*fl.slow {
		t.Fatalf("%d challenges sent, the stalest on the air %v after its nonce was drawn", sent, oldest)
	}
	if s := n.Stats().Trust; s.Superseded == 0 {
		t.Fatalf("nothing superseded: %+v", s)
	}
	t.Logf("%d challenges sent, the stalest on the air %v after its nonce was drawn; %d superseded", sent, oldest, n.Stats().Trust.Superseded)
}
