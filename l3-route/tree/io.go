package tree

// The tree application's traffic: decoding what neighbours send, peer
// events, and sending on the node's links.

import (
	"bytes"
	"slices"
	"strings"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// HandleMessage is the tree application's handler: the layer the trees
// run in passes it every one-hop Package for AppID.
func (t *Trees) HandleMessage(m node.Message) {
	if !t.started {
		return
	}
	if m.Route != nil {
		return // tree messages travel one hop only
	}
	t.stats.MsgsRecv++
	t.stats.BytesRecv += uint64(len(m.Blob))
	// Decoded into the Trees' own message, emptied first: one on the
	// stack escapes (the handlers take its address), and a heap message
	// per tree message heard was a seventh of what a route simulation
	// allocates. A handler that keeps a part copies it; one reached again
	// from inside a handler gets a message of its own.
	msg := &t.msg
	if t.msgBusy {
		msg = new(message)
	} else {
		t.msgBusy = true
		defer func() { t.msgBusy = false }()
		*msg = message{}
	}
	if err := msg.decode(m.Blob); err != nil {
		t.stats.Malformed++
		return
	}
	if m.Broadcast && msg.typ != MsgClaim && msg.typ != MsgPosition && msg.typ != MsgNotify {
		// Only claims and positions are broadcast (all signed; a root
		// announces its position as a notify, its chain being the claim
		// alone: appendPosition); anything
		// else that came as a broadcast is no neighbour's word to us — on
		// a link that cannot tell broadcasts apart, the node hands up
		// unauthenticated frames of a neighbour it holds keys for as
		// broadcasts (l2-seq/node, hopauth.go).
		t.stats.Rejected++
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
			t.trees[msg.tree].onRequest(m.Via, msg.treeState, identity.NodeID(msg.parent), msg.flags, msg.ext)
		}
	case MsgQuery:
		if int(msg.tree) < len(t.trees) {
			t.trees[msg.tree].onQuery(m.Via, msg.treeState, msg.want)
		}
	case MsgSuffix:
		if int(msg.tree) < len(t.trees) {
			t.trees[msg.tree].onSuffix(m.Via, msg)
		}
	case MsgPosition:
		if int(msg.tree) < len(t.trees) {
			t.trees[msg.tree].onPosition(m.Via, msg)
		}
	case MsgResponse:
		k := -1
		switch msg.status {
		case StatusOK:
			k = int(msg.chain.Claim.Tree)
		case StatusCert:
			k = int(msg.tree)
		default:
			for i, tr := range t.trees {
				if tr.pending != nil && *tr.pending == m.Via {
					k = i
					break
				}
			}
		}
		if k >= 0 && k < len(t.trees) {
			t.trees[k].onResponse(m.Via, msg)
		}
	}
}

// maxOrphans bounds the chains kept from strangers.
const maxOrphans = 64

// maxNeighbors bounds what a tree keeps per neighbour (distances heard,
// positions waiting for their parent's, queries out): a rooftop gateway
// hears hundreds of nodes, and each must be known for routing.
const maxNeighbors = 1024

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

// PeerChanged: a new peer hears where we are; a lost one's positions go.
// The layer the trees run in passes it the node's peer events.
func (t *Trees) PeerChanged(p *peer.Peer, up bool) {
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
				if tr.cur != nil && t.b.SpeaksOurs(ep) {
					t.sendTo(ep, appendPosition(t.buf[:0], &tr.cur.chain))
				}
				continue
			}
			tr.dropNeighbor(ep)
			delete(tr.heard, ep)
			delete(tr.waiting, ep)
			if tr.cur != nil && !tr.cur.pos.Root && tr.cur.parent == ep && !tr.parentLost {
				tr.parentLost = true
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
				clock.Stop(&tr.reqTmr)
				tr.acquire()
			}
		}
	}
}

// count counts a message we send (Stats).
func (t *Trees) count(msg []byte) {
	t.stats.MsgsSent++
	t.stats.BytesSent += uint64(len(msg))
}

func (t *Trees) sendTo(ep peer.Endpoint, msg []byte) *node.Result {
	t.count(msg)
	return t.b.Send(ep, AppID, bytes.Clone(msg), nil)
}

// sendReliableDone sends msg to ep and calls done with the hop's outcome
// (nil once ep acked it).
func (t *Trees) sendReliableDone(ep peer.Endpoint, msg []byte, done func(error)) {
	t.count(msg)
	t.b.Send(ep, AppID, bytes.Clone(msg), nil).OnDone(done)
}

// BusyPace is how many times slower the trees and the router send their
// deferrable control traffic (requests, queries, registrations,
// neighbourhood lists) while the air around us is busy
// (node.Bind.AirBusy): a fixed factor, so progress has a floor, and gone
// as soon as the busy neighbour's beacons stop saying so. Around a
// rooftop gateway of 159 hidden neighbours (hubs, 300 nodes, seed 1) the
// gateway heard 1 % of their beacons; with four it still heard 1–2 % and
// the trees did not converge; with sixteen it heard 82 % two windows
// (six minutes) after first saying so, and the trees converged.
const BusyPace = 16

// BusyMaxWait bounds a wait that BusyPace lengthens: a record's home or
// a neighbour's place is still asked for at least this often, however
// long the busy spell (the floor on progress).
const BusyMaxWait = 5 * time.Minute

// pace is BusyPace while the air is busy, else 1.
func (t *Trees) pace() int {
	if t.b.AirBusy() {
		return BusyPace
	}
	return 1
}

// BusyPaced is d, BusyPace times longer while the air is busy, but not
// past BusyMaxWait (nor shorter than d): the waits of deferrable control
// traffic, here and in the router.
func (t *Trees) BusyPaced(d time.Duration) time.Duration {
	if !t.b.AirBusy() {
		return d
	}
	return max(d, min(d*BusyPace, BusyMaxWait))
}

// roundTrip bounds the time a request and its answer (a chain of a few
// frames) take on the link to ep: on ESP-NOW milliseconds, on LoRa seconds;
// asking again sooner only piles answers up on a slow link. Twelve
// airtimes of a full single packet to ep, as the node measures them.
func (t *Trees) roundTrip(ep peer.Endpoint) time.Duration {
	return 12 * t.b.Airtime(ep, fullSingle)
}

// fullSingle is a blob that fills one packet of either family (a 240-byte
// LoRa packet less the largest one-hop header and the Package's own
// overhead).
const fullSingle = 200

// settle is the listening time at the start of an epoch (Config.Settle):
// 256 airtimes of a claim broadcast on the slowest link, at least 1 s.
func (t *Trees) settle() time.Duration {
	if t.cfg.Settle > 0 {
		return t.cfg.Settle
	}
	d := time.Second
	for i := range t.b.Links() {
		d = max(d, 256*t.b.Airtime(peer.Endpoint{Link: i, Addr: link.Broadcast}, cert.ClaimSize+2))
	}
	return d
}

// broadcastJittered broadcasts msg on every link after a random delay of up
// to 16 airtimes of it on that link (a few milliseconds on ESP-NOW, seconds
// on LoRa), so that neighbours relaying the same flood do not all collide.
func (t *Trees) broadcastJittered(msg []byte) { t.broadcastAfter(0, 16, msg) }

// broadcastAfter broadcasts msg on every link after hold airtimes of it on
// that link, and a random part of spread more.
func (t *Trees) broadcastAfter(hold, spread int, msg []byte) { t.broadcastThen(hold, spread, msg, nil) }

// broadcastThen is broadcastAfter, calling sent (if not nil) once for each
// link when the broadcast's send there has ended.
func (t *Trees) broadcastThen(hold, spread int, msg []byte, sent func()) {
	m := bytes.Clone(msg)
	for i := range t.b.Links() {
		t.count(m)
		air := t.b.Airtime(peer.Endpoint{Link: i, Addr: link.Broadcast}, len(m))
		d := time.Duration(hold)*air + time.Duration(t.rng.Int64N(int64(time.Duration(spread)*air)+1))
		t.clk.AfterFunc(d, func() {
			res := t.b.Broadcast(AppID, m, &node.SendOptions{Links: []int{i}})
			if sent != nil {
				res.OnDone(func(error) { sent() })
			}
		})
	}
}

// broadcastOn broadcasts msg (kept: the caller passes its own copy) on
// link l now, and counts it.
func (t *Trees) broadcastOn(l int, msg []byte) {
	t.count(msg)
	t.b.Broadcast(AppID, msg, &node.SendOptions{Links: []int{l}})
}

// sortedEndpoints returns m's keys in a fixed order: what a node does must
// follow from its inputs alone (simulations replay from a seed), and map
// order is random.
func sortedEndpoints[V any](m map[peer.Endpoint]V) []peer.Endpoint {
	out := make([]peer.Endpoint, 0, len(m))
	for ep := range m {
		out = append(out, ep)
	}
	slices.SortFunc(out, endpointOrder)
	return out
}

// endpointOrder is a fixed order of endpoints: by link, then by the
// address's text. Two MACs compare by their bytes, the order of their
// text (fixed-width lower-case hex), without formatting both for every
// comparison of a sort (6 % of a route simulation's allocations).
func endpointOrder(a, b peer.Endpoint) int {
	if a.Link != b.Link {
		return a.Link - b.Link
	}
	if x, ok := a.Addr.(espnow.MAC); ok {
		if y, ok := b.Addr.(espnow.MAC); ok {
			return bytes.Compare(x[:], y[:])
		}
	}
	return strings.Compare(a.Addr.String(), b.Addr.String())
}

func cloneChain(ch cert.Chain) cert.Chain {
	ch.Certs = slices.Clone(ch.Certs)
	return ch
}
