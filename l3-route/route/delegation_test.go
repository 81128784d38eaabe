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

// TestForgeryAtBothNewHomes: after a new term a node re-registers over the
// term spread, so for a while only the previous epoch's homes hold its own
// record; a forged proxy record sent to the new homes of both lookup trees
// was all their current epochs had, and the lookup took it after asking
// the second tree (sim route --adversary forge-proxy, 500 nodes, seed 2:
// 7 probes delivered to the forger). It asks the previous epochs' homes
// too before it takes an unvouched record: here the first two answers
// are the forgery and the third, the node's own, wins.
func TestForgeryAtBothNewHomes(t *testing.T) {
	me := lineMesh(t, 6, 2, 31)
	q, dst, mallory := me.nodes[0], me.nodes[5], me.nodes[2]
	id := dst.n.ID()
	if q.rt.lookupTrees() < 2 {
		t.Fatalf("%d lookup trees, want 2", q.rt.lookupTrees())
	}
	h := me.homeOf(5)
	if h < 0 {
		t.Fatal("nobody stores node 5's record")
	}
	own := me.nodes[h].rt.records[id].rec
	forged := Record{ID: id, Signer: mallory.n.ID(), Time: own.Time + 1, Addrs: mallory.rt.Addrs()}
	forged.Sign(mallory.n.Signer())
	answer := func(nonce uint32, rec Record) {
		b := []byte{byte(nonce >> 24), byte(nonce >> 16), byte(nonce >> 8), byte(nonce), 1}
		q.rt.onLookupReply(rec.AppendTo(b))
	}
	delete(q.rt.cache, id)
	var got *Destination
	q.rt.Lookup(id, func(d Destination, err error) {
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		got = &d
	})
	if len(q.rt.lookups) != 1 {
		t.Fatalf("%d lookups under way, want 1", len(q.rt.lookups))
	}
	var nonce uint32
	for n := range q.rt.lookups {
		nonce = n
	}
	// The homes answer in turn, before the clock moves: tree 0's and tree
	// 1's current homes with the forgery, then a previous epoch's with the
	// node's own.
	answer(nonce, forged)
	answer(nonce, forged)
	if got != nil {
		t.Fatalf("the lookup took the forgery its two lookup trees' homes answered: %+v", got)
	}
	answer(nonce, own)
	if got == nil || got.Unvouched || got.Proxy != (identity.NodeID{}) || !slices.Equal(got.Addrs, own.Addrs) {
		t.Fatalf("the node's own record did not win: %+v", got)
	}
	// A proxy record that no home contradicts is still taken in the end
	// (a reference board's whose node_id happens to be a key).
	delete(q.rt.cache, id)
	got = nil
	q.rt.Lookup(id, func(d Destination, err error) {
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		got = &d
	})
	for n := range q.rt.lookups {
		nonce = n
	}
	for range 2 * q.rt.lookupTrees() {
		answer(nonce, forged)
	}
	if got == nil || !got.Unvouched {
		t.Fatalf("an unvouched record every home asked answered was not taken: %+v", got)
	}
}
