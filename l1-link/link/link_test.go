package link_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

func TestInterfaceIDVectors(t *testing.T) {
	b, err := os.ReadFile("../testdata/vectors/identifiers.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []struct {
			Kind    string  `json:"kind"`
			Name    string  `json:"name"`
			Bitrate uint32  `json:"bitrate"`
			Schemas []uint8 `json:"supported_schemas"`
			ID      string  `json:"id"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range f.Vectors {
		if v.Kind != "interface_id" {
			continue
		}
		n++
		id := link.InterfaceID(v.Name, v.Bitrate, v.Schemas)
		if hex.EncodeToString(id[:]) != v.ID {
			t.Errorf("%s: %x, want %s", v.Name, id, v.ID)
		}
	}
	if n < 5 {
		t.Fatalf("%d vectors", n)
	}
	// Our drivers' declared families give the reference's ids.
	esp := link.Info{Name: "espnow", Bitrate: link.BitrateESPNOW, Schemas: link.SchemasESPNOW}.ID()
	if hex.EncodeToString(esp[:]) != "26bf5ff6" {
		t.Errorf("espnow id %x", esp)
	}
	lora := link.Info{Name: "rylr998", Bitrate: link.BitrateRYLR998, Schemas: link.SchemasLoRa}.ID()
	if hex.EncodeToString(lora[:]) != "c46b0d19" {
		t.Errorf("rylr998 id %x", lora)
	}
}

func TestAddrs(t *testing.T) {
	m, err := link.ParseMAC("24:0a:c4:00:00:02")
	if err != nil || m.String() != "24:0a:c4:00:00:02" || m.IsBroadcast() {
		t.Fatal(m, err)
	}
	if m2, err := link.ParseMAC("240ac4000002"); err != nil || m2 != m {
		t.Fatal(m2, err)
	}
	if _, err := link.ParseMAC("zz"); err == nil {
		t.Fatal("bad MAC parsed")
	}
	if !link.BroadcastMAC.IsBroadcast() || !link.LoRaAddr(0).IsBroadcast() || link.LoRaAddr(7).IsBroadcast() {
		t.Fatal("broadcast")
	}
	// Addresses key maps.
	seen := map[link.Addr]int{m: 1, link.LoRaAddr(7): 2, link.BLEAddr{1}: 3}
	if seen[link.MAC{0x24, 0x0a, 0xc4, 0, 0, 2}] != 1 || seen[link.LoRaAddr(7)] != 2 {
		t.Fatal("map keys")
	}
	if link.Broadcast.Network() == "" || !link.Broadcast.IsBroadcast() {
		t.Fatal("generic broadcast")
	}
}

func TestStats(t *testing.T) {
	var s link.Stats
	s.Tx(10, time.Millisecond)
	s.Rx(5)
	s.Drop(link.DropLoss)
	s.Drop(link.DropLoss)
	s.Drop(link.NumDropReasons) // out of range: ignored, no panic
	c := s.Snapshot()
	if c.TxFrames != 1 || c.TxBytes != 10 || c.RxBytes != 5 || c.TxAirtime != time.Millisecond || c.Drops[link.DropLoss] != 2 || c.Dropped() != 2 {
		t.Fatalf("%+v", c)
	}
	if link.DropLoss.String() != "loss" || link.NumDropReasons.String() != "unknown" {
		t.Fatal("names")
	}
}
