package peer

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

func TestTable(t *testing.T) {
	tb := NewTable()
	now := time.Unix(0, 0)
	a, b := identity.NodeID{1}, identity.NodeID{2}
	epA := Endpoint{Link: 0, Addr: espnow.MAC{2, 0, 0, 0, 0, 1}}
	epA2 := Endpoint{Link: 1, Addr: rylr998.Addr(1)}
	p, isNew := tb.Refresh(a, epA, now)
	if !isNew || p.Timeout != DefaultTimeout || tb.ByEndpoint(epA) != p {
		t.Fatal("add")
	}
	if _, isNew := tb.Refresh(a, epA2, now); isNew || len(p.Endpoints) != 2 {
		t.Fatal("second endpoint")
	}
	// b restarts at a's ESP-NOW address: the endpoint moves.
	q, _ := tb.Refresh(b, epA, now)
	if tb.ByEndpoint(epA) != q || len(p.Endpoints) != 1 || !p.HasEndpoint(epA2) {
		t.Fatalf("endpoint move: %+v", p.Endpoints)
	}
	for range DefaultTimeout - 1 {
		if gone := tb.Tick(); len(gone) != 0 {
			t.Fatal("dropped early")
		}
	}
	tb.Refresh(a, epA2, now) // a heard again
	if gone := tb.Tick(); len(gone) != 1 || gone[0].ID != b || tb.Len() != 1 {
		t.Fatalf("tick: %v", gone)
	}
	if tb.ByEndpoint(epA) != nil {
		t.Fatal("endpoint of a dropped peer still mapped")
	}
	tb.Remove(a)
	tb.Remove(a)
	if tb.Len() != 0 || tb.ByEndpoint(epA2) != nil {
		t.Fatal("remove")
	}
}

// TestByEndpointAfterChange: ByEndpoint remembers its last answer; every
// change to the endpoints (moved, removed, the peer gone) must show in
// the next look-up of the very endpoint just asked for.
func TestByEndpointAfterChange(t *testing.T) {
	tb := NewTable()
	now := time.Unix(0, 0)
	a, b := identity.NodeID{1}, identity.NodeID{2}
	ep := Endpoint{Link: 0, Addr: espnow.MAC{2, 0, 0, 0, 0, 1}}
	ep2 := Endpoint{Link: 0, Addr: espnow.MAC{2, 0, 0, 0, 0, 2}}
	if tb.ByEndpoint(ep) != nil {
		t.Fatal("empty table")
	}
	p, _ := tb.Refresh(a, ep, now)
	if tb.ByEndpoint(ep) != p {
		t.Fatal("added")
	}
	tb.Refresh(a, ep2, now)
	if tb.RemoveEndpoint(a, ep); tb.ByEndpoint(ep) != nil || tb.ByEndpoint(ep2) != p {
		t.Fatal("endpoint removed")
	}
	q, _ := tb.Refresh(b, ep2, now) // moved to b
	if tb.ByEndpoint(ep2) != q {
		t.Fatal("endpoint moved")
	}
	if tb.Remove(b); tb.ByEndpoint(ep2) != nil {
		t.Fatal("peer removed")
	}
	r, _ := tb.Refresh(a, ep2, now)
	if tb.ByEndpoint(ep2) != r {
		t.Fatal("added again")
	}
	for range DefaultTimeout {
		tb.Tick()
	}
	if tb.ByEndpoint(ep2) != nil {
		t.Fatal("peer timed out")
	}
}

func TestNodeList(t *testing.T) {
	l := NewNodeList()
	now := time.Unix(0, 0)
	id := identity.NodeID{9}
	l.Update(id, []packet.AppID{{1}, {2}}, true, now)
	l.Update(id, []packet.AppID{{3}}, false, now)
	if e := l.Get(id, now); e == nil || len(e.Apps) != 3 {
		t.Fatal("burst of two messages")
	}
	l.Update(id, []packet.AppID{{4}}, true, now.Add(time.Minute))
	if e := l.Get(id, now); len(e.Apps) != 1 {
		t.Fatal("new burst replaces")
	}
	if l.Get(id, now.Add(31*time.Minute+time.Second)) != nil {
		t.Fatal("expired entry returned")
	}
	if l.Expire(now.Add(32*time.Minute)) != 1 || l.Len() != 0 {
		t.Fatal("expire")
	}
}

// BenchmarkByEndpoint is a node finding the sender of a frame as it takes
// it: the trust check and each layer above ask for the same endpoint in
// turn, one sender after another.
func BenchmarkByEndpoint(b *testing.B) {
	tb := NewTable()
	eps := make([]Endpoint, 8)
	for i := range eps {
		eps[i] = Endpoint{Addr: espnow.MAC{2, 0, 0, 0, 0, byte(i)}}
		tb.Refresh(identity.NodeID{byte(i)}, eps[i], time.Unix(0, 0))
	}
	i := 0
	for b.Loop() {
		ep := eps[i%len(eps)]
		for range 4 {
			if tb.ByEndpoint(ep) == nil {
				b.Fatal("no peer")
			}
		}
		i++
	}
}

// TestByEndpointHintAgainstMap: a Hint kept per endpoint answers as the
// table's map does through random refreshes, moves, removals and
// timeouts; each answer checked against byEP itself. Fails when a change
// to byEP leaves an old Hint standing (say Remove without forget), or
// when a Hint of one endpoint answers for another.
func TestByEndpointHintAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	tb, other := NewTable(), NewTable()
	now := time.Unix(0, 0)
	eps := make([]Endpoint, 6)
	for i := range eps {
		eps[i] = Endpoint{Link: i % 2, Addr: espnow.MAC{2, 0, 0, 0, 0, byte(i)}}
	}
	hints := make([]Hint, len(eps))
	var shared Hint // one hint asked for every endpoint in turn
	for i := range 20000 {
		ep := eps[rng.IntN(len(eps))]
		id := identity.NodeID{byte(rng.IntN(4))}
		switch rng.IntN(8) {
		case 0:
			tb.Refresh(id, ep, now)
		case 1:
			tb.Remove(id)
		case 2:
			tb.RemoveEndpoint(id, ep)
		case 3:
			if rng.IntN(8) == 0 {
				tb.Tick()
			}
		case 4:
			other.Refresh(id, ep, now)
		}
		k := rng.IntN(len(eps))
		want := tb.byEP[eps[k]]
		if got := tb.ByEndpointHint(eps[k], &hints[k]); got != want {
			t.Fatalf("step %d: %v's hint answered %p, the map holds %p", i, eps[k], got, want)
		}
		if got := tb.ByEndpoint(eps[k]); got != want {
			t.Fatalf("step %d: the memo after a hint answered %p, the map holds %p", i, got, want)
		}
		if got := tb.ByEndpointHint(eps[k], &shared); got != want {
			t.Fatalf("step %d: the shared hint answered %p for %v, the map holds %p", i, got, eps[k], want)
		}
		if got := other.ByEndpointHint(eps[k], &hints[k]); got != other.byEP[eps[k]] {
			t.Fatalf("step %d: another table's hint answered %p", i, got)
		}
	}
}
