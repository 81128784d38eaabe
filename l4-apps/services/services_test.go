package services

import (
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l4-apps/gossip"
)

// bus is gossip as the directory sees it: what one publishes, the others
// get.
type bus struct {
	subs []func(gossip.Delivery)
	fail bool
}

type member struct {
	b    *bus
	mine int
}

func (m *member) Publish(t gossip.TopicID, data []byte) (gossip.MessageID, error) {
	if m.b.fail {
		return gossip.MessageID{}, errors.New("down")
	}
	for i, f := range m.b.subs {
		f(gossip.Delivery{Topic: t, Data: append([]byte(nil), data...), Local: i == m.mine})
	}
	return gossip.MessageID{}, nil
}

func (m *member) Subscribe(t gossip.TopicID, f func(gossip.Delivery)) func() {
	m.mine = len(m.b.subs)
	m.b.subs = append(m.b.subs, f)
	return func() {}
}

func newDirs(t *testing.T, clk clock.Clock, n int) []*Directory {
	b := &bus{}
	var out []*Directory
	for i := range n {
		d := New(Config{Clock: clk, Gossip: &member{b: b}, Signer: identity.FromSeed([32]byte{byte(i), 9}), Refresh: time.Minute})
		d.Start()
		out = append(out, d)
	}
	return out
}

func TestAnnounceListExpire(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(1e9, 0))
	ds := newDirs(t, clk, 3)
	ds[0].Set([]Service{{Name: "wx", App: "weather", Meta: "temp"}})
	ds[1].Set([]Service{{Name: "cam", App: "camera"}, {Name: "wx2", App: "weather"}})
	clk.RunUntil(clk.Now().Add(5 * time.Second))
	got := ds[2].List("")
	if len(got) != 3 {
		t.Fatalf("node 2 lists %d entries: %+v", len(got), got)
	}
	w := ds[2].List("weather")
	if len(w) != 2 {
		t.Fatalf("--app weather: %+v", w)
	}
	for _, e := range w {
		if e.Age != 5*time.Second {
			t.Errorf("age %v, want 5s", e.Age)
		}
	}
	if own := ds[0].List("weather"); len(own) != 2 || own[0].Node == own[1].Node {
		t.Errorf("node 0 lists its own and node 1's: %+v", own)
	}
	// Node 1 goes quiet (its refreshes stop): its entries expire after the
	// TTL (3 minutes), node 0's stay refreshed.
	ds[1].Stop()
	clk.RunUntil(clk.Now().Add(4 * time.Minute))
	if got := ds[2].List(""); len(got) != 1 || got[0].Name != "wx" {
		t.Fatalf("after node 1 went quiet: %+v", got)
	}
	if ds[2].Stats().Expired != 1 {
		t.Errorf("expired %d", ds[2].Stats().Expired)
	}
}

// A changed set replaces the old one; an older announcement replayed does
// not bring it back.
func TestReplaceAndReplay(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(1e9, 0))
	ds := newDirs(t, clk, 2)
	ds[0].Set([]Service{{Name: "a", App: "x"}})
	oldAnn, _ := ds[0].encode(ds[0].own)
	ds[0].Set([]Service{{Name: "b", App: "x"}})
	ds[1].onDelivery(gossip.Delivery{Data: oldAnn})
	got := ds[1].List("")
	if len(got) != 1 || got[0].Name != "b" {
		t.Fatalf("%+v", got)
	}
}

func TestForgedRefused(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(1e9, 0))
	ds := newDirs(t, clk, 2)
	b, _ := ds[0].encode([]Service{{Name: "evil", App: "x"}})
	// Claim another node's id: the signature no longer matches.
	other := identity.FromSeed([32]byte{42}).ID()
	copy(b[1:], other[:])
	if _, err := Decode(b); !errors.Is(err, ErrSignature) {
		t.Fatalf("forged: %v", err)
	}
	ds[1].onDelivery(gossip.Delivery{Data: b})
	if len(ds[1].List("")) != 0 || ds[1].Stats().Rejected != 1 {
		t.Fatal("a forged announcement was listed")
	}
	for _, bad := range [][]byte{nil, {1}, append([]byte{2}, b[1:]...), b[:len(b)-1]} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("% x decoded", bad)
		}
	}
}

func TestLimits(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(1e9, 0))
	ds := newDirs(t, clk, 1)
	long := string(make([]byte, 256))
	if err := ds[0].Set([]Service{{Name: long}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("256-byte name: %v", err)
	}
	var many []Service
	for range 40 {
		many = append(many, Service{Name: string(make([]byte, 60)), App: "x"})
	}
	if err := ds[0].Set(many); !errors.Is(err, ErrTooMany) {
		t.Errorf("2.4 KB of services: %v", err)
	}
	if err := ds[0].Set([]Service{{Name: "\xff"}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("not UTF-8: %v", err)
	}
}

func TestBeaconSummaries(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(1e9, 0))
	weather := packet.NewAppID("weather", "", 1)
	hidden := packet.NewAppID("Mycelium", "capabilities", 1)
	nb := identity.FromSeed([32]byte{7}).ID()
	d := New(Config{Clock: clk, Gossip: &member{b: &bus{}}, Signer: identity.FromSeed([32]byte{1}),
		AppNames: map[packet.AppID]string{weather: "weather", hidden: ""},
		Peers: func() []*peer.Peer {
			return []*peer.Peer{{ID: nb, Apps: []packet.AppID{weather, hidden, {1, 2}}, LastRx: clk.Now().Add(-3 * time.Second)}}
		}})
	got := d.List("")
	if len(got) != 2 {
		t.Fatalf("%+v", got)
	}
	if w := d.List("weather"); len(w) != 1 || !w[0].Beacon || w[0].Node != nb || w[0].Age != 3*time.Second {
		t.Fatalf("%+v", w)
	}
}

func FuzzDecode(f *testing.F) {
	clk := clock.NewVirtual(time.Unix(1e9, 0))
	d := New(Config{Clock: clk, Gossip: &member{b: &bus{}}, Signer: identity.FromSeed([32]byte{1})})
	b, _ := d.encode([]Service{{Name: "n", App: "a", Meta: "m"}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Decode(b)
		if err == nil && len(a.Services) > 255 {
			t.Fatal("more than 255 services")
		}
	})
}
