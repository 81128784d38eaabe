package route

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// Leased addresses and proxying (PROTOCOL 6.4) [ours].
//
// A node with a tree address A leases sub-addresses to neighbours that do
// not join the tree themselves — a reference node (it has no routing), or
// one of ours running as a leaf (a sleeping sensor, a LoRa-only node behind
// a gateway) — or cannot: a node whose only parents have 135 children
// already (a rooftop gateway heard by hundreds). A lease is A's
// coordinates, the terminating zero nibble, then one coordinate 1..135 (in
// the address code) naming the lease: routing reaches A, and A hands the
// Package on one hop; distances count a lease one level below A
// (addr.Metric.RouteKey). A registers the name record of each leaseholder
// that does not register itself (signed by A as its proxy). A reference
// leaseholder gets the Package as a plain one (schema 0 or 2); a leaf gets
// the routed Package, and sends its own routed Packages through A; a node
// with a lease only where it has no place routes like any other.

type leaseHolder struct {
	id   identity.NodeID
	via  peer.Endpoint
	ref  bool // a reference node: deliver plain Packages
	self bool // it registers its own record
}

type leaseState struct {
	// As a proxy: per tree_state, lease id → holder.
	granted map[uint8]map[uint8]leaseHolder
	index   map[identity.NodeID]uint8 // a holder keeps its id across epochs
	// holders are all we lease to, granted or not yet: a reference node
	// heard before we had an address gets its leases when we get ours.
	holders map[identity.NodeID]leaseHolder
	// delegs are our leaves' delegations to us (delegation.go): their
	// records carry them.
	delegs map[identity.NodeID]Delegation
	// registered are the leaseholders our last registration saw
	// (records): a record for each, or none if it had no lease then (it
	// gets one when our position changes, which registers anew).
	registered map[identity.NodeID]bool
	next       uint8
	// As a leaf: our leases and our proxy.
	proxied bool
	leaf    bool
	proxy   peer.Endpoint
	own     []TreeAddr
	askTmr  interface{ Stop() bool }
	// crowded: trees where no parent had room for us, and when we last
	// asked a proxy for leases because of it.
	crowdedAt time.Time
}

func (l *leaseState) init() {
	l.granted = map[uint8]map[uint8]leaseHolder{}
	l.index = map[identity.NodeID]uint8{}
	l.holders = map[identity.NodeID]leaseHolder{}
	l.delegs = map[identity.NodeID]Delegation{}
	l.registered = map[identity.NodeID]bool{}
	l.next = 1
}

// registeredAll reports whether every leaseholder whose record is ours to
// register (it does not register itself) and that holds a lease id was
// seen by our last registration.
func (l *leaseState) registeredAll() bool {
	for id, h := range l.holders {
		if _, leased := l.index[id]; leased && !h.self && !l.registered[id] {
			return false
		}
	}
	return true
}

// holder returns the leaseholder a Package for to (in epoch ts) is for.
func (l *leaseState) holder(ts uint8, to addr.Long) *leaseHolder {
	i := to.LeaseID()
	if i == 0 {
		return nil
	}
	if h, ok := l.granted[ts][i]; ok {
		return &h
	}
	return nil
}

// position is a leaf's position in epoch ts: its lease.
func (l *leaseState) position(ts uint8) (tree.Position, bool) {
	for _, a := range l.own {
		if a.TreeState == ts {
			return tree.Position{Tree: a.Tree, TreeState: a.TreeState, Addr: a.Addr, Depth: a.Addr.Depth()}, true
		}
	}
	return tree.Position{}, false
}

// inTree is our lease in tree k (the proxy's current epoch there).
func (l *leaseState) inTree(k int) (TreeAddr, bool) {
	for _, a := range l.own {
		if int(a.Tree) == k {
			return a, true
		}
	}
	return TreeAddr{}, false
}

// grant leases addresses in every current tree to a neighbour, reusing its
// id; it returns the leases.
func (r *Router) grant(h leaseHolder) []TreeAddr {
	l := &r.leases
	i, ok := l.index[h.id]
	if !ok {
		if l.next == 0 || l.next > addr.MaxCoord {
			return nil // 135 leases per proxy
		}
		i = l.next
		l.next++
		l.index[h.id] = i
	}
	l.holders[h.id] = h
	var out []TreeAddr
	for k := range r.t.Count() {
		p, ok := r.t.Current(k)
		if !ok {
			continue
		}
		a, ok := p.Addr.Lease(i)
		if !ok {
			continue
		}
		if l.granted[p.TreeState] == nil {
			l.granted[p.TreeState] = map[uint8]leaseHolder{}
		}
		l.granted[p.TreeState][i] = h
		out = append(out, TreeAddr{Tree: uint8(k), TreeState: p.TreeState, Addr: a})
	}
	return out
}

// records are the name records of our leaseholders that do not register
// themselves, signed by us, with leases in every tree we have an address
// in now. A leaseholder of ours is told its leases anew: the record must
// name only leases it holds (a Package in a tree whose lease it never heard
// of would die there).
func (l *leaseState) records(r *Router) []Record {
	var out []Record
	clear(l.registered)
	ids := slices.SortedFunc(maps.Keys(l.holders), func(a, b identity.NodeID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		h := l.holders[id]
		l.registered[id] = true
		addrs := r.grant(h)
		if len(addrs) == 0 {
			continue
		}
		if !h.ref {
			r.sendGrant(h.via, addrs)
		}
		if h.self {
			continue
		}
		rec := Record{ID: h.id, Signer: r.self, Time: r.clk.Now().UnixNano(), Addrs: addrs}
		if d, ok := l.delegs[h.id]; ok && d.Until > rec.Time {
			rec.Deleg = &d
		} else if c := r.proxyCert(h.id); c != nil && h.ref {
			rec.Cert = c
		}
		rec.Sign(r.b.Signer())
		out = append(out, rec)
	}
	return out
}

// proxyCert is a certificate naming us the proxy of board, unexpired and
// not revoked (the latest-dated if several), or nil.
func (r *Router) proxyCert(board identity.NodeID) *revoke.ProxyCert {
	var best *revoke.ProxyCert
	now := r.clk.Now().Unix()
	for i := range r.cfg.ProxyCerts {
		c := &r.cfg.ProxyCerts[i]
		if c.Board == board && c.Proxy == r.self && c.Until >= now && !r.certRevoked(c) && (best == nil || c.Until > best.Until) {
			best = c
		}
	}
	return best
}

// peerEvent: a reference node in range gets a lease from us at once.
func (l *leaseState) peerEvent(r *Router, p *peer.Peer, up bool) {
	if !up {
		delete(l.holders, p.ID)
		delete(l.delegs, p.ID)
		delete(l.registered, p.ID)
		for ts, byIdx := range l.granted {
			for i, h := range byIdx {
				if h.id == p.ID {
					delete(byIdx, i)
				}
			}
			if len(byIdx) == 0 {
				delete(l.granted, ts)
			}
		}
		return
	}
	if p.Full || len(p.Endpoints) == 0 {
		return
	}
	if len(r.grant(leaseHolder{id: p.ID, via: p.Endpoints[0], ref: true})) > 0 {
		r.scheduleRegister()
	}
}

// SetLeaf makes this node a leaf: it joins no tree itself but asks a
// neighbour for leases and sends through it (a sleeping sensor, a LoRa-only
// node behind a gateway). Its tree application should not be started.
func (r *Router) SetLeaf() {
	r.leases.leaf = true
	r.askLease()
}

func (r *Router) askLease() {
	l := &r.leases
	if !l.leaf {
		return
	}
	if l.askTmr != nil {
		l.askTmr.Stop()
	}
	// Renew every epoch's length; ask soon while we have none.
	wait := r.recordLife() / 4
	if len(l.own) == 0 {
		wait = 5 * time.Second
		for _, p := range r.b.Peers() {
			for _, ep := range p.Endpoints {
				if r.b.SpeaksOurs(ep) {
					r.b.Send(ep, ControlApp, r.leaseRequest(p.ID), nil)
					break
				}
			}
		}
	} else if p := r.b.PeerAt(l.proxy); p != nil {
		r.b.Send(l.proxy, ControlApp, r.leaseRequest(p.ID), nil)
	}
	l.askTmr = r.clk.AfterFunc(wait, r.askLease)
}

// onLeaseRequest: a neighbour asks for leases (flag leaseSelf: it
// registers its own record).
func (r *Router) onLeaseRequest(m node.Message) {
	if !m.FromKnown || r.leases.leaf {
		return
	}
	self := (len(m.Blob) == 2 || len(m.Blob) == 2+DelegationSize) && m.Blob[1]&leaseSelf != 0
	if d, ok := parseLeaseDelegation(m.Blob, r.self); ok && d.Verify(m.From) {
		r.leases.delegs[m.From] = d
	}
	// A neighbour that has not proven its key (a keyless board) takes no
	// routed schema from us (node.Bind.SendRouted): its Packages are
	// handed on plain, and we confirm them, as for a reference node.
	p := r.b.PeerAt(m.Via)
	ref := p == nil || !p.Proven
	old, known := r.leases.holders[m.From]
	addrs := r.grant(leaseHolder{id: m.From, via: m.Via, self: self, ref: ref})
	if len(addrs) == 0 {
		return
	}
	r.sendGrant(m.Via, addrs)
	// A record to register: a leaseholder new to us (or back after it
	// timed out), or one that stopped registering itself. A renewal
	// (our boards ask every four beacon periods) changes nothing: the
	// registration it would call for is pending or done, and each call
	// draws the registration's spread again (on LoRa, calls every 8 s
	// against a spread of half a minute put the board's record off past
	// a minute).
	if !self && (!known || old.self) {
		r.scheduleRegister()
	}
}

// AdmitRouted (node.RoutedAdmitter): a routed Package from a neighbour
// that has not proven a key is taken only from a leaseholder of ours that
// has none to prove (a keyless node_id, as our boards draw them), at the
// address it asked from, sent from a lease we granted it under our current
// position: a leaf's way out is its proxy, and its source is the lease
// bound to it, never another's.
func (r *Router) AdmitRouted(h node.RouteHeader, via peer.Endpoint) bool {
	if h.Error {
		return false
	}
	from := addr.Address(h.From).Long()
	lh := r.leases.holder(h.TreeState, from)
	if lh == nil || !lh.ref || lh.via != via {
		return false
	}
	if self, ok := r.position(h.TreeState); !ok || !self.Addr.Equal(from) || self.Addr.LeaseID() != 0 {
		return false
	}
	p := r.b.PeerAt(via)
	if p == nil || p.ID != lh.id {
		return false
	}
	_, err := identity.X25519Public(p.ID)
	return err != nil
}

// leaseSelf flags a lease request from a node that registers itself.
const leaseSelf = 0x01

// crowded: tree k has no place for us, for want of room at the parents
// within reach (tree.Trees.OnCrowded), the best of which is at ep. We
// ask it for leases, at most once a claim period, and route by them in
// the trees where we have no place of our own.
func (r *Router) crowded(k int, ep peer.Endpoint) {
	l := &r.leases
	if l.leaf {
		return
	}
	now := r.clk.Now()
	if !l.crowdedAt.IsZero() && now.Sub(l.crowdedAt) < r.t.Config().ClaimPeriod {
		return
	}
	l.crowdedAt = now
	r.b.Send(ep, ControlApp, []byte{msgLeaseReq, leaseSelf}, nil)
}

// sendGrant tells a leaseholder its leases.
func (r *Router) sendGrant(via peer.Endpoint, addrs []TreeAddr) {
	b := []byte{msgLeaseGrant, byte(len(addrs))}
	for _, a := range addrs {
		b = append(b, a.Tree, a.TreeState)
		b = a.Addr.AppendCompact(b)
	}
	r.stats.ControlBytesSent += uint64(len(b))
	r.b.Send(via, ControlApp, b, nil)
}

// onLeaseGrant: a proxy granted us leases.
func (r *Router) onLeaseGrant(m node.Message) {
	l := &r.leases
	own, err := decodeGrant(m.Blob)
	if err != nil {
		r.stats.Malformed++
		return
	}
	if len(own) == 0 || (!l.leaf && l.crowdedAt.IsZero()) {
		return // leases nobody asked for
	}
	if len(l.own) == 0 || l.proxy == m.Via {
		l.own, l.proxy, l.proxied = own, m.Via, l.leaf
		if !l.leaf {
			r.scheduleRegister() // a leaf's record is its proxy's to register
		}
	}
}

// decodeGrant reads a lease grant: count ‖ count × (tree ‖ tree_state ‖
// compact Long). Each must be a lease (a lease id after the terminator).
func decodeGrant(b []byte) ([]TreeAddr, error) {
	if len(b) < 2 || b[0] != msgLeaseGrant || int(b[1]) > tree.MaxTrees {
		return nil, fmt.Errorf("%w: lease grant", ErrControl)
	}
	n := int(b[1])
	var own []TreeAddr
	p := b[2:]
	for range n {
		if len(p) < 3 {
			return nil, fmt.Errorf("%w: lease grant: truncated", ErrControl)
		}
		a := TreeAddr{Tree: p[0], TreeState: p[1]}
		var err error
		if a.Addr, p, err = addr.ReadCompact(p[2:]); err != nil {
			return nil, fmt.Errorf("%w: lease grant: %w", ErrControl, err)
		}
		if a.Addr.LeaseID() == 0 || int(a.Tree) != tree.TreeOf(a.TreeState) {
			return nil, fmt.Errorf("%w: lease grant: not a lease", ErrControl)
		}
		own = append(own, a)
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: lease grant: trailing bytes", ErrControl)
	}
	return own, nil
}

// proxy hands a Package for a leaseholder on, one hop.
func (r *Router) proxy(rp *routed, h *leaseHolder) {
	pkg := &rp.Pkg
	r.observe(Hop{Hash: rp.Inner.Hash, Self: r.self, Next: h.id, TreeState: rp.Header.TreeState, TTL: rp.Header.TTL, Mode: rp.Header.Mode, Proxy: true, Error: rp.Header.Error, Path: rp.Path != nil})
	var res *node.Result
	if h.ref {
		res = r.b.Send(h.via, rp.Inner.AppID, rp.Inner.Blob, nil)
	} else {
		hdr := rp.Header
		if !hdr.Error && hdr.TTL > 1 {
			hdr.TTL-- // a hop like any other
		}
		res = r.b.SendRouted(h.via, hdr, pkg, nil)
	}
	hdr := rp.Header
	inner := rp.Inner
	res.OnDone(func(err error) {
		if err != nil {
			r.reportError(rp, err)
			return
		}
		if h.ref && !hdr.Error && !isControl(&inner) {
			// A reference node sends no receipt: the proxy confirms,
			// plainly (it speaks for a board that cannot sign: the
			// sender takes a plain receipt only for such a destination,
			// signed.go).
			r.reply(rp, append([]byte{msgReceipt}, inner.Hash[:]...))
		}
	})
}
