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
	"bytes"
	"crypto/ed25519"
	"errors"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
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
	// 15 minutes; negative: never).
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
	Addr      addr.Address
	Depth     int
	Root      bool
}

// Neighbor is a neighbour's verified position.
type Neighbor struct {
	Via  peer.Endpoint
	ID   identity.NodeID
	Addr addr.Address
}

// Stats counts the trees' work.
type Stats struct {
	MsgsSent, MsgsRecv   uint64
	BytesSent, BytesRecv uint64 // control bytes: the tree messages (Packages' blobs)
	Rejected             uint64 // claims or chains that failed verification
	Malformed            uint64
	Epochs               uint64 // epochs entered
	Terms                uint64 // terms started as root
}

// Trees runs the K trees for one node.
type Trees struct {
	n     *node.Node
	clk   clock.Clock
	cfg   Config
	id    identity.Identity
	pk    ed25519.PublicKey
	v     *cert.Verifier
	trees []*tree
	stats Stats
	subs  []func(k int)
	// started: until Start, the trees hear nothing and say nothing (a
	// leaf's are never started: it must not stand for root or take a
	// place because a claim came by).
	started bool
	lost    []func(k int)
	buf     []byte
	// orphans are chains heard from neighbours not yet known as peers.
	orphans map[peer.Endpoint][]cert.Chain
}

// New attaches the tree application to n. Call Start after the node starts.
func New(n *node.Node, cfg Config) *Trees {
	cfg.fill()
	t := &Trees{n: n, clk: n.Clock(), cfg: cfg, id: n.Identity(), pk: n.Identity().Public(), v: cert.NewVerifier(cfg.Memo)}
	for k := range cfg.Trees {
		tr := &tree{t: t, k: uint8(k), score: cert.Score(t.pk, uint8(k)), nbrs: map[peer.Endpoint]map[uint8]Neighbor{}, hops: 255}
		t.trees = append(t.trees, tr)
	}
	n.Register(AppID, t.receive)
	n.WatchPeers(t.peerEvent)
	return t
}

// Start begins the elections.
//
// At a cold start the trees form one after another, a claim period apart
// (tree k's elections run from k periods on): forming a tree is the
// busiest time a mesh has, and K of them at once would crowd the air.
func (t *Trees) Start() {
	if t.started {
		return
	}
	t.started = true
	for _, tr := range t.trees {
		tr.startAt = t.clk.Now().Add(time.Duration(tr.k) * t.cfg.ClaimPeriod)
		tr.scheduleElection(nil)
		tr.watch()
	}
}

// OnParentLost registers f to hear that this node's parent in tree k went
// silent (its peer entry timed out). The routing layer above asks the root
// for an early term (Renew), since only a new epoch re-attaches a subtree.
func (t *Trees) OnParentLost(f func(k int)) { t.lost = append(t.lost, f) }

// MinTermPeriods is how many claim periods a term lasts at least before a
// Renew may end it: orphans of one failure all ask, and one new term is
// what they need.
const MinTermPeriods = 3

// Renew starts a new term of tree k now if this node is its root and the
// current term is at least MinTermPeriods claim periods old; it reports
// whether it did.
func (t *Trees) Renew(k int) bool {
	if k < 0 || k >= len(t.trees) {
		return false
	}
	tr := t.trees[k]
	if !tr.amRoot || t.clk.Now().Sub(tr.termAt) < MinTermPeriods*t.cfg.ClaimPeriod {
		return false
	}
	tr.startTerm()
	return true
}

// Count is the number of trees.
func (t *Trees) Count() int { return len(t.trees) }

// Config returns the configuration in force.
func (t *Trees) Config() Config { return t.cfg }

// Stats returns the counters.
func (t *Trees) Stats() Stats { return t.stats }

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
	tr := t.trees[k]
	if c, ok := tr.nbrList[ts]; ok {
		return c
	}
	out := make([]Neighbor, 0, len(tr.nbrs))
	for _, byTS := range tr.nbrs {
		if nb, ok := byTS[ts]; ok {
			out = append(out, nb)
		}
	}
	slices.SortFunc(out, func(a, b Neighbor) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	if tr.nbrList == nil {
		tr.nbrList = map[uint8][]Neighbor{}
	}
	tr.nbrList[ts] = out
	return out
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

// Chain returns this node's certificate chain in the current epoch of tree k.
func (t *Trees) Chain(k int) (cert.Chain, bool) {
	tr := t.trees[k]
	if tr.cur == nil {
		return cert.Chain{}, false
	}
	return tr.cur.chain, true
}

// slot is this node's position and the chain proving it.
type slot struct {
	pos    Position
	term   cert.Term // the epoch in full (tree_state alone may repeat across terms)
	chain  cert.Chain
	parent peer.Endpoint
	// children assigned in this epoch: child key → index.
	children map[identity.NodeID]uint8
	answered map[identity.NodeID]time.Time // when each child last got its chain
	next     uint8
}

// tree is one of the K trees.
type tree struct {
	t     *Trees
	k     uint8
	score [32]byte

	haveRoot  bool
	root      ed25519.PublicKey
	rootScore [32]byte
	term      int64
	ts        uint8
	latest    cert.Claim // the newest claim of the current root, for flooding
	lastFresh time.Time
	rootDead  bool
	deadRoot  ed25519.PublicKey
	deadTime  int64 // the time of the last claim we had from deadRoot
	amRoot    bool

	cur, prev  *slot
	nbrs       map[peer.Endpoint]map[uint8]Neighbor // verified positions by tree_state (current and previous epochs)
	nbrList    map[uint8][]Neighbor                 // Neighbors, sorted, by tree_state (nil: rebuild)
	ahead      map[peer.Endpoint]cert.Chain         // positions in an epoch we have not entered yet
	epochAt    time.Time                            // when we entered the current epoch
	queried    map[peer.Endpoint]time.Time          // neighbours asked for their position, and when
	pendingPos map[peer.Endpoint]message            // positions waiting for their parent's place
	pendingTmr clock.Timer
	retrying   bool
	answered   map[peer.Endpoint]time.Time // last time we answered a worse claim there

	electTmr, claimTmr, watchTmr, reqTmr clock.Timer
	blindTmr                             clock.Timer
	pending                              *peer.Endpoint
	pendingAt, heldAt                    time.Time                         // when we asked pending, and when it last said it holds our request
	deep                                 bool                              // a parent refused us: our address would not fit 16 bytes
	hops                                 uint8                             // hop count of the claim being handled (255: none)
	upHops                               uint8                             // our distance to the root as the claims told (0: unknown)
	heard                                map[peer.Endpoint]uint8           // neighbours' distances to the root, from the claims they passed on
	listenEnd                            time.Time                         // the end of the listening at the start of the epoch
	waiting                              map[peer.Endpoint]identity.NodeID // requests held until we have a place ourselves
	asked                                map[peer.Endpoint]askState        // queries out in this epoch
	tried                                map[peer.Endpoint]time.Time       // neighbours that failed us, and when
	claims                               int                               // claims issued in this term
	startAt                              time.Time                         // cold-start elections begin no earlier
	termAt                               time.Time                         // when we started our current term as root
	left                                 []cert.Term                       // epochs left for good, newest last (see leave)
}

// electionSpan: delays spread over the top 24 bits of the score gap's log.
const electionBits = 24

// scheduleElection arms this node's candidacy: it claims root after a delay
// proportional to log2 of the gap between its score and ref (the dead root's
// score; nil at a cold start), so that the best candidate claims first and
// its claim silences the others (PROTOCOL 6.1).
func (tr *tree) scheduleElection(ref *[32]byte) {
	stopTimer(&tr.electTmr)
	var r [32]byte
	if ref != nil {
		r = *ref
	}
	a, b := new(big.Int).SetBytes(tr.score[:]), new(big.Int).SetBytes(r[:])
	gap := a.Sub(a, b)
	gap.Abs(gap)
	lg := log2(gap)
	frac := (lg - float64(256-electionBits)) / electionBits
	frac = min(max(frac, 0), 1)
	p := tr.t.cfg.ClaimPeriod
	jitter := time.Duration(tr.t.n.Rand().Int64N(int64(p/100) + 1))
	wait := time.Duration(frac*float64(p)) + jitter
	if now := tr.t.clk.Now(); ref == nil && tr.startAt.After(now) {
		wait += tr.startAt.Sub(now)
	}
	tr.electTmr = tr.t.clk.AfterFunc(wait, tr.elect)
}

// log2 of a big integer, with the fraction from its next bits.
func log2(x *big.Int) float64 {
	n := x.BitLen()
	if n == 0 {
		return 0
	}
	if n <= 53 {
		return math.Log2(float64(x.Int64()))
	}
	top := new(big.Int).Rsh(x, uint(n-53))
	return math.Log2(float64(top.Int64())) + float64(n-53)
}

// elect: claim root unless a live root better than us is known.
func (tr *tree) elect() {
	tr.electTmr = nil
	if tr.haveRoot && !tr.rootDead && (tr.amRoot || cert.Less(tr.rootScore, tr.score)) {
		return
	}
	tr.startTerm()
}

// startTerm makes this node the root with a new term (a new epoch).
func (tr *tree) startTerm() {
	t := tr.t
	now := t.clk.Now().UnixNano()
	term := max(now, tr.term+1)
	// Keep tree_states unambiguous [ours]: the root picks its term start
	// (nanoseconds: a shift of a few is nothing) so that tree_state ≡ tree
	// (mod 16) — no two trees ever share one — and differs from the tree's
	// current and previous epochs (a new root knows them: it was in them).
	for range 4096 {
		ts := cert.TreeState(t.pk, tr.k, term)
		if ts%MaxTrees == tr.k && !(tr.haveRoot && ts == tr.ts) && (tr.prev == nil || ts != tr.prev.pos.TreeState) {
			break
		}
		term++
	}
	c := cert.NewClaim(t.id.Private, tr.k, term, term)
	tr.amRoot = true
	tr.termAt = t.clk.Now()
	tr.claims = 0
	t.stats.Terms++
	tr.adopt(c)
	tr.cur = &slot{pos: Position{Tree: tr.k, TreeState: tr.ts, Term: term, Root: true}, term: c.Term(), chain: cert.Chain{Claim: c}, children: map[identity.NodeID]uint8{}, next: 1}
	tr.changed()
	tr.flood(&c)
	tr.notifyAll()
	tr.serveWaiting()
	stopTimer(&tr.claimTmr)
	tr.claimTmr = t.clk.AfterFunc(t.cfg.ClaimPeriod, tr.reclaim)
}

// reclaim: the root's periodic claim; every EpochPeriods, a new term.
func (tr *tree) reclaim() {
	tr.claimTmr = nil
	if !tr.amRoot {
		return
	}
	t := tr.t
	tr.claims++
	if t.cfg.EpochPeriods > 0 && tr.claims >= t.cfg.EpochPeriods {
		tr.startTerm()
		return
	}
	c := cert.NewClaim(t.id.Private, tr.k, tr.term, t.clk.Now().UnixNano())
	tr.latest = c
	tr.lastFresh = t.clk.Now()
	tr.flood(&c)
	tr.claimTmr = t.clk.AfterFunc(t.cfg.ClaimPeriod, tr.reclaim)
}

// adopt makes c's root and term current: a new epoch (the old one is kept
// as the previous).
func (tr *tree) adopt(c cert.Claim) {
	t := tr.t
	newTerm := !tr.haveRoot || !bytes.Equal(tr.root, c.Root[:]) || tr.term != c.TermStart
	tr.haveRoot = true
	tr.root = ed25519.PublicKey(bytes.Clone(c.Root[:]))
	tr.rootScore = c.Score()
	tr.term = c.TermStart
	tr.ts = c.TreeState()
	tr.latest = c
	tr.lastFresh = t.clk.Now()
	tr.rootDead = false
	if !newTerm {
		return
	}
	t.stats.Epochs++
	if !bytes.Equal(c.Root[:], t.pk) {
		tr.amRoot = false
		stopTimer(&tr.claimTmr)
	}
	// Back to the epoch we were in before (a rival claim took us away for
	// a while): our place there is still ours. Taking another would give
	// us two addresses in one epoch, and a neighbour that knew the first
	// could route in circles.
	restore := tr.prev != nil && tr.prev.term == c.Term()
	leaving := tr.cur
	// The previous epoch is the last one in which we had a place others
	// may still route by: an epoch we passed through without one (a
	// rival's claim at an election, adopted before a better one came), or
	// a term of our own that nobody joined, must not push it out.
	if leaving != nil && leaving.pos.Root && len(leaving.children) == 0 && tr.prev != nil {
		t.v.Forget(tr.k, leaving.pos.TreeState)
		tr.leave(leaving.term)
		leaving = nil
	}
	if restore {
		tr.cur, tr.prev = tr.prev, nil
	} else {
		if old := tr.prev; old != nil && (leaving != nil || old.pos.TreeState == tr.ts) {
			t.v.Forget(tr.k, old.pos.TreeState) // the verifier keeps two epochs
			tr.leave(old.term)
			tr.prev = nil
		}
		tr.cur = nil
	}
	if leaving != nil && leaving.pos.TreeState != tr.ts {
		tr.prev = leaving
	} else if leaving != nil {
		// The new term's tree_state byte is the old one's (another root
		// chose it without knowing): the old epoch cannot stay beside it.
		t.v.Forget(tr.k, leaving.pos.TreeState)
		tr.leave(leaving.term)
	}
	// Neighbours' positions of epochs other than these two go: those under
	// the new tree_state byte belonged to an older term.
	keep := func(ts uint8) bool {
		return (tr.prev != nil && ts == tr.prev.pos.TreeState) || (tr.cur != nil && ts == tr.cur.pos.TreeState)
	}
	for ep, byTS := range tr.nbrs {
		for ts := range byTS {
			if !keep(ts) {
				delete(byTS, ts)
				tr.nbrList = nil
			}
		}
		if len(byTS) == 0 {
			delete(tr.nbrs, ep)
		}
	}
	tr.tried = map[peer.Endpoint]time.Time{}
	tr.upHops = 0
	tr.heard = nil
	tr.waiting = nil
	if restore {
		tr.epochAt = t.clk.Now()
		tr.pending = nil
		stopTimer(&tr.reqTmr)
		tr.changed()
		tr.notifyAll()
		return
	}
	if !tr.amRoot {
		// Listen to the neighbours passing this claim on (and to rival
		// claims, at a cold start), then pick the closest to the root.
		// Jittered: neighbours that heard the claim from one broadcast
		// would all ask at once, and the hidden among them collide.
		listen := t.settle() + time.Duration(t.n.Rand().Int64N(int64(t.settle()/2)))
		tr.listenEnd = t.clk.Now().Add(listen)
		ts, term := tr.ts, tr.term
		t.clk.AfterFunc(listen, func() {
			if tr.ts == ts && tr.term == term {
				tr.acquire()
			}
		})
	}
	tr.queried = nil
	tr.asked = nil
	tr.pendingPos = nil
	tr.epochAt = t.clk.Now()
	tr.deep = false
	tr.pending = nil
	stopTimer(&tr.reqTmr)
	// Positions neighbours announced in this epoch before we entered it.
	ahead := tr.ahead
	tr.ahead = nil
	for _, ep := range sortedEndpoints(ahead) {
		if ch := ahead[ep]; ch.Claim.Term() == tr.curTerm() {
			tr.onNotify(ep, &ch)
		}
	}
	tr.changed()
	tr.acquire()
}

// maxLeft bounds the epochs remembered as left for good.
const maxLeft = 8

// leave notes an epoch we left without keeping our place in it: we never
// enter it again (a place taken anew there would be a second address in one
// epoch; see adopt). Its root's next term is welcome.
func (tr *tree) leave(term cert.Term) {
	if slices.Contains(tr.left, term) {
		return
	}
	if len(tr.left) >= maxLeft {
		tr.left = tr.left[1:]
	}
	tr.left = append(tr.left, term)
}

// watch checks that the root still claims; a silent root's term ends.
func (tr *tree) watch() {
	t := tr.t
	tr.watchTmr = t.clk.AfterFunc(t.cfg.ClaimPeriod/2, tr.watch)
	if tr.cur == nil && tr.pending == nil {
		tr.acquire() // candidates that failed us may do better now
	}
	tr.queryMissing()
	if !tr.haveRoot || tr.amRoot || tr.rootDead {
		return
	}
	tr.buryOverdue()
}

// buryOverdue ends the root's term if it has been silent MissedClaims
// periods. The watch looks every half period; a claim that comes in
// between must be judged against a root that is already gone (answering
// it with the dead root's last claim would bring that root back).
//
// The term is not left for good: our place in it stays (as the previous
// epoch once we follow another root), and if the root was only out of
// reach (a partition) its newer claims bring us back to it. Only claims
// no newer than the last we had are late echoes of a dead root.
func (tr *tree) buryOverdue() {
	t := tr.t
	if !tr.haveRoot || tr.amRoot || tr.rootDead || t.clk.Now().Sub(tr.lastFresh) <= time.Duration(t.cfg.MissedClaims)*t.cfg.ClaimPeriod {
		return
	}
	tr.rootDead = true
	tr.deadRoot = tr.root
	tr.deadTime = tr.latest.Time
	score := tr.rootScore
	tr.scheduleElection(&score)
}

// onClaimHops handles a claim from the flood, noting which neighbour it
// came through first, and how far: the flood spreads breadth first, so
// that neighbour is our next step toward the root, and the parent we want
// (a breadth-first tree is shallow: shorter addresses, shorter routes).
func (tr *tree) onClaimHops(c cert.Claim, from *peer.Endpoint, hops uint8) {
	tr.hops = hops
	tr.onClaim(c, from)
	tr.hops = 255
	if from == nil || hops == 255 {
		return
	}
	if !bytes.Equal(tr.root, c.Root[:]) || c.TermStart != tr.term {
		return // not (or no longer) our epoch
	}
	// The shortest way heard in this epoch (adopt resets it).
	if tr.heard == nil {
		tr.heard = map[peer.Endpoint]uint8{}
	}
	if h, ok := tr.heard[*from]; !ok || hops < h {
		if !ok && len(tr.heard) >= maxOrphans {
			return
		}
		tr.heard[*from] = hops
	}
	if tr.upHops == 0 || hops+1 < tr.upHops {
		tr.upHops = hops + 1
	}
	if tr.cur == nil && tr.pending == nil {
		tr.acquire()
	}
}

// onClaim handles a verified root claim heard from a neighbour (or read
// from a chain).
func (tr *tree) onClaim(c cert.Claim, from *peer.Endpoint) {
	t := tr.t
	now := t.clk.Now()
	if time.Duration(c.Time-now.UnixNano()) > t.cfg.MaxSkew {
		t.stats.Rejected++ // from the future: a forgery or a broken clock
		return
	}
	stale := time.Duration(t.cfg.MissedClaims)*t.cfg.ClaimPeriod + t.cfg.MaxSkew
	if now.Sub(time.Unix(0, c.Time)) > stale {
		return // too old to say the root is alive
	}
	if slices.Contains(tr.left, c.Term()) {
		return // an epoch we left for good (one whose place we gave up)
	}
	tr.buryOverdue()
	same := tr.haveRoot && bytes.Equal(tr.root, c.Root[:])
	switch {
	case same && c.TermStart == tr.term:
		if c.Time > tr.latest.Time {
			tr.latest = c
			tr.lastFresh = now
			tr.rootDead = false
			tr.flood(&c)
		}
	case same && c.TermStart > tr.term:
		tr.adopt(c)
		stopTimer(&tr.electTmr)
		tr.flood(&c)
	case same:
		// An old term of our root: ignore.
	case bytes.Equal(tr.deadRoot, c.Root[:]) && c.Time <= tr.deadTime:
		// A late claim of the root we buried (a neighbour that has not
		// noticed yet answers our new root's claim with it): it is gone,
		// whichever root we have followed since.
	case !tr.haveRoot || tr.rootDead || cert.Less(c.Score(), tr.rootScore):
		tr.adopt(c)
		if cert.Less(tr.score, c.Score()) && !tr.amRoot {
			// We are a better candidate than this root: stand, and soon —
			// within the neighbours' listening, before the tree forms
			// under a root that will not last. (The election delays
			// resolve close scores less finely than their jitter, so the
			// better of two close candidates often hears the other first.)
			if now.Before(tr.startAt) {
				tr.scheduleElection(nil)
			} else {
				stopTimer(&tr.electTmr)
				tr.electTmr = t.clk.AfterFunc(time.Duration(t.n.Rand().Int64N(int64(t.settle()/2)+1)), tr.elect)
			}
		} else {
			stopTimer(&tr.electTmr)
		}
		tr.flood(&c)
	default:
		// A worse root than ours: tell the claimant about ours (PROTOCOL 6.1).
		if from != nil {
			if tr.answered == nil {
				tr.answered = map[peer.Endpoint]time.Time{}
			}
			if last, ok := tr.answered[*from]; !ok || now.Sub(last) > t.cfg.ClaimPeriod {
				tr.answered[*from] = now
				t.sendTo(*from, appendClaim(t.buf[:0], &tr.latest, tr.distance()))
			}
		}
	}
}

// distance is our hop count to the root as far as we know (255: unknown).
func (tr *tree) distance() uint8 {
	switch {
	case tr.amRoot:
		return 0
	case tr.upHops > 0:
		return tr.upHops
	case tr.cur != nil:
		return uint8(min(tr.cur.pos.Depth, 254))
	}
	return 255
}

// flood broadcasts a claim on every link (each node passes each claim on
// once), after a random delay: every neighbour that heard the same claim
// wants to pass it on at the same instant.
func (tr *tree) flood(c *cert.Claim) {
	hops := uint8(0)
	if !tr.amRoot {
		hops = 255
		if tr.hops != 255 {
			hops = min(tr.hops, 253) + 1
		}
		if tr.upHops > 0 && tr.upHops < hops {
			hops = tr.upHops
		}
	}
	tr.t.broadcastJittered(appendClaim(tr.t.buf[:0], c, hops))
}

// acquire asks the neighbour closest to the root for an address under it.
// Which neighbour that is, the claim's flood told: each neighbour passed
// the claim on with its distance to the root, so the one with the least is
// our step on a shortest path. It may not have an address yet (it is
// asking its own parent); it answers when it has. Parents chosen this way
// make a breadth-first tree: the shortest addresses and the shortest tree
// routes. A neighbour that cannot serve us is tried again only a claim
// period later; meanwhile the next best is asked.
func (tr *tree) acquire() {
	t := tr.t
	if !tr.haveRoot || tr.cur != nil || tr.pending != nil || tr.amRoot {
		return
	}
	now := t.clk.Now()
	if now.Before(tr.listenEnd) {
		return // the listening's end calls again
	}
	if tr.upHops == 0 && now.Sub(tr.epochAt) < t.cfg.ClaimPeriod+t.settle() {
		// We came into this epoch without a hop count (by a chain, or a
		// claim passed on by a node that had none): the root's next claim
		// brings one; a parent picked blind could be anywhere.
		if tr.blindTmr == nil {
			tr.blindTmr = t.clk.AfterFunc(tr.epochAt.Add(t.cfg.ClaimPeriod+t.settle()).Sub(now), func() {
				tr.blindTmr = nil
				tr.acquire()
			})
		}
		return
	}
	// How deep a parent we accept: one on a shortest way to the root (as
	// the claims told) at first, and a level deeper for every claim period
	// the epoch has run without our getting a place: a node whose shortest
	// way is broken still finds one, but not a hasty one (a deep parent
	// makes a deep subtree, and every route through it longer).
	slack := int(now.Sub(tr.epochAt) / t.cfg.ClaimPeriod)
	limit := math.MaxInt
	if tr.upHops > 0 {
		limit = int(tr.upHops) - 1 + slack
	}
	var best *candidate
	consider := func(c candidate) {
		if at, ok := tr.tried[c.via]; (ok && now.Sub(at) < t.cfg.ClaimPeriod/2) || !t.n.SpeaksOurs(c.via) || c.dist > limit {
			return
		}
		if best == nil || c.better(best) {
			best = &c
		}
	}
	for _, nb := range t.Neighbors(int(tr.k), tr.ts) {
		consider(candidate{via: nb.Via, dist: nb.Addr.Depth(), placed: true, id: nb.ID})
	}
	for _, ep := range sortedEndpoints(tr.heard) {
		// Only one nearer the root than we are: waiting on each other
		// would deadlock, and the distances along a chain of waits fall.
		if _, placed := tr.nbrs[ep][tr.ts]; !placed && tr.heard[ep] < tr.upHops {
			var id identity.NodeID
			if p := t.n.PeerAt(ep); p != nil {
				id = p.ID
			}
			consider(candidate{via: ep, dist: int(tr.heard[ep]), id: id})
		}
	}
	if best == nil {
		// Nothing acceptable yet: look again when the limit grows (news of
		// a place or a claim calls us sooner).
		if tr.blindTmr == nil {
			next := tr.epochAt.Add(time.Duration(slack+1) * t.cfg.ClaimPeriod)
			tr.blindTmr = t.clk.AfterFunc(next.Sub(now), func() {
				tr.blindTmr = nil
				tr.acquire()
			})
		}
		return
	}
	via := best.via
	tr.pending = &via
	tr.pendingAt, tr.heldAt = now, now
	tr.sendRequest(via)
}

// sendRequest asks via for an address, and watches for the answer. A
// neighbour still getting its own place holds the request and says so
// (StatusWait) each time we ask again; we wait for it as long as it does,
// up to a claim period (it may be waiting on us, through others), and
// move on at once if the hop fails or it falls silent.
func (tr *tree) sendRequest(via peer.Endpoint) {
	t := tr.t
	ts, term := tr.ts, tr.term
	current := func() bool { return tr.pending != nil && *tr.pending == via && tr.ts == ts && tr.term == term }
	giveUp := func(why string) {
		tr.tried[via] = t.clk.Now()
		tr.pending = nil
		stopTimer(&tr.reqTmr)
		tr.acquire()
	}
	t.sendReliable(via, appendRequest(t.buf[:0], tr.k, tr.ts, t.pk), func() {
		// (Unless it has told us it holds the request: then an ack was
		// lost, not the neighbour.)
		if current() && !tr.heldAt.After(tr.pendingAt) {
			giveUp("the hop failed")
		}
	})
	stopTimer(&tr.reqTmr)
	// Until it says it holds the request, we ask again soon; once it has,
	// rarely (it answers when it can; we only check it is still there).
	again := max(t.cfg.ClaimPeriod/8, t.roundTrip(via))
	if tr.heldAt.After(tr.pendingAt) {
		again = max(t.cfg.ClaimPeriod/3, t.roundTrip(via))
	}
	again += time.Duration(t.n.Rand().Int64N(int64(again / 2)))
	tr.reqTmr = t.clk.AfterFunc(again, func() {
		tr.reqTmr = nil
		if !current() {
			return
		}
		now := t.clk.Now()
		switch {
		case now.Sub(tr.heldAt) > t.cfg.ClaimPeriod:
			giveUp("silent")
		case now.Sub(tr.pendingAt) > t.cfg.ClaimPeriod:
			giveUp("still waiting")
		default:
			tr.sendRequest(via)
		}
	})
}

// candidate is a possible parent: a neighbour with a verified place, or
// one that passed the claim on and says how far it is from the root.
type candidate struct {
	via    peer.Endpoint
	dist   int
	placed bool
	id     identity.NodeID
}

// better ranks parent candidates: nearer the root, then one with a place
// already (no wait), then by node_id (a fixed order).
func (c *candidate) better(o *candidate) bool {
	if c.dist != o.dist {
		return c.dist < o.dist
	}
	if c.placed != o.placed {
		return c.placed
	}
	return bytes.Compare(c.id[:], o.id[:]) < 0
}

// onRequest: a neighbour asks us for an address for its key. We need not
// know it as a peer: the certificate is for the key it gives, and worthless
// to anyone without that key's private half.
func (tr *tree) onRequest(from peer.Endpoint, ts uint8, child identity.NodeID) {
	t := tr.t
	if p := t.n.PeerAt(from); p != nil && p.ID != child {
		t.stats.Rejected++ // a known neighbour asking for someone else's key
		t.sendTo(from, appendResponse(t.buf[:0], StatusRefused, nil))
		return
	}
	s := tr.cur
	if s == nil && tr.deep && ts == tr.ts {
		t.sendTo(from, appendResponse(t.buf[:0], StatusTooDeep, nil))
		return
	}
	if s == nil && tr.haveRoot && !tr.rootDead && ts == tr.ts {
		// We are getting a place in this epoch ourselves: answer then.
		if tr.waiting == nil {
			tr.waiting = map[peer.Endpoint]identity.NodeID{}
		}
		if _, ok := tr.waiting[from]; ok || len(tr.waiting) < addr.MaxCoord {
			tr.waiting[from] = child
			t.sendTo(from, appendResponse(t.buf[:0], StatusWait, nil))
			return
		}
	}
	if s == nil || s.pos.TreeState != ts {
		t.sendTo(from, appendResponse(t.buf[:0], StatusNoPosition, nil))
		return
	}
	idx, ok := s.children[child]
	if at, answered := s.answered[child]; ok && answered && t.clk.Now().Sub(at) < t.roundTrip(from) {
		return // our answer is on its way (a slow link): a second would only crowd it
	}
	if !ok {
		if s.next == 0 || s.next > addr.MaxCoord {
			t.sendTo(from, appendResponse(t.buf[:0], StatusFull, nil))
			return
		}
		idx = s.next
	}
	ch, err := s.chain.Extend(t.id.Private, ed25519.PublicKey(child[:]), idx)
	if err != nil {
		t.sendTo(from, appendResponse(t.buf[:0], StatusTooDeep, nil))
		return
	}
	if !ok {
		s.children[child] = idx
		s.next++
	}
	if s.answered == nil {
		s.answered = map[identity.NodeID]time.Time{}
	}
	s.answered[child] = t.clk.Now()
	t.sendTo(from, appendResponse(t.buf[:0], StatusOK, &ch))
}

// onResponse: the neighbour we asked answers.
func (tr *tree) onResponse(from peer.Endpoint, m *message) {
	t := tr.t
	if tr.pending == nil || *tr.pending != from {
		return
	}
	if m.status == StatusWait {
		tr.heldAt = t.clk.Now()
		return
	}
	if m.status != StatusOK {
		if m.status == StatusTooDeep && !tr.deep {
			// Those waiting on us would be deeper still: tell them now
			// (they try elsewhere) rather than when they give up.
			tr.deep = true
			w := tr.waiting
			tr.waiting = nil
			for _, ep := range sortedEndpoints(w) {
				t.sendTo(ep, appendResponse(t.buf[:0], StatusTooDeep, nil))
			}
		}
		tr.tried[from] = t.clk.Now()
		tr.pending = nil
		stopTimer(&tr.reqTmr)
		tr.acquire()
		return
	}
	ch := m.chain
	if !bytes.Equal(ch.Holder(), t.pk) || ch.Claim.Term() != tr.curTerm() {
		t.stats.Rejected++
		return
	}
	a, err := t.v.Verify(&ch)
	if err != nil {
		t.stats.Rejected++
		tr.tried[from] = t.clk.Now()
		tr.pending = nil
		stopTimer(&tr.reqTmr)
		tr.acquire()
		return
	}
	tr.pending = nil
	stopTimer(&tr.reqTmr)
	tr.cur = &slot{
		pos:    Position{Tree: tr.k, TreeState: tr.ts, Term: tr.term, Addr: a, Depth: ch.Depth()},
		term:   ch.Claim.Term(),
		chain:  cloneChain(ch),
		parent: from, children: map[identity.NodeID]uint8{}, next: 1,
	}
	// Our chain proves our parent's place too (its broadcast may have been
	// lost): routing needs at least that neighbour.
	if pa, ok := a.Parent(); ok {
		var pid identity.NodeID
		if n := len(ch.Certs); n > 1 {
			pid = identity.NodeID(ch.Certs[n-2].Child)
		} else {
			pid = identity.NodeID(ch.Claim.Root)
		}
		if p := t.n.PeerAt(from); p != nil && p.ID == pid {
			tr.learn(from, pid, tr.ts, pa)
		}
	}
	tr.changed()
	tr.notifyAll()
	tr.serveWaiting()
}

// serveWaiting answers the requests held until we had a place.
func (tr *tree) serveWaiting() {
	w := tr.waiting
	tr.waiting = nil
	for _, ep := range sortedEndpoints(w) {
		tr.onRequest(ep, tr.ts, w[ep])
	}
}

// onNotify: a neighbour tells us its position.
func (tr *tree) onNotify(from peer.Endpoint, ch *cert.Chain) {
	t := tr.t
	p := t.n.PeerAt(from)
	if p == nil {
		// Not a peer yet (its beacon has not reached us): keep its chain
		// until it is, so that we need not ask again.
		t.keepOrphan(from, ch)
		return
	}
	if !bytes.Equal(ch.Holder(), p.ID[:]) {
		t.stats.Rejected++ // someone else's chain: a neighbour lying about its place
		return
	}
	term := ch.Claim.Term()
	if _, ok := tr.termFor(term.TreeState); !ok || !tr.knownTerm(term) {
		// A position in an epoch we have not entered: maybe its claim is
		// still on its way. Keep it for then (one per neighbour), and if its
		// root is better than ours (the term-start claim is signed), go.
		if err := t.v.VerifyClaim(&ch.Claim); err != nil {
			t.stats.Rejected++
			return
		}
		if tr.ahead == nil {
			tr.ahead = map[peer.Endpoint]cert.Chain{}
		}
		if len(tr.ahead) < maxOrphans {
			tr.ahead[from] = cloneChain(*ch)
		}
		// Its depth is a hop count to the root (an upper bound: a good one).
		tr.onClaimHops(ch.Claim, &from, uint8(min(len(ch.Certs), 254)))
		if !tr.knownTerm(term) {
			return
		}
	}
	a, err := t.v.Verify(ch)
	if err != nil {
		t.stats.Rejected++
		return
	}
	tr.learn(from, p.ID, term.TreeState, a)
}

// curTerm is the current epoch in full.
func (tr *tree) curTerm() cert.Term {
	var root [32]byte
	copy(root[:], tr.root)
	return cert.Term{Tree: tr.k, TreeState: tr.ts, Root: root, Start: tr.term}
}

// termFor returns the epoch (current or previous) named by tree_state ts.
func (tr *tree) termFor(ts uint8) (cert.Term, bool) {
	if tr.haveRoot && ts == tr.ts {
		return tr.curTerm(), true
	}
	if tr.prev != nil && ts == tr.prev.pos.TreeState {
		return tr.prev.term, true
	}
	return cert.Term{}, false
}

// knownTerm reports whether term is our current or previous epoch.
func (tr *tree) knownTerm(term cert.Term) bool {
	got, ok := tr.termFor(term.TreeState)
	return ok && got == term
}

// onPosition: a neighbour announces its position by its certificate. If
// we know its parent's place in that epoch one signature check settles it;
// otherwise we ask for the whole chain.
func (tr *tree) onPosition(from peer.Endpoint, m *message) {
	t := tr.t
	p := t.n.PeerAt(from)
	if p == nil || !t.n.SpeaksOurs(from) {
		tr.keepPending(from, m) // its beacon may still be on its way
		return
	}
	if m.cert.Child != [32]byte(p.ID) {
		t.stats.Rejected++ // someone else's certificate: a neighbour lying about its place
		return
	}
	ts := m.treeState
	term, ok := tr.termFor(ts)
	if !ok {
		return // an epoch we are not in: queryMissing asks again once we are
	}
	a, err := t.v.VerifyCert(term, ed25519.PublicKey(m.parent[:]), &m.cert)
	if errors.Is(err, cert.ErrUnknownParent) {
		// We do not know its parent's place yet; we may soon (the parent is
		// often our neighbour too). Keep it; if it is still unknown later,
		// ask for the end of its chain (see keepPending).
		tr.keepPending(from, m)
		return
	}
	if err != nil {
		t.stats.Rejected++
		return
	}
	tr.learn(from, p.ID, ts, a)
}

// keepPending keeps a position we could not check yet (one per
// neighbour); after a few settle times (spread: the whole neighbourhood
// is in the same state), whatever is still unchecked is asked for: the
// last two certificates of its chain first (its parent's place is usually
// one we know the parent of), more only if need be (onSuffix).
func (tr *tree) keepPending(from peer.Endpoint, m *message) {
	if tr.pendingPos == nil {
		tr.pendingPos = map[peer.Endpoint]message{}
	}
	if _, ok := tr.pendingPos[from]; ok || len(tr.pendingPos) < maxOrphans {
		tr.pendingPos[from] = *m
	}
	if tr.pendingTmr == nil {
		t := tr.t
		wait := 2*t.settle() + time.Duration(t.n.Rand().Int64N(int64(2*t.settle())))
		tr.pendingTmr = t.clk.AfterFunc(wait, func() {
			tr.pendingTmr = nil
			tr.retryPending()
			for _, ep := range sortedEndpoints(tr.pendingPos) {
				if m := tr.pendingPos[ep]; t.n.PeerAt(ep) != nil {
					tr.ask(ep, m.treeState, 2)
				}
			}
		})
	}
}

// retryPending checks the positions kept for lack of their parent's place,
// now that we may know more.
func (tr *tree) retryPending() {
	if len(tr.pendingPos) == 0 {
		return
	}
	list := tr.pendingPos
	tr.pendingPos = nil
	for _, ep := range sortedEndpoints(list) {
		m := list[ep]
		tr.onPosition(ep, &m)
	}
}

// learn records a neighbour's verified position.
func (tr *tree) learn(from peer.Endpoint, id identity.NodeID, ts uint8, a addr.Address) {
	byTS := tr.nbrs[from]
	if byTS == nil {
		byTS = map[uint8]Neighbor{}
		tr.nbrs[from] = byTS
	}
	byTS[ts] = Neighbor{Via: from, ID: id, Addr: a}
	delete(tr.nbrList, ts)
	if ts == tr.ts && tr.cur == nil {
		tr.acquire()
	}
	if !tr.retrying {
		tr.retrying = true
		tr.retryPending() // this position may be the parent another was waiting for
		tr.retrying = false
	}
}

// ask queries a neighbour for the last want certificates of its chain in
// epoch ts (0: all), once per claim period for each length.
func (tr *tree) ask(ep peer.Endpoint, ts, want uint8) {
	t := tr.t
	now := t.clk.Now()
	if tr.asked == nil {
		tr.asked = map[peer.Endpoint]askState{}
	}
	if a, ok := tr.asked[ep]; ok && a.want == want && a.ts == ts && now.Sub(a.at) < t.cfg.ClaimPeriod {
		return
	}
	if _, ok := tr.asked[ep]; !ok && len(tr.asked) >= maxOrphans {
		return
	}
	tr.asked[ep] = askState{ts: ts, want: want, at: now}
	t.sendTo(ep, appendQuery(t.buf[:0], tr.k, ts, want))
}

// askState is the last query to a neighbour.
type askState struct {
	ts, want uint8
	at       time.Time
}

// onSuffix checks the end of a neighbour's chain: its first certificate's
// issuer must be one whose place we know; if not, we ask for twice as much
// (the whole chain once that would be most of it).
func (tr *tree) onSuffix(from peer.Endpoint, m *message) {
	t := tr.t
	p := t.n.PeerAt(from)
	if p == nil || len(m.certs) == 0 {
		return
	}
	if m.certs[len(m.certs)-1].Child != [32]byte(p.ID) {
		t.stats.Rejected++ // someone else's chain: a neighbour lying about its place
		return
	}
	term, ok := tr.termFor(m.treeState)
	if !ok {
		return
	}
	parent := m.parent
	var a addr.Address
	for i := range m.certs {
		var err error
		a, err = t.v.VerifyCert(term, ed25519.PublicKey(parent[:]), &m.certs[i])
		if errors.Is(err, cert.ErrUnknownParent) && i == 0 {
			want := 2 * len(m.certs)
			if want >= 8 {
				want = 0 // the whole chain
			}
			tr.ask(from, m.treeState, uint8(want))
			return
		}
		if err != nil {
			t.stats.Rejected++
			return
		}
		parent = m.certs[i].Child
	}
	delete(tr.pendingPos, from)
	tr.learn(from, p.ID, m.treeState, a)
}

// onQuery answers a neighbour that asks where we are in epoch ts.
func (tr *tree) onQuery(from peer.Endpoint, ts, want uint8) {
	var s *slot
	switch {
	case tr.cur != nil && tr.cur.pos.TreeState == ts:
		s = tr.cur
	case tr.prev != nil && tr.prev.pos.TreeState == ts:
		s = tr.prev
	default:
		return
	}
	// Answered whoever asks: the asker verifies what it gets.
	if want == 0 || int(want) >= len(s.chain.Certs) {
		tr.t.sendTo(from, appendNotify(tr.t.buf[:0], &s.chain))
		return
	}
	tr.t.sendTo(from, appendSuffix(tr.t.buf[:0], &s.chain, int(want)))
}

// queryMissing asks neighbours whose position in the current epoch we do
// not know (their notification was lost, or came before we knew the epoch).
func (tr *tree) queryMissing() {
	t := tr.t
	now := t.clk.Now()
	// Not while the epoch is young: positions are still being handed out,
	// and would arrive anyway. But also while we have no place ourselves:
	// a neighbour's place is what lets us pick it as our parent, and one
	// announced before we entered the epoch was dropped.
	if !tr.haveRoot || tr.rootDead || now.Sub(tr.epochAt) < t.cfg.ClaimPeriod {
		return
	}
	peers := t.n.Peers()
	if len(t.Neighbors(int(tr.k), tr.ts)) >= len(peers) {
		return // (the common case, checked cheaply)
	}
	if tr.queried == nil {
		tr.queried = map[peer.Endpoint]time.Time{}
	}
	for _, p := range peers {
		for _, ep := range p.Endpoints {
			if !t.n.SpeaksOurs(ep) {
				continue
			}
			if _, ok := tr.nbrs[ep][tr.ts]; ok {
				continue
			}
			if at, ok := tr.queried[ep]; ok && now.Sub(at) < 2*t.cfg.ClaimPeriod {
				continue
			}
			tr.queried[ep] = now
			tr.ask(ep, tr.ts, 1)
		}
	}
}

// notifyAll tells the neighbours where we are: one broadcast of our
// certificate (neighbours that miss it ask, see queryMissing).
func (tr *tree) notifyAll() {
	if tr.cur == nil {
		return
	}
	t := tr.t
	t.broadcastJittered(appendPosition(t.buf[:0], &tr.cur.chain))
	if !tr.cur.pos.Root {
		// Our parent must know us (greedy routing toward an address below
		// us ends at it otherwise): tell it reliably.
		t.sendTo(tr.cur.parent, appendPosition(t.buf[:0], &tr.cur.chain))
	}
	// Once more a little later: a broadcast has no ack, and in the rush of
	// an epoch's start a neighbour may well miss one (a query costs more).
	ts, term := tr.ts, tr.term
	t.clk.AfterFunc(t.settle()+time.Duration(t.n.Rand().Int64N(int64(2*t.settle()))), func() {
		if tr.cur != nil && tr.ts == ts && tr.term == term {
			t.broadcastJittered(appendPosition(t.buf[:0], &tr.cur.chain))
		}
	})
}

func (tr *tree) changed() {
	for _, f := range tr.t.subs {
		f(int(tr.k))
	}
}

// receive is the tree application's handler.
func (t *Trees) receive(m node.Message) {
	if !t.started {
		return
	}
	if m.Routed {
		return // tree messages travel one hop only
	}
	t.stats.MsgsRecv++
	t.stats.BytesRecv += uint64(len(m.Blob))
	var msg message
	if err := msg.decode(m.Blob); err != nil {
		t.stats.Malformed++
		return
	}
	switch msg.typ {
	case MsgClaim:
		if int(msg.claim.Tree) >= len(t.trees) || TreeOf(msg.claim.TreeState()) != int(msg.claim.Tree) {
			return
		}
		if err := t.v.VerifyClaim(&msg.claim); err != nil {
			t.stats.Rejected++
			return
		}
		from := m.Via
		t.trees[msg.claim.Tree].onClaimHops(msg.claim, &from, msg.hops)
	case MsgNotify:
		if int(msg.chain.Claim.Tree) >= len(t.trees) {
			return
		}
		t.trees[msg.chain.Claim.Tree].onNotify(m.Via, &msg.chain)
	case MsgRequest:
		if int(msg.tree) < len(t.trees) {
			t.trees[msg.tree].onRequest(m.Via, msg.treeState, identity.NodeID(msg.parent))
		}
	case MsgQuery:
		if int(msg.tree) < len(t.trees) {
			t.trees[msg.tree].onQuery(m.Via, msg.treeState, msg.want)
		}
	case MsgSuffix:
		if int(msg.tree) < len(t.trees) {
			t.trees[msg.tree].onSuffix(m.Via, &msg)
		}
	case MsgPosition:
		if int(msg.tree) < len(t.trees) {
			t.trees[msg.tree].onPosition(m.Via, &msg)
		}
	case MsgResponse:
		k := -1
		if msg.status == StatusOK {
			k = int(msg.chain.Claim.Tree)
		} else {
			for i, tr := range t.trees {
				if tr.pending != nil && *tr.pending == m.Via {
					k = i
					break
				}
			}
		}
		if k >= 0 && k < len(t.trees) {
			t.trees[k].onResponse(m.Via, &msg)
		}
	}
}

// maxOrphans bounds the chains kept from strangers.
const maxOrphans = 64

// keepOrphan keeps a chain heard from a stranger, one per endpoint and tree.
func (t *Trees) keepOrphan(from peer.Endpoint, ch *cert.Chain) {
	if t.orphans == nil {
		t.orphans = map[peer.Endpoint][]cert.Chain{}
	}
	list := t.orphans[from]
	if list == nil && len(t.orphans) >= maxOrphans {
		return
	}
	for i := range list {
		if list[i].Claim.Tree == ch.Claim.Tree {
			list[i] = cloneChain(*ch)
			return
		}
	}
	t.orphans[from] = append(list, cloneChain(*ch))
}

// peerEvent: a new peer hears where we are; a lost one's positions go.
func (t *Trees) peerEvent(p *peer.Peer, up bool) {
	if !t.started {
		return
	}
	if up {
		for _, ep := range p.Endpoints {
			if list, ok := t.orphans[ep]; ok {
				delete(t.orphans, ep)
				for i := range list {
					if k := int(list[i].Claim.Tree); k < len(t.trees) {
						t.trees[k].onNotify(ep, &list[i])
					}
				}
			}
		}
	}
	for _, tr := range t.trees {
		for _, ep := range p.Endpoints {
			if up {
				if tr.cur != nil && t.n.SpeaksOurs(ep) {
					t.sendTo(ep, appendPosition(t.buf[:0], &tr.cur.chain))
				}
				continue
			}
			if _, ok := tr.nbrs[ep]; ok {
				delete(tr.nbrs, ep)
				tr.nbrList = nil
			}
			delete(tr.heard, ep)
			delete(tr.waiting, ep)
			if tr.cur != nil && !tr.cur.pos.Root && tr.cur.parent == ep {
				// Our address stays good for the epoch (routing goes round
				// the gap over other links and trees), but our subtree hangs
				// by nothing: ask for an early term, in which we attach to
				// the best responder.
				for _, f := range t.lost {
					f(int(tr.k))
				}
			}
			if tr.pending != nil && *tr.pending == ep {
				tr.pending = nil
				stopTimer(&tr.reqTmr)
				tr.acquire()
			}
		}
	}
}

func (t *Trees) sendTo(ep peer.Endpoint, msg []byte) *node.Result {
	t.stats.MsgsSent++
	t.stats.BytesSent += uint64(len(msg))
	return t.n.SendTo(ep, AppID, bytes.Clone(msg), nil)
}

// sendReliable sends msg to ep and calls fail if the hop could not deliver it.
func (t *Trees) sendReliable(ep peer.Endpoint, msg []byte, fail func()) {
	t.stats.MsgsSent++
	t.stats.BytesSent += uint64(len(msg))
	t.n.SendTo(ep, AppID, bytes.Clone(msg), nil).OnDone(func(err error) {
		if err != nil {
			fail()
		}
	})
}

// roundTrip bounds the time a request and its answer (a chain of a few
// frames) take on the link to ep: on ESP-NOW milliseconds, on LoRa seconds;
// asking again sooner only piles answers up on a slow link.
func (t *Trees) roundTrip(ep peer.Endpoint) time.Duration {
	links := t.n.Links()
	if ep.Link < 0 || ep.Link >= len(links) {
		return 0
	}
	l := links[ep.Link]
	return 12 * link.Airtime(l, l.Info().MTU)
}

// settle is the listening time at the start of an epoch (Config.Settle).
func (t *Trees) settle() time.Duration {
	if t.cfg.Settle > 0 {
		return t.cfg.Settle
	}
	d := time.Second
	for _, l := range t.n.Links() {
		d = max(d, 256*link.Airtime(l, cert.ClaimSize+2+packet.PackageOverhead+8))
	}
	return d
}

// broadcastJittered broadcasts msg on every link after a random delay of up
// to 16 airtimes of it on that link (a few milliseconds on ESP-NOW, seconds
// on LoRa), so that neighbours relaying the same flood do not all collide.
func (t *Trees) broadcastJittered(msg []byte) {
	m := bytes.Clone(msg)
	for i, l := range t.n.Links() {
		t.stats.MsgsSent++
		t.stats.BytesSent += uint64(len(m))
		window := 16 * link.Airtime(l, len(m)+packet.PackageOverhead+8)
		d := time.Duration(t.n.Rand().Int64N(int64(window) + 1))
		t.clk.AfterFunc(d, func() { t.n.Broadcast(AppID, m, &node.SendOptions{Link: i}) })
	}
}

// sortedEndpoints returns m's keys in a fixed order: what a node does must
// follow from its inputs alone (simulations replay from a seed), and map
// order is random.
func sortedEndpoints[V any](m map[peer.Endpoint]V) []peer.Endpoint {
	out := make([]peer.Endpoint, 0, len(m))
	for ep := range m {
		out = append(out, ep)
	}
	slices.SortFunc(out, func(a, b peer.Endpoint) int {
		if a.Link != b.Link {
			return a.Link - b.Link
		}
		return strings.Compare(a.Addr.String(), b.Addr.String())
	})
	return out
}

func cloneChain(ch cert.Chain) cert.Chain {
	ch.Certs = slices.Clone(ch.Certs)
	return ch
}

func stopTimer(t *clock.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}
