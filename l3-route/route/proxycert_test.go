package route

import (
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// certHome is recordHome with a router configuration.
func certHome(t *testing.T, cfg Config) (*Router, *clock.Virtual) {
	clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	n, err := node.New(node.Config{Clock: clk, Identity: identity.FromSeed([32]byte{0x41}), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Records = 8
	rt, err := Attach(n, tree.Config{Trees: 1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rt, clk
}

func certRecord(board identity.NodeID, signer identity.Identity, at time.Time, c *revoke.ProxyCert) Record {
	rec := Record{ID: board, Signer: signer.ID(), Time: at.UnixNano(), Addrs: []TreeAddr{{Tree: 0, TreeState: 64}}, Cert: c}
	rec.Sign(signer)
	return rec
}

// TestCertifiedProxy: anyone can sign a proxy record for a keyless board
// (it cannot sign or delegate), so at a home where a forged one was the
// latest, the board's traffic went to the forger. An operator's
// certificate names the proxy allowed: with CertifiedProxies a home and a
// lookup take a keyless board's proxy record only with one (by an
// operator listed, for that board and that proxy, unexpired); without it,
// a certified record still stands over any uncertified one.
func TestCertifiedProxy(t *testing.T) {
	op, other := identity.FromSeed([32]byte{'o', 'p'}), identity.FromSeed([32]byte{'o', 't'})
	proxy, mallory := identity.FromSeed([32]byte{'p'}), identity.FromSeed([32]byte{'m'})
	board := keylessID()
	cfg := Config{CertifiedProxies: true, ProxyOperators: []identity.NodeID{op.ID()}}
	r, clk := certHome(t, cfg)
	now := clk.Now()
	good := revoke.SignProxy(op, board, proxy.ID(), now.Add(24*time.Hour))

	for name, rec := range map[string]Record{
		"uncertified":             certRecord(board, mallory, now, nil),
		"the proxy's certificate": certRecord(board, mallory, now, &good),
		"an operator not listed":  certRecord(board, mallory, now, ptr(revoke.SignProxy(other, board, mallory.ID(), now.Add(time.Hour)))),
		"expired":                 certRecord(board, proxy, now, ptr(revoke.SignProxy(op, board, proxy.ID(), now.Add(-time.Second)))),
		"for another board":       certRecord(board, proxy, now, ptr(revoke.SignProxy(op, keylessID2(), proxy.ID(), now.Add(time.Hour)))),
		"the proxy, uncertified":  certRecord(board, proxy, now, nil),
		"a keyed node, certified": certRecord(mallory.ID(), proxy, now, ptr(revoke.SignProxy(op, mallory.ID(), proxy.ID(), now.Add(time.Hour)))),
	} {
		before := r.stats.RecordsRefused
		r.offer(rec)
		if r.records[rec.ID] != nil {
			t.Errorf("%s: stored", name)
		}
		if r.stats.RecordsRefused != before+1 {
			t.Errorf("%s: refusal not counted", name)
		}
	}
	r.offer(certRecord(board, proxy, now, &good))
	if s := r.records[board]; s == nil || s.rec.Signer != proxy.ID() || s.rec.Cert == nil || *s.rec.Cert != good {
		t.Fatalf("the certified proxy's record: %+v", s)
	}
	// Without CertifiedProxies an uncertified record is still stored while
	// nothing better is, but never displaces a certified one.
	r2, _ := certHome(t, Config{ProxyOperators: []identity.NodeID{op.ID()}})
	r2.offer(certRecord(board, mallory, now, nil))
	if r2.records[board] == nil {
		t.Fatal("an unvouched board record refused without CertifiedProxies")
	}
	r2.offer(certRecord(board, proxy, now.Add(time.Second), &good))
	r2.offer(certRecord(board, mallory, now.Add(2*time.Second), nil))
	if s := r2.records[board]; s == nil || s.rec.Signer != proxy.ID() {
		t.Fatalf("an uncertified record displaced the certified one: %+v", s)
	}

	// The proxy attaches its certificate to the records it signs for a
	// reference leaseholder named in it.
	pr, _ := certHome(t, Config{ProxyCerts: []revoke.ProxyCert{revoke.SignProxy(op, board, identity.FromSeed([32]byte{0x41}).ID(), now.Add(time.Hour))}})
	if c := pr.proxyCert(board); c == nil || c.Board != board {
		t.Fatalf("the proxy's own certificate not found: %+v", c)
	}
	if c := pr.proxyCert(keylessID2()); c != nil {
		t.Fatalf("a certificate for another board: %+v", c)
	}
}

// keylessID2 is another node_id that is no Ed25519 key.
func keylessID2() identity.NodeID {
	id := identity.NodeID{0xb1}
	for canSign(id) {
		id[1]++
	}
	return id
}

// TestCertifiedProxyLookup: on a line 0–1–2–3–4 where every node lists
// the operator and takes only certified proxies, node 1 is the certified
// proxy of a keyless board and registers its record; node 4 then
// registers a later, uncertified proxy record for the board pointing at
// itself. Without certificates the later record was the board's at its
// homes, and node 0's lookup sent the board's traffic to node 4; now the
// homes refuse it and node 0 finds node 1.
func TestCertifiedProxyLookup(t *testing.T) {
	op := identity.FromSeed([32]byte{'o', 'p'})
	board := keylessID()
	me := newHMesh(t, tree.Config{Trees: 2}, 61)
	for range 5 {
		me.add(hspec{rcfg: Config{CertifiedProxies: true, ProxyOperators: []identity.NodeID{op.ID()}}})
	}
	me.edges(line(5))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	proxy, mallory := me.nodes[1], me.nodes[4]
	now := me.clk.Now()
	cert := revoke.SignProxy(op, board, proxy.n.ID(), now.Add(time.Hour))
	rec := Record{ID: board, Signer: proxy.n.ID(), Time: now.UnixNano(), Addrs: proxy.rt.Addrs(), Cert: &cert}
	rec.Sign(hid(1, 61))
	proxy.rt.storeLookup(rec, nil)
	me.clk.RunFor(30 * time.Second)
	refused := func() (n uint64) {
		for _, hn := range me.nodes {
			n += hn.rt.Stats().RecordsRefused
		}
		return n
	}
	before := refused()
	forged := Record{ID: board, Signer: mallory.n.ID(), Time: me.clk.Now().UnixNano(), Addrs: mallory.rt.Addrs()}
	forged.Sign(hid(4, 61))
	mallory.rt.storeLookup(forged, nil)
	me.clk.RunFor(30 * time.Second)
	if refused() == before {
		t.Fatal("no home refused the uncertified record")
	}
	var got *Destination
	me.nodes[0].rt.Lookup(board, func(d Destination, err error) {
		if err != nil {
			t.Errorf("lookup: %v", err)
		}
		got = &d
	})
	me.run(time.Minute, func() bool { return got != nil })
	if got == nil || !slices.Equal(got.Addrs, rec.Addrs) {
		t.Fatalf("node 0 found the board at %+v, want node 1's addresses %+v (node 4's: %+v)", got, rec.Addrs, forged.Addrs)
	}
	if !got.Unvouched {
		t.Fatal("a board behind a certified proxy taken as one that signs")
	}
}

// TestRevokedProxyCert: an operator revokes a certificate (the board moved
// to another proxy). A home drops the record resting on it, refuses it
// again (counted as revoked, and refused rather than taken as an
// unvouched record even without CertifiedProxies), takes a record with
// another certificate for the pair unless every certificate of the pair
// is revoked, and the proxy no longer attaches the certificate revoked.
func TestRevokedProxyCert(t *testing.T) {
	op := identity.FromSeed([32]byte{'o', 'p'})
	proxy := identity.FromSeed([32]byte{0x41}) // certHome's own key: it is the proxy
	board := keylessID()
	for _, certified := range []bool{true, false} {
		revs, err := revoke.Open(revoke.Config{Operators: []identity.NodeID{op.ID()}})
		if err != nil {
			t.Fatal(err)
		}
		clk0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		cert := revoke.SignProxy(op, board, proxy.ID(), clk0.Add(24*time.Hour))
		r, clk := certHome(t, Config{CertifiedProxies: certified, ProxyOperators: []identity.NodeID{op.ID()},
			ProxyCerts: []revoke.ProxyCert{cert}, CertRevocations: revs})
		now := clk.Now()
		r.offer(certRecord(board, proxy, now, &cert))
		if r.records[board] == nil || r.proxyCert(board) == nil {
			t.Fatalf("certified %v: the certified record before any revocation", certified)
		}
		if _, added, err := revs.AddProxyRevocation(revoke.SignProxyRevocation(op, board, proxy.ID(), cert.Until, now)); !added || err != nil {
			t.Fatal(added, err)
		}
		if n := r.DropRevoked(); n != 1 || r.records[board] != nil {
			t.Fatalf("certified %v: dropped %d, still held: %v", certified, n, r.records[board] != nil)
		}
		if r.proxyCert(board) != nil {
			t.Fatalf("certified %v: the proxy still attaches its revoked certificate", certified)
		}
		before := r.stats.RevokedRecords
		r.offer(certRecord(board, proxy, now.Add(time.Second), &cert))
		if r.records[board] != nil || r.stats.RevokedRecords != before+1 {
			t.Fatalf("certified %v: a record on a revoked certificate stored (revoked %d -> %d)", certified, before, r.stats.RevokedRecords)
		}
		if r.stands(ptr(certRecord(board, proxy, now, &cert))) {
			t.Fatalf("certified %v: a lookup believes a record on a revoked certificate", certified)
		}
		renewed := revoke.SignProxy(op, board, proxy.ID(), clk0.Add(48*time.Hour))
		r.offer(certRecord(board, proxy, now.Add(2*time.Second), &renewed))
		if r.records[board] == nil {
			t.Fatalf("certified %v: a record on another certificate of the pair refused", certified)
		}
		if _, added, err := revs.AddProxyRevocation(revoke.SignProxyRevocation(op, board, proxy.ID(), 0, now)); !added || err != nil {
			t.Fatal(added, err)
		}
		third := revoke.SignProxy(op, board, proxy.ID(), clk0.Add(72*time.Hour))
		r.offer(certRecord(board, proxy, now.Add(3*time.Second), &third))
		if r.DropRevoked() != 1 || r.records[board] != nil {
			t.Fatalf("certified %v: a record stored though every certificate of the pair is revoked", certified)
		}
	}
}

// TestRevokedProxyCertLookup: on a line 0–1–2–3–4, node 1 is the certified
// proxy of a keyless board and registers its record; node 0 finds the
// board at node 1. The operator then revokes the certificate (every node
// takes the revocation, as gossip spreads it, and drops what rests on it):
// the homes hold the record no more, node 0's cached answer is gone, and a
// new lookup for the board finds nothing.
func TestRevokedProxyCertLookup(t *testing.T) {
	op := identity.FromSeed([32]byte{'o', 'p'})
	board := keylessID()
	revs, err := revoke.Open(revoke.Config{Operators: []identity.NodeID{op.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	me := newHMesh(t, tree.Config{Trees: 2}, 62)
	for range 5 {
		me.add(hspec{rcfg: Config{CertifiedProxies: true, ProxyOperators: []identity.NodeID{op.ID()}, CertRevocations: revs}})
	}
	me.edges(line(5))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	proxy := me.nodes[1]
	now := me.clk.Now()
	cert := revoke.SignProxy(op, board, proxy.n.ID(), now.Add(time.Hour))
	rec := Record{ID: board, Signer: proxy.n.ID(), Time: now.UnixNano(), Addrs: proxy.rt.Addrs(), Cert: &cert}
	rec.Sign(hid(1, 62))
	proxy.rt.storeLookup(rec, nil)
	me.clk.RunFor(30 * time.Second)
	lookup := func() (got *Destination, gotErr error) {
		done := false
		me.nodes[0].rt.Lookup(board, func(d Destination, err error) { got, gotErr, done = &d, err, true })
		me.run(10*time.Minute, func() bool { return done })
		if !done {
			t.Fatal("the lookup never completed")
		}
		return got, gotErr
	}
	if d, err := lookup(); err != nil || !slices.Equal(d.Addrs, rec.Addrs) {
		t.Fatalf("before the revocation: %+v %v", d, err)
	}
	if _, _, err := revs.AddProxyRevocation(revoke.SignProxyRevocation(op, board, proxy.n.ID(), cert.Until, me.clk.Now())); err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for _, hn := range me.nodes {
		dropped += hn.rt.DropRevoked()
		if hn.rt.HasRecord(board) {
			t.Fatalf("a home still holds the record on the revoked certificate")
		}
	}
	if dropped < 2 { // a home at least, and node 0's cached answer
		t.Fatalf("dropped %d", dropped)
	}
	if d, err := lookup(); err == nil {
		t.Fatalf("after the revocation node 0 found the board at %+v", d)
	}
}
