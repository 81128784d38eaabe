package tree

// Neighbours' positions: learning them from chains and suffixes, asking
// for the missing ones, and telling every neighbour ours.

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

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
	p := t.b.PeerAt(from)
	if p == nil || !t.b.SpeaksOurs(from) {
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
	if err != nil && tr.placedIn(from, ts) {
		// A place under this tree_state that does not hang on what we
		// know of this epoch, from a neighbour whose place in it we knew
		// (and so its parent's: a place never changes within an epoch):
		// another term took the tree_state byte, and the neighbour is in
		// that one now. The place we knew it by is gone; routing on it
		// could go the wrong way (a Package would arrive in another
		// term's coordinates).
		tr.dropNeighborIn(from, ts)
	}
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
	if _, ok := tr.pendingPos[from]; ok || len(tr.pendingPos) < maxNeighbors {
		tr.pendingPos[from] = *m
	}
	tr.armPending()
}

// armPending sets the timer that asks for the positions still unchecked.
//
// In a crowd (inCrowd), one neighbour is asked per parent we lack at each
// firing [ours]: the
// positions waiting for one parent's place all verify once any of them
// brings it (learn retries the rest), and in a dense mesh a dozen
// neighbours often hang on one parent two hops away. Asking each of them
// (as before) put their answers, two certificates each and retried by
// the MAC, on the air a dozen times over: queries and their suffix
// answers took most of the channel round the densest node of a 200-node
// mesh of degree 28 while the trees formed. If an answer is lost, the
// next firing asks another of the group. With few neighbours each is
// asked, as before: the answers cost little air, and a lost one would
// cost a firing's wait (minutes on LoRa: 100 nodes, seed 1, converged in
// 33,859 s with one asked at a time against 17,166).
func (tr *tree) armPending() {
	if tr.pendingTmr != nil {
		return
	}
	t := tr.t
	wait := 2*t.settle() + time.Duration(t.rng.Int64N(int64(2*t.settle())))
	tr.pendingTmr = t.clk.AfterFunc(wait, func() {
		tr.pendingTmr = nil
		tr.retryPending()
		type group struct {
			ts     uint8
			parent [32]byte
		}
		asked := map[group]bool{}
		crowded := t.held()
		more := false
		for _, ep := range sortedEndpoints(tr.pendingPos) {
			m := tr.pendingPos[ep]
			if t.b.PeerAt(ep) == nil {
				continue
			}
			g := group{m.treeState, m.parent}
			if crowded && asked[g] {
				more = true
				continue
			}
			switch tr.ask(ep, m.treeState, 2) {
			case askSent:
				asked[g] = true
			case askDeferred:
				more = true
			}
		}
		if more {
			tr.armPending()
		}
	})
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
func (tr *tree) learn(from peer.Endpoint, id identity.NodeID, ts uint8, a addr.Long) {
	nb := Neighbor{Via: from, ID: id, Addr: a}
	tr.setNeighbor(ts, nb)
	if tr.cur != nil && ts == tr.cur.pos.TreeState {
		for _, f := range tr.t.placed {
			f(int(tr.k), nb)
		}
	}
	if ts == tr.ts && tr.cur == nil {
		tr.acquire()
	}
	if !tr.retrying {
		tr.retrying = true
		tr.retryPending() // this position may be the parent another was waiting for
		tr.retrying = false
	}
}

// nbrOrder is Neighbors' order: by node_id, then endpoint.
func nbrOrder(a, b *Neighbor) int {
	if c := bytes.Compare(a.ID[:], b.ID[:]); c != 0 {
		return c
	}
	return endpointOrder(a.Via, b.Via)
}

// setNeighbor puts nb in the list of epoch ts, in order, replacing what
// the same endpoint held (a new list: see nbrs).
func (tr *tree) setNeighbor(ts uint8, nb Neighbor) {
	old := tr.nbrs.get(ts)
	if slices.Contains(old, nb) {
		// Told again what we hold (one entry per endpoint): the new list
		// would be this one. Kept, not copied: positions are announced
		// again and again, and the copies were 3 % of what a route
		// simulation allocated.
		return
	}
	l := make([]Neighbor, 0, len(old)+1)
	for i := range old {
		if old[i].Via != nb.Via {
			l = append(l, old[i])
		}
	}
	i, _ := slices.BinarySearchFunc(l, nb, func(x, y Neighbor) int { return nbrOrder(&x, &y) })
	tr.nbrs.set(ts, slices.Insert(l, i, nb))
}

// dropNeighbor removes what endpoint ep held in every epoch.
func (tr *tree) dropNeighbor(ep peer.Endpoint) {
	for i := len(tr.nbrs) - 1; i >= 0; i-- {
		tr.dropNeighborIn(ep, tr.nbrs[i].ts)
	}
}

// dropNeighborIn removes what endpoint ep held in epoch ts.
func (tr *tree) dropNeighborIn(ep peer.Endpoint, ts uint8) {
	old := tr.nbrs.get(ts)
	if !slices.ContainsFunc(old, func(nb Neighbor) bool { return nb.Via == ep }) {
		return
	}
	l := slices.DeleteFunc(slices.Clone(old), func(nb Neighbor) bool { return nb.Via == ep })
	if len(l) == 0 {
		tr.nbrs.del(ts)
	} else {
		tr.nbrs.set(ts, l)
	}
}

// placedIn reports whether we know the position of the neighbour at ep
// in epoch ts.
func (tr *tree) placedIn(ep peer.Endpoint, ts uint8) bool {
	return slices.ContainsFunc(tr.nbrs.get(ts), func(nb Neighbor) bool { return nb.Via == ep })
}

// nbrLists holds tree.nbrs: a list of neighbours per tree_state. A node
// holds a few epochs' at once (the current, the previous, and briefly
// one a neighbour has entered ahead of it), so a slice searched in order
// serves where a map did: the lists are read for every frame routed and
// every claim heard, and a map's look-up, in memory the cache no longer
// held, grew dearer as the mesh did (1.3 % of a 1,000-node `sim route`'s
// CPU, 2.3 % at 2,000).
type nbrLists []nbrList

// nbrList is one epoch's neighbours.
type nbrList struct {
	ts uint8
	l  []Neighbor
}

// get returns the list of epoch ts (nil: none).
func (s nbrLists) get(ts uint8) []Neighbor {
	for i := range s {
		if s[i].ts == ts {
			return s[i].l
		}
	}
	return nil
}

// set replaces the list of epoch ts.
func (s *nbrLists) set(ts uint8, l []Neighbor) {
	for i := range *s {
		if (*s)[i].ts == ts {
			(*s)[i].l = l
			return
		}
	}
	*s = append(*s, nbrList{ts: ts, l: l})
}

// del forgets the list of epoch ts.
func (s *nbrLists) del(ts uint8) {
	*s = slices.DeleteFunc(*s, func(l nbrList) bool { return l.ts == ts })
}

// ask queries a neighbour for the last want certificates of its chain in
// epoch ts (0: all), once per claim period for each length, within the
// node's query budget (queryAllowed).
func (tr *tree) ask(ep peer.Endpoint, ts, want uint8) askResult {
	t := tr.t
	now := t.clk.Now()
	if tr.asked == nil {
		tr.asked = map[peer.Endpoint]askState{}
	}
	if a, ok := tr.asked[ep]; ok && a.want == want && a.ts == ts && now.Sub(a.at) < t.cfg.ClaimPeriod {
		return askRecent
	}
	if _, ok := tr.asked[ep]; !ok && len(tr.asked) >= maxNeighbors {
		return askRecent
	}
	if t.held() && !t.queryAllowed() && !t.gatewayTurn(now) {
		return askDeferred
	}
	t.queryLast = now
	tr.asked[ep] = askState{ts: ts, want: want, at: now}
	t.sendTo(ep, appendQuery(t.buf[:0], tr.k, ts, want))
	return askSent
}

// askResult is what ask did.
type askResult int

const (
	askSent     askResult = iota
	askRecent             // asked the same within a claim period (or too many asked): not again
	askDeferred           // the query budget is spent for now: ask later
)

// QueryAirShare is the share of the channel's time that a neighbourhood's
// nodes may fill before their queries wait [ours]: each node may transmit
// this share divided by the nodes round it (itself and its peers, at most
// crowdMax), as a
// budget of airtime that refills with time (up to a claim period's worth)
// and that everything the node transmits draws on, the MAC's retries
// included (node.Bind.TxAirtime), in a crowd (inCrowd); only the queries wait while it is
// spent, the one kind of control traffic that only mends (a lost
// broadcast, a parent's place not yet known) and may come later. Round
// the densest node of a 200-node mesh of degree 28 (44 neighbours), while
// six trees formed, the frames offered took 125–135 % of the channel's
// time: queries and their suffix answers with their acks about 90 %, a
// query frame sent 5.6 times on average (MAC retries, then the node's)
// and four in five of them unanswered (most asked a neighbour with no
// place yet to tell).
// Frames collided, nodes went deaf, live roots were buried, and the trees
// did not converge in 30 minutes. A node of a sparse mesh (8 neighbours)
// sends far below its share and is never held.
const QueryAirShare = 0.5

// crowdMax bounds the nodes a budget is divided by: a rooftop gateway's
// hundreds of neighbours mostly hear only it (each sees one peer, and is
// not held), and at a two-hundredth of the air the gateway's own queries
// starved (hubs of 300 nodes, six trees, seeds 1 and 2: trees in 1,551.5
// and 1,606 s undivided, 1,226.5 and 1,407 s with the cap; the densest
// node of a 200-node mesh of degree 28 has 44 to 47 neighbours).
const crowdMax = 48

// crowdMin is the fewest nodes round us (ourselves and our peers) that
// make a crowd: the air budget (QueryAirShare) holds our queries, and
// positions waiting for one parent are asked for one at a time
// (armPending), only there. In a sparse mesh a node's share of the air
// is large, and a busy node bursting past it while its few neighbours
// are quiet crowds nothing: held there too, random 1,000 nodes (degree
// 8), seed 2, converged in 226 s against 198.
const crowdMin = 16

// inCrowd reports whether the node is in a crowd (crowdMin).
func (t *Trees) inCrowd() bool { return t.b.PeerCount()+1 >= crowdMin }

// held reports whether the node's queries are held to its air budget
// (QueryAirShare) and asked one per unknown parent (armPending): in a
// crowd, but for a gateway (more nodes round it than crowdMax) only while
// the air is busy (node.Bind.AirBusy). A gateway's neighbours mostly hear
// only it; its answers, positions and grants to them alone outspend a
// forty-eighth of the channel, so held always it never asked anything:
// hubs of 300 nodes, two trees, seed 3, the gateway (228 neighbours) sent
// no query in 20 minutes, its budget pinned at its floor, and knew the
// places of 73 of its 206 placed neighbours in tree 1 for a quarter of an
// hour (trees in 1,164.5 s against 241 unheld). The densest node of a
// 200-node mesh of degree 28 has at most 47 neighbours: held always.
func (t *Trees) held() bool {
	n := t.b.PeerCount() + 1
	return n >= crowdMin && (n <= crowdMax || t.b.AirBusy())
}

// gatewayTurn reports whether a gateway held by its spent budget may
// still ask now: one query every fifth of a settle time (200 ms on
// ESP-NOW), whatever its budget. Its budget stays pinned at its floor
// while it answers its hundreds of neighbours, and held while the air was
// busy it asked nothing: hubs of 300 nodes, six trees, seed 2, the gateway
// (143 neighbours) knew 36 of its 143 neighbours' places in a tree for
// minutes, and the trees did not converge in 30 minutes (with this turn:
// 1,448.5 s).
func (t *Trees) gatewayTurn(now time.Time) bool {
	return t.b.PeerCount()+1 > crowdMax && now.Sub(t.queryLast) >= t.settle()/5
}

// queryRate is the node's share of the air (QueryAirShare).
func (t *Trees) queryRate() float64 {
	return QueryAirShare / float64(min(t.b.PeerCount()+1, crowdMax))
}

// queryAllowed reports whether the node's airtime budget (QueryAirShare)
// lets a query go now.
func (t *Trees) queryAllowed() bool {
	now, used := t.clk.Now(), t.b.TxAirtime()
	rate := t.queryRate()
	limit := time.Duration(rate * float64(t.cfg.ClaimPeriod))
	// The air spent since we last looked is taken as spent just now (we
	// do not know when): a quiet spell buys no burst past a claim
	// period's worth, and a busy one no wait past a claim period.
	t.queryCredit = min(t.queryCredit+time.Duration(rate*float64(now.Sub(t.queryAt))), limit)
	t.queryCredit = max(t.queryCredit-(used-t.queryUsed), -limit)
	t.queryAt, t.queryUsed = now, used
	return t.queryCredit > 0
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
	p := t.b.PeerAt(from)
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
	var a addr.Long
	for i := range m.certs {
		var err error
		a, err = t.v.VerifyCert(term, ed25519.PublicKey(parent[:]), &m.certs[i])
		if errors.Is(err, cert.ErrUnknownParent) && i == 0 {
			want := 2 * len(m.certs)
			if want >= 8 {
				want = 0 // the whole chain
			}
			if tr.ask(from, m.treeState, uint8(want)) == askDeferred {
				tr.armPending() // the position is still pending: ask when the budget allows
			}
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

// onQuery answers a neighbour that asks where we are in epoch ts, or for
// our root's newest claim.
func (tr *tree) onQuery(from peer.Endpoint, ts, want uint8) {
	if want == wantClaim {
		if tr.haveRoot && !tr.rootDead && ts == tr.ts {
			// In a crowd, not with a claim a round and a quarter old
			// [ours]: a neighbour asks from a round and a half on, so
			// that one is most likely the round it holds too, and the
			// query's ACK alone tells it we live. It hears the newer
			// claim once we have it (pullFor). A rooftop gateway that
			// missed a round answered two hundred children with the
			// claim they held (h41pullstale). Out of a crowd (a line,
			// a ring) a claim a round older than ours may still be the
			// asker's, and the answer is one frame.
			if !tr.claimStale() || !tr.t.inCrowd() {
				tr.t.sendTo(from, appendClaim(tr.t.buf[:0], &tr.latest, tr.distance()))
			}
			tr.pullFor(from)
		}
		return
	}
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
	if len(t.Neighbors(int(tr.k), tr.ts)) >= t.b.PeerCount() {
		return // (the common case, checked cheaply: without the sorted list)
	}
	peers := t.b.Peers()
	if tr.queried == nil {
		tr.queried = map[peer.Endpoint]queryState{}
	}
	// While the air is busy, fewer at a time (one a watch), but each
	// neighbour asked again as often as in quiet air: the count bounds
	// the air the queries take, and a longer wait per neighbour only made
	// a busy node that had missed one place wait five minutes for it
	// (BusyMaxWait; 2,000 nodes, random, seed 3: the trees converged at
	// 559 s, the last 229 s waiting on one busy node's query).
	pace := t.pace()
	n := 0
	for _, p := range peers {
		for _, ep := range p.Endpoints {
			if n >= maxQueries/pace {
				return
			}
			if !t.b.SpeaksOurs(ep) {
				continue
			}
			if tr.placedIn(ep, tr.ts) {
				continue
			}
			q, ok := tr.queried[ep]
			if ok && now.Sub(q.at) < (2*t.cfg.ClaimPeriod)<<min(q.n, maxQueryBackoff) {
				continue
			}
			if tr.ask(ep, tr.ts, 1) == askDeferred {
				return // the budget is spent: the next watch asks
			}
			if ok {
				q.n++
			}
			tr.queried[ep] = queryState{at: now, n: q.n}
			n++
		}
	}
}

// queryState is a neighbour asked for its place in the current epoch: when
// last, and how many times before that it did not answer.
type queryState struct {
	at time.Time
	n  int
}

// maxQueryBackoff: a neighbour that does not answer is asked again after
// two claim periods, then every 2<<maxQueryBackoff (four). One without a
// place answers nothing, and the queries to it were a large part of the
// air around a rooftop gateway: its two hundred neighbours asked it,
// placeless, every two periods in each of six trees, and it was the one
// that most needed the air. (A node that gets a place tells its
// neighbours by broadcast, twice; the queries only mend lost ones. Waits
// growing to 16 periods, with four queries a watch, slowed clustered
// meshes' convergence; these leave it as it was.)
const maxQueryBackoff = 1

// maxQueries bounds the neighbours queryMissing asks at one watch (each
// tree, every half claim period): a rooftop gateway missing the places of
// two hundred neighbours asked them all at once, and their answers, from
// nodes hidden from each other, collided at it and were sent again by the
// MAC. The rest are asked at the next watches (see maxQueryBackoff).
const maxQueries = 16

// notifyAll tells the neighbours where we are: one broadcast of our
// certificate (neighbours that miss it ask, see queryMissing).
func (tr *tree) notifyAll() {
	if tr.cur == nil {
		return
	}
	t := tr.t
	if tr.cur.pos.Root {
		tr.cur.chainSent = true // a root's position is its whole chain (the claim alone)
	}
	if !tr.cur.pos.Root && (tr.certAnswers() >= chainNotifyMin || tr.hadChildren() >= chainNotifyMin) {
		// Those we held until we had a place get their certificate alone
		// (serveWaiting): our chain goes to them all in one broadcast
		// first, at once (not jittered: their answers follow it in our
		// queue). One that misses it asks for the whole chain.
		//
		// So does a node whose previous place had children, though it
		// held none of their requests [ours]: they ask again after it
		// has its place, and holding its chain they ask with
		// ReqHaveChain (a certificate each in answer); every neighbour
		// that hears the chain knows its place without asking for it
		// (a position names a parent it may not know yet). A rooftop
		// gateway (hubs of 300 nodes, six trees, seed 10) mostly took
		// its place in a renewal before its children asked and
		// broadcast its position alone: 270 of its 738 answers in the
		// steady window were whole chains. On clustered 1,000 the
		// mean node's air in the steady window went from 0.212 to
		// 0.179 %: queries, their answers and answers to requests
		// from 0.078 to 0.049 % (h40chainfirst).
		tr.cur.chainSent = true
		tr.cur.chainAgain = true
		msg := appendNotify(t.buf[:0], &tr.cur.chain)
		for i := range t.b.Links() {
			t.broadcastOn(i, bytes.Clone(msg))
		}
	} else {
		t.broadcastJittered(appendPosition(t.buf[:0], &tr.cur.chain))
	}
	if !tr.cur.pos.Root {
		// Our parent must know us (greedy routing toward an address below
		// us ends at it otherwise): tell it reliably.
		t.sendTo(tr.cur.parent, appendPosition(t.buf[:0], &tr.cur.chain))
	}
	// Once more a little later: a broadcast has no ack, and in the rush of
	// an epoch's start a neighbour may well miss one (a query costs more).
	// The whole chain again if we sent it: a child that got its
	// certificate alone and missed the first waits for this one before it
	// asks for the whole chain (onCertAnswer); on hubs of 300 nodes a
	// fifth to a third of a gateway's children missed the first, and
	// each would have cost the chain in an answer of its own.
	ts, term, s := tr.ts, tr.term, tr.cur
	t.clk.AfterFunc(t.settle()+time.Duration(t.rng.Int64N(int64((notifyAgainSettles-1)*t.settle()))), func() {
		if tr.cur != nil && tr.ts == ts && tr.term == term {
			if tr.cur.chainSent && !tr.cur.pos.Root {
				// Not jittered again: the wait above spreads the
				// neighbours' second broadcasts over two settle times
				// already, and a child waiting for this one knows when
				// it is due (chainAgainBy).
				left := t.b.Links()
				t.broadcastThen(0, 0, appendNotify(t.buf[:0], &tr.cur.chain), func() {
					if left--; left == 0 {
						s.chainAgain = false
					}
				})
				return
			}
			t.broadcastJittered(appendPosition(t.buf[:0], &tr.cur.chain))
		}
		s.chainAgain = false
	})
}

// notifyAgainSettles: notifyAll's second broadcast leaves within this many
// settle times of the node's place (one, and a random part of the rest).
const notifyAgainSettles = 3

// chainAgainBy bounds how long after a node took its place its second
// chain broadcast (notifyAll) takes to reach a neighbour, as far as the
// neighbour can know: notifyAgainSettles settle times, the airtime of the
// longest chain a broadcast can carry, and a round trip to from. A child
// that got its certificate alone from from and lacks its chain waits this
// long for it (onCertAnswer): the answer left when its parent took its
// place, so this is all the chain can still be on its way; after it,
// asking is the only way to get it.
func (t *Trees) chainAgainBy(from peer.Endpoint) time.Duration {
	var air time.Duration
	for i := range t.b.Links() {
		air = max(air, t.b.Airtime(peer.Endpoint{Link: i, Addr: link.Broadcast}, 1+cert.MaxChainSize))
	}
	return notifyAgainSettles*t.settle() + air + t.roundTrip(from)
}

// chainNotifyMin is the fewest held requests that make a node broadcast
// its whole chain on taking its place (notifyAll) and answer them with
// their certificates alone: one broadcast of the chain (claim 113 bytes
// and 97 a certificate) instead of the chain in each answer pays from
// two answers on.
const chainNotifyMin = 2

// hadChildren is how many children our place in the previous epoch of
// this tree had: about as many will ask us in this one.
func (tr *tree) hadChildren() int {
	if tr.prev == nil {
		return 0
	}
	return len(tr.prev.children)
}

// certAnswers counts the held requests that understand a certificate
// alone (StatusCert).
func (tr *tree) certAnswers() int {
	n := 0
	for _, w := range tr.waiting {
		if w.ext {
			n++
		}
	}
	return n
}

func (tr *tree) changed() {
	for _, f := range tr.t.subs {
		f(int(tr.k))
	}
}
