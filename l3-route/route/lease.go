package route

import (
	"bytes"
	"maps"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// Leased addresses and proxying (PROTOCOL 6.4) [ours].
//
// A node with a tree address A leases sub-addresses to neighbours that do
// not join the tree themselves — a reference node (it has no routing), or
// one of ours running as a leaf (a sleeping sensor, a LoRa-only node behind
// a gateway). A lease is A's coordinates, the terminating zero nibble, then
// one nibble 1..15 naming the lease: routing ignores what follows the
// terminator, so every Package for a lease reaches A, and A, seeing the
// lease nibble, hands it on one hop. A registers each leaseholder's name
// record (signed by A as its proxy). A reference leaseholder gets the
// Package as a plain one (schema 0 or 2); a leaf gets the routed Package,
// and sends its own routed Packages through A.

type leaseHolder struct {
	id  identity.NodeID
	via peer.Endpoint
	ref bool // a reference node: deliver plain Packages
}

type leaseState struct {
	// As a proxy: per tree_state, lease nibble → holder.
	granted map[uint8]map[uint8]leaseHolder
	index   map[identity.NodeID]uint8 // a holder keeps its nibble across epochs
	// holders are all we lease to, granted or not yet: a reference node
	// heard before we had an address gets its leases when we get ours.
	holders map[identity.NodeID]leaseHolder
	// delegs are our leaves' delegations to us (delegation.go): their
	// records carry them.
	delegs map[identity.NodeID]Delegation
	next   uint8
	// As a leaf: our leases and our proxy.
	proxied bool
	leaf    bool
	proxy   peer.Endpoint
	own     []TreeAddr
	askTmr  interface{ Stop() bool }
}

func (l *leaseState) init() {
	l.granted = map[uint8]map[uint8]leaseHolder{}
	l.index = map[identity.NodeID]uint8{}
	l.holders = map[identity.NodeID]leaseHolder{}
	l.delegs = map[identity.NodeID]Delegation{}
	l.next = 1
}

// leaseAddr is the lease with nibble i under a (false if it does not fit).
func leaseAddr(a addr.Address, i uint8) (addr.Address, bool) {
	c := a.Canonical()
	n := c.NibbleLen()
	if n+1 >= addr.Nibbles || i == 0 || i > 15 {
		return c, false
	}
	pos := n + 1 // n is the terminator
	if pos%2 == 0 {
		c[pos/2] |= i << 4
	} else {
		c[pos/2] |= i
	}
	return c, true
}

// leaseNibble reads the lease nibble of a (0 if none).
func leaseNibble(a addr.Address) uint8 {
	n := a.NibbleLen()
	pos := n + 1
	if pos >= addr.Nibbles {
		return 0
	}
	if pos%2 == 0 {
		return a[pos/2] >> 4
	}
	return a[pos/2] & 0xf
}

// holder returns the leaseholder a Package for to (in epoch ts) is for.
func (l *leaseState) holder(ts uint8, to addr.Address) *leaseHolder {
	i := leaseNibble(to)
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

func (l *leaseState) mine() []TreeAddr { return l.own }

// grant leases addresses in every current tree to a neighbour, reusing its
// nibble; it returns the leases.
func (r *Router) grant(id identity.NodeID, via peer.Endpoint, ref bool) []TreeAddr {
	l := &r.leases
	i, ok := l.index[id]
	if !ok {
		if l.next > 15 {
			return nil // fifteen leases per proxy
		}
		i = l.next
		l.next++
		l.index[id] = i
	}
	l.holders[id] = leaseHolder{id: id, via: via, ref: ref}
	var out []TreeAddr
	for k := range r.t.Count() {
		p, ok := r.t.Current(k)
		if !ok {
			continue
		}
		a, ok := leaseAddr(p.Addr, i)
		if !ok {
			continue
		}
		if l.granted[p.TreeState] == nil {
			l.granted[p.TreeState] = map[uint8]leaseHolder{}
		}
		l.granted[p.TreeState][i] = leaseHolder{id: id, via: via, ref: ref}
		out = append(out, TreeAddr{Tree: uint8(k), TreeState: p.TreeState, Addr: a})
	}
	return out
}

// records are the name records of our leaseholders, signed by us, with
// leases in every tree we have an address in now. A leaf is told its
// leases anew: the record must name only leases it holds (a Package in a
// tree whose lease it never heard of would die there).
func (l *leaseState) records(r *Router) []Record {
	var out []Record
	ids := slices.SortedFunc(maps.Keys(l.holders), func(a, b identity.NodeID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		h := l.holders[id]
		addrs := r.grant(h.id, h.via, h.ref)
		if len(addrs) == 0 {
			continue
		}
		if !h.ref {
			r.sendGrant(h.via, addrs)
		}
		rec := Record{ID: h.id, Signer: r.self, Time: r.clk.Now().UnixNano(), Addrs: addrs}
		if d, ok := l.delegs[h.id]; ok && d.Until > rec.Time {
			rec.Deleg = &d
		}
		rec.Sign(r.b.Signer())
		out = append(out, rec)
	}
	return out
}

// peerEvent: a reference node in range gets a lease from us at once.
func (l *leaseState) peerEvent(r *Router, p *peer.Peer, up bool) {
	if !up {
		delete(l.holders, p.ID)
		delete(l.delegs, p.ID)
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
	if len(r.grant(p.ID, p.Endpoints[0], true)) > 0 {
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

// onLeaseRequest: a leaf neighbour asks for leases.
func (r *Router) onLeaseRequest(m node.Message) {
	if !m.FromKnown || r.leases.leaf {
		return
	}
	if d, ok := parseLeaseDelegation(m.Blob, r.self); ok && d.Verify(m.From) {
		r.leases.delegs[m.From] = d
	}
	addrs := r.grant(m.From, m.Via, false)
	if len(addrs) == 0 {
		return
	}
	r.sendGrant(m.Via, addrs)
	r.scheduleRegister()
}

// sendGrant tells a leaf its leases.
func (r *Router) sendGrant(via peer.Endpoint, addrs []TreeAddr) {
	b := []byte{msgLeaseGrant, byte(len(addrs))}
	for _, a := range addrs {
		b = append(b, a.Tree, a.TreeState)
		b = append(b, a.Addr[:]...)
	}
	r.stats.ControlBytesSent += uint64(len(b))
	r.b.Send(via, ControlApp, b, nil)
}

// onLeaseGrant: our proxy granted leases.
func (r *Router) onLeaseGrant(m node.Message) {
	l := &r.leases
	b := m.Blob
	if !l.leaf || len(b) < 2 || len(b) != 2+int(b[1])*18 {
		return
	}
	var own []TreeAddr
	for p := b[2:]; len(p) >= 18; p = p[18:] {
		var a TreeAddr
		a.Tree, a.TreeState = p[0], p[1]
		copy(a.Addr[:], p[2:18])
		own = append(own, a)
	}
	if len(own) == 0 {
		return
	}
	if len(l.own) == 0 || l.proxy == m.Via {
		l.own, l.proxy, l.proxied = own, m.Via, true
	}
}

// proxy hands a Package for a leaseholder on, one hop.
func (r *Router) proxy(rp *routed, h *leaseHolder) {
	pkg := &rp.Pkg
	hash := pkg.Hash
	r.observe(Hop{Hash: hash, Self: r.self, Next: h.id, TreeState: rp.Header.TreeState, To: rp.Header.To, Mode: rp.Header.Mode, Proxy: true, Error: rp.Header.Error})
	var res *node.Result
	if h.ref {
		res = r.b.Send(h.via, pkg.AppID, pkg.Blob, nil)
	} else {
		res = r.b.SendRouted(h.via, rp.Header, pkg, nil)
	}
	hdr := rp.Header
	res.OnDone(func(err error) {
		if err != nil {
			r.reportError(rp, err, nil)
			return
		}
		if h.ref && !hdr.Error && !isControl(pkg) {
			// A reference node sends no receipt: the proxy confirms.
			b := append([]byte{msgReceipt}, hash[:]...)
			r.sendControl(hdr.TreeState, hdr.From, hdr.Mode, b, false)
		}
	})
}
