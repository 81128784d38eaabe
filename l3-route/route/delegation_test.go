package route

import (
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// recordHome is a router that stores records it is sent (the home of
// their key), on a virtual clock at a date records can be measured from.
func recordHome(t *testing.T) (*Router, *clock.Virtual) {
	clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	n, err := node.New(node.Config{Clock: clk, Identity: identity.FromSeed([32]byte{0x40}), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Attach(n, tree.Config{Trees: 1}, Config{Records: 8})
	if err != nil {
		t.Fatal(err)
	}
	return rt, clk
}

func (r *Router) offer(rec Record) {
	r.onRegister(&routed{Time: r.clk.Now()}, rec.AppendTo(nil))
}

func delegatedRecord(owner identity.NodeID, signer identity.Identity, at time.Time, d *Delegation) Record {
	rec := Record{ID: owner, Signer: signer.ID(), Time: at.UnixNano(), Addrs: []TreeAddr{{Tree: 0, TreeState: 64}}, Deleg: d}
	rec.Sign(signer)
	return rec
}

// TestForgedProxyRecord: any node could sign a "proxy" record for any
// node_id, and one dated far enough ahead displaced the node's own. Now a
// proxy's record never displaces the node's own unless the node delegated
// to that proxy, and a record dated beyond the skew allowance is refused.
func TestForgedProxyRecord(t *testing.T) {
	r, clk := recordHome(t)
	now := clk.Now()
	owner, mallory, proxy := identity.FromSeed([32]byte{1}), identity.FromSeed([32]byte{2}), identity.FromSeed([32]byte{3})
	own := delegatedRecord(owner.ID(), owner, now, nil)
	r.offer(own)
	if got := r.records[owner.ID()]; got == nil || got.rec.Signer != owner.ID() {
		t.Fatal("the node's own record was not stored")
	}
	life := r.recordLife()
	for name, rec := range map[string]Record{
		"proxy, later":              delegatedRecord(owner.ID(), mallory, now.Add(time.Second), nil),
		"proxy, a record life on":   delegatedRecord(owner.ID(), mallory, now.Add(life+time.Second), nil),
		"delegation to another":     delegatedRecord(owner.ID(), mallory, now.Add(time.Second), ptr(SignDelegation(owner, proxy.ID(), now.Add(time.Hour).UnixNano()))),
		"delegation by another":     delegatedRecord(owner.ID(), mallory, now.Add(time.Second), ptr(SignDelegation(mallory, mallory.ID(), now.Add(time.Hour).UnixNano()))),
		"expired delegation":        delegatedRecord(owner.ID(), proxy, now.Add(time.Second), ptr(SignDelegation(owner, proxy.ID(), now.Add(-time.Second).UnixNano()))),
		"self-signed, future-dated": delegatedRecord(owner.ID(), owner, now.Add(r.recordSkew()+time.Second), nil),
	} {
		before := r.stats.RecordsRefused
		r.offer(rec)
		if got := r.records[owner.ID()]; got.rec.Time != own.Time || got.rec.Signer != owner.ID() {
			t.Errorf("%s: displaced the node's own record", name)
		}
		if r.stats.RecordsRefused != before+1 {
			t.Errorf("%s: refusal not counted", name)
		}
	}
	// The delegated proxy's newer record counts as the node's.
	del := delegatedRecord(owner.ID(), proxy, now.Add(time.Second), ptr(SignDelegation(owner, proxy.ID(), now.Add(time.Hour).UnixNano())))
	r.offer(del)
	if got := r.records[owner.ID()]; got.rec.Signer != proxy.ID() || got.rec.Deleg == nil {
		t.Fatal("the delegated proxy's record was refused")
	}
	// Within the skew allowance a record is fine.
	r.offer(delegatedRecord(owner.ID(), owner, now.Add(r.recordSkew()/2), nil))
	if got := r.records[owner.ID()]; got.rec.Signer != owner.ID() {
		t.Fatal("a record within the skew allowance was refused")
	}
	// A reference board's record (a proxy's, no delegation) is stored
	// while there is nothing better.
	board := identity.NodeID{0xb0}
	r.offer(delegatedRecord(board, proxy, now, nil))
	if r.records[board] == nil {
		t.Fatal("an unvouched proxy record for a board was refused")
	}
}

func ptr[T any](v T) *T { return &v }

func TestDelegationCodec(t *testing.T) {
	owner, proxy := identity.FromSeed([32]byte{1}), identity.FromSeed([32]byte{3})
	d := SignDelegation(owner, proxy.ID(), 12345)
	rec := delegatedRecord(owner.ID(), proxy, time.Unix(1, 0), &d)
	var got Record
	if err := got.UnmarshalBinary(rec.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	if got.Deleg == nil || *got.Deleg != d || !got.Verify() || !got.Deleg.Verify(owner.ID()) {
		t.Fatalf("round trip: %+v", got.Deleg)
	}
	b := rec.AppendTo(nil)
	if err := got.UnmarshalBinary(b[:32+1+32+10]); err == nil {
		t.Fatal("a truncated delegation decodes")
	}
	req := (&Router{}).leaseRequestFor(owner, proxy.ID(), 99)
	if got, ok := parseLeaseDelegation(req, proxy.ID()); !ok || !got.Verify(owner.ID()) {
		t.Fatal("a lease request's delegation does not verify")
	}
	if got, _ := parseLeaseDelegation(req, owner.ID()); got.Verify(owner.ID()) {
		t.Fatal("a lease request's delegation verifies for another proxy")
	}
}

// TestFutureNameRecord: a name record dated beyond the skew allowance
// would keep its name for as long as it claims; it is refused.
func TestFutureNameRecord(t *testing.T) {
	r, clk := recordHome(t)
	owner := identity.FromSeed([32]byte{1})
	rec := NameRecord{Name: "pump", ID: owner.ID(), Time: clk.Now().Add(r.recordSkew() + time.Second).UnixNano()}
	rec.Sign(owner)
	r.onNameRegister(&routed{Time: clk.Now()}, rec.AppendTo(nil))
	if r.names.stored["pump"] != nil || r.stats.RecordsRefused != 1 {
		t.Fatal("a future-dated name record was stored")
	}
	rec.Time = clk.Now().UnixNano()
	rec.Sign(owner)
	r.onNameRegister(&routed{Time: clk.Now()}, rec.AppendTo(nil))
	if r.names.stored["pump"] == nil {
		t.Fatal("a name record of now was refused")
	}
}

// TestUnvouchedRecordAtOneHome: a proxy record no delegation vouches for,
// for a node that signs its own (a forgery that reached a home where the
// node's own record was not), is not taken while another tree's home has
// the node's own: a lookup asks one more tree before it takes such a
// record. Put at each home in turn, it never wins.
func TestUnvouchedRecordAtOneHome(t *testing.T) {
	me := lineMesh(t, 6, 2, 31)
	q, dst, mallory := me.nodes[0], me.nodes[5], 2
	id := dst.n.ID()
	var homes []int
	for i, hn := range me.nodes {
		if hn.rt.HasRecord(id) {
			homes = append(homes, i)
		}
	}
	if len(homes) < 2 {
		t.Fatalf("node 5's record lives at %v: want two homes", homes)
	}
	for _, h := range homes {
		home := me.nodes[h].rt
		own := home.records[id]
		forged := Record{ID: id, Signer: me.nodes[mallory].n.ID(), Time: own.rec.Time + 1, Addrs: me.nodes[mallory].rt.Addrs()}
		forged.Sign(me.nodes[mallory].n.Signer())
		home.records[id] = &storedRecord{rec: forged, at: own.at}
		delete(q.rt.cache, id)
		var got *Destination
		q.rt.Lookup(id, func(d Destination, err error) {
			if err != nil {
				t.Fatalf("lookup with a forgery at node %d: %v", h, err)
			}
			got = &d
		})
		if !me.run(2*time.Minute, func() bool { return got != nil }) {
			t.Fatalf("lookup with a forgery at node %d never ended", h)
		}
		if got.Unvouched || got.Proxy != (identity.NodeID{}) || !slices.Equal(got.Addrs, own.rec.Addrs) {
			t.Errorf("forgery at node %d: the lookup took it: %+v", h, got)
		}
		home.records[id] = own
	}
}
