package tree

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// rogue is a node that speaks our protocol (its beacons say so) but runs
// no tree: the test sends whatever tree messages it likes from it, and
// sees those it receives.
type rogue struct {
	m     *mesh
	id    identity.Identity
	n     *node.Node
	r     *sim.Radio
	heard []message
	// onClaim, if set, is called with each claim it receives.
	onClaim func(c cert.Claim, hops uint8)
}

// addRogue puts a rogue on the medium next to the given honest nodes.
func (m *mesh) addRogue(seed byte, to ...int) *rogue {
	m.t.Helper()
	r := &rogue{m: m, id: identity.FromSeed([32]byte{0xee, seed, byte(m.seed)})}
	r.r = m.med.AddRadio(sim.Position{X: -1})
	n, err := node.New(node.Config{Clock: m.clk, Links: []link.Link{r.r}, Identity: r.id, Seed: m.seed*1000 + 999, BeaconPeriod: beaconPeriod})
	if err != nil {
		m.t.Fatal(err)
	}
	r.n = n
	n.Register(AppID, func(msg node.Message) {
		var mm message
		if mm.decode(msg.Blob) != nil {
			return
		}
		mm.certs = slices.Clone(mm.certs)
		mm.chain = cloneChain(mm.chain)
		r.heard = append(r.heard, mm)
		if mm.typ == MsgClaim && r.onClaim != nil {
			r.onClaim(mm.claim, mm.hops)
		}
	})
	for _, i := range to {
		m.med.Connect(r.r, m.radios[i], sim.Independent(0), sim.Independent(0))
	}
	n.Start()
	return r
}

func (r *rogue) pk() ed25519.PublicKey { return r.id.Public() }

// ep is where honest nodes hear the rogue.
func (r *rogue) ep() peer.Endpoint { return peer.Endpoint{Link: 0, Addr: r.r.Addr()} }

// send unicasts a tree message to honest node i and runs the mesh until
// the hop has delivered it (and a moment more for the node to act).
func (r *rogue) send(i int, msg []byte) {
	m := r.m
	m.t.Helper()
	res := r.n.SendTo(m.ep(i), AppID, bytes.Clone(msg), nil)
	if !m.clk.RunWhile(m.clk.Now().Add(30*time.Second), func() bool { return !res.Finished() }) || res.Err() != nil {
		m.t.Fatalf("rogue's send to %d: finished %v, %v", i, res.Finished(), res.Err())
	}
	m.clk.RunFor(time.Second)
}

// waitKnown runs until the honest nodes know the rogue as a full peer.
func (r *rogue) waitKnown(nodes ...int) {
	m := r.m
	m.t.Helper()
	if _, ok := m.runUntil(3*beaconPeriod, func() bool {
		for _, i := range nodes {
			if !m.trees[i].b.SpeaksOurs(r.ep()) {
				return false
			}
		}
		return true
	}); !ok {
		m.t.Fatalf("nodes %v never learnt the rogue", nodes)
	}
}

// betterKey returns a key (not a mesh node's) whose score in tree k beats
// every node's: a claim by it, if believed, would take the tree over.
func (m *mesh) betterKey(k uint8) identity.Identity {
	best := cert.Score(m.nodes[m.bestScore(int(k), m.alive())].Signer().Public(), k)
	for i := 0; ; i++ {
		id := identity.FromSeed([32]byte{0xbe, byte(i), byte(i >> 8), byte(m.seed)})
		if cert.Less(cert.Score(id.Public(), k), best) {
			return id
		}
	}
}

// termIn returns a term start at or after start whose tree_state belongs
// to tree k, as an honest root picks it (messages of another tree's
// tree_state are dropped before verification, uncounted).
func termIn(pk ed25519.PublicKey, k uint8, start int64) int64 {
	for TreeOf(cert.TreeState(pk, k, start)) != int(k) {
		start++
	}
	return start
}

// treeState is what a forgery must not change at an honest node.
type treeState struct {
	stats Stats
	pos   Position
	root  string
	alive bool
	fresh int64 // the time of the newest claim the node believes
}

func (m *mesh) treeStateOf(i int) treeState {
	p, _ := m.trees[i].Current(0)
	r, alive := m.trees[i].Root(0)
	return treeState{m.trees[i].Stats(), p, string(r), alive, m.trees[i].trees[0].latest.Time}
}

// TestForgeries: claims and chains that do not verify, or verify but must
// not be believed, are counted and dropped: nobody adopts them, passes
// them on, or learns a place from them, and nothing panics.
func TestForgeries(t *testing.T) {
	m := newMesh(t, 6, lineEdges(6), Config{Trees: 1}, 21)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	sh := m.checkTree(0, m.alive())
	// The victim: an interior node that is not the root.
	v := 2
	if sh.root == v {
		v = 3
	}
	rg := m.addRogue(1, v)
	rg.waitKnown(v)
	m.waitConverged(time.Minute)

	cfg := m.trees[v].Config()
	rootID := testIdentity(sh.root, m.seed)
	vch, _ := m.trees[v].Chain(0)
	claim := vch.Claim // the current term's claim, as the victim holds it
	term := claim.Term()
	better := m.betterKey(0)
	now := func() int64 { return m.clk.Now().UnixNano() }

	// A chain of the current term down to the rogue, one certificate per
	// index given, all signed by signer (the rogue has no other key).
	rogueChain := func(signer cert.Signer, indices ...uint8) cert.Chain {
		ch := cert.Chain{Claim: claim}
		var a addr.Long
		for _, idx := range indices {
			a, _ = a.Child(idx)
			ch.Certs = append(ch.Certs, cert.IssueCert(signer, term, rg.pk(), a, idx))
		}
		return ch
	}

	// Claims.
	badSig := cert.NewClaim(better, 0, termIn(better.Public(), 0, now()), now())
	badSig.Sig[10] ^= 0x40
	kept := claim // the real root's claim with a newer time it never signed: would keep a dead root alive
	kept.Time = now()
	future := cert.NewClaim(better, 0, termIn(better.Public(), 0, now()), now()+int64(cfg.MaxSkew+time.Minute))

	// Chains and positions.
	wrongSigner := rogueChain(rg.id, 7)                         // the rogue certifies itself at 7, as if the root had
	deep := rogueChain(rg.id, slices.Repeat([]uint8{1}, 20)...) // well-formed, 20 levels, none signed by the right key
	oldTerm := cert.Term{Tree: 0, Root: term.Root, Start: termIn(rootID.Public(), 0, term.Start-int64(15*time.Minute))}
	oldTerm.TreeState = cert.TreeState(rootID.Public(), 0, oldTerm.Start)
	child3, _ := addr.Long{}.Child(3)
	replayed := cert.Chain{Claim: claim, Certs: []cert.Cert{cert.IssueCert(rootID, oldTerm, rg.pk(), child3, 3)}} // a real certificate of the root's earlier term

	// Over-long and overflowing chains, which no encoder makes.
	rawChain := func(count int, index uint8) []byte {
		b := claim.AppendTo([]byte{MsgNotify})
		b = append(b, byte(count))
		for range count {
			c := cert.Cert{Index: index}
			copy(c.Child[:], rg.pk())
			b = c.AppendTo(b)
		}
		return b
	}
	suffix129 := append([]byte{MsgSuffix, 0, term.TreeState}, term.Root[:]...)
	for range cert.MaxDepth + 1 {
		c := cert.Cert{Index: 1}
		suffix129 = c.AppendTo(suffix129)
	}

	const (
		rejected = iota
		malformed
		ignored // dropped without a count (e.g. an answer nobody asked for)
	)
	for _, tc := range []struct {
		name string
		msg  []byte
		want int
	}{
		{"claim with a bad signature (better key)", appendClaim(nil, &badSig, 0), rejected},
		{"root's claim re-timed without its signature", appendClaim(nil, &kept, 0), rejected},
		{"claim from beyond MaxSkew (better key, good signature)", appendClaim(nil, &future, 0), rejected},
		{"chain: certificate signed by the wrong key", appendNotify(nil, &wrongSigner), rejected},
		{"position: certificate signed by the wrong key", appendPosition(nil, &wrongSigner), rejected},
		{"chain: 20 levels, wrong signer", appendNotify(nil, &deep), rejected},
		{"position: 20th level, parent unknown", appendPosition(nil, &deep), ignored},
		{"chain: certificate replayed from another term", appendNotify(nil, &replayed), rejected},
		{"position: certificate replayed from another term", appendPosition(nil, &replayed), rejected},
		{"chain of 129 certificates", rawChain(cert.MaxDepth+1, 1), malformed},
		{"chain of 65 certificates overflowing the address", rawChain(65, 16), malformed},
		{"suffix of 129 certificates", suffix129, malformed},
		{"unasked answer with a forged chain", appendResponse(nil, StatusOK, &wrongSigner), ignored},
		{"unasked refusal", appendResponse(nil, StatusTooDeep, nil), ignored},
		{"unasked certificate answer", appendCertResponse(nil, 0, term.TreeState, &wrongSigner.Certs[0]), ignored},
		{"certificate answer of the wrong length", append(appendCertResponse(nil, 0, term.TreeState, &wrongSigner.Certs[0]), 0), malformed},
		{"request with an unknown flag", append(appendRequest(nil, 0, term.TreeState, rg.pk(), 0)[:2+1+32], 0x02), malformed},
	} {
		before := map[int]treeState{}
		for _, i := range m.alive() {
			before[i] = m.treeStateOf(i)
		}
		rg.send(v, tc.msg)
		for _, i := range m.alive() {
			b, a := before[i], m.treeStateOf(i)
			dRej, dMal := a.stats.Rejected-b.stats.Rejected, a.stats.Malformed-b.stats.Malformed
			want := [2]uint64{}
			if i == v && tc.want != ignored {
				want[tc.want] = 1
			}
			if got := [2]uint64{dRej, dMal}; got != want {
				t.Errorf("%s: node %d counted %d rejected, %d malformed; want %v", tc.name, i, dRej, dMal, want)
			}
			// (The root's own periodic claim may come meanwhile.)
			real := m.trees[sh.root].trees[0].latest.Time
			if a.pos != b.pos || a.root != b.root || a.alive != b.alive || (a.fresh != b.fresh && a.fresh != real) {
				t.Errorf("%s: node %d changed: %+v root %d alive %v claim time %d -> %+v root %d alive %v claim time %d",
					tc.name, i, b.pos, m.index([]byte(b.root)), b.alive, b.fresh, a.pos, m.index([]byte(a.root)), a.alive, a.fresh)
			}
			for _, nb := range m.trees[i].Neighbors(0, a.pos.TreeState) {
				if nb.ID == identity.NodeID(rg.pk()) {
					t.Errorf("%s: node %d believes the rogue is at %v", tc.name, i, nb.Addr)
				}
			}
		}
	}
	// Pending positions the victim could not check yet are asked about
	// later (the 20th-level one): the answer never comes, nothing changes.
	m.clk.RunFor(2 * cfg.ClaimPeriod)
	for _, nb := range m.trees[v].Neighbors(0, sh.ts) {
		if nb.ID == identity.NodeID(rg.pk()) {
			t.Errorf("the victim believes the rogue is at %v", nb.Addr)
		}
	}
	m.checkTree(0, m.alive())

	// The control: the same better key's claim, honestly timed, is
	// believed (so the rejections above are the forgeries' doing).
	good := cert.NewClaim(better, 0, termIn(better.Public(), 0, now()), now())
	rg.send(v, appendClaim(nil, &good, 0))
	if r, alive := m.trees[v].Root(0); !alive || !bytes.Equal(r, better.Public()) {
		t.Errorf("an honest claim by a better key was not adopted (root %d)", m.index(r))
	}
}
