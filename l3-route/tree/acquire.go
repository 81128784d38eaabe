package tree

// Acquiring a place: the request to the neighbour closest to the root, the
// parent's answer with a signed chain, and the chain's notification.

import (
	"bytes"
	"crypto/ed25519"
	"math"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

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
	// A parent without room (135 children) sends us one level deeper at
	// once: its other neighbours are there, as near the root as we can get.
	slack := int(now.Sub(tr.epochAt)/t.cfg.ClaimPeriod) + len(tr.full)
	limit := math.MaxInt
	if tr.upHops > 0 {
		limit = int(tr.upHops) - 1 + slack
	}
	var best *candidate
	others := false // a neighbour with room for us, maybe, at any depth
	consider := func(c candidate) {
		if _, full := tr.full[c.via]; !full && t.b.SpeaksOurs(c.via) {
			others = true
		}
		if at, ok := tr.tried[c.via]; (ok && now.Sub(at) < t.cfg.ClaimPeriod/2) || !t.b.SpeaksOurs(c.via) || c.dist > limit {
			return
		}
		if _, full := tr.full[c.via]; full {
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
		if !tr.placedIn(ep, tr.ts) && tr.heard[ep] < tr.upHops {
			var id identity.NodeID
			if p := t.b.PeerAt(ep); p != nil {
				id = p.ID
			}
			consider(candidate{via: ep, dist: int(tr.heard[ep]), id: id})
		}
	}
	if best == nil && !others && len(tr.full) > 0 {
		// Every neighbour that could be our parent is full: no place in
		// this epoch will come. The layer above leases an address from
		// one of them instead.
		ep := tr.fullest()
		for _, f := range t.crowded {
			f(int(tr.k), ep)
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
	tr.wantWhole, tr.certAns = false, nil
	clock.Stop(&tr.wholeTmr)
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
		clock.Stop(&tr.reqTmr)
		tr.acquire()
	}
	// One request on its way at a time: the node retries it until the
	// neighbour acks it, and asking again meanwhile only adds frames for a
	// neighbour that is missing them already (170 children of one gateway,
	// each re-asking every few seconds on top of the node's retries, kept
	// the gateway's air nine parts in ten collisions).
	if tr.reqOut == 0 {
		tr.reqOut++
		var flags uint8
		if !tr.wantWhole && tr.heldChainOf(via) != nil {
			flags = ReqHaveChain
		}
		t.sendReliableDone(via, appendRequest(t.buf[:0], tr.k, tr.ts, t.pk, flags), func(err error) {
			tr.reqOut--
			// (Unless it has told us it holds the request: then an ack
			// was lost, not the neighbour.)
			if err != nil && current() && !tr.heldAt.After(tr.pendingAt) {
				giveUp("the hop failed")
			}
		})
		if !current() {
			// The node refused the send at once (too many waiting for
			// that neighbour: a busy node's air drains slowly), and
			// giveUp has asked the next neighbour, with a timer of its
			// own. Setting ours now would stop that one and leave the
			// next request without a verdict: the node waited on it until
			// the next term (traced at 5,000 nodes: pending 250 to 315 s,
			// no timer, placed neighbours in reach).
			return
		}
	}
	clock.Stop(&tr.reqTmr)
	// Until it says it holds the request, we ask again soon; once it has,
	// rarely (it answers when it can; we only check it is still there).
	again := max(t.cfg.ClaimPeriod/8, t.roundTrip(via))
	if tr.heldAt.After(tr.pendingAt) {
		again = max(t.cfg.ClaimPeriod/3, t.roundTrip(via))
	}
	again = t.BusyPaced(again)
	again += time.Duration(t.rng.Int64N(int64(again / 2)))
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
// to anyone without that key's private half. flags are the request's
// (ReqHaveChain), ext whether it carried them at all.
//
// The answer is our whole chain with its certificate at the end (PROTOCOL
// 6.1), or [ours] the certificate alone (StatusCert) when the asker holds
// our chain: it says so (ReqHaveChain), or it is one of those we held
// until we had a place and we broadcast our chain on taking it
// (slot.chainSent). A rooftop gateway several levels deep answers about
// a hundred children a tree at each renewal; the whole chain, 4–5 frames
// each, was 0.5–1.0 % of its air on every hubs seed (h25gate), the
// certificate alone is one frame.
func (tr *tree) onRequest(from peer.Endpoint, ts uint8, child identity.NodeID, flags uint8, ext bool) {
	t := tr.t
	if p := t.b.PeerAt(from); p != nil && p.ID != child {
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
			tr.waiting = map[peer.Endpoint]waiter{}
		}
		if _, ok := tr.waiting[from]; ok || len(tr.waiting) < addr.MaxCoord {
			tr.waiting[from] = waiter{id: child, ext: ext}
			t.sendTo(from, appendResponse(t.buf[:0], StatusWait, nil))
			return
		}
	}
	if s == nil || s.pos.TreeState != ts {
		t.sendTo(from, appendResponse(t.buf[:0], StatusNoPosition, nil))
		return
	}
	idx, ok := s.children[child]
	certOnly := ext && flags&ReqHaveChain != 0
	last, answered := s.answered[child]
	if ok && answered && (last.sending || t.clk.Now().Sub(last.at) < t.roundTrip(from)) && (certOnly || !last.certOnly) {
		// Our answer is on its way (still in our queue or being sent, or
		// just sent over a slow link): a second would only crowd it, and
		// the child's requests, re-sent every eighth of a claim period,
		// each got a whole chain of its own. On clustered 1,000 seed 4 a
		// relay between towns (5.5 % of its air) sent one child nine
		// whole chains in 72 s; the first to arrive came 72 s after the
		// first was sent, four more in the next 107 s (h27clust4). (Unless it
		// was the certificate alone and the asker now wants the whole
		// chain: it could not complete it.)
		return
	}
	if ok && answered && last.certOnly && !certOnly && s.chainAgain {
		// It got its certificate alone and missed our chain's first
		// broadcast; the second has not gone yet (behind a gateway's
		// queue of answers it can be seconds late): it brings the chain,
		// an answer of its own would only add frames. (It asks again if
		// it misses that one too.)
		return
	}
	if !ok {
		if s.next == 0 || s.next > addr.MaxCoord {
			t.sendTo(from, appendResponse(t.buf[:0], StatusFull, nil))
			return
		}
		idx = s.next
	}
	ch, err := s.chain.Extend(t.id, ed25519.PublicKey(child[:]), idx)
	if err != nil {
		t.sendTo(from, appendResponse(t.buf[:0], StatusTooDeep, nil))
		return
	}
	if !ok {
		s.children[child] = idx
		s.next++
	}
	if s.answered == nil {
		s.answered = map[identity.NodeID]answer{}
	}
	at := t.clk.Now()
	s.answered[child] = answer{at: at, certOnly: certOnly, sending: true}
	var res *node.Result
	if certOnly {
		res = t.sendTo(from, appendCertResponse(t.buf[:0], tr.k, s.pos.TreeState, &ch.Certs[len(ch.Certs)-1]))
	} else {
		res = t.sendTo(from, appendResponse(t.buf[:0], StatusOK, &ch))
	}
	res.OnDone(func(error) {
		if a, ok := s.answered[child]; ok && a.at.Equal(at) {
			a.sending = false
			s.answered[child] = a
		}
	})
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
	if m.status == StatusCert {
		tr.onCertAnswer(from, certAnswer{from: from, ts: m.treeState, cert: m.cert})
		return
	}
	if m.status != StatusOK {
		if m.status == StatusFull {
			if tr.full == nil {
				tr.full = map[peer.Endpoint]time.Time{}
			}
			tr.full[from] = t.clk.Now()
		}
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
		clock.Stop(&tr.reqTmr)
		tr.acquire()
		return
	}
	tr.take(from, m.chain)
}

// onCertAnswer: our parent-to-be answered with our certificate alone
// (StatusCert). With its chain (from its broadcast) we have ours; without
// it we wait for the broadcast (the parent answers those it held as soon
// as it sends it, a sequence of several frames may arrive after a
// one-frame answer, and the parent sends it once more a few settle times
// later), then ask for the whole chain: never stuck on a broadcast we
// missed.
func (tr *tree) onCertAnswer(from peer.Endpoint, a certAnswer) {
	t := tr.t
	if a.ts != tr.ts {
		return // another epoch's: ours is asked again
	}
	if pc := tr.heldChainOf(from); pc != nil {
		ch := cert.Chain{Claim: pc.Claim, Certs: append(slices.Clone(pc.Certs), a.cert)}
		tr.certAns = nil
		clock.Stop(&tr.wholeTmr)
		tr.take(from, ch)
		return
	}
	tr.certAns = &a
	if tr.wholeTmr != nil {
		return
	}
	// The parent is there and has our place: no request goes until the
	// wait is over (one re-sent meanwhile, without our holding the chain,
	// would fetch the whole chain: on hubs seed 4 a gateway's answers and
	// broadcasts queued behind each other for seconds in a renewal, and
	// the chain came after the re-sent requests had asked for it again).
	// The wait: until the parent's second broadcast of its chain can have
	// reached us (chainAgainBy, from its schedule), no longer. With a
	// third of a claim period at least (h26cert), every child that missed
	// both broadcasts waited 6.7 s, and the children it held waited with
	// it: on random 1,000 seed 2, 331 of the cold start's 5,990 places,
	// at every depth (h28rand). A parent whose second broadcast is later
	// than that (a gateway's queue) does not answer the ask (onRequest).
	clock.Stop(&tr.reqTmr)
	tr.heldAt = t.clk.Now()
	ts, term := tr.ts, tr.term
	tr.wholeTmr = t.clk.AfterFunc(t.chainAgainBy(from), func() {
		tr.wholeTmr = nil
		if tr.certAns == nil || tr.pending == nil || *tr.pending != from || tr.ts != ts || tr.term != term {
			return
		}
		// The certificate is kept: the parent's second broadcast, if it
		// is late, still completes it (its answer to our request is
		// then none, onRequest).
		tr.wantWhole = true
		tr.sendRequest(from)
	})
}

// heldChainOf is the chain ep broadcast in our current epoch, if we keep
// it (keepChain).
func (tr *tree) heldChainOf(ep peer.Endpoint) *cert.Chain {
	p := tr.t.b.PeerAt(ep)
	if p == nil || !tr.haveRoot {
		return nil
	}
	term := tr.curTerm()
	for i := range tr.held {
		h := &tr.held[i]
		if h.from == ep && h.chain.Claim.Term() == term && bytes.Equal(h.chain.Holder(), p.ID[:]) {
			return &h.chain
		}
	}
	return nil
}

// keepChain keeps a neighbour's verified chain of our current epoch while
// we have no place in it: its answer to our request may then be our
// certificate alone. Of more than maxHeldChains, the shallowest are kept:
// we ask the neighbour nearest the root (acquire), and in the rush of a
// renewal the chains of deeper neighbours (answers to their own
// neighbours' queries, broadcasts of nodes holding requests) would push
// out our parent's.
func (tr *tree) keepChain(from peer.Endpoint, ch *cert.Chain) {
	if tr.cur != nil || !tr.haveRoot || ch.Claim.Term() != tr.curTerm() {
		return
	}
	tr.held = slices.DeleteFunc(tr.held, func(h heldChain) bool { return h.from == from })
	if len(tr.held) >= maxHeldChains {
		deepest := 0
		for i := range tr.held {
			if tr.held[i].chain.Depth() > tr.held[deepest].chain.Depth() {
				deepest = i
			}
		}
		if tr.held[deepest].chain.Depth() <= ch.Depth() {
			return
		}
		tr.held = slices.Delete(tr.held, deepest, deepest+1)
	}
	tr.held = append(tr.held, heldChain{from: from, chain: cloneChain(*ch)})
	if a := tr.certAns; a != nil && a.from == from && tr.pending != nil && *tr.pending == from {
		tr.onCertAnswer(from, *a)
	}
}

// take takes the place our parent-to-be's answer proves, if it does.
func (tr *tree) take(from peer.Endpoint, ch cert.Chain) {
	t := tr.t
	if !bytes.Equal(ch.Holder(), t.pk) || ch.Claim.Term() != tr.curTerm() {
		t.stats.Rejected++
		return
	}
	a, err := t.v.Verify(&ch)
	if err != nil {
		t.stats.Rejected++
		tr.tried[from] = t.clk.Now()
		tr.pending = nil
		clock.Stop(&tr.reqTmr)
		tr.acquire()
		return
	}
	tr.pending = nil
	clock.Stop(&tr.reqTmr)
	tr.held, tr.certAns, tr.wantWhole = nil, nil, false
	clock.Stop(&tr.wholeTmr)
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
		if p := t.b.PeerAt(from); p != nil && p.ID == pid {
			tr.learn(from, pid, tr.ts, pa)
		}
	}
	tr.changed()
	tr.notifyAll()
	tr.serveWaiting()
}

// fullest is the neighbour that refused us for want of room last.
func (tr *tree) fullest() peer.Endpoint {
	var ep peer.Endpoint
	var at time.Time
	for _, e := range sortedEndpoints(tr.full) {
		if tr.full[e].After(at) {
			ep, at = e, tr.full[e]
		}
	}
	return ep
}

// serveWaiting answers the requests held until we had a place.
func (tr *tree) serveWaiting() {
	w := tr.waiting
	tr.waiting = nil
	for _, ep := range sortedEndpoints(w) {
		var flags uint8
		if tr.cur != nil && tr.cur.chainSent {
			flags = ReqHaveChain // it heard our chain broadcast, most likely (else it asks for it)
		}
		tr.onRequest(ep, tr.ts, w[ep].id, flags, w[ep].ext)
	}
}

// onNotify: a neighbour tells us its position.
func (tr *tree) onNotify(from peer.Endpoint, ch *cert.Chain) {
	t := tr.t
	p := t.b.PeerAt(from)
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
	if _, ok := tr.termFor(term.TreeState); ok && !tr.knownTerm(term) {
		// A term we do not know under a tree_state we are in: a tree_state
		// names one of 16 epochs, and another term took this one. The
		// neighbour left the epoch we saw it in, whatever place we knew it
		// by there is gone: routing on it could go the wrong way.
		tr.dropNeighborIn(from, term.TreeState)
	}
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
		if len(tr.ahead) < maxNeighbors {
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
	tr.keepChain(from, ch)
	tr.learn(from, p.ID, term.TreeState, a)
}
