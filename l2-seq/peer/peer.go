// Package peer is a node's table of neighbours (PROTOCOL 5.1): who is in
// radio range, on which links and at which link addresses, whether they
// speak the whole protocol and how congested they say they are; plus the
// node list of every node heard of and the applications it announced.
// Tables are owned by the node's loop and are not safe for concurrent use.
package peer

import (
	"bytes"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// Endpoint is one way to reach a neighbour: a link of ours (by index) and
// the neighbour's address on it.
type Endpoint struct {
	Link int
	Addr link.Addr
}

// DefaultTimeout is the number of beacon bursts a peer survives unheard.
const DefaultTimeout = 4

// Peer is one neighbour.
type Peer struct {
	ID        identity.NodeID
	Endpoints []Endpoint
	// Timeout counts down once per beacon burst; the peer is dropped at 0
	// and refreshed to DefaultTimeout whenever it beacons or answers.
	Timeout int
	// Throttle rises with each packet carrying the throttle flag and falls
	// with each one without (not below 0); sends to the peer are spaced by it.
	Throttle int
	LastTx   time.Time
	LastRx   time.Time
	// LastAcked is when the radio last confirmed that a unicast frame to
	// the peer reached it (its MAC acknowledged it; only on links whose
	// radio does, link.CapUnicastAck) [ours]. It proves the peer alive and
	// in reach even when nothing it sends gets through to us: in a
	// collision storm a neighbour hidden from the peer talks over its
	// frames here, but stays quiet for the short ACK that follows a frame
	// of ours (it heard ours, and its NAV covers the ACK).
	LastAcked time.Time
	// Full is set when the peer lists the capabilities app_id: it says it
	// speaks the whole protocol (every schema, routing), and the node
	// sends it so. Otherwise it is treated as a reference node (PROTOCOL 11).
	Full bool
	// Proven is set when the peer has proven its node_id at every endpoint
	// it has (the neighbour proof [ours]): only then does the layer above
	// trust it with tree positions and routed traffic. A peer that is not
	// (yet) proven, and every reference board (which cannot sign), is a
	// reference-grade peer.
	Proven bool
	// Sleeps is set when the peer lists the modem-sleep app_id: it turns its
	// radio off between wake windows, so it must be woken (RNS) before
	// unicasts. Reference nodes may sleep too.
	Sleeps bool
	// Busy is set when the peer's last beacons listed the busy app_id
	// [ours]: it misses much of what its neighbours send, and asks them
	// to slow their deferrable control traffic.
	Busy bool
	// Heard counts the beacons heard from the peer since the node last
	// weighed what it hears (l2-seq/node, busy.go); Counted says the peer
	// was there at that time, so that its count covers the whole window.
	Heard   int
	Counted bool
	// Apps are the app_ids the peer announced in its last beacons.
	Apps []packet.AppID
}

// HasEndpoint reports whether ep is one of the peer's endpoints.
func (p *Peer) HasEndpoint(ep Endpoint) bool { return slices.Contains(p.Endpoints, ep) }

// Table maps node_ids and endpoints to peers.
type Table struct {
	byID map[identity.NodeID]*Peer
	byEP map[Endpoint]*Peer
	// The last endpoint ByEndpoint looked up and what it found (memo):
	// a node asks for the sender of every frame it takes four or five
	// times over (the trust check, the layers above), and a look-up by
	// Endpoint hashes an interface. Any change to byEP forgets it.
	last     Endpoint
	lastPeer *Peer
	memo     bool
	gen      uint64 // counts the changes of byEP (forget), for Hint
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{byID: map[identity.NodeID]*Peer{}, byEP: map[Endpoint]*Peer{}}
}

// Len is the number of peers.
func (t *Table) Len() int { return len(t.byID) }

// Get returns the peer with node_id id, or nil.
func (t *Table) Get(id identity.NodeID) *Peer { return t.byID[id] }

// ByEndpoint returns the peer reachable at ep, or nil.
func (t *Table) ByEndpoint(ep Endpoint) *Peer {
	if t.memo && t.last == ep {
		return t.lastPeer
	}
	p := t.byEP[ep]
	t.last, t.lastPeer, t.memo = ep, p, true
	return p
}

// forget drops ByEndpoint's memo, and every Hint: byEP is about to
// change.
func (t *Table) forget() {
	t.last, t.lastPeer, t.memo = Endpoint{}, nil, false
	t.gen++
}

// Hint is what a caller keeps of one endpoint's look-up, to repeat it
// without the map (ByEndpointHint): a node keeps one per sender in the
// link's Frame.Slot. The zero Hint holds nothing.
type Hint struct {
	t   *Table
	gen uint64
	ep  Endpoint
	p   *Peer
}

// ByEndpointHint is ByEndpoint(ep), answered from h when h holds ep's
// answer from this table and byEP has not changed since; otherwise looked
// up, and h keeps the answer. Either way ByEndpoint's memo then holds ep.
func (t *Table) ByEndpointHint(ep Endpoint, h *Hint) *Peer {
	if h.t == t && h.gen == t.gen && h.ep == ep {
		t.last, t.lastPeer, t.memo = ep, h.p, true
		return h.p
	}
	p := t.ByEndpoint(ep)
	*h = Hint{t: t, gen: t.gen, ep: ep, p: p}
	return p
}

// Refresh adds the peer or refreshes it (timeout reset, endpoint added or
// moved from another peer that claimed it: addresses are reassigned when a
// node restarts with a new key). It reports whether the peer is new.
func (t *Table) Refresh(id identity.NodeID, ep Endpoint, now time.Time) (*Peer, bool) {
	p, ok := t.byID[id]
	if !ok {
		p = &Peer{ID: id}
		t.byID[id] = p
	}
	p.Timeout = DefaultTimeout
	p.LastRx = now
	if old := t.byEP[ep]; old != p {
		t.forget()
		if old != nil {
			old.Endpoints = slices.DeleteFunc(old.Endpoints, func(e Endpoint) bool { return e == ep })
			if len(old.Endpoints) == 0 {
				t.Remove(old.ID)
			}
		}
		t.byEP[ep] = p
		p.Endpoints = append(p.Endpoints, ep)
	}
	return p, !ok
}

// Remove forgets a peer.
func (t *Table) Remove(id identity.NodeID) {
	p, ok := t.byID[id]
	if !ok {
		return
	}
	t.forget()
	for _, ep := range p.Endpoints {
		if t.byEP[ep] == p {
			delete(t.byEP, ep)
		}
	}
	delete(t.byID, id)
}

// RemoveEndpoint takes ep from peer id; a peer left with no endpoint is
// forgotten. It reports whether the peer went.
func (t *Table) RemoveEndpoint(id identity.NodeID, ep Endpoint) bool {
	p, ok := t.byID[id]
	if !ok {
		return false
	}
	p.Endpoints = slices.DeleteFunc(p.Endpoints, func(e Endpoint) bool { return e == ep })
	if t.byEP[ep] == p {
		t.forget()
		delete(t.byEP, ep)
	}
	if len(p.Endpoints) == 0 {
		delete(t.byID, id)
		return true
	}
	return false
}

// Tick counts every peer's timeout down by one and removes those that reach
// zero, returning them.
func (t *Table) Tick() []*Peer {
	var gone []*Peer
	for _, p := range t.All() {
		p.Timeout--
		if p.Timeout <= 0 {
			gone = append(gone, p)
			t.Remove(p.ID)
		}
	}
	return gone
}

// Any reports whether f holds for some peer. It visits them in no
// particular order, so f must not have side effects; unlike All it
// neither allocates nor sorts (a node asks it often: node.neighbourBusy,
// on every frame it sends).
func (t *Table) Any(f func(*Peer) bool) bool {
	for _, p := range t.byID {
		if f(p) {
			return true
		}
	}
	return false
}

// All returns the peers ordered by node_id, so iteration is deterministic.
func (t *Table) All() []*Peer {
	out := make([]*Peer, 0, len(t.byID))
	for _, p := range t.byID {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Peer) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out
}

// NodeListExpiry is how long a node list entry lives after its last update.
const NodeListExpiry = 30 * time.Minute

// NodeInfo is what the node list knows of a node.
type NodeInfo struct {
	Apps    []packet.AppID
	Updated time.Time
}

// NodeList maps node_ids to the applications they announced.
type NodeList struct {
	m map[identity.NodeID]*NodeInfo
}

// NewNodeList returns an empty list.
func NewNodeList() *NodeList { return &NodeList{m: map[identity.NodeID]*NodeInfo{}} }

// Update records apps for id. first starts a new announcement (the first
// message of a beacon burst): the app list is replaced; later messages of
// the same burst add to it.
func (l *NodeList) Update(id identity.NodeID, apps []packet.AppID, first bool, now time.Time) {
	e, ok := l.m[id]
	if !ok {
		e = &NodeInfo{}
		l.m[id] = e
	}
	if first {
		e.Apps = e.Apps[:0]
	}
	for _, a := range apps {
		if !slices.Contains(e.Apps, a) {
			e.Apps = append(e.Apps, a)
		}
	}
	e.Updated = now
}

// Get returns the entry for id (nil if unknown or expired at now).
func (l *NodeList) Get(id identity.NodeID, now time.Time) *NodeInfo {
	e := l.m[id]
	if e == nil || now.Sub(e.Updated) > NodeListExpiry {
		return nil
	}
	return e
}

// Expire drops entries older than NodeListExpiry; it returns how many.
func (l *NodeList) Expire(now time.Time) int {
	n := 0
	for id, e := range l.m {
		if now.Sub(e.Updated) > NodeListExpiry {
			delete(l.m, id)
			n++
		}
	}
	return n
}

// Len is the number of entries.
func (l *NodeList) Len() int { return len(l.m) }
