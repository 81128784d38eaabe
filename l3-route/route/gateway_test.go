package route

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// airFrame is a decoded frame seen on a medium.
type airFrame struct {
	at    time.Time
	from  *sim.Radio
	bcast bool
	p     packet.Packet
}

// monitor records every frame put on medium m, decoded (a frame that does
// not decode fails the test: only our nodes talk here).
func monitor(t *testing.T, m *sim.Medium) *[]airFrame {
	var frames []airFrame
	m.SetMonitor(func(at time.Time, from *sim.Radio, dst link.Addr, data []byte) {
		var p packet.Packet
		if err := p.UnmarshalBinary(data); err != nil {
			t.Errorf("undecodable frame on the air: %v", err)
			return
		}
		p.Body = bytes.Clone(p.Body)
		frames = append(frames, airFrame{at: at, from: from, bcast: dst == nil || dst.IsBroadcast(), p: p})
	})
	return &frames
}

// carried finds the sequence (or single packet) that radio from put on the
// air carrying exactly pkg, as it is or in a path header: its schema and
// packet count (0 if none).
func carried(frames []airFrame, from *sim.Radio, pkg []byte) (schema uint8, count int) {
	type key struct {
		schema, seq uint8
		size        uint16
	}
	chunks := map[key]map[uint16][]byte{}
	for _, f := range frames {
		p := f.p
		if f.from != from || len(p.Body) == 0 || p.Flags.Encoded() != packet.EncNone && p.Flags.Encoded() != packet.EncAsk {
			continue
		}
		s := p.SchemaOf()
		if !s.Sequenced() {
			if carries(p.Body, pkg) {
				return p.Schema, 1
			}
			continue
		}
		k := key{p.Schema, p.SeqID, p.SeqSize}
		if chunks[k] == nil {
			chunks[k] = map[uint16][]byte{}
		}
		chunks[k][p.PacketID] = p.Body
	}
	for k, cs := range chunks {
		var whole []byte
		for i := range int(k.size) + 1 {
			c, ok := cs[uint16(i)]
			if !ok {
				whole = nil
				break
			}
			whole = append(whole, c...)
		}
		if carries(whole, pkg) {
			return k.schema, int(k.size) + 1
		}
	}
	return 0, 0
}

// carries reports whether the Package in b is pkg, or a path header
// carrying it.
func carries(b, pkg []byte) bool {
	if bytes.Equal(b, pkg) {
		return true
	}
	var outer, inner packet.Package
	var ph pathHeader
	return outer.UnmarshalBinary(b) == nil && outer.AppID == PathApp &&
		decodePath(outer.Blob, &ph, &inner) == nil && bytes.Equal(inner.AppendTo(nil), pkg)
}

// TestGatewayResequences: A —ESP-NOW— G —LoRa— B. G carries both radios.
// A Package of 600 bytes from A to B by node_id arrives intact, once, and G
// put it on LoRa as a sequence of its own in a LoRa routed schema (25–30):
// a gateway re-cuts what it relays for the next link family (PROTOCOL 4.1
// [ours]) — ESP-NOW frames could not cross, the families share no schema.
//
// It is sent twice: as soon as the trees stand and the names are
// registered (what an application does), and again once the LoRa link has
// fallen quiet (which isolates the gateway's work from the formation's
// backlog).
func TestGatewayResequences(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 1}, 61)
	me.medium("espnow", phys.ESPNOW())
	me.medium("lora", phys.LoRa(lora.Default))
	a := me.add(hspec{media: []string{"espnow"}})
	g := me.add(hspec{media: []string{"espnow", "lora"}})
	b := me.add(hspec{media: []string{"lora"}})
	me.connect("espnow", a, g)
	me.connect("lora", g, b)
	onESP, onLoRa := monitor(t, me.media["espnow"]), monitor(t, me.media["lora"])
	start := me.clk.Now()
	me.start()
	took := me.mustConverge(30 * time.Minute)
	me.mustRegister(30 * time.Minute)
	t.Logf("converged in %v, names registered after %v", took, me.clk.Now().Sub(start))

	send := func(t *testing.T, seed byte) {
		blob := make([]byte, 600-packet.PackageOverhead)
		for i := range blob {
			blob[i] = byte(i*7) ^ seed
		}
		wire := packet.NewPackage(testApp, blob).AppendTo(nil)
		before := len(me.nodes[b].got)
		start := me.clk.Now()
		res := me.nodes[a].rt.Send(me.nodes[b].n.ID(), testApp, blob, nil)
		err := me.wait(res, 10*time.Minute)
		took := me.clk.Now().Sub(start)
		me.clk.RunFor(5 * time.Minute) // late copies, if any
		got := me.nodes[b].got[before:]
		if err != nil {
			t.Errorf("A to B: %v after %v (B got %d copies)", err, took, len(got))
		} else {
			t.Logf("A to B in %v", took)
		}
		if len(got) != 1 || !bytes.Equal(got[0].Blob, blob) || got[0].Route == nil {
			t.Fatalf("B got %d copies, want the Package once", len(got))
		}
		if p, ok := me.nodes[b].rt.Position(got[0].Route.TreeState); !ok || got[0].Route.To != [16]byte(p.Addr.Truncate()) {
			t.Errorf("delivered with to_addr %x in epoch %d, B is at %x there", got[0].Route.To, got[0].Route.TreeState, p.Addr)
		}
		espSchema, espCount := carried(*onESP, me.nodes[a].radios["espnow"], wire)
		loraSchema, loraCount := carried(*onLoRa, me.nodes[g].radios["lora"], wire)
		t.Logf("A sent it on ESP-NOW in schema %d (%d packets); G on LoRa in schema %d (%d packets)", espSchema, espCount, loraSchema, loraCount)
		if espSchema < 5 || espSchema > 10 {
			t.Errorf("on ESP-NOW in schema %d, want a routed ESP-NOW schema (5-10)", espSchema)
		}
		if loraSchema < 25 || loraSchema > 30 {
			t.Fatalf("on LoRa in schema %d, want a routed LoRa schema (25-30)", loraSchema)
		}
		// Re-sequenced: cut to the LoRa schema's bodies.
		if mb := packet.MustLookup(loraSchema).MaxBody; loraCount != (len(wire)+mb-1)/mb {
			t.Errorf("%d LoRa packets for %d bytes in schema %d (body %d)", loraCount, len(wire), loraSchema, mb)
		}
	}
	t.Run("right after formation", func(t *testing.T) { send(t, 1) })
	t.Run("on a quiet link", func(t *testing.T) {
		// Quiet: no unicast on LoRa for 30 s (claims and beacons go on).
		quiet := func() bool {
			for _, f := range slices.Backward(*onLoRa) {
				if !f.bcast {
					return me.clk.Now().Sub(f.at) >= 30*time.Second
				}
			}
			return true
		}
		if !me.run(30*time.Minute, quiet) {
			t.Fatal("the LoRa link never fell quiet")
		}
		send(t, 2)
	})
	for i := range 3 {
		p, _ := me.nodes[i].tr.Current(0)
		t.Logf("node %d at %v (epoch %d, root %v) after %v; tree stats %+v", i, p.Addr, p.TreeState, p.Root, me.clk.Now().Sub(start), me.nodes[i].tr.Stats())
	}
	// Nothing of the ESP-NOW family ever went on LoRa.
	for _, f := range *onLoRa {
		if !slices.Contains(link.SchemasLoRa, f.p.Schema) {
			t.Errorf("schema %d on LoRa", f.p.Schema)
		}
	}
}
