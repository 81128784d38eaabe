package route

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// TestLeafAndReferenceBehindProxy: node 3 of a line 0–1–2–3 proxies for a
// leaf (one of ours that joins no tree: SetLeaf) and node 2 for a reference
// node (PROTOCOL 11: no tree, no router, no capabilities app_id in its
// beacons) that comes into range once the trees stand. Both get leased
// addresses under their proxy's, both are found by name and reached from
// node 0; the reference node gets a plain Package; the leaf sends out
// through its proxy, by name and by address.
func TestLeafAndReferenceBehindProxy(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 2}, 51)
	for range 4 {
		me.add(hspec{})
	}
	leaf := me.add(hspec{leaf: true})
	ref := me.add(hspec{ref: true})
	me.edges(append(line(4), [2]int{3, leaf}))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.connect("espnow", 2, ref)
	proxy := me.nodes[3]
	L, R := me.nodes[leaf], me.nodes[ref]

	// The leaf's addresses are leases under its proxy's, one per tree (the
	// trees form one after another: the leaf learns of the later ones
	// when it renews its leases).
	start := me.clk.Now()
	if !me.run(15*time.Minute, func() bool { return len(L.rt.Addrs()) == proxy.tr.Count() }) {
		t.Fatalf("leaf addresses %v", L.rt.Addrs())
	}
	t.Logf("leases in every tree after %v", me.clk.Now().Sub(start))
	for k := range L.tr.Count() {
		if p, ok := L.tr.Current(k); ok {
			t.Errorf("the leaf joined tree %d at %v", k, p.Addr)
		}
	}
	for _, a := range L.rt.Addrs() {
		p := me.pos(3, int(a.Tree))
		if a.TreeState != p.TreeState || !a.Addr.Equal(p.Addr) || a.Addr.LeaseID() == 0 {
			t.Errorf("leaf address %v (tree %d, ts %d) is no lease under the proxy's %v (ts %d)", a.Addr, a.Tree, a.TreeState, p.Addr, p.TreeState)
		}
	}
	// Records: the proxies register their leaseholders' names.
	me.mustRegister(10 * time.Minute)
	if !me.run(5*time.Minute, func() bool { return me.stored(leaf) && me.stored(ref) }) {
		t.Fatalf("records stored: leaf %v, reference %v", me.stored(leaf), me.stored(ref))
	}

	t.Run("to the leaf", func(t *testing.T) {
		n0 := len(me.hops)
		res := me.nodes[0].rt.Send(L.n.ID(), testApp, []byte("hello leaf"), nil)
		if err := me.wait(res, 3*time.Minute); err != nil {
			t.Fatalf("send to the leaf: %v", err)
		}
		if len(L.got) != 1 || !bytes.Equal(L.got[0].Blob, []byte("hello leaf")) || L.got[0].Route == nil {
			t.Fatalf("leaf got %+v", L.got)
		}
		// The proxy handed it on.
		proxied := false
		for _, h := range me.hops[n0:] {
			if h.Hash == pkgHash([]byte("hello leaf")) && h.Proxy && h.node == 3 && h.Next == L.n.ID() {
				proxied = true
			}
		}
		if !proxied {
			t.Error("no proxy hop at node 3")
		}
	})

	t.Run("from the leaf by name", func(t *testing.T) {
		res := L.rt.Send(me.nodes[0].n.ID(), testApp, []byte("leaf calling node 0"), nil)
		if err := me.wait(res, 5*time.Minute); err != nil {
			t.Fatalf("send from the leaf: %v", err)
		}
		if got := me.nodes[0].got; len(got) == 0 || !bytes.Equal(got[len(got)-1].Blob, []byte("leaf calling node 0")) {
			t.Fatal("node 0 did not get the leaf's message")
		}
	})

	t.Run("from the leaf by address", func(t *testing.T) {
		res := L.rt.SendTo(me.dest(0), testApp, []byte("leaf to an address"), nil)
		if err := me.wait(res, 3*time.Minute); err != nil {
			t.Fatalf("send from the leaf: %v", err)
		}
		got := me.nodes[0].got
		if len(got) == 0 || !bytes.Equal(got[len(got)-1].Blob, []byte("leaf to an address")) {
			t.Fatal("node 0 did not get the leaf's message")
		}
		// It came from the leaf's lease (the proxy only passed it on).
		m := got[len(got)-1]
		if !slices.ContainsFunc(L.rt.Addrs(), func(a TreeAddr) bool {
			return a.TreeState == m.Route.TreeState && a.Addr.Truncate() == addr.Address(m.Route.From)
		}) {
			t.Errorf("from %x (ts %d), not a lease of the leaf %v", m.Route.From, m.Route.TreeState, L.rt.Addrs())
		}
	})

	t.Run("to the reference node", func(t *testing.T) {
		n0 := len(me.hops)
		res := me.nodes[0].rt.Send(R.n.ID(), testApp, []byte("hello reference node"), nil)
		if err := me.wait(res, 3*time.Minute); err != nil {
			t.Fatalf("send to the reference node: %v", err)
		}
		if len(R.got) != 1 {
			t.Fatalf("reference node got %d messages", len(R.got))
		}
		m := R.got[0]
		if !bytes.Equal(m.Blob, []byte("hello reference node")) || m.Route != nil || (m.Schema != 0 && m.Schema != 2) {
			t.Fatalf("reference node got %q routed %v in schema %d; want a plain Package in schema 0 or 2", m.Blob, m.Route != nil, m.Schema)
		}
		if m.From != me.nodes[2].n.ID() || !m.FromKnown {
			t.Errorf("handed on by %x, want the proxy", m.From[:4])
		}
		// Routed to node 2 by the lease, handed on there (the receipt came
		// from the proxy: a reference node sends none).
		proxied := false
		for _, h := range me.hops[n0:] {
			if h.Hash == pkgHash([]byte("hello reference node")) && h.Proxy && h.node == 2 && h.Next == R.n.ID() {
				proxied = true
			}
		}
		if !proxied {
			t.Error("no proxy hop at node 2")
		}
	})
}

// stored reports whether some router stores node i's name record.
func (me *hmesh) stored(i int) bool {
	for _, hn := range me.nodes {
		if hn.rt != nil && hn.rt.HasRecord(me.nodes[i].n.ID()) {
			return true
		}
	}
	return false
}

// TestReferenceNodeAtColdStart: a reference node in range of a proxy from
// the start (its beacon arrives long before the proxy has a tree address)
// still gets a lease once the trees stand, and can be reached by name.
func TestReferenceNodeAtColdStart(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 1}, 52)
	for range 3 {
		me.add(hspec{})
	}
	ref := me.add(hspec{ref: true})
	me.edges(append(line(3), [2]int{2, ref}))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	if !me.run(10*time.Minute, func() bool { return me.stored(ref) }) {
		t.Fatal("the reference node's record was never stored: its proxy granted it no lease")
	}
	res := me.nodes[0].rt.Send(me.nodes[ref].n.ID(), testApp, []byte("hello"), nil)
	if err := me.wait(res, 3*time.Minute); err != nil {
		t.Fatalf("send to the reference node: %v", err)
	}
	if got := me.nodes[ref].got; len(got) != 1 || got[0].Route != nil {
		t.Fatalf("reference node got %+v", got)
	}
}

// TestLeafStaysOutOfTrees: a leaf's trees are never started (SetLeaf: "its
// tree application should not be started"), so it must take no place in
// any tree, let alone become a root: it routes with leases only.
func TestLeafStaysOutOfTrees(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 2}, 51)
	for range 4 {
		me.add(hspec{})
	}
	leaf := me.add(hspec{leaf: true, leafTreeApp: true})
	me.edges(append(line(4), [2]int{3, leaf}))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.clk.RunFor(time.Minute)
	L := me.nodes[leaf]
	for k := range L.tr.Count() {
		if p, ok := L.tr.Current(k); ok {
			t.Errorf("the leaf took a place in tree %d: %v (root %v)", k, p.Addr, p.Root)
		}
		if r, _ := me.nodes[0].tr.Root(k); bytes.Equal(r, L.n.Signer().Public()) {
			t.Errorf("the leaf is the root of tree %d", k)
		}
	}
	for _, a := range L.rt.Addrs() {
		if a.Addr.LeaseID() == 0 {
			t.Errorf("leaf address %v in tree %d is no lease", a.Addr, a.Tree)
		}
	}
}

// TestLeafLeasesMatchItsRecord: the record a proxy registers for its leaf
// names only leases the leaf holds, in every tree; a Package sent in any
// of them reaches the leaf. (The trees form a claim period apart, so the
// proxy gains addresses after it first leased the leaf some.)
func TestLeafLeasesMatchItsRecord(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 2}, 53)
	for range 3 {
		me.add(hspec{})
	}
	leaf := me.add(hspec{leaf: true})
	me.edges(append(line(3), [2]int{2, leaf}))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	L := me.nodes[leaf]
	if !me.run(5*time.Minute, func() bool { return me.stored(leaf) }) {
		t.Fatal("the leaf's record was never stored")
	}
	for i, hn := range me.nodes {
		if hn.rt == nil || hn.rt.records[L.n.ID()] == nil {
			continue
		}
		for _, a := range hn.rt.records[L.n.ID()].rec.Addrs {
			if !slices.Contains(L.rt.Addrs(), a) {
				t.Errorf("node %d stores the leaf at %v (tree %d, ts %d), a lease the leaf does not hold (it holds %v)", i, a.Addr, a.Tree, a.TreeState, L.rt.Addrs())
			}
		}
	}
	for k := range 2 {
		blob := fmt.Appendf(nil, "to the leaf in tree %d", k)
		res := me.nodes[0].rt.Send(L.n.ID(), testApp, blob, &Options{Tree: &k})
		if err := me.wait(res, 5*time.Minute); err != nil {
			t.Errorf("send to the leaf in tree %d: %v", k, err)
		}
	}
}

// TestLeaseRequestsDoNotPostponeRegistration: a leaseholder asking for its
// leases again and again (our boards ask every four beacon periods) does
// not put off the registration of its record: each request called for a
// registration, and each drew the registration's spread anew, so with
// requests more frequent than the spread (a slow link's, 300 airtimes of a
// full frame: about 30 s at LoRa's SF7/500 kHz) the record waited as long
// as the requests came (the virtual rack's LoRa node-to-board send went
// past its minute so). The record is stored within RegisterMax and one
// spread. Several seeds: one draw may fall early by chance.
func TestLeaseRequestsDoNotPostponeRegistration(t *testing.T) {
	rc := Config{RegisterQuiet: 500 * time.Millisecond, RegisterMax: 2 * time.Second, RegisterSpread: 30 * time.Second}
	const every = 4 * time.Second
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			me := newHMesh(t, tree.Config{Trees: 1}, seed)
			proxy := me.add(hspec{rcfg: rc})
			leaf := me.add(hspec{leaf: true})
			me.edges([][2]int{{proxy, leaf}})
			me.start()
			P, L := me.nodes[proxy], me.nodes[leaf]
			var ask func()
			ask = func() {
				L.rt.askLease()
				me.clk.AfterFunc(every, ask)
			}
			me.clk.AfterFunc(every, ask)
			if !me.run(5*time.Minute, func() bool { return len(L.rt.Addrs()) > 0 }) {
				t.Fatal("the leaf got no lease")
			}
			granted := me.clk.Now()
			limit := rc.RegisterMax + rc.RegisterSpread + time.Second
			if !me.run(5*time.Minute, func() bool { return P.rt.HasRecord(L.n.ID()) }) {
				t.Fatalf("the leaf's record was not stored in 5 minutes of lease requests every %v", every)
			}
			if d := me.clk.Now().Sub(granted); d > limit {
				t.Errorf("the leaf's record was stored %v after its lease, want within %v", d, limit)
			}
		})
	}
}

// TestLateReferenceRegistered: a reference node that comes into range of a
// proxy whose own record is registered and good gets its record stored too.
func TestLateReferenceRegistered(t *testing.T) {
	rc := Config{RegisterQuiet: 500 * time.Millisecond, RegisterMax: 2 * time.Second, RegisterSpread: 200 * time.Millisecond}
	me := newHMesh(t, tree.Config{Trees: 1}, 54)
	for range 3 {
		me.add(hspec{rcfg: rc})
	}
	ref := me.add(hspec{ref: true})
	me.edges(line(3))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	me.clk.RunFor(time.Minute)
	me.connect("espnow", 2, ref)
	if !me.run(time.Minute, func() bool { return me.stored(ref) }) {
		t.Fatal("the late reference node's record was not stored in a minute")
	}
}

// TestReferenceBackAtAnotherProxy: a reference node that left its proxy
// (timed out there) and comes back beside another node is reached through
// the new one: the new proxy registers its record although its own record
// stands, and the old proxy's record (a lease it no longer holds) is
// replaced. (The virtual rack's power-cycled board re-leased from the other
// node, and sends to it met "no route" at the old proxy for 30-40 s, until
// the new proxy's next registration.)
func TestReferenceBackAtAnotherProxy(t *testing.T) {
	rc := Config{RegisterQuiet: 500 * time.Millisecond, RegisterMax: 2 * time.Second, RegisterSpread: 200 * time.Millisecond}
	me := newHMesh(t, tree.Config{Trees: 1}, 55)
	for range 3 {
		me.add(hspec{rcfg: rc})
	}
	ref := me.add(hspec{ref: true})
	me.edges(append(line(3), [2]int{2, ref}))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	R := me.nodes[ref]
	if !me.run(5*time.Minute, func() bool { return me.stored(ref) }) {
		t.Fatal("the reference node's record was never stored")
	}
	res := me.nodes[0].rt.Send(R.n.ID(), testApp, []byte("before"), nil)
	if err := me.wait(res, 3*time.Minute); err != nil {
		t.Fatalf("send to the reference node at node 2: %v", err)
	}
	me.net.Disconnect("espnow", 2, ref)
	if !me.run(5*time.Minute, func() bool { _, ok := me.nodes[2].rt.leases.holders[R.n.ID()]; return !ok }) {
		t.Fatal("node 2 never let the reference node go")
	}
	me.clk.RunFor(time.Minute)
	me.connect("espnow", 1, ref)
	if !me.run(time.Minute, func() bool { _, ok := me.nodes[1].rt.leases.holders[R.n.ID()]; return ok }) {
		t.Fatal("node 1 granted the reference node no lease")
	}
	back := me.clk.Now()
	res = me.nodes[0].rt.Send(R.n.ID(), testApp, []byte("after"), nil)
	if err := me.wait(res, 3*time.Minute); err != nil {
		t.Fatalf("send to the reference node back at node 1: %v", err)
	}
	if d := me.clk.Now().Sub(back); d > 30*time.Second {
		t.Errorf("the send to the reference node back at node 1 took %v", d)
	}
	if got := R.got; len(got) != 2 || !bytes.Equal(got[1].Blob, []byte("after")) {
		t.Fatalf("reference node got %+v", got)
	}
}
