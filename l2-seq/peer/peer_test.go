package peer

import (
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
