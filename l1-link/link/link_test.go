package link_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/vectors"
)

func TestInterfaceIDVectors(t *testing.T) {
	b, err := vectors.Read("identifiers.json")
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
	// The reference's interfaces, as our drivers declare them (the drivers'
	// own tests check their Info against these too).
	esp := link.Info{Name: "espnow", Bitrate: 12_000_000, Schemas: link.SchemasESPNOW}.ID()
	if hex.EncodeToString(esp[:]) != "26bf5ff6" {
		t.Errorf("espnow id %x", esp)
	}
	lora := link.Info{Name: "rylr998", Bitrate: 9_600, Schemas: link.SchemasLoRa}.ID()
	if hex.EncodeToString(lora[:]) != "c46b0d19" {
		t.Errorf("rylr998 id %x", lora)
	}
}

// kind is a registered address kind for the tests.
type kind uint8

func (kind) Network() string     { return "test-kind" }
func (k kind) String() string    { return string('0' + rune(k)) }
func (k kind) IsBroadcast() bool { return k == 0 }

func init() {
	link.RegisterNetwork("test-kind", func(s string) (link.Addr, error) {
		if len(s) != 1 || s[0] < '0' || s[0] > '9' {
			return nil, errors.New("not a digit")
		}
		return kind(s[0] - '0'), nil
	})
}

func TestAddrRegistry(t *testing.T) {
	a, err := link.ParseAddr("test-kind", "7")
	if err != nil || a != kind(7) {
		t.Fatal(a, err)
	}
	if _, err := link.ParseAddr("test-kind", "x"); !errors.Is(err, link.ErrAddr) {
		t.Fatalf("bad address: %v", err)
	}
	if _, err := link.ParseAddr("no-such-kind", "7"); !errors.Is(err, link.ErrAddr) {
		t.Fatalf("unknown kind: %v", err)
	}
	if a, err := link.ParseAddr("test-kind", "broadcast"); err != nil || a != link.Broadcast {
		t.Fatal(a, err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a kind registered twice did not panic")
			}
		}()
		link.RegisterNetwork("test-kind", nil)
	}()
	// Addresses key maps.
	seen := map[link.Addr]int{kind(1): 1, link.Broadcast: 2}
	if seen[kind(1)] != 1 || seen[link.Broadcast] != 2 {
		t.Fatal("map keys")
	}
}

type other struct{}

func (other) Network() string   { return "other" }
func (other) String() string    { return "other" }
func (other) IsBroadcast() bool { return true }

func TestDest(t *testing.T) {
	for _, c := range []struct {
		dst   link.Addr
		bcast bool
		err   bool
	}{
		{link.Broadcast, true, false},
		{kind(0), true, false},  // the link's own kind of broadcast
		{kind(3), false, false}, // unicast
		{other{}, false, true},  // another kind's broadcast means nothing here
		{nil, false, true},
	} {
		to, bcast, err := link.Dest[kind](c.dst)
		if bcast != c.bcast || (err != nil) != c.err || (err != nil && !errors.Is(err, link.ErrAddr)) {
			t.Errorf("Dest(%v): %v %v", c.dst, bcast, err)
		}
		if err == nil && !bcast && to != c.dst {
			t.Errorf("Dest(%v) = %v", c.dst, to)
		}
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

type countDisp struct{ frames, done int }

func (c *countDisp) DeliverFrame(link.Frame) { c.frames++ }
func (c *countDisp) TxDone(link.Tag, error)  { c.done++ }

// TestPortBacklog: a reader flooding a link whose loop is stalled costs a
// bounded queue; the rest is counted, never queued.
func TestPortBacklog(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	p := link.NewPort(clk, 8)
	var d countDisp
	p.Base().Attach(&d)
	for range 13 {
		p.HandUp(link.Frame{Data: []byte{1}})
	}
	clk.RunFor(time.Second)
	c := p.Base().Counters()
	if d.frames != 8 || c.Drops[link.DropQueueFull] != 5 || c.RxFrames != 8 {
		t.Fatalf("delivered %d, counters %+v", d.frames, c)
	}
	// After Close nothing is delivered, but completions still are.
	p.HandUp(link.Frame{Data: []byte{2}})
	p.Complete(7, nil)
	if !p.SetClosed() || p.SetClosed() {
		t.Fatal("SetClosed twice")
	}
	clk.RunFor(time.Second)
	if d.frames != 8 || d.done != 1 {
		t.Fatalf("after close: %d frames, %d completions", d.frames, d.done)
	}
	p.Base().Attach(nil)
	p.Deliver(link.Frame{})
	if !p.Closed() {
		t.Fatal("closed")
	}
}
