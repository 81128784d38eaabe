package meshsim

// The attacks on routing and the trees [ours]: forged receipts and error
// reports, replayed Packages, forged and future-dated name records, forged
// root claims, replayed certificates and lies about the distance to the
// root. Like the one-hop attacks (adversary.go) each is played by an
// adversary node over the air, with its own key, on honest nodes, and
// counted tried when an honest node heard it, rejected when it was not
// fooled.
//
// An adversary hears what its neighbours send (a radio overhears every
// frame in range): the simulator gives it what it would have heard — the
// hash of a Package a neighbour sends, a neighbour's position certificate,
// the trees' current roots — rather than decoding frames off its radio.

import (
	"fmt"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// VictimApp carries the Packages honest nodes send during attacks on
// routing: an adversary next to the sender overhears each one and attacks
// its send.
var VictimApp = packet.NewAppID("mycelium-sim", "victim", 1)

// victims is what the attacks on routing track: how often each victim
// Package was delivered (by its hash), and a counter for unique blobs.
type victims struct {
	got map[[16]byte]int
	n   int
}

// registerVictim makes node nd take victim Packages, counting deliveries.
func (m *routeMesh) registerVictim(nd *node.Node) {
	if m.adv == nil {
		return
	}
	nd.Register(VictimApp, func(msg node.Message) {
		m.adv.vic.got[packet.NewPackage(VictimApp, msg.Blob).Hash]++
	})
}

// victimSend makes an honest neighbour h of adversary i send a fresh
// Package to an honest node t at least three hops from h (its receipt
// takes a while: an adversary next to h answers first), and returns them.
func (m *routeMesh) victimSend(i int) (h, t int, pkg packet.Package, res *node.Result, ok bool) {
	a := m.adv
	hs := m.honestNeighbours(i)
	if len(hs) == 0 {
		return 0, 0, pkg, nil, false
	}
	h = hs[a.rng.IntN(len(hs))]
	d := m.bfs(h)
	var ts []int
	for j, dj := range d {
		if dj >= 3 && !a.is[j] && !m.dead[j] {
			ts = append(ts, j)
		}
	}
	if len(ts) == 0 {
		return 0, 0, pkg, nil, false
	}
	t = ts[a.rng.IntN(len(ts))]
	a.vic.n++
	blob := fmt.Appendf(nil, "victim %d of %d", a.vic.n, i)
	pkg = packet.NewPackage(VictimApp, blob)
	a.heard.hash, a.heard.hasNonce = pkg.Hash, false
	dst := route.Destination{ID: m.nodes[t].ID(), Addrs: m.rts[t].Addrs()}
	res = m.rts[h].SendTo(dst, VictimApp, blob, nil)
	return h, t, pkg, res, true
}

// forgeReceipt: a receipt for a neighbour's Package, sent to it before the
// destination's can arrive — in the plain layout (a keyless board's) or
// signed by the adversary's own key. Fooled: the send completed before the
// destination had the Package.
func (m *routeMesh) forgeReceipt(i int, res *AdversaryResult) {
	a := m.adv
	h, _, pkg, sres, ok := m.victimSend(i)
	if !ok {
		return
	}
	rt := m.rts[h]
	before := rt.Stats().ReceiptsRefused
	fooled := false
	sres.OnDone(func(err error) {
		if err == nil && a.vic.got[pkg.Hash] == 0 {
			fooled = true
		}
	})
	var msg []byte
	if a.rng.IntN(2) == 0 {
		msg = route.AppendPlainReceipt(nil, pkg.Hash)
	} else {
		msg = route.AppendReceipt(nil, m.nodes[i].Signer(), pkg.Hash, m.clk.Now().UnixNano())
	}
	m.rts[i].SendControl(rt.Addrs(), msg, false)
	m.clk.AfterFunc(attackCheck, func() {
		m.count(res, fooled, rt.Stats().ReceiptsRefused > before)
	})
}

// forgeError: an error report (hop limit: one that would end the send)
// for a neighbour's Package — plain, signed by the adversary in the
// destination's name, or signed by the adversary as itself (a relay's
// word); the signed ones with no nonce, or naming the nonce the adversary
// overheard in the attempt's path header. Fooled: the send ended with an
// error (its destination is honest and reachable).
func (m *routeMesh) forgeError(i int, res *AdversaryResult) {
	a := m.adv
	h, t, pkg, sres, ok := m.victimSend(i)
	if !ok {
		return
	}
	rt := m.rts[h]
	heard := func() uint64 { s := rt.Stats(); return s.ErrorsRefused + s.RelayErrors }
	before := heard()
	fooled := false
	sres.OnDone(func(err error) { fooled = err != nil })
	var rep addr.Address
	if p, ok := m.trees[t].Current(0); ok {
		rep = p.Addr.Truncate()
	}
	code := node.CodeOf(node.ErrHopLimit)
	var msg []byte
	now := m.clk.Now().UnixNano()
	nonce, hasNonce := a.heard.nonce, a.heard.hasNonce && a.heard.hash == pkg.Hash
	switch k := a.rng.IntN(5); {
	case k == 0:
		msg = route.AppendPlainError(nil, code, pkg.Hash, rep)
	case k == 1:
		msg = route.AppendError(nil, m.nodes[i].Signer(), m.nodes[t].ID(), code, pkg.Hash, rep, now)
	case k == 2:
		msg = route.AppendError(nil, m.nodes[i].Signer(), m.nodes[i].ID(), code, pkg.Hash, rep, now)
	case k == 3 && hasNonce:
		msg = route.AppendErrorNonce(nil, m.nodes[i].Signer(), m.nodes[t].ID(), code, pkg.Hash, rep, nonce, now)
	default:
		if !hasNonce {
			msg = route.AppendError(nil, m.nodes[i].Signer(), m.nodes[i].ID(), code, pkg.Hash, rep, now)
			break
		}
		msg = route.AppendErrorNonce(nil, m.nodes[i].Signer(), m.nodes[i].ID(), code, pkg.Hash, rep, nonce, now)
	}
	m.rts[i].SendControl(rt.Addrs(), msg, true)
	// A relay's word makes the sender try again, after a pause of seconds:
	// look when the send is over (or at the next attack).
	m.clk.AfterFunc(attackEvery, func() {
		m.count(res, fooled, heard() > before)
	})
}

// replayPacket: once a neighbour's Package is delivered, the adversary
// sends the same Package (the same bytes, so the same hash) to its
// destination again. Fooled: it was delivered twice.
func (m *routeMesh) replayPacket(i int, res *AdversaryResult) {
	a := m.adv
	_, t, pkg, sres, ok := m.victimSend(i)
	if !ok {
		return
	}
	sres.OnDone(func(err error) {
		if err != nil || !a.on {
			return
		}
		rt := m.rts[t]
		before := rt.Stats().Copies
		dst := route.Destination{ID: m.nodes[t].ID(), Addrs: rt.Addrs()}
		m.rts[i].SendTo(dst, pkg.AppID, pkg.Blob, nil)
		m.clk.AfterFunc(attackCheck, func() {
			m.count(res, a.vic.got[pkg.Hash] > 1, rt.Stats().Copies > before)
		})
	})
}

// forgeRecord: a name record for an honest node v, signed by the
// adversary as v's proxy with no delegation from v (forge-proxy), or also
// dated an hour ahead (future-record), pointing at the adversary's own
// addresses, sent to v's record homes. Fooled: a home that held v's own
// record now holds the adversary's.
func (m *routeMesh) forgeRecord(i int, res *AdversaryResult, ahead time.Duration) {
	a := m.adv
	v := a.rng.IntN(len(m.nodes))
	if a.is[v] || m.dead[v] {
		return
	}
	vid := m.nodes[v].ID()
	var homes []int
	for j, rt := range m.rts {
		if rec, ok := rt.StoredRecord(vid); ok && !a.is[j] && rec.Signer == vid {
			homes = append(homes, j)
		}
	}
	if len(homes) == 0 {
		return
	}
	refused := func() (n uint64) {
		for _, j := range homes {
			n += m.rts[j].Stats().RecordsRefused
		}
		return n
	}
	before := refused()
	me := m.nodes[i]
	rec := route.Record{ID: vid, Signer: me.ID(), Time: m.clk.Now().Add(ahead).UnixNano(), Addrs: m.rts[i].Addrs()}
	rec.Sign(me.Signer())
	m.rts[i].SendRecord(&rec)
	m.clk.AfterFunc(attackCheck, func() {
		fooled := false
		for _, j := range homes {
			if got, ok := m.rts[j].StoredRecord(vid); ok && got.Signer == me.ID() && got.Time == rec.Time {
				fooled = true
			}
		}
		m.count(res, fooled, refused() > before)
	})
}

// honestNeighbours are adversary i's live honest neighbours.
func (m *routeMesh) honestNeighbours(i int) []int {
	var hs []int
	for _, j := range m.adj[i] {
		if !m.adv.is[j] && !m.dead[j] {
			hs = append(hs, j)
		}
	}
	return hs
}

// rejected sums the tree verification failures of nodes js.
func (m *routeMesh) rejected(js []int) (n uint64) {
	for _, j := range js {
		n += m.trees[j].Stats().Rejected
	}
	return n
}

// forgeClaim: a root claim for a new term of one of the trees in the name
// of its current root (the best score: a claim every node would follow),
// signed by the adversary's key. Fooled: an honest neighbour entered the
// forged term.
func (m *routeMesh) forgeClaim(i int, res *AdversaryResult) {
	a := m.adv
	k := a.rng.IntN(m.cfg.Trees)
	root := -1
	for j, t := range m.trees {
		if p, ok := t.Current(k); ok && p.Root && !a.is[j] {
			root = j
			break
		}
	}
	hs := m.honestNeighbours(i)
	if root < 0 || len(hs) == 0 {
		return
	}
	now := m.clk.Now().UnixNano()
	c := cert.Claim{Tree: uint8(k), TermStart: now, Time: now}
	copy(c.Root[:], m.nodes[root].Signer().Public())
	// A term start whose tree_state names tree k, as a root picks one
	// (anything else is dropped unread).
	for tree.TreeOf(c.TreeState()) != k {
		c.TermStart++
	}
	copy(c.Sig[:], m.nodes[i].Signer().Sign(c.SignedBytes(nil)))
	ts, term := c.TreeState(), c.TermStart
	before := m.rejected(hs)
	blob := append(c.AppendTo([]byte{tree.MsgClaim}), 1)
	m.nodes[i].Broadcast(tree.AppID, blob, nil)
	m.clk.AfterFunc(attackCheck, func() {
		fooled := false
		for _, j := range hs {
			// Following the forged term: its claim taken as the newest, or
			// a place in it.
			if p, ok := m.trees[j].ByState(ts); ok && p.Term == term || m.trees[j].LastClaim(k).UnixNano() == c.Time {
				fooled = true
			}
		}
		m.count(res, fooled, m.rejected(hs) > before)
	})
}

// replayCert: an honest neighbour v's position certificate (the last of its
// chain), announced by the adversary as its own position. Fooled: an honest
// neighbour of both took v's address as the adversary's.
func (m *routeMesh) replayCert(i int, res *AdversaryResult) {
	a := m.adv
	h, v, ok := m.target(i)
	if !ok {
		return
	}
	k := a.rng.IntN(m.cfg.Trees)
	ch, ok := m.trees[v].Chain(k)
	if !ok || len(ch.Certs) == 0 {
		return
	}
	vp, _ := m.trees[v].Current(k)
	hn := m.nodes[h]
	mine := hn.Peer(m.nodes[i].ID())
	if mine == nil || len(mine.Endpoints) == 0 {
		return
	}
	at := mine.Endpoints[0]
	parent := ch.Claim.Root
	if n := len(ch.Certs); n > 1 {
		parent = ch.Certs[n-2].Child
	}
	blob := []byte{tree.MsgPosition, ch.Claim.Tree, ch.Claim.TreeState()}
	blob = append(blob, parent[:]...)
	blob = ch.Certs[len(ch.Certs)-1].AppendTo(blob)
	blob = append(blob, byte(len(ch.Certs)))
	before := m.trees[h].Stats().Rejected
	m.nodes[i].Broadcast(tree.AppID, blob, nil)
	m.clk.AfterFunc(attackCheck, func() {
		fooled := false
		for _, nb := range m.trees[h].Neighbors(k, vp.TreeState) {
			if nb.Via == at && nb.Addr.Equal(vp.Addr) {
				fooled = true
			}
		}
		m.count(res, fooled, m.trees[h].Stats().Rejected > before)
	})
}

// lieDistance: the adversary passes its trees' claims on saying it is next
// to the root (hops 0), to draw its neighbours under it. A place under it
// is a certificate it signs, and depth is the chain's length: the lie can
// buy no honest neighbour an address shallower than its own depth + 1.
// Each honest neighbour that heard the lie is a try; fooled if one holds a
// place under the adversary shallower than that.
func (m *routeMesh) lieDistance(i int, res *AdversaryResult) {
	a := m.adv
	k := a.rng.IntN(m.cfg.Trees)
	ch, ok := m.trees[i].Chain(k)
	hs := m.honestNeighbours(i)
	if !ok || len(hs) == 0 {
		return
	}
	blob := append(ch.Claim.AppendTo([]byte{tree.MsgClaim}), 0)
	m.nodes[i].Broadcast(tree.AppID, blob, nil)
	key := m.nodes[i].Signer().Public()
	m.clk.AfterFunc(attackCheck, func() {
		mine, ok := m.trees[i].Current(k)
		if !ok {
			return
		}
		for _, j := range hs {
			fooled := false
			if c, ok := m.trees[j].Chain(k); ok && len(c.Certs) > 0 && c.Claim.TreeState() == mine.TreeState {
				// Its parent's key: the issuer of its last certificate.
				parent := c.Claim.Root[:]
				if n := len(c.Certs); n > 1 {
					parent = c.Certs[n-2].Child[:]
				}
				fooled = string(parent) == string(key) && len(c.Certs) < mine.Depth+1
			}
			res.Tried++
			if !fooled {
				res.Rejected++
			}
		}
	})
}
