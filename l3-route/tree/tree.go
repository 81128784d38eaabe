// Package tree is the spanning-tree application (PROTOCOL 6.1): it elects a
// root in each of K parallel trees, gives every node a signed address in
// each (a certificate chain back to the root, so any node can verify any
// address it routes on), and tells every neighbour where it sits. The
// routing layer reads positions from it.
//
// Addresses never change within an epoch (a root's term, named by its
// tree_state): a node that loses its parent keeps its address, and routing
// (greedy over every link, not only tree edges) keeps working with it.
// Because a neighbour's address, once heard, is true for the whole epoch,
// greedy forwarding that demands strict progress cannot loop. The tree is
// rebuilt with fresh addresses when the root starts a new term (every
// EpochPeriods claims), when a better root appears, or when the root falls
// silent for MissedClaims periods and a new one is elected; the previous
// epoch's addresses stay usable one epoch longer.
package tree

import (
	"crypto/ed25519"
	"math/rand/v2"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// Config tunes the trees.
type Config struct {
	// Trees is the number of parallel trees (default 6, at most 16); each
	// has its own root (the score is salted by the tree's number).
	Trees int
	// ClaimPeriod is how often a root re-claims (default 20 s).
	ClaimPeriod time.Duration
	// MissedClaims ends a root's term when that many periods pass without a
	// fresh claim (default 3).
	MissedClaims int
	// EpochPeriods: a root starts a new term (fresh addresses for all,
	// repairing what departures broke) every that many claims (default 45,
	// 15 minutes; negative: never). A root's first term, and one a repair
	// started, runs on to its tree's slot of the cycle, so that the trees
	// renew one at a time (stagger).
	EpochPeriods int
	// MaxSkew is how far a claim's time may be ahead of our clock (default 1 min).
	MaxSkew time.Duration
	// Settle is how long a node that enters an epoch listens to its
	// neighbours passing the root's claim on (and, at a cold start, to
	// rival claims) before it picks the one closest to the root as its
	// parent (default: 256 airtimes of a claim on the slowest link, at
	// least 1 s). Addresses never change within an epoch, so a hasty
	// choice would leave a deep, stringy tree.
	Settle time.Duration
	// Memo shares signature checks between nodes of one process (simulations).
	Memo *cert.Memo
}

func (c *Config) fill() {
	if c.Trees <= 0 {
		c.Trees = 6
	}
	c.Trees = min(c.Trees, MaxTrees)
	if c.ClaimPeriod <= 0 {
		c.ClaimPeriod = 20 * time.Second
	}
	if c.MissedClaims <= 0 {
		c.MissedClaims = 3
	}
	if c.EpochPeriods == 0 {
		c.EpochPeriods = DefaultEpochPeriods
	}
	if c.MaxSkew <= 0 {
		c.MaxSkew = time.Minute
	}
}

// DefaultEpochPeriods is how many claims a root's term lasts by default.
const DefaultEpochPeriods = 45

// MaxTrees is the most parallel trees: a tree_state names its tree by its
// value modulo 16.
const MaxTrees = 16

// TreeOf is the tree an epoch's tree_state belongs to.
func TreeOf(ts uint8) int { return int(ts % MaxTrees) }

// Position is where a node sits in one epoch of one tree.
type Position struct {
	Tree      uint8
	TreeState uint8
	Term      int64
	Addr      addr.Long
	Depth     int
	Root      bool
}

// Neighbor is a neighbour's verified position.
type Neighbor struct {
	Via  peer.Endpoint
	ID   identity.NodeID
	Addr addr.Long
}

// Stats counts the trees' work.
type Stats struct {
	MsgsSent, MsgsRecv   uint64
	BytesSent, BytesRecv uint64 // control bytes: the tree messages (Packages' blobs)
	Rejected             uint64 // claims or chains that failed verification
	Malformed            uint64
	Epochs               uint64 // epochs entered
	Terms                uint64 // terms started as root
	// Renewals is the share of Terms a root started while it was already
	// the tree's root (its periodic new term, or one asked for by Renew):
	// Terms − Renewals are the terms of nodes that stood for root.
	Renewals uint64
}

// Trees runs the K trees for one node. It reaches the node through the
// handle of the layer it runs in (the router's, or its own: Attach).
type Trees struct {
	b     *node.Bind
	clk   clock.Clock
	cfg   Config
	id    identity.Signer
	pk    ed25519.PublicKey
	rng   *rand.Rand
	v     *cert.Verifier
	trees []*tree
	stats Stats
	subs  []func(k int)
	// started: until Start, the trees hear nothing and say nothing (a
	// leaf's are never started: it must not stand for root or take a
	// place because a claim came by).
	started bool
	// closed: Close ran; the trees never start again (started stays false,
	// so they hear nothing) and clk is clock.Halted.
	closed  bool
	final   Stats // the stats at Close
	lost    []func(k int)
	placed  []func(k int, nb Neighbor)
	crowded []func(k int, ep peer.Endpoint)
	buf     []byte
	// orphans are chains heard from neighbours not yet known as peers.
	orphans map[peer.Endpoint][]cert.Chain
	// queryCredit is the node's airtime budget as of queryAt, when its
	// radios had sent for queryUsed (queryAllowed).
	queryCredit time.Duration
	queryAt     time.Time
	queryUsed   time.Duration
	// queryLast is when the node last sent a query (gatewayTurn).
	queryLast time.Time
	// msg is what HandleMessage decodes into (msgBusy: in use).
	msg     message
	msgBusy bool
}

// New builds the trees of the node b is the handle of, for a layer that
// owns that handle and passes the trees their traffic (HandleMessage for
// AppID, PeerChanged): the routing layer does. Call Start after the node
// starts.
func New(b *node.Bind, cfg Config) *Trees {
	t := &Trees{}
	t.init(b, cfg)
	return t
}

// Attach runs trees alone on n (no routing above them): the trees are the
// layer above the node. Call Start after the node starts.
func Attach(n *node.Node, cfg Config) (*Trees, error) {
	t := &Trees{}
	b, err := n.Attach(layer{t}, AppID)
	if err != nil {
		return nil, err
	}
	t.init(b, cfg)
	return t, nil
}

func (t *Trees) init(b *node.Bind, cfg Config) {
	cfg.fill()
	s := b.Signer()
	*t = Trees{
		b: b, clk: b.Clock(), cfg: cfg, id: s, pk: s.Public(), v: cert.NewVerifier(cfg.Memo),
		rng: rand.New(rand.NewPCG(b.Seed(), 0x74726565)),
	}
	for k := range cfg.Trees {
		tr := &tree{t: t, k: uint8(k), score: cert.Score(t.pk, uint8(k)), hops: 255}
		t.trees = append(t.trees, tr)
	}
}

// layer is Trees as the layer above a node, when nothing routes.
type layer struct{ t *Trees }

func (l layer) HandleMessage(m node.Message)      { l.t.HandleMessage(m) }
func (l layer) PeerChanged(p *peer.Peer, up bool) { l.t.PeerChanged(p, up) }
func (l layer) HandleRouted(node.RouteHeader, *packet.Package, peer.Endpoint, time.Time) {
	// Nothing routes here: routed Packages are dropped.
}

// Start begins the elections.
//
// At a cold start the trees form one after another, a claim period apart
// (tree k's elections run from k periods on): forming a tree is the
// busiest time a mesh has, and K of them at once would crowd the air.
func (t *Trees) Start() {
	if t.started || t.closed {
		return
	}
	t.started = true
	// The air budget counts from here (queryAllowed), full.
	t.queryAt, t.queryUsed = t.clk.Now(), t.b.TxAirtime()
	t.queryCredit = time.Duration(t.queryRate() * float64(t.cfg.ClaimPeriod))
	for _, tr := range t.trees {
		tr.startAt = t.clk.Now().Add(time.Duration(tr.k) * t.cfg.ClaimPeriod)
		tr.scheduleElection(nil)
		// The watch's first look at a random point of its half period:
		// nodes started together would otherwise look together for ever,
		// and when a flood misses a whole region, every node of it would
		// ask its parent for the claim at the same instant (and each
		// stale parent its own), their queries and answers colliding.
		// Apart, the first to ask mends the flood for the rest.
		tr.watchAlarm.InitFunc(t.clk, tr.watch)
		tr.watchAlarm.Arm(time.Duration(t.rng.Int64N(int64(t.cfg.ClaimPeriod/2) + 1)))
	}
}

// Close stops the trees for good, as when their node is switched off: every
// timer is stopped and none is armed again (a callback already in flight
// runs once at most, and what it would schedule never runs), messages and
// peer changes are ignored from then on, Start and Renew do nothing. So a
// closed node starts no term and sends no claim however long its clock
// runs, and its Stats stay as they were at Close. Close it with its node
// (node.Node.Close); calling Close again does nothing.
func (t *Trees) Close() {
	if t.closed {
		return
	}
	t.closed, t.started = true, false
	// A callback in flight may still try a message, which the closed node
	// refuses: the stats are the work done until Close.
	t.final = t.stats
	t.clk = clock.Halted(t.clk)
	for _, tr := range t.trees {
		tr.watchAlarm.Stop()
		for _, tm := range []*clock.Timer{&tr.electTmr, &tr.claimTmr, &tr.reqTmr, &tr.renewTmr, &tr.blindTmr, &tr.pendingTmr, &tr.answerTmr, &tr.wholeTmr} {
			clock.Stop(tm)
		}
	}
}

// OnParentLost registers f to hear that this node's parent in tree k went
// silent for a claim period and a half and then did not answer a query
// (nothing from it for half a claim period, or the hop failed). The
// routing layer above asks the root for an early term (Renew), since only
// a new epoch re-attaches a subtree.
func (t *Trees) OnParentLost(f func(k int)) { t.lost = append(t.lost, f) }

// OnNeighbor registers f to hear that a neighbour's place in the current
// epoch of tree k became known (or changed). The routing layer hands the
// name records it keeps on to a neighbour nearer their keys: a tree fills
// in over a while, and the end of a key's greedy path moves down as it
// does.
func (t *Trees) OnNeighbor(f func(k int, nb Neighbor)) { t.placed = append(t.placed, f) }

// OnCrowded registers f to hear that this node can get no place in tree
// k's current epoch: every neighbour that could be its parent has 135
// children already (a gateway heard by hundreds of nodes, some of which
// hear nothing else). ep is one of them; the routing layer asks it for a
// leased address.
func (t *Trees) OnCrowded(f func(k int, ep peer.Endpoint)) { t.crowded = append(t.crowded, f) }

// MinTermPeriods is how many claim periods a term lasts at least before a
// Renew may end it: orphans of one failure all ask over about a period (each
// notices its parent's silence in its own time), and one new term is what
// they need.
const MinTermPeriods = 1

// Renew starts a new term of tree k if this node is its root: now, if the
// current term is at least MinTermPeriods claim periods old, else when it
// is. It reports whether it did (or will).
func (t *Trees) Renew(k int) bool {
	if k < 0 || k >= len(t.trees) {
		return false
	}
	tr := t.trees[k]
	if !tr.amRoot || t.closed {
		return false
	}
	age := t.clk.Now().Sub(tr.termAt)
	if age >= MinTermPeriods*t.cfg.ClaimPeriod {
		tr.startTerm()
		return true
	}
	if tr.renewTmr == nil {
		termAt := tr.termAt
		tr.renewTmr = t.clk.AfterFunc(MinTermPeriods*t.cfg.ClaimPeriod-age, func() {
			tr.renewTmr = nil
			if tr.amRoot && tr.termAt.Equal(termAt) {
				tr.startTerm()
			}
		})
	}
	return true
}

// Silent reports whether the neighbour at ep has said nothing for two
// claim periods and a half: every live node passes every root's claim on
// once a period, so one that said nothing through two rounds of them (a
// round can be lost whole to collisions) is gone or out of reach, long
// before its peer entry times out (four beacon periods). Routing leaves it
// out (tree.go's own check of a parent asks it after one round and a half).
func (t *Trees) Silent(ep peer.Endpoint) bool { return t.quiet(ep, t.cfg.ClaimPeriod*5/2) }

// quiet reports whether the neighbour at ep has said nothing for d.
func (t *Trees) quiet(ep peer.Endpoint, d time.Duration) bool {
	p := t.b.PeerAt(ep)
	return p == nil || t.clk.Now().Sub(p.LastRx) > d
}

// unheard reports whether the neighbour at ep has said nothing for d and
// our radio has had no ACK from it for as long (peer.LastAcked): a
// neighbour whose radio acknowledges ours is alive and in reach, however
// many of its own frames collide here.
func (t *Trees) unheard(ep peer.Endpoint, d time.Duration) bool {
	p := t.b.PeerAt(ep)
	return p == nil || t.clk.Now().Sub(latest(p.LastRx, p.LastAcked)) > d
}

// heardSince reports whether the neighbour at ep sent us anything, or our
// radio had its ACK, after at.
func (t *Trees) heardSince(ep peer.Endpoint, at time.Time) bool {
	p := t.b.PeerAt(ep)
	return p != nil && latest(p.LastRx, p.LastAcked).After(at)
}

// latest is the later of a and b.
func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Count is the number of trees.
func (t *Trees) Count() int { return len(t.trees) }

// Config returns the configuration in force.
func (t *Trees) Config() Config { return t.cfg }

// Stats returns the counters.
func (t *Trees) Stats() Stats {
	if t.closed {
		return t.final
	}
	return t.stats
}

// Verifier returns the node's certificate verifier (for its statistics).
func (t *Trees) Verifier() *cert.Verifier { return t.v }

// Subscribe registers f to hear when this node's position in tree k
// changes (a new address, a new epoch).
func (t *Trees) Subscribe(f func(k int)) { t.subs = append(t.subs, f) }

// Current returns this node's position in the current epoch of tree k.
func (t *Trees) Current(k int) (Position, bool) {
	if k < 0 || k >= len(t.trees) || t.trees[k].cur == nil {
		return Position{}, false
	}
	return t.trees[k].cur.pos, true
}

// Previous returns this node's position in the previous epoch of tree k.
func (t *Trees) Previous(k int) (Position, bool) {
	if k < 0 || k >= len(t.trees) || t.trees[k].prev == nil {
		return Position{}, false
	}
	return t.trees[k].prev.pos, true
}

// ByState returns this node's position in the epoch named ts (current or
// previous, of whichever tree has it).
func (t *Trees) ByState(ts uint8) (Position, bool) {
	k := TreeOf(ts)
	if k >= len(t.trees) {
		return Position{}, false
	}
	tr := t.trees[k]
	if tr.cur != nil && tr.cur.pos.TreeState == ts {
		return tr.cur.pos, true
	}
	if tr.prev != nil && tr.prev.pos.TreeState == ts {
		return tr.prev.pos, true
	}
	return Position{}, false
}

// Neighbors returns the neighbours with a verified position in the epoch ts
// of tree k, in a fixed order (by node_id). The slice is shared and kept
// until the neighbours change: every routing decision reads it, so it is
// built once, not per Package. Do not modify it.
func (t *Trees) Neighbors(k int, ts uint8) []Neighbor {
	if k < 0 || k >= len(t.trees) {
		return nil
	}
	return t.trees[k].nbrs.get(ts)
}

// Children returns the neighbours this node gave an address in the epoch ts
// of tree k (by child index order).
func (t *Trees) Children(k int, ts uint8) []Neighbor {
	tr := t.trees[k]
	if tr.cur == nil || tr.cur.pos.TreeState != ts {
		return nil
	}
	var out []Neighbor
	for _, nb := range t.Neighbors(k, ts) {
		if p, ok := nb.Addr.Parent(); ok && p.Equal(tr.cur.pos.Addr) && nb.Addr.Depth() == tr.cur.pos.Depth+1 {
			out = append(out, nb)
		}
	}
	return out
}

// TooDeep reports that this node has no address in tree k's current epoch
// because its address would not fit 16 bytes under any parent that tried
// (PROTOCOL 6.2: 32 nibbles); it is reachable through the other trees.
func (t *Trees) TooDeep(k int) bool { return t.trees[k].cur == nil && t.trees[k].deep }

// Root returns the root of tree k as far as we know, and whether it is
// presumed alive.
func (t *Trees) Root(k int) (ed25519.PublicKey, bool) {
	tr := t.trees[k]
	if !tr.haveRoot {
		return nil, false
	}
	return tr.root, !tr.rootDead
}

// LastClaim returns the time the root of tree k stamped on the newest
// claim we have (zero if none): its term ends MissedClaims claim periods
// after that if no newer one comes.
func (t *Trees) LastClaim(k int) time.Time {
	tr := t.trees[k]
	if !tr.haveRoot {
		return time.Time{}
	}
	return time.Unix(0, tr.latest.Time)
}

// Sound reports whether this node's place in the current epoch of tree k
// looks whole from here: its root is presumed alive, its parent has not
// been lost, and a fresh claim came within a claim period and a half.
// What is sent back to this node by its address in such a tree (receipts,
// errors) is likely to find it; in a tree whose root or our way up died it
// may well not (greedy routing by tree distance crosses the gap).
func (t *Trees) Sound(k int) bool {
	if k < 0 || k >= len(t.trees) {
		return false
	}
	tr := t.trees[k]
	switch {
	case tr.cur == nil || !tr.haveRoot || tr.rootDead || tr.parentLost:
		return false
	case tr.amRoot || tr.cur.pos.Root:
		return true
	}
	return t.clk.Now().Sub(tr.lastFresh) <= t.cfg.ClaimPeriod*3/2
}

// Chain returns this node's certificate chain in the current epoch of tree k.
func (t *Trees) Chain(k int) (cert.Chain, bool) {
	tr := t.trees[k]
	if tr.cur == nil {
		return cert.Chain{}, false
	}
	return tr.cur.chain, true
}
