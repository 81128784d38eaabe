package route

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// Neighbourhoods [ours]. Greedy routing by tree distance passes a Package
// to the neighbour nearest the destination; it cannot see that a
// neighbour a little farther has a neighbour much nearer (a link across
// two branches of every tree). Each node therefore tells its neighbours,
// in a one-hop broadcast per tree and epoch, where its own neighbours
// are:
//
//	msgHood ‖ tree_state ‖ n ‖ n × (tag(2) ‖ compact address)
//
// (tag: the first two bytes of the neighbour's node_id, which groups one
// neighbour's addresses across trees). A relay's potential for a path
// header in phase 0 is then the least of its own (path.go) and, one hop
// more (a unit of the least distance), each of its neighbours'; it ranks
// a neighbour the same way from the lists the neighbour sent. So a
// neighbour is ranked by the best of the nodes within one hop of it:
// greedy routing that sees two hops ahead. The potential stays one the
// bound can carry: a node whose potential comes from a neighbour has that
// neighbour below it, and one whose potential is its own has the next
// node on a tree path below it, so some neighbour is always below while
// the trees are whole, and the bound still falls at every hop. A list
// older than the truth (a neighbour moved) can make a neighbour look
// nearer than it is: the bound still falls (ErrStaleView, not a loop).
// (`mycelium sim route`, 1,000 random nodes: docs/routing-notes.md, "Stretch".)
//
// A list is sent when it changes (checked every half claim period) and
// every four claim periods anyway, or a twelfth of an epoch if that is
// longer (a broadcast may be lost),
// at most one frame: the shallowest neighbours first.
//
// A list is a neighbour's word, not a certificate (a chain per neighbour
// would not fit a frame), so what a list can make a node believe is
// bounded by what it has verified:
//
//   - it is taken only from a proven neighbour (Bind.SpeaksOurs, the check
//     the trees give positions), and bound to its node_id: a list that
//     comes before the sender's proof is held apart (one per endpoint, as
//     the peer table bounds them) and taken only once the peer at that
//     endpoint is proven; a list from no peer is refused;
//   - a list longer than one frame (hoodBytes) is refused;
//   - a neighbour's list for a tree counts only where we hold the
//     neighbour's own certified position in that epoch (it is placed
//     there), and no entry of it counts nearer the destination than an
//     address hoodSlack levels from that position's depth could be
//     (hoodFloor): a tree distance is at least the difference of depths,
//     and the trees are breadth-first (tree/acquire.go: a node asks the
//     neighbour on a shortest way to the root), so a neighbour's
//     neighbour is about a level from it. An entry is floored, not
//     dropped: an honest one placed a few levels off (a node placed late
//     takes a deeper parent) still ranks by where it is, which is seldom
//     nearer than the floor. In mode 0 the floors also bound the least
//     distance over all trees, by the largest of them: a depth is a hop
//     count from the tree's root, a difference of hop counts from any
//     root bounds the graph distance, and that bounds every tree
//     distance (each root is a landmark). A liar at certified depths d_k
//     can therefore rank itself, through its list, toward a destination
//     at depths D_k, no better than max_k |d_k − D_k|: one hop beyond a
//     node that far less one, the least hop count its own certified
//     depths allow it (in mode 1, no triangle inequality: each tree's
//     floor alone, the least of them).

const (
	msgHood = 0x19

	// hoodBytes bounds a list's message (one frame of either link).
	hoodBytes = 190
	// hoodSlack is how many levels from its lister's depth an entry may
	// be and still count as near the destination as it claims
	// (hoodFloor). One: breadth-first trees put radio neighbours a level
	// apart, so an honest entry is floored only where its node is placed
	// deeper than breadth-first and the destination lies just past it.
	// (Entries more than two levels off were dropped before, not floored:
	// a grid is bipartite, so that dropped every entry three levels off,
	// 8 % of them, and the grid's stretch p95 rose to 1.35; docs/routing-notes.md.)
	hoodSlack = 1
	// hoodMin is the smallest message: type, tree_state, count.
	hoodMin = 3
	// hoodRefresh: every list is sent again, changed or not, every
	// hoodRefresh claim periods, or a twelfth of an epoch if that is
	// longer (on LoRa, where a term lasts two weeks in the simulator: 28
	// hours).
	hoodRefresh = 4
)

// hoodRefresh is how many checks pass between two sends of an unchanged
// list (two checks a claim period).
func (r *Router) hoodRefresh() int {
	return 2 * max(hoodRefresh, r.t.Config().EpochPeriods/12)
}

// hoodEntry is one neighbour's address in a neighbour's list.
type hoodEntry struct {
	tag  uint16
	addr addr.Long
}

// hood is what one neighbour (id) told us of its neighbours: a list per
// tree, for the epoch it names.
type hood struct {
	id    identity.NodeID
	ts    [tree.MaxTrees]uint8
	has   [tree.MaxTrees]bool
	lists [tree.MaxTrees][]hoodEntry
}

// hoodState is this node's side: the lists heard, per neighbour (held
// apart until the neighbour is proven), and what it last sent, per tree.
type hoodState struct {
	heard    map[peer.Endpoint]*hood
	unproven map[peer.Endpoint]*hood
	scratch  []hoodEntry // onHood decodes into it
	sent     [tree.MaxTrees][]byte
	from     [tree.MaxTrees][]tree.Neighbor // the trees' list each was made from
	tmr      clock.Timer
	ticks    int
	// scratch for ranking (one decision at a time: the node's loop)
	idx  map[uint16]int
	acc  []hoodAcc
	nbuf []tree.Neighbor
}

type hoodAcc struct {
	least, sum uint32
	seen       int
}

// appendHood appends a list's message.
func appendHood(b []byte, ts uint8, es []hoodEntry) []byte {
	b = append(b, msgHood, ts, byte(len(es)))
	for _, e := range es {
		b = append(b, byte(e.tag>>8), byte(e.tag))
		b = e.addr.AppendCompact(b)
	}
	return b
}

// AppendHood appends a neighbourhood list (0x19) naming, for the epoch
// tree_state names, the neighbours tags[i] at addrs[i]: as many as fit one
// frame. The simulator's adversaries build lies with it.
func AppendHood(b []byte, treeState uint8, tags []uint16, addrs []addr.Long) []byte {
	es := make([]hoodEntry, 0, min(len(tags), len(addrs)))
	size := hoodMin
	for i := range min(len(tags), len(addrs), math.MaxUint8) {
		n := 2 + len(addrs[i].AppendCompact(nil))
		if size+n > hoodBytes {
			break
		}
		size += n
		es = append(es, hoodEntry{tag: tags[i], addr: addrs[i]})
	}
	return appendHood(b, treeState, es)
}

// decodeHood reads a list's message (b without its type byte). Errors
// wrap ErrControl.
func decodeHood(b []byte) (ts uint8, es []hoodEntry, err error) {
	return decodeHoodInto(nil, b)
}

// decodeHoodInto is decodeHood appending the entries to dst (nil on an
// error).
func decodeHoodInto(dst []hoodEntry, b []byte) (ts uint8, es []hoodEntry, err error) {
	if len(b) < hoodMin-1 || len(b) > hoodBytes-1 {
		return 0, nil, fmt.Errorf("%w: neighbourhood: %d bytes", ErrControl, len(b))
	}
	ts, n := b[0], int(b[1])
	b = b[2:]
	es = slices.Grow(dst, n)
	for range n {
		if len(b) < 2 {
			return 0, nil, fmt.Errorf("%w: neighbourhood: truncated entry", ErrControl)
		}
		e := hoodEntry{tag: uint16(b[0])<<8 | uint16(b[1])}
		if e.addr, b, err = addr.ReadCompact(b[2:]); err != nil {
			return 0, nil, fmt.Errorf("%w: neighbourhood: %w", ErrControl, err)
		}
		es = append(es, e)
	}
	if len(b) != 0 {
		return 0, nil, fmt.Errorf("%w: neighbourhood: %d bytes past the list", ErrControl, len(b))
	}
	return ts, es, nil
}

// onHood stores a neighbour's list: one hop, for a tree its tree_state
// names, from a proven peer (held apart until then).
func (r *Router) onHood(m node.Message) {
	ts, es, err := decodeHoodInto(r.hood.scratch[:0], m.Blob[1:])
	if err != nil {
		r.stats.Malformed++
		return
	}
	r.hood.scratch = es[:0]
	p := r.b.PeerAt(m.Via)
	if p == nil {
		r.stats.HoodsRefused++ // from no peer: anyone could have sent it
		return
	}
	k := tree.TreeOf(ts)
	if k >= r.t.Count() {
		return
	}
	at := &r.hood.heard
	if !r.b.SpeaksOurs(m.Via) {
		// Its list can come before its proof (or it is a reference-grade
		// peer, which never proves): held apart, taken when it proves.
		at = &r.hood.unproven
	}
	if *at == nil {
		*at = map[peer.Endpoint]*hood{}
	}
	h := (*at)[m.Via]
	if h == nil || h.id != p.ID {
		h = &hood{id: p.ID}
		(*at)[m.Via] = h
	}
	// A list comes again unchanged every hoodRefresh claim periods: the
	// one held stays (lists are only read), and a changed one is copied
	// out of the scratch. Decoding each into a list of its own was a
	// tenth of what a route simulation allocated.
	if h.has[k] && slices.Equal(h.lists[k], es) {
		es = h.lists[k]
	} else {
		es = slices.Clone(es)
	}
	h.ts[k], h.has[k], h.lists[k] = ts, true, es
}

// hoodProven takes the lists held for a peer that has proven its key.
func (r *Router) hoodProven(p *peer.Peer) {
	for _, ep := range p.Endpoints {
		h := r.hood.unproven[ep]
		if h == nil || !r.b.SpeaksOurs(ep) {
			continue
		}
		delete(r.hood.unproven, ep)
		if h.id != p.ID {
			continue // another node's, from before the endpoint changed hands
		}
		if r.hood.heard == nil {
			r.hood.heard = map[peer.Endpoint]*hood{}
		}
		if old := r.hood.heard[ep]; old != nil && old.id == p.ID {
			// Taken before a proof it had to make again (a restart): the
			// lists held since are newer, the others still stand.
			for k := range h.has {
				if h.has[k] {
					old.ts[k], old.has[k], old.lists[k] = h.ts[k], true, h.lists[k]
				}
			}
			continue
		}
		r.hood.heard[ep] = h
	}
}

// hoodSoon keeps the check of our own lists running (from the first
// position we take).
func (r *Router) hoodSoon() {
	if r.hood.tmr != nil {
		return
	}
	r.hood.tmr = r.clk.AfterFunc(r.hoodPeriod(), r.hoodTick)
}

// hoodPeriod is how often our lists are checked: half a claim period,
// give or take a half. Neighbours take their places from the same claim
// at the same instant: checked in step, their lists would go out at once
// and collide at the neighbours they share.
func (r *Router) hoodPeriod() time.Duration {
	p := max(r.t.Config().ClaimPeriod/2, time.Second)
	return r.busyPaced(p/2 + time.Duration(r.rng.Int64N(int64(p))))
}

// hoodTick sends each tree's list that changed since we sent it.
func (r *Router) hoodTick() {
	r.hood.tmr = r.clk.AfterFunc(r.hoodPeriod(), r.hoodTick)
	if r.leases.leaf {
		return
	}
	r.hood.ticks++
	if r.hood.ticks%r.hoodRefresh() == 0 {
		// A broadcast has no ack: one lost (a collision) would leave a
		// neighbour without our list until it changes.
		r.hood.sent = [tree.MaxTrees][]byte{}
	}
	for k := range r.t.Count() {
		p, ok := r.t.Current(k)
		if !ok {
			continue
		}
		all := r.t.Neighbors(k, p.TreeState)
		if r.hood.sent[k] != nil && sameList(all, r.hood.from[k]) {
			continue // the trees keep a list until it changes (tree.Neighbors)
		}
		r.hood.from[k] = all
		nbs := r.hood.nbuf[:0]
		for _, nb := range all {
			if r.b.SpeaksOurs(nb.Via) {
				nbs = append(nbs, nb)
			}
		}
		r.hood.nbuf = nbs
		// The shallowest first (what fits one frame), then by node_id:
		// the same neighbours give the same message.
		slices.SortFunc(nbs, func(a, b tree.Neighbor) int {
			if c := cmp.Compare(a.Addr.Depth(), b.Addr.Depth()); c != 0 {
				return c
			}
			return bytes.Compare(a.ID[:], b.ID[:])
		})
		es := make([]hoodEntry, 0, len(nbs))
		size := hoodMin
		for _, nb := range nbs {
			n := 2 + len(nb.Addr.AppendCompact(nil))
			if size+n > hoodBytes || len(es) == math.MaxUint8 {
				break
			}
			size += n
			es = append(es, hoodEntry{tag: uint16(nb.ID[0])<<8 | uint16(nb.ID[1]), addr: nb.Addr})
		}
		msg := appendHood(nil, p.TreeState, es)
		if bytes.Equal(msg, r.hood.sent[k]) {
			continue
		}
		r.hood.sent[k] = msg
		r.stats.ControlBytesSent += uint64(len(msg))
		r.b.Broadcast(ControlApp, msg, nil)
	}
}

// sameList reports whether a and b are one list of the trees (the same
// slice: the trees make a new one whenever a neighbour changes).
func sameList(a, b []tree.Neighbor) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// hoodPeer forgets a neighbour's lists when it goes, and has ours sent
// again when one comes (it has not heard them).
func (r *Router) hoodPeer(p *peer.Peer, up bool) {
	if up {
		r.hood.sent = [tree.MaxTrees][]byte{}
		r.hoodProven(p)
		return
	}
	for _, ep := range p.Endpoints {
		delete(r.hood.heard, ep)
		delete(r.hood.unproven, ep)
	}
}

// routeDepth is a's depth as RouteKey counts it: a lease one level below
// its proxy.
func routeDepth(a addr.Long) int {
	if a.LeaseID() != 0 {
		return a.Depth() + 1
	}
	return a.Depth()
}

// hoodFloor is the least key m can give (addr.Metric.PathKey, what path
// headers rank by), toward a destination at route depth dst, any address
// within hoodSlack levels of depth own: how near the destination an entry
// in the list of a neighbour certified at depth own may count. Mode 0: a
// tree distance is at least the difference of depths. Mode 1
// ((|b|−cpl+1)<<9 | (|a|−cpl), 0 when equal): the common prefix is at
// most the shallower depth, so the best is the destination's ancestor at
// the deepest level allowed, or its descendant at the shallowest.
func hoodFloor(m addr.Metric, dst, own int) uint32 {
	lo, hi := max(own-hoodSlack, 0), own+hoodSlack
	if dst >= lo && dst <= hi {
		return 0
	}
	if m&1 == 0 {
		if dst > hi {
			return uint32(dst - hi)
		}
		return uint32(lo - dst)
	}
	if dst > hi {
		return uint32(dst-hi+1) << 9
	}
	return 1<<9 | uint32(lo-dst)
}

// viaHood is the potential one hop beyond the best of some nodes (least
// distance and sum over the destination's addresses, as potential packs
// them): what a node whose neighbours they are ranks at through them.
func viaHood(least, sum uint32) uint64 {
	if least >= math.MaxUint32-1 {
		return math.MaxUint64
	}
	return potential(0, least+1, sum)
}

// hoodPot is the least potential in phase 0 among the neighbours the
// neighbour c listed, one hop more (MaxUint64: none known): only its
// lists as the proven node it is, in the epochs where c is placed, and
// each entry no nearer the destination than hoodFloor lets it be.
func (r *Router) hoodPot(c *cand, ph *pathHeader, m addr.Metric) uint64 {
	h := r.hood.heard[c.nb.Via]
	if h == nil || h.id != c.nb.ID {
		return math.MaxUint64
	}
	// In mode 0 every tree's floor bounds the least distance over all
	// trees (a hop count from every root bounds the graph distance; see
	// above).
	var least uint32
	if m&1 == 0 {
		for _, d := range ph.dst {
			if k := int(d.Tree); k < tree.MaxTrees && c.placed&(1<<k) != 0 {
				least = max(least, hoodFloor(m, routeDepth(d.Addr), int(c.depth[k])))
			}
		}
	}
	return r.bestOf(ph, m, least, func(d TreeAddr, add func(tag uint16, a addr.Long, floor uint32)) {
		k := int(d.Tree)
		if k >= len(h.lists) || !h.has[k] || h.ts[k] != d.TreeState || c.placed&(1<<k) == 0 {
			return
		}
		floor := hoodFloor(m, routeDepth(d.Addr), int(c.depth[k]))
		for _, e := range h.lists[k] {
			add(e.tag, e.addr, floor)
		}
	})
}

// ownHoodPot is the least potential in phase 0 among our own neighbours
// (that speak our protocol), one hop more: what our potential may be
// through them.
func (r *Router) ownHoodPot(ph *pathHeader, m addr.Metric) uint64 {
	return r.bestOf(ph, m, 0, func(d TreeAddr, add func(tag uint16, a addr.Long, floor uint32)) {
		if _, ok := r.position(d.TreeState); !ok {
			return
		}
		for _, nb := range r.t.Neighbors(int(d.Tree), d.TreeState) {
			if r.b.SpeaksOurs(nb.Via) {
				add(uint16(nb.ID[0])<<8|uint16(nb.ID[1]), nb.Addr, 0) // certified: no floor
			}
		}
	})
}

// bestOf groups the addresses each of the destination's entries yields
// (each, by tag) into nodes, ranks each node as a relay would (least
// distance, then the sum, an address unknown counting keyCap, none
// nearer than its floor), and returns the best one hop more.
func (r *Router) bestOf(ph *pathHeader, m addr.Metric, leastFloor uint32, each func(d TreeAddr, add func(tag uint16, a addr.Long, floor uint32))) uint64 {
	hs := &r.hood
	if hs.idx == nil {
		hs.idx = map[uint16]int{}
	}
	clear(hs.idx)
	hs.acc = hs.acc[:0]
	for _, d := range ph.dst {
		each(d, func(tag uint16, a addr.Long, floor uint32) {
			i, ok := hs.idx[tag]
			if !ok {
				i = len(hs.acc)
				hs.idx[tag] = i
				hs.acc = append(hs.acc, hoodAcc{least: math.MaxUint32})
			}
			c := &hs.acc[i]
			k := max(m.PathKey(a, d.Addr), floor)
			c.least, c.sum, c.seen = min(c.least, k), c.sum+capKey(k), c.seen+1
		})
	}
	best := uint64(math.MaxUint64)
	for _, c := range hs.acc {
		best = min(best, viaHood(max(c.least, leastFloor), c.sum+keyCap*uint32(max(len(ph.dst)-c.seen, 0))))
	}
	return best
}
