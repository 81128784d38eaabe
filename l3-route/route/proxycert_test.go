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
	proxy.rt.storeLookup(rec)
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
	mallory.rt.storeLookup(forged)
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
