// Package route is the routing layer: it forwards routed Packages greedily
// toward their destination's tree coordinates (PROTOCOL 6.3), in the tree
// the sender chose among K parallel trees, never back to where a Package
// came from and only with strict progress; it turns failures into errors
// that travel back to the sender (PROTOCOL 7), confirms delivery end to
// end, and offers name lookup, trace route and leased addresses (6.4).
//
// Hops are reliable transfers between neighbours (the node runtime's
// sequences, in routed schemas); a relay reassembles and verifies a Package
// before it passes it on, so a Package crosses from ESP-NOW to LoRa by
// being cut again into the LoRa schema at the gateway.
package route

import (
	"encoding/binary"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// Config tunes the router.
type Config struct {
	// TTL is the hop limit routed Packages start with (default 64).
	TTL uint8
	// ReceiptTimeout is how long a sender waits for the end-to-end receipt
	// before sending again (default 30 s); Attempts bounds the sends (4).
	ReceiptTimeout time.Duration
	Attempts       int
	// LookupTrees is how many trees hold a node's name record (default:
	// all of them). A node far from some roots has no address in their
	// trees (32 levels), and can look names up only in the others; a
	// record in every tree is found from any of them. A record is one
	// routed packet per tree.
	LookupTrees int
	// Records bounds the name records a node stores for others (4096),
	// and separately the names it stores and remembers.
	Records int
	// RegisterQuiet, RegisterMax and RegisterSpread time the registration
	// of this node's record (defaults 10 s, 1 min, 20 s): it waits for the
	// node's positions to be quiet for RegisterQuiet, but no longer than
	// RegisterMax after the first change, plus up to RegisterSpread (see
	// scheduleRegister). A small mesh on fast links may shorten them.
	RegisterQuiet, RegisterMax, RegisterSpread time.Duration
	// Name is this node's name for name lookup ("" for none; see
	// ValidName). It is registered with the node's record and told to
	// neighbours.
	Name string
}

func (c *Config) fill() {
	if c.TTL == 0 {
		c.TTL = 64
	}
	if c.ReceiptTimeout <= 0 {
		c.ReceiptTimeout = 30 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 4
	}

	if c.Records <= 0 {
		c.Records = 4096
	}
	if c.RegisterQuiet <= 0 {
		c.RegisterQuiet = registerQuiet
	}
	if c.RegisterMax <= 0 {
		c.RegisterMax = registerMax
	}
	if c.RegisterSpread <= 0 {
		c.RegisterSpread = registerSpread
	}
}

// Stats counts the router's work.
type Stats struct {
	Originated, Delivered, Forwarded uint64
	Receipts                         uint64
	ErrorsSent, ErrorsRecv           uint64
	NoRoute, HopLimit                uint64
	ControlBytesSent                 uint64 // lookup, trace, lease, receipt and error messages
	Malformed                        uint64 // control messages and records that did not parse, dropped
	RecordsRefused                   uint64 // records refused: future-dated, a delegation that does not hold, or a proxy's over the node's own
	Lookups, LookupHits              uint64
	NameLookups                      uint64
	NameConflicts                    uint64 // a home said our name is another node's
	// Failed counts the sends this node originated that ended in an
	// error, by the error's wire code (0: errors without one, such as
	// ErrNoCommonTree or ErrUnknownNode).
	Failed map[uint8]uint64
}

// Hop is what an observer hears for each routing decision: the Package
// (by hash) left self for next (next zero when delivered here).
type Hop struct {
	Hash      [16]byte
	Self      identity.NodeID
	Next      identity.NodeID
	Delivered bool
	TreeState uint8
	To        addr.Address // where the Package is going
	NextAddr  addr.Address // Next's address in the epoch, as Self knows it
	Mode      bool         // the metric: common-prefix distance (else tree distance)
	Proxy     bool         // handed to a leaseholder, not routed
	Error     bool
}

// Router is the routing layer of one node. It is the layer above the node
// (node.Layer): it reaches the node through one handle (node.Bind), and
// runs the node's trees over the same handle.
type Router struct {
	b    *node.Bind
	t    *tree.Trees
	clk  clock.Clock
	cfg  Config
	self identity.NodeID
	rng  *rand.Rand

	pending    map[[16]byte]*pendingSend
	records    map[identity.NodeID]*storedRecord
	cache      map[identity.NodeID]*cachedRecord
	lookups    map[uint32]*lookupReq
	traces     map[uint32]*traceReq
	leases     leaseState
	regTmr     clock.Timer
	down       map[peer.Endpoint]time.Time // neighbours that stopped answering, and since when
	renewed    map[uint8]bool              // epochs for which we passed a neighbour's renew request on
	regs       map[regKey]*regState        // registrations not yet confirmed
	regFirst   time.Time                   // the first position change the pending registration waits out
	registered []TreeAddr                  // the addresses in the record we registered last
	regAt      time.Time                   // when
	refreshTmr clock.Timer
	stats      Stats
	obs        []func(Hop)
	// delivered are the Packages (app_id ‖ hash) handed to applications
	// lately, oldest first in deliveredQ: a copy is answered, not delivered.
	delivered  map[[32]byte]time.Time
	deliveredQ [][32]byte
	names      nameState
}

// Attach builds the routing layer of n, with its trees (tcfg), and
// attaches it to n: one call, one handle. Call Trees().Start after the node
// starts (a leaf's trees are never started: SetLeaf).
func Attach(n *node.Node, tcfg tree.Config, cfg Config) (*Router, error) {
	cfg.fill()
	r := &Router{
		pending: map[[16]byte]*pendingSend{}, records: map[identity.NodeID]*storedRecord{},
		cache: map[identity.NodeID]*cachedRecord{}, lookups: map[uint32]*lookupReq{}, traces: map[uint32]*traceReq{},
		cfg: cfg,
	}
	b, err := n.Attach(r, tree.AppID, ControlApp)
	if err != nil {
		return nil, err
	}
	r.b, r.clk, r.self = b, b.Clock(), b.ID()
	r.rng = rand.New(rand.NewPCG(b.Seed(), 0x726f757465))
	r.t = tree.New(b, tcfg)
	r.leases.init()
	if cfg.Name != "" && ValidName(cfg.Name) != nil {
		cfg.Name = "" // the caller checks with ValidName; a bad name is never sent
		r.cfg.Name = ""
	}
	r.t.Subscribe(func(int) { r.scheduleRegister() })
	r.t.OnParentLost(r.askRenew)
	return r, nil
}

// Trees returns the node's trees.
func (r *Router) Trees() *tree.Trees { return r.t }

// HandleMessage is the node handing us a one-hop Package of the trees or
// of the router's control app (node.Layer).
func (r *Router) HandleMessage(m node.Message) {
	switch m.App {
	case tree.AppID:
		r.t.HandleMessage(m)
	case ControlApp:
		r.receiveOneHop(m)
	}
}

// PeerChanged is the node telling us of a peer that came or went
// (node.Layer).
func (r *Router) PeerChanged(p *peer.Peer, up bool) {
	r.t.PeerChanged(p, up)
	r.peerEvent(p, up)
}

// Stats returns the counters.
func (r *Router) Stats() Stats {
	s := r.stats
	s.Failed = maps.Clone(r.stats.Failed)
	return s
}

// Observe registers f to hear every routing decision (for measurement and
// loop checks).
func (r *Router) Observe(f func(Hop)) { r.obs = append(r.obs, f) }

func (r *Router) observe(h Hop) {
	for _, f := range r.obs {
		f(h)
	}
}

// Addrs returns this node's current addresses, one per tree where it has
// one (its own, or leased from a proxy).
func (r *Router) Addrs() []TreeAddr {
	var out []TreeAddr
	for k := range r.t.Count() {
		if p, ok := r.t.Current(k); ok {
			out = append(out, TreeAddr{Tree: uint8(k), TreeState: p.TreeState, Addr: p.Addr})
		}
	}
	if len(out) == 0 {
		out = append(out, r.leases.mine()...)
	}
	return out
}

// pendingSend is a Package we originated, waiting for its receipt.
type pendingSend struct {
	res      *node.Result
	dst      Destination
	pkg      packet.Package
	opt      *node.SendOptions
	mode     bool
	forced   *int
	attempts int
	timer    clock.Timer
}

// Destination is where to send: a node's addresses (from a lookup), and
// its node_id when known.
type Destination struct {
	ID    identity.NodeID
	Addrs []TreeAddr
}

// Options tune a routed send.
type Options struct {
	// Mode selects the relays' metric: false tree distance, true
	// common-prefix distance (the flags' mode bit).
	Mode     bool
	Priority int
	// Tree forces a tree (-1 or unset: the one where the destination is closest).
	Tree *int
}

// Send looks the node up (once, then from a cache) and sends it blob for
// application app; the Result completes on the destination's receipt.
func (r *Router) Send(to identity.NodeID, app packet.AppID, blob []byte, opt *Options) *node.Result {
	res := newResult()
	fresh := false
	var try func()
	try = func() {
		r.Lookup(to, func(d Destination, err error) {
			if err != nil {
				completeResult(res, err)
				return
			}
			r.SendTo(d, app, blob, opt).OnDone(func(err error) {
				// Addresses from the cache may be stale (the trees moved
				// on): look the node up afresh, once.
				// (Another send may have dropped or refreshed the entry
				// meanwhile: drop it only if it is the one we used.)
				if err != nil && !fresh && (errors.Is(err, node.ErrNoRoute) || errors.Is(err, ErrNoCommonTree)) {
					fresh = true
					if c := r.cache[to]; c != nil && slices.Equal(c.d.Addrs, d.Addrs) {
						delete(r.cache, to)
					}
					try()
					return
				}
				completeResult(res, err)
			})
		})
	}
	try()
	return res
}

// SendTo sends blob to application app at a destination whose addresses
// are known.
func (r *Router) SendTo(d Destination, app packet.AppID, blob []byte, opt *Options) *node.Result {
	if opt == nil {
		opt = &Options{}
	}
	pkg := packet.NewPackage(app, blob)
	res := newResult()
	p := &pendingSend{res: res, dst: d, pkg: pkg, opt: &node.SendOptions{Priority: opt.Priority}, mode: opt.Mode}
	if old := r.pending[pkg.Hash]; old != nil {
		// The same Package already on its way: both hear the same outcome.
		old.res.OnDone(func(err error) { completeResult(res, err) })
		return res
	}
	r.pending[pkg.Hash] = p
	r.stats.Originated++
	p.forced = opt.Tree
	r.attempt(pkg.Hash, p, opt.Tree)
	return res
}

// attempt sends (or resends) a pending Package.
func (r *Router) attempt(hash [16]byte, p *pendingSend, forced *int) {
	p.attempts++
	h, ok := r.header(p.dst, p.mode, forced, p.attempts-1)
	if !ok {
		r.finish(hash, ErrNoCommonTree)
		return
	}
	clock.Stop(&p.timer)
	p.timer = r.clk.AfterFunc(r.cfg.ReceiptTimeout, func() {
		p.timer = nil
		if p.attempts >= r.cfg.Attempts {
			r.finish(hash, node.ErrAbandoned)
			return
		}
		r.attempt(hash, p, forced)
	})
	r.forward(&routed{Header: h, Pkg: p.pkg, Time: r.clk.Now()}, true, nil)
}

// ErrNoCommonTree: the destination has no address in any epoch we are in.
var ErrNoCommonTree = errors.New("route: no tree in common with the destination")

// header picks the tree in which the destination is closest (by tree
// distance, a hop estimate, whatever metric the relays then use) among
// those where both ends have an address of the same epoch.
//
// rank 0 is the best tree; a send tried again after a failure takes the
// next (rank 1, 2, ...: its relays are others, likely past what failed).
func (r *Router) header(d Destination, mode bool, forced *int, rank int) (node.RouteHeader, bool) {
	type choice struct {
		h    node.RouteHeader
		dist int
	}
	var cs []choice
	for _, da := range d.Addrs {
		if forced != nil && *forced >= 0 && int(da.Tree) != *forced {
			continue
		}
		self, ok := r.position(da.TreeState)
		if !ok {
			continue
		}
		cs = append(cs, choice{node.RouteHeader{To: da.Addr, From: self.Addr, TreeState: da.TreeState, TTL: r.cfg.TTL, Mode: mode}, addr.DistTree(self.Addr, da.Addr)})
	}
	if len(cs) == 0 {
		return node.RouteHeader{}, false
	}
	slices.SortStableFunc(cs, func(a, b choice) int { return a.dist - b.dist })
	return cs[rank%len(cs)].h, true
}

// Position is this node's address in epoch ts: its own, or a lease (a
// node that cannot join the tree routes with the address its proxy leased
// it).
func (r *Router) Position(ts uint8) (tree.Position, bool) { return r.position(ts) }

// position is this node's address in epoch ts: its own, or a lease.
func (r *Router) position(ts uint8) (tree.Position, bool) {
	if p, ok := r.t.ByState(ts); ok {
		return p, true
	}
	return r.leases.position(ts)
}

// retryable reports errors that say "not now" rather than "never": a
// congested or silent relay on the way. The sender tries again (through
// another tree) before it gives up.
func retryable(err error) bool {
	// No route in one tree is not none in another: the next try takes
	// the next tree.
	for _, e := range []error{node.ErrBusy, node.ErrAbandoned, node.ErrThrottled, node.ErrNoMemory, node.ErrLink, node.ErrPeerAsleep, node.ErrNoRoute} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// failed: an attempt of a pending send failed with err; try again after a
// pause (a congested relay needs a moment) or report it.
func (r *Router) failed(hash [16]byte, err error) {
	p := r.pending[hash]
	if p == nil {
		return
	}
	limit := r.cfg.Attempts
	noRoute := errors.Is(err, node.ErrNoRoute)
	if noRoute {
		limit = max(limit, r.t.Count()) // every tree may be tried
	}
	if !retryable(err) || p.attempts >= limit {
		r.finish(hash, err)
		return
	}
	clock.Stop(&p.timer)
	// 2 s, 4 s, 8 s ...: a relay's queue that was full is drained by then,
	// and a storm of registrations after a new epoch has passed. No route
	// in one tree needs no wait before the next.
	pause := time.Second << min(p.attempts, 4)
	if noRoute {
		pause = 100 * time.Millisecond
	}
	pause += time.Duration(r.rng.Int64N(int64(pause)))
	p.timer = r.clk.AfterFunc(pause, func() {
		p.timer = nil
		if r.pending[hash] == p {
			r.attempt(hash, p, p.forced)
		}
	})
}

func (r *Router) finish(hash [16]byte, err error) {
	p := r.pending[hash]
	if p == nil {
		return
	}
	delete(r.pending, hash)
	clock.Stop(&p.timer)
	if err != nil {
		if r.stats.Failed == nil {
			r.stats.Failed = map[uint8]uint64{}
		}
		r.stats.Failed[node.CodeOf(err)]++
	}
	completeResult(p.res, err)
}

// routed is a routed Package at this node: the header it carries, the
// Package (decoded once, when it arrived or was made), and the neighbour
// it came from (zero when we originated it).
type routed struct {
	Header node.RouteHeader
	Pkg    packet.Package
	Via    peer.Endpoint
	Time   time.Time
}

// HandleRouted is the node handing us a routed Package from a neighbour
// (node.Layer).
func (r *Router) HandleRouted(h node.RouteHeader, pkg *packet.Package, via peer.Endpoint, at time.Time) {
	from := via
	r.forward(&routed{Header: h, Pkg: *pkg, Via: via, Time: at}, false, &from)
}

// forward makes the routing decision for a Package here: deliver, pass to
// the closest neighbour, or report an error back toward its origin.
func (r *Router) forward(rp *routed, originated bool, from *peer.Endpoint) {
	h := rp.Header
	pkgHash := rp.Pkg.Hash
	self, ok := r.position(h.TreeState)
	if !ok {
		r.stats.NoRoute++
		r.reportError(rp, node.ErrNoRoute, from)
		return
	}
	if self.Addr.Equal(h.To) {
		if lease := r.leases.holder(h.TreeState, h.To); lease != nil {
			r.proxy(rp, lease)
			return
		}
		r.local(rp, pkgHash)
		return
	}
	if r.leases.proxied && !originated && from != nil {
		// A leaf's only way out is its proxy; it never relays.
		r.stats.NoRoute++
		r.reportError(rp, node.ErrNoRoute, from)
		return
	}
	if !originated {
		switch {
		case h.Error && h.TTL == 255:
			return // an error that cannot travel further is dropped
		case h.Error:
			h.TTL++
		case h.TTL <= 1:
			r.stats.HopLimit++
			r.reportError(rp, node.ErrHopLimit, from)
			return
		default:
			h.TTL--
		}
	}
	next, ok := r.nextHop(self, h, from)
	if r.leases.proxied && originated {
		// A leaf sends everything through its proxy.
		next = tree.Neighbor{Via: r.leases.proxy, Addr: self.Addr}
		if p := r.b.PeerAt(r.leases.proxy); p != nil {
			next.ID = p.ID
		}
		ok = true
	}
	if !ok {
		if isLookup(&rp.Pkg) {
			// The end of a name's greedy path: its records live here.
			r.local(rp, pkgHash)
			return
		}
		r.stats.NoRoute++
		r.reportError(rp, node.ErrNoRoute, from)
		return
	}
	if !originated {
		r.stats.Forwarded++
	}
	r.traceHop(rp, self, h, next)
	r.observe(Hop{Hash: pkgHash, Self: r.self, Next: next.ID, NextAddr: next.Addr, TreeState: h.TreeState, To: h.To, Mode: h.Mode, Error: h.Error})
	rp.Header = h
	res := r.b.SendRouted(next.Via, h, &rp.Pkg, nil)
	res.OnDone(func(err error) {
		if err == nil {
			return
		}
		// The hop failed (the neighbour vanished, or refused): say so.
		if errors.Is(err, node.ErrAbandoned) || errors.Is(err, node.ErrLink) {
			r.suspect(next.Via)
		}
		var remote *node.RemoteError
		if errors.As(err, &remote) {
			err = remote.Err
		}
		if originated {
			r.failed(pkgHash, err)
			return
		}
		r.reportError(rp, err, from)
	})
}

// askRenew asks the root of tree k for an early term: our parent there is
// gone (see tree.Trees.OnParentLost). We send the request toward the root
// ourselves, and ask our neighbours to send it too (one hop): in tree k
// greedy routing from here toward the root may well be stuck where the
// parent was (it was our way up), and a neighbour's own way up is intact.
func (r *Router) askRenew(k int) {
	p, ok := r.t.Current(k)
	if !ok {
		return
	}
	msg := []byte{msgRenew, byte(k), p.TreeState}
	r.sendControl(p.TreeState, addr.Address{}, false, msg, false)
	for _, peer := range r.b.Peers() {
		for _, ep := range peer.Endpoints {
			if r.b.SpeaksOurs(ep) {
				r.b.Send(ep, ControlApp, []byte{msgRenewVia, byte(k), p.TreeState}, nil)
			}
		}
	}
}

// onRenewVia passes a neighbour's renew request on toward the root (once
// per epoch: every orphan of a failure asks every neighbour).
func (r *Router) onRenewVia(b []byte) {
	if len(b) != 3 {
		return
	}
	k, ts := int(b[1]), b[2]
	p, ok := r.t.ByState(ts)
	if !ok || int(p.Tree) != k {
		return
	}
	if p.Root {
		r.t.Renew(k)
		return
	}
	if r.renewed == nil {
		r.renewed = map[uint8]bool{}
	}
	if r.renewed[ts] {
		return
	}
	r.renewed[ts] = true
	r.sendControl(ts, addr.Address{}, false, []byte{msgRenew, byte(k), ts}, false)
}

// suspectFor is how long a neighbour that stopped answering is left out of
// routing decisions, unless we hear from it again: the peer table forgets
// a silent neighbour only after several beacon periods, and every Package
// sent its way until then would be lost (and its sender's tries with it).
const suspectFor = 30 * time.Second

// suspect notes that a hop to ep failed for want of answers.
func (r *Router) suspect(ep peer.Endpoint) {
	if r.down == nil {
		r.down = map[peer.Endpoint]time.Time{}
	}
	r.down[ep] = r.clk.Now()
}

// isDown reports whether ep is left out: it failed us lately and has not
// been heard since.
func (r *Router) isDown(ep peer.Endpoint) bool {
	at, ok := r.down[ep]
	if !ok {
		return false
	}
	now := r.clk.Now()
	if now.Sub(at) >= suspectFor {
		delete(r.down, ep)
		return false
	}
	if p := r.b.PeerAt(ep); p != nil && p.LastRx.After(at) {
		delete(r.down, ep)
		return false
	}
	return true
}

// nextHop is the neighbour closest to h.To by the packet's metric, with
// strict progress over this node's own distance, never the neighbour the
// Package came from, never a node that does not speak our protocol (a
// reference node carries no routed schema). Ties go to the lowest node_id.
// Neighbours' addresses are fixed for their epoch, so strict progress
// cannot loop.
func (r *Router) nextHop(self tree.Position, h node.RouteHeader, from *peer.Endpoint) (tree.Neighbor, bool) {
	m := addr.MetricTree
	if h.Mode {
		m = addr.MetricCPL
	}
	mine := m.Key(self.Addr, h.To)
	var best, suspect tree.Neighbor
	bestKey, suspectKey := mine, mine
	found, foundSuspect := false, false
	for _, nb := range r.t.Neighbors(int(self.Tree), h.TreeState) {
		if from != nil && nb.Via == *from {
			continue
		}
		if !r.b.SpeaksOurs(nb.Via) {
			continue
		}
		k := m.Key(nb.Addr, h.To)
		if r.isDown(nb.Via) {
			// Left out while another makes progress; if none does, a
			// neighbour that failed us once is better than no way at all
			// (a busy neighbour's silence looks like a dead one's).
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
func (r *Router) local(rp *routed, hash [16]byte) {
	h := rp.Header
	r.observe(Hop{Hash: hash, Self: r.self, Delivered: true, TreeState: h.TreeState, Error: h.Error})
	pkg := &rp.Pkg
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
		err := r.b.Deliver(h, pkg, rp.Via, rp.Time)
		r.stats.Delivered++
		if err != nil {
			r.reportError(rp, err, nil)
			return
		}
		r.remember(key)
	}
	// The end-to-end receipt: the sender's Result completes on it.
	b := append([]byte{msgReceipt}, hash[:]...)
	r.sendControl(h.TreeState, h.From, h.Mode, b, false)
}

// reportError sends an error back toward the Package's origin (PROTOCOL 7):
// the error flag set, the code, the Package's hash (so the sender knows
// which send failed) and our address. Errors about errors are not sent.
func (r *Router) reportError(rp *routed, err error, _ *peer.Endpoint) {
	h := rp.Header
	if h.Error {
		return
	}
	if isControl(&rp.Pkg) {
		return // lookups, receipts and traces fail quietly: their senders time out
	}
	hash := rp.Pkg.Hash
	self, ok := r.position(h.TreeState)
	if !ok {
		return
	}
	if self.Addr.Equal(h.From) {
		// We are the origin: no need to travel. No route from here in
		// this tree may be one in another: retried like a relay's report.
		r.failed(hash, err)
		return
	}
	b := []byte{msgError, node.CodeOf(err)}
	b = append(b, hash[:]...)
	b = append(b, self.Addr[:]...)
	r.stats.ErrorsSent++
	r.stats.ControlBytesSent += uint64(len(b))
	// The report counts up from the failed Package's remaining hop limit
	// (PROTOCOL 7: the packet goes back with its ttl, relays increment
	// it), not from this node's own TTL: it can always travel back as far
	// as the Package came, whatever hop limit this node gives its sends.
	pkg := packet.NewPackage(ControlApp, b)
	eh := node.RouteHeader{To: h.From, From: self.Addr, TreeState: h.TreeState, TTL: min(h.TTL, 254), Mode: h.Mode, Error: true}
	r.forward(&routed{Header: eh, Pkg: pkg, Time: r.clk.Now()}, true, nil)
}

// sendControl sends a control message toward to in epoch ts.
func (r *Router) sendControl(ts uint8, to addr.Address, mode bool, msg []byte, isError bool) {
	self, ok := r.position(ts)
	if !ok {
		return
	}
	r.stats.ControlBytesSent += uint64(len(msg))
	pkg := packet.NewPackage(ControlApp, msg)
	h := node.RouteHeader{To: to, From: self.Addr, TreeState: ts, TTL: r.cfg.TTL, Mode: mode, Error: isError}
	if isError {
		h.TTL = 255 - r.cfg.TTL // errors count up (PROTOCOL 7)
	}
	r.forward(&routed{Header: h, Pkg: pkg, Time: r.clk.Now()}, true, nil)
}

// control handles a control message that reached us.
func (r *Router) control(rp *routed, b []byte) {
	if checkControl(b) != nil {
		r.stats.Malformed++
		return
	}
	switch b[0] {
	case msgReceipt:
		if len(b) == 17 {
			var hash [16]byte
			copy(hash[:], b[1:])
			r.stats.Receipts++
			r.finish(hash, nil)
		}
	case msgError:
		if len(b) == 34 {
			var hash [16]byte
			copy(hash[:], b[2:18])
			r.stats.ErrorsRecv++
			var rep addr.Address
			copy(rep[:], b[18:34])
			r.failed(hash, &node.RemoteError{Err: node.ErrorForCode(b[1]), From: rep.String()})
		}
	case msgRenew:
		// Only the root of that epoch can; anyone else ignores it.
		if len(b) == 3 {
			if p, ok := r.t.ByState(b[2]); ok && p.Root && int(p.Tree) == int(b[1]) {
				r.t.Renew(int(b[1]))
			}
		}
	case msgRegister:
		r.onRegister(rp, b[1:])
	case msgRegistered:
		r.onRegistered(rp, b[1:])
	case msgLookup:
		r.onLookup(rp, b[1:])
	case msgLookupReply:
		r.onLookupReply(b[1:])
	case msgTrace:
		r.onTraceArrived(rp, b[1:])
	case msgTraceReport:
		r.onTraceReport(b[1:])
	case msgNameRegister:
		r.onNameRegister(rp, b[1:])
	case msgNameStored:
		r.onNameStored(rp, b[1:])
	case msgNameLookup:
		r.onNameLookup(rp, b[1:])
	case msgNameReply:
		r.onNameReply(b[1:])
	}
}

// receiveOneHop handles control messages sent to us directly (leases).
func (r *Router) receiveOneHop(m node.Message) {
	if m.Route != nil {
		return
	}
	if checkControl(m.Blob) != nil {
		r.stats.Malformed++
		return
	}
	switch m.Blob[0] {
	case msgLeaseReq:
		r.onLeaseRequest(m)
	case msgLeaseGrant:
		r.onLeaseGrant(m)
	case msgRenewVia:
		r.onRenewVia(m.Blob)
	case msgNameHello:
		r.onNameHello(m)
	}
}

func (r *Router) peerEvent(p *peer.Peer, up bool) {
	r.leases.peerEvent(r, p, up)
	if up {
		r.helloName(p)
	}
}

// isControl reports whether a Package is a control message.
func isControl(pkg *packet.Package) bool {
	return pkg.AppID == ControlApp && len(pkg.Blob) > 0
}

// controlType returns a control message's type (0 if not one).
func controlType(pkg *packet.Package) byte {
	if !isControl(pkg) {
		return 0
	}
	return pkg.Blob[0]
}

func isLookup(pkg *packet.Package) bool {
	switch controlType(pkg) {
	case msgRegister, msgLookup, msgNameRegister, msgNameLookup:
		return true
	}
	return false
}

func nonceOf(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

func newResult() *node.Result { return node.NewResult() }

func completeResult(r *node.Result, err error) { r.Complete(err) }

// Copies are recognised for as long as a sender keeps trying (every
// attempt waits up to ReceiptTimeout, and a pause), among the last
// maxDelivered Packages.
const maxDelivered = 1024

func (r *Router) copyWindow() time.Duration {
	return time.Duration(r.cfg.Attempts) * (r.cfg.ReceiptTimeout + 16*time.Second)
}

// isCopy reports whether the Package named by key was delivered lately.
func (r *Router) isCopy(key [32]byte) bool {
	at, ok := r.delivered[key]
	return ok && r.clk.Now().Sub(at) < r.copyWindow()
}

// remember notes a delivery, forgetting the oldest beyond the bounds.
func (r *Router) remember(key [32]byte) {
	if r.delivered == nil {
		r.delivered = map[[32]byte]time.Time{}
	}
	now := r.clk.Now()
	for len(r.deliveredQ) > 0 {
		old := r.deliveredQ[0]
		if len(r.deliveredQ) < maxDelivered && now.Sub(r.delivered[old]) < r.copyWindow() {
			break
		}
		delete(r.delivered, old)
		r.deliveredQ = r.deliveredQ[1:]
	}
	if _, ok := r.delivered[key]; !ok {
		r.deliveredQ = append(r.deliveredQ, key)
	}
	r.delivered[key] = now
}
