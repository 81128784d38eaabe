package tree

// Root election and terms: candidacy delayed by score, claims, their flood,
// epochs entered and left (PROTOCOL 6.1).

import (
	"bytes"
	"crypto/ed25519"
	"math"
	"math/big"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

const electionBits = 24

// scheduleElection arms this node's candidacy: it claims root after a delay
// proportional to log2 of the gap between its score and ref (the dead root's
// score; nil at a cold start), so that the best candidate claims first and
// its claim silences the others (PROTOCOL 6.1).
func (tr *tree) scheduleElection(ref *[32]byte) {
	clock.Stop(&tr.electTmr)
	tr.heldSince = time.Time{}
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
	jitter := time.Duration(tr.t.rng.Int64N(int64(p/100) + 1))
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

// elect: claim root unless a live root better than us is known, or, at a
// node of one neighbour, any root at all (leafElection).
func (tr *tree) elect() {
	tr.electTmr = nil
	if tr.haveRoot && !tr.rootDead && (tr.amRoot || cert.Less(tr.rootScore, tr.score)) {
		tr.heldSince = time.Time{}
		return
	}
	if nb := tr.behindOne(); nb != nil && !tr.amRoot {
		if tr.haveRoot && !tr.rootDead {
			// A live root, worse than us: a leaf does not stand against it.
			tr.heldSince = time.Time{}
			return
		}
		// At a cold start a leaf whose neighbour is the better candidate
		// stands when its delay ends, as any node: the neighbour's
		// shorter delay, or a better root's claim through it, comes first
		// wherever the neighbour is a candidate, and where it is a leaf too
		// (two nodes joined only to each other) one of the two must not
		// wait. With both holding, two LoRa nodes formed their tree after
		// four claim periods (four hours), not one.
		if tr.haveRoot || !cert.Less(cert.Score(ed25519.PublicKey(nb.ID[:]), tr.k), tr.score) {
			t := tr.t
			now := t.clk.Now()
			if tr.heldSince.IsZero() {
				tr.heldSince = now
			}
			hold := time.Duration(t.cfg.MissedClaims) * t.cfg.ClaimPeriod
			if tr.haveRoot {
				hold *= leafBuriedHold
			}
			if now.Sub(tr.heldSince) < hold {
				tr.electTmr = t.clk.AfterFunc(t.cfg.ClaimPeriod, tr.elect)
				return
			}
		}
	}
	tr.heldSince = time.Time{}
	tr.startTerm()
}

// leafBuriedHold: after burying its root, a node of one neighbour that
// still hears it waits this many times MissedClaims claim periods before
// it stands (leafElection).
const leafBuriedHold = 2

// behindOne returns this node's one neighbour if it has one neighbour
// only, and has heard it within two claim periods and a half (else nil):
// a leaf, such as the nodes that hear nothing but their rooftop gateway.
//
// leafElection [ours]: a leaf is not a candidate while another is. It
// never stands against a live root, whatever their scores; at a cold
// start, unless its neighbour's score is better than its own, it waits
// MissedClaims claim periods past its election delay before it stands,
// so that a better placed candidate's claim reaches it first; after
// burying its root it waits leafBuriedHold times that (looking again
// every claim period), and stands only if no root has come through its
// neighbour by then (two nodes joined only to each other still elect
// one). A leaf that is a root yields to another live root its
// neighbour passes on once that neighbour shows it left the leaf's term
// for good (rootYields, the case of one neighbour). Whatever root the mesh has reaches a leaf
// through its one neighbour, so a leaf root puts the whole mesh behind
// one link; and behind a gateway that hears hundreds of nodes hidden
// from each other, the leaf's silence is the gateway's deafness, not the
// root's death: on hubs of 300 nodes its 60 leaves buried live roots and
// stood, and the mesh followed the leaves whose scores were best
// (h22churn: 2,127 of seed 10's 2,250 terms were leaves').
func (tr *tree) behindOne() *peer.Peer {
	t := tr.t
	if t.b.PeerCount() != 1 {
		return nil // without building the list: a gateway has hundreds
	}
	ps := t.b.Peers()
	if len(ps) == 1 && t.clk.Now().Sub(ps[0].LastRx) <= t.cfg.ClaimPeriod*5/2 && inTrees(ps[0]) {
		return ps[0]
	}
	return nil
}

// inTrees reports whether the peer may bring us a root's claim: it lists
// the trees' app_id in its beacons, or we do not know what it lists. A
// neighbour that lists apps without ours takes no part in the trees (our
// boards, boards/esp32: their beacons leave the tree app out), so a node
// whose one neighbour it is waits for no claim through it, and stands
// when its election delay ends, as a node with no neighbour does. Held
// as a leaf, a Pi whose one neighbour on LoRa was a board stood
// MissedClaims claim periods late (three hours at LoRa's default) and
// gave the board no lease until then (the virtual rack's
// lora/single/node-to-board took 45 to 60 s of its 60).
func inTrees(p *peer.Peer) bool {
	return len(p.Apps) == 0 || slices.Contains(p.Apps, AppID)
}

// rootYields reports whether this node, a root, yields to the worse live
// root whose claim c the neighbour at from passed on [ours]: every proven
// neighbour we have has left our term for good. A neighbour has when it
// acked the claim of our term (our answer to a worse claim, sent it
// alone: sendAnswers), has not passed that term's claim on since (it
// does not follow us), and still passes on another live root's claim,
// stamped more than a claim period after that ack. A node passes on only
// the claims of the root it follows, and one that could take our term
// would have (our root is the better), so it cannot: it left our term
// for good (adopt, leave) and drops its claims. When every neighbour
// has, our term reaches nobody but us: on hubs of 300 nodes (seed 14) a
// leaf stayed the root of a tree of one node for two whole terms, and the
// trees never converged. A leaf is the case of one neighbour. Nothing
// less: a neighbour that does not hear us (no ack) may still take our
// term once it does, and one that buried us but keeps our term as its
// previous epoch takes it back on our answer (on hubs seed 16, yielding
// a claim period into our term whatever the neighbour did made the trees
// converge 447 s later); and one neighbour, lying or not, cannot make us
// leave a term that another neighbour still follows (or has not shown
// it left). The claim period covers a copy of the worse root's claim the
// neighbour passed on before our answer came, and clocks a little apart.
// Nothing on the wire: the marks are bound to the neighbours' proven
// node_ids (SpeaksOurs), and start afresh with each term.
func (tr *tree) rootYields(c *cert.Claim, from *peer.Endpoint) bool {
	t := tr.t
	if from == nil || len(tr.acks) == 0 || !t.b.SpeaksOurs(*from) {
		return false
	}
	p := t.b.PeerAt(*from)
	if p == nil {
		return false
	}
	a, ok := tr.acks[p.ID]
	if !ok {
		return false
	}
	if !a.left {
		if time.Unix(0, c.Time).Sub(a.at) <= t.cfg.ClaimPeriod {
			return false
		}
		a.left = true
		tr.acks[p.ID] = a
	}
	// Every other proven neighbour too (rare: only when this one has left).
	for _, q := range t.b.Peers() {
		if q.ID == p.ID || tr.acks[q.ID].left {
			continue
		}
		if slices.ContainsFunc(q.Endpoints, t.b.SpeaksOurs) {
			return false
		}
	}
	return true
}

// acked notes that the neighbour at ep acked the claim of our current
// term, sent it alone (rootYields), if it has proven its node_id.
func (tr *tree) acked(ep peer.Endpoint) {
	t := tr.t
	if !t.b.SpeaksOurs(ep) {
		return
	}
	p := t.b.PeerAt(ep)
	if p == nil {
		return
	}
	if tr.acks == nil {
		tr.acks = map[identity.NodeID]ackState{}
	}
	a, ok := tr.acks[p.ID]
	if !ok && len(tr.acks) >= maxNeighbors {
		return
	}
	a.at = t.clk.Now()
	tr.acks[p.ID] = a
}

// followed notes that the neighbour at ep passed on the claim of our
// current term: it follows us, and its ack (rootYields) no longer says
// it cannot.
func (tr *tree) followed(ep peer.Endpoint) {
	if p := tr.t.b.PeerAt(ep); p != nil {
		delete(tr.acks, p.ID)
	}
}

// startTerm makes this node the root with a new term (a new epoch).
func (tr *tree) startTerm() {
	t := tr.t
	now := t.clk.Now().UnixNano()
	term := max(now, tr.term+1)
	// Keep tree_states unambiguous [ours]: the root picks its term start
	// (nanoseconds: a shift of a few is nothing) so that tree_state ≡ tree
	// (mod 16) — no two trees ever share one — and differs from the tree's
	// current and previous epochs (a new root knows them: it was in them),
	// and from the epochs it left with a place in them that neighbours may
	// still route by (tr.gone, at most maxLeft of the 16 bytes of a tree):
	// tellAliased reaches only the neighbours whose places it knew there,
	// and a gateway that misses its neighbours' places misses them. On hubs
	// of 300 nodes (seed 14, with leaves no candidates) a node took a term
	// of its own under the byte of an epoch it had left (neither its
	// current nor its previous), and four neighbours still in that epoch
	// sent it plain Packages by its old place there, 8,2 (9 loop-check
	// errors; with this rule, 0).
	//
	// Nor the byte of the term we buried last (tr.deadTS): a burial says
	// only that the root's claims stopped reaching us, and the root is
	// often alive, its term going on in the rest of the mesh. A node
	// without a place in it may have followed a rival's claim since (the
	// current epoch is then the rival's), and two live terms under one
	// byte are two trees with one set of coordinates: a Package's header
	// names only the byte. Clustered 1,000 (seed 2): after a town buried
	// tree 4's live root (renewed 170 s before), a root there started a
	// term under the live term's byte; 140 nodes were in it, beside the
	// 860 of the live one, when routing began 550 s later, and greedy
	// routing by the byte crossed from one to the other: 163 of 1,000
	// receipts lost on their first attempt ("no route" where the other
	// term's coordinates lay, or taken by a namesake), stretch 1.068
	// (h30term; with this rule, every receipt on the first attempt).
	for range 4096 {
		ts := cert.TreeState(t.pk, tr.k, term)
		if ts%MaxTrees == tr.k && !(tr.haveRoot && ts == tr.ts) && (tr.prev == nil || ts != tr.prev.pos.TreeState) && !slices.ContainsFunc(tr.gone, func(g goneEpoch) bool { return g.ts == ts }) && !(tr.hasDeadTS && ts == tr.deadTS) {
			break
		}
		term++
	}
	c := cert.NewClaim(t.id, tr.k, term, term)
	periodic := tr.amRoot && t.cfg.EpochPeriods > 0 && tr.claims >= t.cfg.EpochPeriods
	if tr.amRoot {
		t.stats.Renewals++
	}
	tr.amRoot = true
	tr.termAt = t.clk.Now()
	tr.acks = nil
	clock.Stop(&tr.renewTmr)
	tr.claims = 0
	if !periodic {
		tr.claims = -tr.stagger()
	}
	t.stats.Terms++
	tr.adopt(c)
	tr.cur = &slot{pos: Position{Tree: tr.k, TreeState: tr.ts, Term: term, Root: true}, term: c.Term(), chain: cert.Chain{Claim: c}, children: map[identity.NodeID]uint8{}, next: 1}
	tr.changed()
	tr.flood(&c)
	tr.notifyAll()
	tr.serveWaiting()
	clock.Stop(&tr.claimTmr)
	tr.claimTmr = t.clk.AfterFunc(t.cfg.ClaimPeriod, tr.reclaim)
}

// stagger is how many claims longer than EpochPeriods a term that is
// not a periodic renewal (a root's first, or one a repair started) runs
// [ours]: as many as put its renewal, and so every later one, in tree k's
// slot of the cycle, the claim periods since the Unix epoch modulo
// EpochPeriods being k·EpochPeriods/Trees. A term renews the whole tree
// (every node asks its parent for a place in the new epoch, has its chain
// answered, announces its position, and re-registers its name when its
// homes moved), and the trees form within a minute or two of each other
// at a cold start: with terms of one length their renewals kept that
// phase for good, six re-formations in a hundred seconds every term (on
// clustered 1,000 meshes such a round carried four times the frames of
// the minutes between, and pairs routed in it were lost by the hundred).
// In slots, the trees renew one at a time, the others routing meanwhile.
// The roots' clocks need agree only to well within a slot (150 s by
// default); a clock far off costs only the spread. Never shorter than a
// term: a shorter one reads as a repair (route's repairEpoch).
func (tr *tree) stagger() int {
	c := tr.t.cfg
	e := int64(c.EpochPeriods)
	if e <= 0 || c.Trees <= 1 {
		return 0
	}
	slot := int64(tr.k) * e / int64(c.Trees)
	now := tr.t.clk.Now().UnixNano() / int64(c.ClaimPeriod)
	return int(((slot-now)%e + e) % e)
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
	c := cert.NewClaim(t.id, tr.k, tr.term, t.clk.Now().UnixNano())
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
	// The neighbours that may route by a place of ours the new term's
	// tree_state byte takes from us (see tellAliased).
	var tell []peer.Endpoint
	if ts := c.TreeState(); newTerm && ((tr.cur != nil && tr.cur.pos.TreeState == ts) || (tr.prev != nil && tr.prev.pos.TreeState == ts && tr.prev.term != c.Term())) {
		for _, nb := range tr.nbrs.get(ts) {
			if !slices.Contains(tell, nb.Via) {
				tell = append(tell, nb.Via)
			}
		}
	}
	if newTerm {
		tell = tr.takeGone(c.TreeState(), c.Term(), tell)
	}
	defer tr.tellAliased(tell, &c)
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
		clock.Stop(&tr.claimTmr)
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
		tr.leaveSlot(leaving)
		leaving = nil
	}
	if restore {
		tr.cur, tr.prev = tr.prev, nil
	} else {
		if old := tr.prev; old != nil && (leaving != nil || old.pos.TreeState == tr.ts) {
			t.v.Forget(tr.k, old.pos.TreeState) // the verifier keeps two epochs
			tr.leaveSlot(old)
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
	tr.nbrs = slices.DeleteFunc(tr.nbrs, func(l nbrList) bool { return !keep(l.ts) })
	tr.tried = map[peer.Endpoint]time.Time{}
	tr.full = nil
	tr.parentLost = false
	tr.upHops = 0
	tr.heard = nil
	tr.waiting = nil
	if restore {
		tr.epochAt = t.clk.Now()
		tr.pending = nil
		clock.Stop(&tr.reqTmr)
		tr.changed()
		tr.notifyAll()
		return
	}
	if !tr.amRoot {
		// Listen to the neighbours passing this claim on (and to rival
		// claims, at a cold start), then pick the closest to the root.
		// Jittered: neighbours that heard the claim from one broadcast
		// would all ask at once, and the hidden among them collide.
		listen := t.settle() + time.Duration(t.rng.Int64N(int64(t.settle()/2)))
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
	tr.held, tr.certAns, tr.wantWhole = nil, nil, false
	tr.epochAt = t.clk.Now()
	tr.deep = false
	tr.pending = nil
	clock.Stop(&tr.reqTmr)
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

// leaveSlot leaves s's epoch for good (leave), and remembers its
// tree_state byte and the neighbours we knew there [ours]: they may still
// route by our place in it (nothing tells them we left; it was harmless
// while the byte named only that term), and a later term under the same
// byte (a root picks its byte knowing only its current and previous
// epochs) would turn that place into another term's coordinates. At 300
// hubs nodes (seed 7) a gateway left its place in a term two epochs back,
// then started a term of its own under that term's byte; a child of its
// old place, still in the old term, sent a plain Package to it by that
// place (the loop check's error) 0.6 s later. takeGone tells them then.
func (tr *tree) leaveSlot(s *slot) {
	tr.leave(s.term)
	ts := s.pos.TreeState
	tr.gone = slices.DeleteFunc(tr.gone, func(g goneEpoch) bool { return g.ts == ts })
	var eps []peer.Endpoint
	for _, nb := range tr.nbrs.get(ts) {
		eps = append(eps, nb.Via)
	}
	if len(eps) == 0 {
		return
	}
	if len(tr.gone) >= maxLeft {
		tr.gone = tr.gone[1:]
	}
	tr.gone = append(tr.gone, goneEpoch{ts: ts, term: s.term, nbrs: eps})
}

// takeGone adds to tell the neighbours we knew in an epoch we left for
// good under tree_state ts, if it is not term (entering again a term we
// left is refused elsewhere), and forgets them: told once, they drop our
// old place (claimedElsewhere).
func (tr *tree) takeGone(ts uint8, term cert.Term, tell []peer.Endpoint) []peer.Endpoint {
	for i, g := range tr.gone {
		if g.ts != ts {
			continue
		}
		if g.term != term {
			for _, ep := range g.nbrs {
				if !slices.Contains(tell, ep) {
					tell = append(tell, ep)
				}
			}
		}
		tr.gone = slices.Delete(tr.gone, i, i+1)
		break
	}
	return tell
}

// goneEpoch is an epoch left for good: its tree_state byte and term, and
// the neighbours we knew there (leaveSlot).
type goneEpoch struct {
	ts   uint8
	term cert.Term
	nbrs []peer.Endpoint
}

// watch checks that the root still claims; a silent root's term ends.
func (tr *tree) watch() {
	t := tr.t
	if !t.closed { // (closed: its clock, Halted, would arm nothing)
		tr.watchAlarm.Arm(t.cfg.ClaimPeriod / 2)
	}
	if tr.cur == nil && tr.pending == nil {
		tr.acquire() // candidates that failed us may do better now
	}
	tr.queryMissing()
	if !tr.haveRoot || tr.amRoot || tr.rootDead {
		return
	}
	tr.buryOverdue()
	s := tr.cur
	if s == nil || s.pos.Root {
		return
	}
	if !tr.parentLost && !tr.probing && t.unheard(s.parent, t.cfg.ClaimPeriod*3/2) {
		// Our parent passed no claim on for a round and a half (and our
		// radio had no ACK from it either): ask it
		// where it is, by a hop that is acked (a busy gateway's
		// broadcasts can be lost to collisions round after round). If it
		// does not answer, it is gone, and our subtree hangs by nothing:
		// our address stays good for the epoch, but only a new term
		// re-attaches us.
		tr.probing = true
		ts, term, parent, asked := tr.ts, tr.term, s.parent, t.clk.Now()
		// Any frame from it (the query's ack, its claim, anything) says
		// it lives, and so does our radio's ACK of a frame we sent it
		// (peer.LastAcked); it is gone if the query's hop fails (the
		// node's give-up: 30 s on ESP-NOW without progress) or nothing
		// comes from it for half a claim period (24 round trips at least:
		// a crowded LoRa mesh answers in minutes) after our query left
		// us, whichever is first [ours]. A lost parent makes the root
		// start a new term, every node of the tree taking a new place, so
		// the wait must cover a live parent's slowest answers in a
		// crowded mesh: it was 2 s, and a live parent deep in a forming
		// tree of 5,000 nodes, silent 32 s, was heard 5 s after the query
		// and acked it after 13; each such call rebuilt a whole tree, and
		// with six trees of 5,000 nodes one came before every tree had
		// formed (the trees never converged). Waiting for the hop alone
		// made a dead parent's repair 30 s slower (after a tenth of 1,000
		// nodes died, 50 of 60 probes delivered during the repair, not
		// 59). In the collision storm that follows renewals in a dense
		// core (200 nodes of degree 28, seed 4, trees 2 and 0 renewed 7 s
		// apart) every frame live parents sent their children collided
		// there for 40–50 s (neighbours hidden from the parent talking
		// over it), and 28 probes failed: in 13 the parent's radio had
		// ACKed the query, in 7 the query had not left the child's own
		// queue when the half period ran out. Each verdict rebuilt a
		// whole tree, and the rebuilds made the next storm (22 early
		// terms in all six trees in two minutes; the trees did not
		// converge in 30 minutes).
		decided := false
		verdict := func(failed bool) {
			if decided {
				return
			}
			decided = true
			tr.probing = false
			if !failed || t.heardSince(parent, asked) {
				return
			}
			if tr.ts == ts && tr.term == term && tr.cur != nil && tr.cur.parent == parent && !tr.parentLost {
				tr.parentLost = true
				for _, f := range t.lost {
					f(int(tr.k))
				}
			}
		}
		t.sendTo(parent, appendQuery(t.buf[:0], tr.k, ts, wantClaim)).OnDone(func(err error) { verdict(err != nil) })
		wait := max(t.cfg.ClaimPeriod/2, 24*t.roundTrip(parent))
		// from: a time before which our query had surely not left us.
		// The wait runs from there, not from when the query was queued:
		// in a storm it waited behind our own frames for most of the
		// half period. Nothing handed to the radio for the parent since
		// (peer.LastTx) means it is still waiting; anything handed over
		// is taken as the query having left (frames to one neighbour go
		// in order). The hop's own give-up bounds the wait.
		from := asked
		var check func()
		check = func() {
			if decided {
				return
			}
			now := t.clk.Now()
			if p := t.b.PeerAt(parent); p != nil && !p.LastTx.After(from) {
				from = now
				t.clk.AfterFunc(t.settle(), check)
				return
			}
			if left := from.Add(wait).Sub(now); left > 0 {
				t.clk.AfterFunc(left, check)
				return
			}
			verdict(true)
		}
		t.clk.AfterFunc(wait, check)
		return
	}
	if t.clk.Now().Sub(tr.lastFresh) > t.cfg.ClaimPeriod*3/2 && !tr.parentLost {
		// A round of the root's claims did not reach us: on a line or a
		// ring one lost relay cuts a flood off, and three such rounds
		// would bury a live root. Ask our parent for the newest it has
		// (a hop that is acked); what it sends we pass on. A parent no
		// fresher asks its own in turn (pull.go).
		t.sendTo(s.parent, appendQuery(t.buf[:0], tr.k, tr.ts, wantClaim))
	}
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
	tr.deadTS, tr.hasDeadTS = tr.ts, true
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
		if !ok && len(tr.heard) >= maxNeighbors {
			return
		}
		tr.heard[*from] = hops
	}
	if tr.upHops == 0 || hops+1 < tr.upHops {
		better := tr.upHops != 0
		tr.upHops = hops + 1
		if better && tr.flooded == c.Time && !tr.amRoot {
			// We passed this claim on with a longer way than we now know
			// (the first copy of a flood is not always the one that came
			// the shortest way: relays wait a random while). Pass it on
			// again with the shorter: every node down the line picks its
			// parent by these counts, and a tree whose depths are the
			// breadth-first distances routes shortest.
			tr.flood(&tr.latest)
		}
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
	if from != nil {
		tr.claimedElsewhere(*from, &c)
	}
	if slices.Contains(tr.left, c.Term()) {
		return // an epoch we left for good (one whose place we gave up)
	}
	tr.buryOverdue()
	if from != nil && len(tr.answerTo) > 0 {
		tr.answeredBy(*from, c.Root[:], c.Score())
	}
	same := tr.haveRoot && bytes.Equal(tr.root, c.Root[:])
	switch {
	case same && c.TermStart == tr.term:
		if tr.amRoot && from != nil && len(tr.acks) > 0 {
			tr.followed(*from)
		}
		if c.Time > tr.latest.Time {
			tr.latest = c
			tr.lastFresh = now
			tr.rootDead = false
			tr.flood(&c)
		}
	case same && c.TermStart > tr.term:
		tr.adopt(c)
		clock.Stop(&tr.electTmr)
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
				clock.Stop(&tr.electTmr)
				tr.heldSince = time.Time{}
				tr.electTmr = t.clk.AfterFunc(time.Duration(t.rng.Int64N(int64(t.settle()/2)+1)), tr.elect)
			}
		} else {
			clock.Stop(&tr.electTmr)
		}
		tr.flood(&c)
	case tr.amRoot && tr.rootYields(&c, from):
		// Our term is one none of our neighbours takes: we follow this
		// root, and leave our term for good (a late copy of our own claim
		// must not bring it back).
		tr.leave(tr.curTerm())
		tr.adopt(c)
		tr.flood(&c)
	default:
		// A worse root than ours: tell the claimant about ours (PROTOCOL 6.1).
		if from != nil {
			tr.answer(*from, c.Score())
		}
	}
}

// answer tells the neighbour at from, which passed on a claim of a root
// worse than ours (score), about ours [ours: how]. Not at once, and the
// first time by broadcast: every neighbour of the claimant that follows a
// better root answers the same claim, and a gateway's hundreds of
// neighbours, hidden from each other, each sending it the answer at the
// same instant by a hop the MAC retries, filled its air with collisions
// (one of the storms that leave a gateway deaf while the trees form).
// Spread over a settle time, the first answer reaches the claimant,
// which takes our root and passes its claim on; each neighbour that
// hears that from it before its own answer is due sends nothing
// (answeredBy). One broadcast answers every claimant
// waiting. A claimant still worse when it claims again (the broadcast was
// lost: it has no ack) is answered alone, by a hop that is acked, as
// before.
func (tr *tree) answer(from peer.Endpoint, score [32]byte) {
	t := tr.t
	now := t.clk.Now()
	if tr.answered == nil {
		tr.answered = map[peer.Endpoint]time.Time{}
	}
	last, ok := tr.answered[from]
	if ok && now.Sub(last) <= t.cfg.ClaimPeriod {
		return
	}
	if _, ok := tr.answered[from]; !ok && len(tr.answered) >= maxNeighbors {
		return
	}
	tr.answered[from] = now
	if tr.answerTo == nil {
		tr.answerTo = map[peer.Endpoint]answerState{}
	}
	if _, waiting := tr.answerTo[from]; !waiting && len(tr.answerTo) >= maxNeighbors {
		return
	}
	// Answered a claim period or two ago, and still worse: our broadcast
	// did not reach it.
	alone := ok && now.Sub(last) <= answerAlone*t.cfg.ClaimPeriod
	tr.answerTo[from] = answerState{score: score, alone: alone}
	if tr.answerTmr == nil {
		tr.answerTmr = t.clk.AfterFunc(time.Duration(t.rng.Int64N(int64(t.settle())+1)), tr.sendAnswers)
	}
}

// answerAlone: a claimant answered by broadcast that claims a worse root
// again within this many claim periods is answered by a hop of its own.
const answerAlone = 3

// answerState is a claimant waiting for our answer: the score of the root
// it claimed, and whether it is answered alone (acked) or by broadcast.
type answerState struct {
	score [32]byte
	alone bool
}

// sendAnswers sends the answers due (see answer): to each claimant still
// following a root worse than ours.
func (tr *tree) sendAnswers() {
	t := tr.t
	tr.answerTmr = nil
	to := tr.answerTo
	tr.answerTo = nil
	if !tr.haveRoot || tr.rootDead {
		return
	}
	msg := appendClaim(t.buf[:0], &tr.latest, tr.distance())
	var links []int
	for _, ep := range sortedEndpoints(to) {
		a := to[ep]
		if !cert.Less(tr.rootScore, a.score) {
			continue // our root is no better now
		}
		if a.alone {
			// The ack counts for the term whose claim it carried only: an
			// answer of a term we have since left says nothing of ours.
			sent := tr.term
			t.sendReliableDone(ep, msg, func(err error) {
				if err == nil && tr.amRoot && tr.term == sent {
					tr.acked(ep)
				}
			})
		} else if !slices.Contains(links, ep.Link) {
			links = append(links, ep.Link)
		}
	}
	for _, l := range links {
		t.broadcastOn(l, bytes.Clone(msg))
	}
}

// answeredBy drops the answer due to the neighbour at from, which passed
// on a claim of root (score): if that is our root, or a better one, it
// needs no answer (another neighbour's reached it first).
func (tr *tree) answeredBy(from peer.Endpoint, root []byte, score [32]byte) {
	if _, ok := tr.answerTo[from]; !ok || (!bytes.Equal(root, tr.root) && !cert.Less(score, tr.rootScore)) {
		return
	}
	delete(tr.answerTo, from)
	if len(tr.answerTo) == 0 {
		clock.Stop(&tr.answerTmr)
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
	tr.flooded = c.Time
	tr.t.broadcastAfter(floodHold, floodSpread, appendClaim(tr.t.buf[:0], c, hops))
	tr.servePullers(c)
}

// A claim is passed on floodHold airtimes after it was first heard, plus up
// to floodSpread more: neighbours that heard one copy must not all send at
// once, and the hold, longer than the spread, makes the flood advance a
// level per hold, so that the first copy a node hears has come the
// shortest way (a spread alone lets a longer way overtake: its relays may
// happen to wait less) and the hop count it passes on is its breadth-first
// distance. Parents are chosen by those counts.
const (
	floodHold   = 24
	floodSpread = 12
)

// claimedElsewhere drops the place we knew the neighbour at from by in an
// epoch of ours whose tree_state byte c's term shares, when c is another
// term [ours]. A node passes on (or answers with) only the claim of the
// term it follows, and one that enters a term under the tree_state byte of
// an epoch it was in leaves that epoch for good (adopt: two epochs under
// one byte cannot stand side by side). So the neighbour's place there is
// gone; kept, it would be routed by as if it were in our term (the byte is
// all a Package's header says of the term), and the Package would arrive
// in another term's coordinates: a loop. Its new place is announced under
// the same byte but does not verify in our term (onPosition drops the old
// one then), yet that announcement may come late or not at all (it is
// ours to ask for, and we do not ask for positions in a term we are not
// in); the claim comes first, with the flood.
func (tr *tree) claimedElsewhere(from peer.Endpoint, c *cert.Claim) {
	ts := c.TreeState()
	term, ok := tr.termFor(ts)
	if !ok || term == c.Term() || !tr.placedIn(from, ts) {
		return
	}
	tr.dropNeighborIn(from, ts)
}

// tellAliased sends c, the claim of a term we have just entered under the
// tree_state byte of an epoch we held a place in, to each neighbour we
// knew in that epoch, one hop each, acked [ours]. Their routers may still
// take us to be at our old place there (the byte is all a Package's header
// says of the term), and the broadcasts that would tell them otherwise —
// this claim's flood, our new position — carry no ack: after a kill 10 %
// of 1,000 nodes (seed 9) a neighbour missed both for 27 s and routed
// three Packages by the old place into the new term's coordinates, where
// they could loop. On the claim it drops that place (claimedElsewhere),
// and takes the term if its root is the better. A tree has 256/MaxTrees
// tree_state bytes, so a new term takes an old one's now and then: a few
// hops from the nodes that held a place in it, once each. Hops 255 (not
// counted): it says nothing of the way to the root.
func (tr *tree) tellAliased(to []peer.Endpoint, c *cert.Claim) {
	for _, ep := range to {
		if tr.t.b.PeerAt(ep) != nil {
			tr.t.sendTo(ep, appendClaim(tr.t.buf[:0], c, 255))
		}
	}
}
