package route

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// routed is a routed Package at this node: the header it carries, the
// Package as it travels (a path header, or the Package itself), the path
// header decoded (nil for a plain Package), the Package its origin made,
// and the neighbour it came from (zero when we made it).
type routed struct {
	Header node.RouteHeader
	Pkg    packet.Package
	Path   *pathHeader
	Inner  packet.Package
	Via    peer.Endpoint
	Time   time.Time
	// The path header's phase and bound as the Package came (what every
	// decision here starts from), and how many times a hop from here
	// failed and the Package was sent another way.
	inPhase  uint8
	inBound  uint64
	reroutes int
	avoid    []peer.Endpoint // neighbours a hop of this Package failed to here
}

// maxReroutes bounds the other ways a node tries when a hop fails for want
// of answers (the neighbour died, or its radio is swamped) before it
// reports the failure back.
const maxReroutes = 2

// HandleRouted is the node handing us a routed Package from a neighbour
// (node.Layer).
func (r *Router) HandleRouted(h node.RouteHeader, pkg *packet.Package, via peer.Endpoint, at time.Time) {
	rp := &routed{Header: h, Pkg: *pkg, Via: via, Time: at}
	if pkg.AppID == PathApp {
		rp.Path = &pathHeader{}
		if err := decodePath(pkg.Blob, rp.Path, &rp.Inner); err != nil {
			r.stats.Malformed++
			return
		}
	} else {
		rp.Inner = rp.Pkg
	}
	if r.onPath(rp) {
		return
	}
	from := via
	r.forward(rp, false, &from)
}

// forward makes the routing decision for a Package here: deliver, pass to
// the neighbour of least potential, or report an error back toward its
// origin.
func (r *Router) forward(rp *routed, originated bool, from *peer.Endpoint) {
	if rp.Path != nil {
		r.forwardPath(rp, originated, from)
		return
	}
	h := rp.Header
	self, ok := r.position(h.TreeState)
	if !ok {
		r.stats.NoRoute++
		r.reportError(rp, node.ErrNoRoute)
		return
	}
	to := addr.Address(h.To).Long()
	if self.Addr.SameHolder(to) {
		r.local(rp)
		return
	}
	if self.Addr.Equal(to) && self.Addr.LeaseID() == 0 && to.LeaseID() != 0 {
		r.toLeaseholder(rp, h.TreeState, to)
		return
	}
	if !r.hopLimit(rp, originated, from) {
		return
	}
	r.decidePlain(rp, originated, from)
}

// decidePlain picks the next hop of a plain Package that stops here and
// sends it on.
func (r *Router) decidePlain(rp *routed, originated bool, from *peer.Endpoint) {
	h := rp.Header
	self, ok := r.position(h.TreeState)
	if !ok {
		r.stats.NoRoute++
		r.reportError(rp, node.ErrNoRoute)
		return
	}
	to := addr.Address(h.To).Long()
	next, ok := r.plainNext(self, h, to, from, rp.avoid)
	if r.leases.proxied && originated {
		next, ok = r.proxyNeighbor(self.Addr.Canonical()), true
	}
	if !ok {
		if endsHere(rp) {
			// The end of a name's greedy path: its records live here.
			r.local(rp)
			return
		}
		r.stats.NoRoute++
		r.reportError(rp, node.ErrNoRoute)
		return
	}
	r.traceHop(rp, self.Addr, next)
	r.observe(Hop{Hash: rp.Inner.Hash, Self: r.self, Next: next.ID, From: r.idAt(from), NextAddr: next.Addr, TreeState: h.TreeState, TTL: h.TTL, To: to, Mode: h.Mode, Error: h.Error})
	r.send(rp, next, originated, from)
}

// endsHere reports whether a name's registration or lookup that can go no
// further from here has reached the end of its greedy path, where its
// records live: only if no hop toward its key failed here. One that did
// (the neighbour nearer the key did not ack, and no other is nearer) is
// stopped short of its home: stored here, a record would be confirmed
// where no lookup looks for it (on LoRa, 1-2 % of lookups failed so, a
// relay next to the registering node keeping its record), and a lookup
// would be answered "not here". It is dropped instead; its sender tries
// again.
func endsHere(rp *routed) bool { return isLookup(&rp.Inner) && len(rp.avoid) == 0 }

// hopLimit applies the hop limit to a Package we pass on (PROTOCOL 7:
// errors count up, others down) and reports whether it may go on.
func (r *Router) hopLimit(rp *routed, originated bool, from *peer.Endpoint) bool {
	if originated {
		return true
	}
	h := &rp.Header
	switch {
	case h.Error && h.TTL == 255:
		return false // an error that cannot travel further is dropped
	case h.Error:
		h.TTL++
	case h.TTL <= 1:
		r.stats.HopLimit++
		r.reportError(rp, node.ErrHopLimit)
		return false
	default:
		h.TTL--
	}
	if r.leases.proxied && from != nil {
		// A leaf's only way out is its proxy; it never relays.
		r.stats.NoRoute++
		r.reportError(rp, node.ErrNoRoute)
		return false
	}
	return true
}

// heldByOthers reports whether more of the places dst lists (those in
// epochs we know) are held by another node than by us: the count an
// untagged path header is taken as ours by (forwardPath).
func (r *Router) heldByOthers(dst []TreeAddr) bool {
	held, other := 0, 0
	for _, d := range dst {
		self, ok := r.position(d.TreeState)
		switch {
		case !ok:
		case self.Addr.SameHolder(d.Addr):
			held++
		case !(self.Addr.Equal(d.Addr) && d.Addr.LeaseID() != 0):
			other++
		}
	}
	return other > held
}

// forwardPath routes a Package in a path header.
func (r *Router) forwardPath(rp *routed, originated bool, from *peer.Endpoint) {
	ph := rp.Path
	// Ours only if the places the header lists agree: a tree's tree_state
	// names one of 16 epochs, so two terms of a tree (a new root's, and one
	// a part of the mesh still keeps) can share one, and the same
	// coordinates then name two nodes. The destination holds the listed
	// places in the epochs it knows (all but a stale one); a namesake holds
	// one and not the others, and passes the Package on. (With two trees
	// one against one is a tie, taken as ours: a stale entry is as likely.)
	// A header that names its destination (its node_id's tag) is ours
	// only if the tag is ours, whatever the places say: a record older
	// than the trees can list only places another node holds now, or one
	// term's place and a namesake's (on a line of 200 nodes, 23 of 1,000
	// probes were taken so), and no count of places tells those apart.
	var namesake bool
	if ph.hasDstTag {
		namesake = ph.dstTag != dstTagOf(r.self)
	} else {
		namesake = r.heldByOthers(ph.dst)
	}
	for _, d := range ph.dst {
		self, ok := r.position(d.TreeState)
		if !ok {
			continue
		}
		if self.Addr.SameHolder(d.Addr) {
			if namesake {
				r.stats.Namesakes++
				continue
			}
			r.local(rp)
			return
		}
		if self.Addr.Equal(d.Addr) && self.Addr.LeaseID() == 0 && d.Addr.LeaseID() != 0 {
			r.toLeaseholder(rp, d.TreeState, d.Addr)
			return
		}
	}
	if !r.hopLimit(rp, originated, from) {
		return
	}
	rp.inPhase, rp.inBound = ph.phase, ph.bound
	r.decidePath(rp, originated, from)
}

// decidePath picks the next hop of a path header that stops here and
// sends it on.
func (r *Router) decidePath(rp *routed, originated bool, from *peer.Endpoint) {
	ph := rp.Path
	h := rp.Header
	ph.phase, ph.bound = rp.inPhase, rp.inBound
	var (
		next             tree.Neighbor
		phase            uint8
		selfPot, nextPot uint64
		ok               bool
	)
	if r.leases.proxied && originated {
		// A leaf (no tree of its own) sends through its proxy, one level
		// above each of its leases.
		next, phase, selfPot, nextPot, ok = r.viaProxy(ph, h.Mode)
	} else {
		next, phase, selfPot, nextPot, ok = r.pathNext(ph, h.Mode, rp.avoid)
	}
	if !ok {
		if endsHere(rp) {
			r.local(rp)
			return
		}
		r.stats.NoRoute++
		r.reportError(rp, node.ErrNoRoute)
		return
	}
	if phase != ph.phase {
		r.stats.Fallbacks++
	}
	ph.phase, ph.bound = phase, nextPot
	rp.Pkg = packet.NewPackage(PathApp, appendPath(nil, ph, &rp.Inner))
	if self, ok := r.position(h.TreeState); ok {
		r.traceHop(rp, self.Addr, next)
	}
	r.observe(Hop{Hash: rp.Inner.Hash, Self: r.self, Next: next.ID, From: r.idAt(from), TreeState: h.TreeState, TTL: h.TTL, Mode: h.Mode, Error: h.Error,
		Path: true, Phase: phase, BoundIn: rp.inBound, SelfPot: selfPot, NextPot: nextPot, Dst: ph.dst, Nonce: ph.nonce, HasNonce: ph.hasNonce})
	r.send(rp, next, originated, from)
}

// send passes a Package one hop on, and handles the hop's failure: a
// neighbour that does not answer is left out for a while (suspect) and the
// Package, with the bound it came with, goes another way if there is one
// (so does one whose queue here is full), a few times, before the failure
// is reported back.
func (r *Router) send(rp *routed, next tree.Neighbor, originated bool, from *peer.Endpoint) {
	if !originated {
		r.stats.Forwarded++
	}
	hash := rp.Inner.Hash
	var opt *node.SendOptions
	if isAnswer(rp) {
		opt = &answerOpts
	}
	res := r.b.SendRouted(next.Via, rp.Header, &rp.Pkg, opt)
	res.OnDone(func(err error) {
		if err == nil {
			return
		}
		silent := errors.Is(err, node.ErrAbandoned) || errors.Is(err, node.ErrLink) || errors.Is(err, node.ErrPeerAsleep)
		if silent {
			r.suspect(next.Via)
		}
		if silent || errors.Is(err, node.ErrBusy) {
			// (A neighbour whose queue here is full is not suspect: it is
			// busy; another way may not be.)
			if rp.reroutes < maxReroutes && !r.leases.proxied {
				rp.reroutes++
				rp.avoid = append(rp.avoid, next.Via)
				r.stats.Reroutes++
				if rp.Path != nil {
					r.decidePath(rp, originated, from)
				} else {
					r.decidePlain(rp, originated, from)
				}
				return
			}
		}
		var remote *node.RemoteError
		if errors.As(err, &remote) {
			err = remote.Err
		}
		if originated {
			r.failed(hash, err, false)
			return
		}
		r.reportError(rp, err)
	})
}

// answerPriority is the l2-seq priority of the answers (isAnswer) on every
// hop: it lets them into the quarter of a neighbour's send queue that
// requests, registrations and Packages cannot fill (node.SendOptions), so
// that a relay whose queue toward its next hop is mostly full refuses new
// work at once, as before, but still passes on the answers to work done
// already.
const answerPriority = 1

// answerOpts is the options of every answer's hop: one value, read only
// (l2-seq keeps nothing of it), not one made on every hop.
var answerOpts = node.SendOptions{Priority: answerPriority}

// isAnswer reports whether rp finishes work already under way: a routed
// error report, a receipt, a lookup's or a name lookup's answer, a
// registration's confirmation, a trace's report. Every relay tells so
// from the message itself, so the class is carried end to end with no
// bit of its own on the wire. Dropped, each of these loses a round trip
// already made (h34renewtrace: on clustered 1,000 seed 2 on a round of
// renewals, 195 of 263 lookups that failed had found the record and lost
// the answer, 145 of 232 Packages without a receipt were delivered).
func isAnswer(rp *routed) bool {
	if rp.Header.Error {
		return true
	}
	switch controlType(&rp.Inner) {
	case msgReceipt, msgError, msgReceiptSigned, msgReceiptNonce, msgErrorSigned, msgErrorNonce,
		msgLookupReply, msgRegistered, msgNameStored, msgNameReply, msgTraceReport:
		return true
	}
	return false
}

// idAt is the node_id of the neighbour at ep (zero if none or unknown).
func (r *Router) idAt(ep *peer.Endpoint) identity.NodeID {
	if ep == nil {
		return identity.NodeID{}
	}
	if p := r.b.PeerAt(*ep); p != nil {
		return p.ID
	}
	return identity.NodeID{}
}

// proxyNeighbor is a leaf's proxy as the next hop.
func (r *Router) proxyNeighbor(self addr.Long) tree.Neighbor {
	nb := tree.Neighbor{Via: r.leases.proxy, Addr: self}
	if p := r.b.PeerAt(r.leases.proxy); p != nil {
		nb.ID = p.ID
	}
	return nb
}

// viaProxy is a leaf's decision for a path header: its proxy, whose
// address in each tree is the leaf's lease without the lease (a leaf knows
// no other neighbour's place).
func (r *Router) viaProxy(ph *pathHeader, mode bool) (next tree.Neighbor, phase uint8, selfPot, nextPot uint64, ok bool) {
	m := metric(mode)
	for phase = ph.phase; int(phase) <= len(ph.dst); phase++ {
		sp, has := r.selfPot(ph, phase, m)
		if !has {
			continue
		}
		entries, first := ph.dst, 0
		if phase > 0 {
			entries, first = ph.dst[phase-1:phase], 1
		}
		least, sum, any := uint32(math.MaxUint32), uint32(0), false
		var via addr.Long
		for _, d := range entries {
			p, ok := r.position(d.TreeState)
			if !ok {
				sum += keyCap
				continue
			}
			k := m.PathKey(p.Addr.Canonical(), d.Addr)
			least, sum, any, via = min(least, k), sum+capKey(k), true, p.Addr.Canonical()
		}
		if !any {
			continue
		}
		if first == 1 {
			sum = 0
		}
		np := potential(phase, least, sum)
		if np < min(sp, ph.bound) || (phase != ph.phase && np < sp) {
			return r.proxyNeighbor(via), phase, sp, np, true
		}
	}
	return tree.Neighbor{}, 0, 0, 0, false
}

// toLeaseholder hands a Package for one of our leases to its holder.
func (r *Router) toLeaseholder(rp *routed, ts uint8, to addr.Long) {
	if lease := r.leases.holder(ts, to); lease != nil {
		r.proxy(rp, lease)
		return
	}
	r.stats.NoRoute++
	r.reportError(rp, node.ErrNoRoute)
}

// cand is a neighbour being ranked: its least distance and sum over the
// destination's addresses, and how many of them it was seen in.
type cand struct {
	nb          tree.Neighbor
	least, sum  uint32
	seen        int
	down, speak bool
	// placed: the trees (bits) where the ranking saw the neighbour's
	// certified position in the destination's epoch, at depth.
	placed uint32
	depth  [tree.MaxTrees]uint8
}

// pathNext picks the neighbour to pass a path header to: the one of least
// potential below both ours and the bound the Package came with, in its
// phase or, if none is, in the next phase where one is. It returns the
// neighbour, the phase, our potential and the neighbour's (its bound).
//
// A neighbour that is down (it failed a hop lately, or has been silent
// for claim periods: most likely dead) is taken only when no phase has a
// live one below: a hop to a dead neighbour costs the link's whole
// give-up (30 s) before the Package goes another way, while a later phase
// (which ranks below every earlier one, so the bound still falls) goes on
// at once. Only when every phase's way is down is one tried after all (a
// busy neighbour's silence looks like a dead one's).
//
// A later phase in an epoch we are leaving (our place there is only our
// previous one: the tree renewed) is no such way, though: its nodes drop
// it as they take their new places, and the views of it that lead there
// are stale, so greedy routing by it ends where a node has dropped it
// ("no route"). A down neighbour we have heard since it failed us (alive,
// its air busy) is taken before it; one not heard since (most likely
// dead) after it. After --fail-root at 1,000 nodes (seed 1) a relay whose
// parent in both trees the destination's record listed had failed a hop
// 10 s before (a hub, heard 0.2 s before) sent every try of a pair into
// the dead root's epoch, and each ended "no route" two hops on (h29fail).
func (r *Router) pathNext(ph *pathHeader, mode bool, avoid []peer.Endpoint) (next tree.Neighbor, phase uint8, selfPot, nextPot uint64, ok bool) {
	m := metric(mode)
	// The fallbacks, best first: a down neighbour heard since, a live way
	// in an epoch we are leaving, a down neighbour not heard since; the
	// first phase's of each.
	type way struct {
		nb              tree.Neighbor
		phase           uint8
		selfPot, nextPt uint64
		ok              bool
	}
	var fallback [3]way
	for phase = ph.phase; int(phase) <= len(ph.dst); phase++ {
		sp, has := r.selfPot(ph, phase, m)
		if !has {
			continue // no address in this phase's epoch: the next phase
		}
		q := min(sp, ph.bound)
		if phase != ph.phase {
			q = sp // an earlier phase's bound ranks above every potential here
		}
		nb, np, found, isDown := r.bestBelow(ph, phase, m, q, avoid)
		if !found {
			continue
		}
		var rank int
		switch {
		case isDown && r.heardSinceDown(nb.Via):
			rank = 0
		case isDown:
			rank = 2
		case phase > 0 && r.leaving(ph.dst[phase-1].TreeState):
			rank = 1
		default:
			return nb, phase, sp, np, true
		}
		if !fallback[rank].ok {
			fallback[rank] = way{nb, phase, sp, np, true}
		}
	}
	for _, w := range fallback {
		if w.ok {
			return w.nb, w.phase, w.selfPot, w.nextPt, true
		}
	}
	return tree.Neighbor{}, 0, 0, 0, false
}

// canLeave reports whether a path header sent from here goes anywhere: we
// hold one of its addresses, or a neighbour is closer in some phase.
func (r *Router) canLeave(ph *pathHeader, mode bool) bool {
	for _, d := range ph.dst {
		if self, ok := r.position(d.TreeState); ok && self.Addr.Equal(d.Addr) {
			return true
		}
	}
	_, _, _, _, ok := r.pathNext(ph, mode, nil)
	return ok
}

// selfPot is our potential for ph in phase (false: no address of ours in
// the phase's epoch, or in phase 0 in none of the destination's).
func (r *Router) selfPot(ph *pathHeader, phase uint8, m addr.Metric) (uint64, bool) {
	if phase > 0 {
		d := ph.dst[phase-1]
		p, ok := r.position(d.TreeState)
		if !ok {
			return 0, false
		}
		return potential(phase, m.PathKey(p.Addr, d.Addr), 0), true
	}
	least, sum, any := uint32(math.MaxUint32), uint32(0), false
	for _, d := range ph.dst {
		p, ok := r.position(d.TreeState)
		if !ok {
			sum += keyCap
			continue
		}
		k := m.PathKey(p.Addr, d.Addr)
		least, sum, any = min(least, k), sum+capKey(k), true
	}
	if !any {
		return 0, false
	}
	// Or one hop beyond a neighbour of ours (hood.go).
	return min(potential(0, least, sum), r.ownHoodPot(ph, m)), true
}

// Potential is this node's potential for a Package toward dst (a node's
// addresses, in the order of a path header) in phase: what its own
// routing decision would rank itself at. Measurements use it to check
// every hop against the truth.
func (r *Router) Potential(dst []TreeAddr, phase uint8, mode bool) (uint64, bool) {
	return r.selfPot(&pathHeader{dst: dst}, phase, metric(mode))
}

// NextHop is the neighbour a Package toward dst (a node's addresses, in
// the order of a path header) would be passed to from here now, the phase
// it would go in, and the least distance the neighbour was ranked at (in
// phase 0 one hop beyond the best node its list names, if that is
// better: hood.go). Measurements use it to see whom a lie draws traffic to.
func (r *Router) NextHop(dst []TreeAddr, mode bool) (next identity.NodeID, phase uint8, least uint32, ok bool) {
	nb, phase, _, pot, ok := r.pathNext(&pathHeader{bound: noBound, dst: dst}, mode, nil)
	if !ok {
		return identity.NodeID{}, 0, 0, false
	}
	return nb.ID, phase, uint32(pot >> 24), true
}

// bestBelow ranks our neighbours for ph in phase and returns the one of
// least potential below q, preferring one that has not failed us lately
// (a neighbour that did is better than no way at all: a busy neighbour's
// silence looks like a dead one's; isDown says the one returned is such).
// Ties go to the lowest node_id.
func (r *Router) bestBelow(ph *pathHeader, phase uint8, m addr.Metric, q uint64, avoid []peer.Endpoint) (nb tree.Neighbor, pot uint64, found, isDown bool) {
	r.cands = r.cands[:0]
	if r.candIdx == nil {
		r.candIdx = map[peer.Endpoint]int{}
	}
	clear(r.candIdx)
	entries := ph.dst
	if phase > 0 {
		entries = ph.dst[phase-1 : phase]
	}
	for _, d := range entries {
		if _, ok := r.position(d.TreeState); !ok {
			continue // we see neighbours only in epochs we are in
		}
		for _, nb := range r.t.Neighbors(int(d.Tree), d.TreeState) {
			i, ok := r.candIdx[nb.Via]
			if !ok {
				i = len(r.cands)
				r.candIdx[nb.Via] = i
				r.cands = append(r.cands, cand{nb: nb, least: math.MaxUint32, down: r.isDown(nb.Via), speak: r.b.SpeaksOurs(nb.Via)})
			}
			c := &r.cands[i]
			k := m.PathKey(nb.Addr, d.Addr)
			c.least, c.sum, c.seen = min(c.least, k), c.sum+capKey(k), c.seen+1
			if t := int(d.Tree); t < tree.MaxTrees && c.placed&(1<<t) == 0 {
				c.placed |= 1 << t
				c.depth[t] = uint8(min(nb.Addr.Depth(), math.MaxUint8))
			}
		}
	}
	var (
		best, bestDown       *cand
		bestPot, bestDownPot uint64
	)
	for i := range r.cands {
		c := &r.cands[i]
		if !c.speak || slices.Contains(avoid, c.nb.Via) {
			continue // a reference node carries no routed schema; a hop there failed already
		}
		var p uint64
		if phase > 0 {
			p = potential(phase, c.least, 0)
		} else {
			// Its own, or one hop beyond a neighbour of its (hood.go).
			p = potential(0, c.least, c.sum+keyCap*uint32(len(ph.dst)-c.seen))
			p = min(p, r.hoodPot(c, ph, m))
		}
		if p >= q {
			continue
		}
		if c.down {
			if bestDown == nil || p < bestDownPot || p == bestDownPot && lessID(c.nb.ID, bestDown.nb.ID) {
				bestDown, bestDownPot = c, p
			}
			continue
		}
		if best == nil || p < bestPot || p == bestPot && lessID(c.nb.ID, best.nb.ID) {
			best, bestPot = c, p
		}
	}
	switch {
	case best != nil:
		return best.nb, bestPot, true, false
	case bestDown != nil:
		return bestDown.nb, bestDownPot, true, true
	}
	return tree.Neighbor{}, 0, false, false
}

func lessID(a, b identity.NodeID) bool { return bytes.Compare(a[:], b[:]) < 0 }

// plainNext is the neighbour closest to to by the packet's metric, with
// strict progress over this node's own distance, never the neighbour the
// Package came from, never a node that does not speak our protocol (a
// reference node carries no routed schema). Ties go to the lowest node_id.
// Neighbours' addresses are fixed for their epoch, so strict progress
// cannot loop.
func (r *Router) plainNext(self tree.Position, h node.RouteHeader, to addr.Long, from *peer.Endpoint, avoid []peer.Endpoint) (tree.Neighbor, bool) {
	m := metric(h.Mode)
	mine := m.RouteKey(self.Addr, to)
	var best, suspect tree.Neighbor
	bestKey, suspectKey := mine, mine
	found, foundSuspect := false, false
	for _, nb := range r.t.Neighbors(int(self.Tree), h.TreeState) {
		if from != nil && nb.Via == *from {
			continue
		}
		k := m.RouteKey(nb.Addr, to)
		if k >= bestKey && k >= suspectKey {
			// No nearer than the best so far, whatever else holds of it:
			// the look-ups below (SpeaksOurs: two maps keyed by endpoint)
			// were most of this loop's time, for every neighbour.
			continue
		}
		if !r.b.SpeaksOurs(nb.Via) || slices.Contains(avoid, nb.Via) {
			continue
		}
		if r.isDown(nb.Via) {
			if k < suspectKey {
				suspect, suspectKey, foundSuspect = nb, k, true
			}
			continue
		}
		if k < bestKey {
			best, bestKey, found = nb, k, true
		}
	}
	if !found && foundSuspect {
		return suspect, true
	}
	return best, found
}

// local handles a Package addressed to this node.
func (r *Router) local(rp *routed) {
	h := rp.Header
	pkg := &rp.Inner
	r.observe(Hop{Hash: pkg.Hash, Self: r.self, From: r.idAt(&rp.Via), Delivered: true, TreeState: h.TreeState, TTL: h.TTL, Error: h.Error, Path: rp.Path != nil})
	if rp.Path != nil && pkg.Verify() != nil {
		r.stats.Malformed++ // the carried Package's own hash is wrong
		return
	}
	if pkg.AppID == ControlApp {
		r.control(rp, pkg.Blob)
		return
	}
	if h.Error {
		return // errors are control messages; anything else flagged is noise
	}
	// A copy of a Package delivered lately (its sender tried again because
	// the receipt was late, or two tries crossed the mesh at once) gets a
	// receipt again, but the application has it already.
	var key [32]byte
	copy(key[:], pkg.AppID[:])
	copy(key[packet.AppIDSize:], pkg.Hash[:])
	if !r.isCopy(key) {
		if src := origin(rp); len(src) > 0 {
			if _, fits := src[0].Addr.Wire(); !fits {
				// from_addr holds only an ancestor of the origin (its
				// address is deeper than the wire's 32 nibbles): an
				// application answering it would reach another node.
				// Zero says "unknown: answer by node_id".
				h.From = addr.Address{}
			}
		}
		err := r.b.Deliver(h, pkg, rp.Via, rp.Time)
		r.stats.Delivered++
		if err != nil {
			r.reportError(rp, err)
			return
		}
		r.remember(key)
	} else {
		r.stats.Copies++
	}
	// The end-to-end receipt: the sender's Result completes on it.
	r.reply(rp, r.appendReceipt(nil, pkg.Hash, rp.Path))
}

// origin is where a Package's answers go: the addresses its origin wrote in
// its path header, or the header's from_addr in its epoch.
func origin(rp *routed) []TreeAddr {
	if rp.Path != nil && len(rp.Path.src) > 0 {
		return rp.Path.src
	}
	h := rp.Header
	return []TreeAddr{{Tree: uint8(tree.TreeOf(h.TreeState)), TreeState: h.TreeState, Addr: addr.Address(h.From).Long()}}
}

// reply sends a control message back to a Package's origin.
func (r *Router) reply(rp *routed, msg []byte) {
	r.sendControlTo(origin(rp), rp.Header.Mode, msg, false, r.cfg.TTL)
}

// reportError sends an error back toward the Package's origin (PROTOCOL 7):
// the error flag set, the code, the Package's hash (so the sender knows
// which send failed) and our address. Errors about errors are not sent.
func (r *Router) reportError(rp *routed, err error) {
	h := rp.Header
	if h.Error {
		return
	}
	if isControl(&rp.Inner) {
		return // lookups, receipts and traces fail quietly: their senders time out
	}
	hash := rp.Inner.Hash
	to := origin(rp)
	for _, a := range to {
		if self, ok := r.position(a.TreeState); ok && self.Addr.SameHolder(a.Addr) {
			// We are the origin: no need to travel. No way from here now
			// may be one after a pause (the trees mend): retried like a
			// relay's report.
			r.failed(hash, err, false)
			return
		}
	}
	var rep addr.Address
	if self, ok := r.position(h.TreeState); ok {
		rep = self.Addr.Truncate()
	}
	b := r.appendError(nil, node.CodeOf(err), hash, rep, rp.Path)
	r.stats.ErrorsSent++
	// The report counts up from the failed Package's remaining hop limit
	// (PROTOCOL 7: the packet goes back with its ttl, relays increment
	// it), not from this node's own TTL: it can always travel back as far
	// as the Package came, whatever hop limit this node gives its sends.
	r.sendControlTo(to, h.Mode, b, true, min(h.TTL, 254))
}

// sendControl sends a control message toward one address in epoch ts.
func (r *Router) sendControl(ts uint8, to addr.Long, mode bool, msg []byte) {
	r.sendControlTo([]TreeAddr{{Tree: uint8(tree.TreeOf(ts)), TreeState: ts, Addr: to}}, mode, msg, false, r.cfg.TTL)
}

// sendControlTo sends a control message to a node (its addresses, or one
// key address): as a plain Package when one address that fits the wire
// says it all and our own address there fits too (the answer can find us),
// else in a path header with our address for the answers.
func (r *Router) sendControlTo(to []TreeAddr, mode bool, msg []byte, isError bool, ttl uint8) {
	r.stats.ControlBytesSent += uint64(len(msg))
	r.sendOnce(to, mode, packet.NewPackage(ControlApp, msg), isError, ttl)
}

// Notify sends blob to application app at the node at addresses to,
// once and unconfirmed: nothing is tried again and no receipt is waited
// for (the destination's finds no send here and is dropped). For an answer
// to a Package whose sender's node_id is not known, only its origin
// address (l2-seq/e2e's cookies).
func (r *Router) Notify(to []TreeAddr, mode bool, app packet.AppID, blob []byte) {
	r.sendOnce(to, mode, packet.NewPackage(app, blob), false, r.cfg.TTL)
}

// sendOnce routes pkg toward to, unconfirmed.
func (r *Router) sendOnce(to []TreeAddr, mode bool, pkg packet.Package, isError bool, ttl uint8) {
	var rp *routed
	if len(to) == 1 {
		self, ok := r.position(to[0].TreeState)
		if !ok {
			return
		}
		w, fits := to[0].Addr.Wire()
		sw, selfFits := self.Addr.Wire()
		if fits && selfFits {
			h := node.RouteHeader{To: w, From: sw, TreeState: to[0].TreeState, TTL: ttl, Mode: mode, Error: isError}
			rp = r.wrap(h, nil, pkg)
		}
	}
	if rp == nil {
		ph, h, ok := r.pathTo(to, mode, nil, false)
		if !ok {
			return
		}
		if self, ok := r.position(h.TreeState); ok {
			if _, fits := self.Addr.Wire(); !fits {
				ph.src = []TreeAddr{{Tree: uint8(tree.TreeOf(h.TreeState)), TreeState: h.TreeState, Addr: self.Addr}}
			}
		}
		h.TTL, h.Error = ttl, isError
		rp = r.wrap(h, ph, pkg)
	}
	r.forward(rp, true, nil)
}
