// Package route is the routing layer: it forwards routed Packages greedily
// toward their destination's tree coordinates (PROTOCOL 6.3) — by all K
// parallel trees at once, with a bound carried in the Package that falls
// at every hop so nothing can loop (path headers, path.go) — turns
// failures into errors that travel back to the sender (PROTOCOL 7),
// confirms delivery end to end, and offers name lookup, trace route and
// leased addresses (6.4).
//
// Hops are reliable transfers between neighbours (the node runtime's
// sequences, in routed schemas); a relay reassembles and verifies a Package
// before it passes it on, so a Package crosses from ESP-NOW to LoRa by
// being cut again into the LoRa schema at the gateway.
package route

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// Config tunes the router.
type Config struct {
	// TTL is the hop limit routed Packages start with (default 255: the
	// bound a path header carries, not the hop limit, is what stops
	// loops, and a mesh of diameter 100 routes around a failure in more
	// than 64 hops).
	TTL uint8
	// ReceiptTimeout is how long a sender waits for the end-to-end receipt
	// before sending again (default 30 s, or 200 airtimes of a full frame
	// on the slowest link: four minutes on LoRa); Attempts bounds the
	// sends (4).
	ReceiptTimeout time.Duration
	Attempts       int
	// LookupTrees is how many trees hold a node's name record (default 2:
	// every node has an address in every tree, Long if need be, so a
	// lookup finds a record in the first tree it asks, or the second if a
	// failure took the first's home). A record is one routed Package per
	// tree, sent again whenever an address in it is about to go.
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
	// Revocations, when set, names node_ids an operator revoked: a record
	// or name record for one, or signed by one, is neither stored nor
	// believed in a lookup's answer.
	Revocations identity.Revocations
	// CertifiedProxies, when set, takes a proxy record for a keyless
	// node_id (a reference board's) only with a proxy certificate
	// (revoke.ProxyCert) by one of ProxyOperators for that board and that
	// proxy, unexpired: in storing it at a home and in a lookup's answer.
	// Unset, such a record is unvouched (delegation.go) unless it carries
	// a certificate, which then must hold wherever ProxyOperators lists
	// its operator. (A node that can sign has its own record or a
	// delegation: certificates are for boards that cannot.)
	CertifiedProxies bool
	ProxyOperators   []identity.NodeID
	// ProxyCerts are certificates naming this node as the proxy of
	// boards: the records it signs for a reference leaseholder named in
	// one carry it.
	ProxyCerts []revoke.ProxyCert
	// CertRevocations, when set, names proxy certificates an operator
	// revoked (revoke.ProxyRevocation): a record resting on one is
	// neither stored nor believed, DropRevoked forgets those held, and
	// this node no longer attaches one of its ProxyCerts so revoked.
	CertRevocations revoke.CertRevocations
}

func (c *Config) fill() {
	if c.TTL == 0 {
		c.TTL = 255
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
	if c.LookupTrees <= 0 {
		c.LookupTrees = 2
	}
}

// Stats counts the router's work.
type Stats struct {
	Originated, Delivered, Forwarded uint64
	Receipts                         uint64
	ErrorsSent, ErrorsRecv           uint64
	NoRoute, HopLimit                uint64
	Fallbacks                        uint64 // path headers moved to a later phase here (a tree's way was broken)
	Reroutes                         uint64 // Packages sent another way after a hop failed for want of answers
	ControlBytesSent                 uint64 // lookup, trace, lease, receipt and error messages
	Malformed                        uint64 // control messages and records that did not parse, dropped
	HandOffs                         uint64 // records passed on toward their keys (a neighbour nearer took a place: handOff)
	RecordsRefused                   uint64 // records refused: future-dated, a delegation that does not hold, or a proxy's over the node's own
	RevokedRecords                   uint64 // records and name records refused, or dropped (DropRevoked): their node or signer's key, or their proxy certificate, is revoked
	// Receipts, error reports and renew requests refused (signed.go): a
	// signature that does not hold for the node it must come from, a date
	// outside the skew allowance, or a plain one where a signature is due.
	ReceiptsRefused, ErrorsRefused, RenewsRefused uint64
	RelayErrors                                   uint64 // signed error reports from relays (taken as "try again")
	HoodsRefused                                  uint64 // neighbourhood lists from no peer (hood.go)
	Copies                                        uint64 // Packages delivered lately that came again (answered, not delivered)
	Lookups, LookupHits                           uint64
	AnsweredOnPath                                uint64 // lookups passing through answered here from a relayed record (onpath.go)
	Namesakes                                     uint64 // path headers to another holder of one of our places (forwardPath), passed on
	NameLookups                                   uint64
	NameConflicts                                 uint64 // a home said our name is another node's
	// Failed counts the sends this node originated that ended in an
	// error, by the error's wire code (0: errors without one, such as
	// ErrNoCommonTree or ErrUnknownNode).
	Failed map[uint8]uint64
}

// Hop is what an observer hears for each routing decision: the Package
// (by the hash of the Package its origin made) left Self for Next (Next
// zero when delivered here).
type Hop struct {
	Hash      [16]byte
	Self      identity.NodeID
	Next      identity.NodeID
	From      identity.NodeID // the neighbour it came from (zero: made here)
	Delivered bool
	TreeState uint8
	TTL       uint8     // as it leaves (as it came, when delivered)
	To        addr.Long // where the Package is going (plain Packages: the header's to_addr)
	NextAddr  addr.Long // Next's address in the epoch, as Self knows it (plain Packages)
	Mode      bool      // the metric: common-prefix distance (else tree distance)
	Proxy     bool      // handed to a leaseholder, not routed
	Error     bool
	// Path header decisions: the phase the Package left in, the bound it
	// came with, Self's own potential (in that phase) and Next's as Self
	// computed it, which Next carries on as its bound.
	Path             bool
	Phase            uint8
	BoundIn          uint64
	SelfPot, NextPot uint64
	Dst              []TreeAddr // the destination's addresses (shared: do not modify or keep)
	// Nonce is the path header's nonce for the attempt (HasNonce: it
	// carries one): what anyone who hears the Package learns.
	Nonce    uint64
	HasNonce bool
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
	// nonces is where receipt nonces come from (path.go): a ChaCha8
	// stream keyed by our signature over the node's seed, unpredictable
	// to anyone without our key (a nonce someone could guess, it could
	// have the destination sign a receipt for in advance).
	nonces *rand.ChaCha8

	pending    map[[16]byte]*pendingSend
	records    map[identity.NodeID]*storedRecord
	cache      map[identity.NodeID]*cachedRecord
	relayed    map[identity.NodeID]*relayedRecord // records lookup answers carried through us (onpath.go)
	lookups    map[uint32]*lookupReq
	traces     map[uint32]*traceReq
	leases     leaseState
	regTmr     clock.Timer
	down       map[peer.Endpoint]time.Time // neighbours that stopped answering, and since when
	renewed    map[uint8]bool              // epochs for which we passed a neighbour's renew request on
	regs       map[regKey]*regState        // registrations not yet confirmed
	regFirst   time.Time                   // the first position change the pending registration waits out
	registered []TreeAddr                  // the addresses in the record we registered last
	homes      map[int]home                // the lookup trees holding our record, and what each holds
	regAt      time.Time                   // when
	refreshTmr clock.Timer
	stats      Stats
	obs        []func(Hop)
	// delivered are the Packages (app_id ‖ hash) handed to applications
	// lately, oldest first in deliveredQ: a copy is answered, not delivered.
	delivered  map[[32]byte]time.Time
	deliveredQ [][32]byte
	names      nameState
	// frame is the airtime of a full frame on our slowest link: what the
	// router's timers scale by (a round trip over a LoRa mesh takes
	// minutes, over ESP-NOW milliseconds).
	frame time.Duration
	// cands and candIdx are scratch for ranking neighbours (one decision
	// at a time: the node's loop).
	cands   []cand
	candIdx map[peer.Endpoint]int
	// hood is what our neighbours told us of theirs, and what we told
	// them of ours (hood.go).
	hood hoodState
	// closed: Close ran (the router's clock is clock.Halted since).
	closed bool
	final  Stats // the stats at Close
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
	r.frame = r.slowFrame()
	if cfg.ReceiptTimeout == 30*time.Second {
		r.cfg.ReceiptTimeout = r.paced(cfg.ReceiptTimeout, 200)
	}
	r.rng = rand.New(rand.NewPCG(b.Seed(), 0x726f757465))
	seed := binary.BigEndian.AppendUint64([]byte("mycelium receipt nonces v1\x00"), b.Seed())
	r.nonces = rand.NewChaCha8(sha256.Sum256(b.Signer().Sign(seed)))
	r.t = tree.New(b, tcfg)
	r.leases.init()
	if cfg.Name != "" && ValidName(cfg.Name) != nil {
		cfg.Name = "" // the caller checks with ValidName; a bad name is never sent
		r.cfg.Name = ""
	}
	r.t.Subscribe(func(int) {
		r.scheduleRegister()
		r.hoodSoon()
	})
	r.t.OnParentLost(r.askRenew)
	r.t.OnNeighbor(r.handOff)
	r.t.OnCrowded(r.crowded)
	return r, nil
}

// slowFrame is the airtime of a full frame on the slowest of our links.
func (r *Router) slowFrame() time.Duration {
	var d time.Duration
	for i := range r.b.Links() {
		d = max(d, r.b.Airtime(peer.Endpoint{Link: i, Addr: link.Broadcast}, fullFrame))
	}
	return d
}

// fullFrame is a blob that fills a frame of either family.
const fullFrame = 200

// paced is d, or n airtimes of a full frame on our slowest link if that is
// longer: a timer that suits ESP-NOW, stretched to a slow link.
// busyPaced is d, longer while the air around us is busy
// (tree.Trees.BusyPaced): the waits of the router's deferrable control
// traffic.
func (r *Router) busyPaced(d time.Duration) time.Duration { return r.t.BusyPaced(d) }

// afterPaced runs f once d has passed, or up to busyPaced(d) while the
// air around us stays busy, and sets *tm to the timer that will (so that
// clock.Stop(tm) cancels it). A wait lengthened for a busy spell ends at
// the first d after the spell does: it is looked at again every d, and
// ends as soon as the air is quiet. Set once for the whole wait, as it
// was, it outlived the spell that set it: at 3,000 nodes (random, seed
// 1) some 150 nodes said they were busy for five minutes while the
// trees formed and a mesh's records crossed it, the registrations sent
// then waited up to 16 minutes for their next try (a retry's doubling
// came on top of the busy pace, past BusyMaxWait), and 265 records were
// unconfirmed when no node said busy any more, 260 three minutes later,
// until the trees' renewal 15 minutes in sent them afresh. With the air
// quiet it is one timer of d, as before.
func (r *Router) afterPaced(tm *clock.Timer, d time.Duration, f func()) {
	end := r.clk.Now().Add(r.busyPaced(d))
	var tick func()
	tick = func() {
		now := r.clk.Now()
		if !r.b.AirBusy() || !now.Before(end) {
			f()
			return
		}
		*tm = r.clk.AfterFunc(min(d, end.Sub(now)), tick)
	}
	*tm = r.clk.AfterFunc(d, tick)
}

func (r *Router) paced(d time.Duration, n int) time.Duration {
	return max(d, time.Duration(n)*r.frame)
}

// Config returns the configuration in force.
func (r *Router) Config() Config { return r.cfg }

// Trees returns the node's trees.
func (r *Router) Trees() *tree.Trees { return r.t }

// HandleMessage is the node handing us a one-hop Package of the trees or
// of the router's control app (node.Layer).
func (r *Router) HandleMessage(m node.Message) {
	if r.closed {
		return
	}
	switch m.App {
	case tree.AppID:
		r.t.HandleMessage(m)
	case ControlApp:
		if m.Broadcast && (len(m.Blob) == 0 || m.Blob[0] != msgHood) {
			// Only neighbourhood lists are broadcast; the rest go to one
			// neighbour, authenticated between our nodes (see
			// tree.HandleMessage for why a broadcast is no neighbour's
			// word to us).
			return
		}
		r.receiveOneHop(m)
	}
}

// PeerChanged is the node telling us of a peer that came or went
// (node.Layer).
func (r *Router) PeerChanged(p *peer.Peer, up bool) {
	if r.closed {
		return
	}
	r.t.PeerChanged(p, up)
	r.peerEvent(p, up)
}

// Close stops the router and its trees (tree.Trees.Close) for good, as
// when the node is switched off; close it with the node (node.Node.Close).
// The sends, lookups and traces still pending end now with
// node.ErrClosed (their callbacks run within Close, in a fixed order);
// later lookups, name lookups and traces end at once with it, and sends
// fail with it (the closed node refuses them). No timer of the router runs
// its work again: registrations, refreshes, neighbourhood lists and lease
// requests stop, and Stats stay as they were. Calling Close again does
// nothing.
func (r *Router) Close() {
	if r.closed {
		return
	}
	// Closed first: a callback run below that asks again fails at once.
	r.closed = true
	r.t.Close()
	// The stats as Close leaves them (the callbacks below may count
	// failures): later attempts, refused by the closed node, do not count.
	defer func() {
		r.final = r.stats
		r.final.Failed = maps.Clone(r.stats.Failed)
	}()
	r.clk = clock.Halted(r.clk)
	clock.Stop(&r.regTmr)
	clock.Stop(&r.refreshTmr)
	clock.Stop(&r.hood.tmr)
	if r.leases.askTmr != nil {
		r.leases.askTmr.Stop()
	}
	for _, st := range r.regs {
		clock.Stop(&st.timer)
	}
	hashes := slices.SortedFunc(maps.Keys(r.pending), func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	for _, h := range hashes {
		r.finish(h, node.ErrClosed)
	}
	for _, nonce := range slices.Sorted(maps.Keys(r.lookups)) {
		if q := r.lookups[nonce]; q != nil {
			if q.timer != nil {
				q.timer.Stop()
			}
			delete(r.lookups, nonce)
			for _, cb := range q.cbs {
				cb(Destination{}, node.ErrClosed)
			}
		}
	}
	for _, nonce := range slices.Sorted(maps.Keys(r.names.lookups)) {
		if q := r.names.lookups[nonce]; q != nil {
			clock.Stop(&q.timer)
			delete(r.names.lookups, nonce)
			for _, cb := range q.cbs {
				cb(identity.NodeID{}, node.ErrClosed)
			}
		}
	}
	for _, nonce := range slices.Sorted(maps.Keys(r.traces)) {
		if q := r.traces[nonce]; q != nil {
			if q.timer != nil {
				q.timer.Stop()
			}
			delete(r.traces, nonce)
			sortHops(q.hops)
			q.cb(q.hops, node.ErrClosed)
		}
	}
}

// Stats returns the counters.
func (r *Router) Stats() Stats {
	s := r.stats
	if r.closed {
		s = r.final
	}
	s.Failed = maps.Clone(s.Failed)
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
// one: its own, or else a lease from a proxy (a leaf's, or a node's that
// no parent had room for).
func (r *Router) Addrs() []TreeAddr {
	var out []TreeAddr
	for k := range r.t.Count() {
		if p, ok := r.t.Current(k); ok {
			out = append(out, TreeAddr{Tree: uint8(k), TreeState: p.TreeState, Addr: p.Addr})
		} else if a, ok := r.leases.inTree(k); ok {
			out = append(out, a)
		}
	}
	return out
}

// holdsAll reports whether every record of ours at a home names an
// address of ours in every tree we have one in (a lease counts), without
// making them (Registered is asked of every node twice a second while a
// simulation waits for the names). Its address there may be of the
// previous epoch (a new term: it still routes, recordGood, and is stored
// again before it goes), and the record may name a tree we have since left
// (a place lost: a line's node more than 128 levels from a new root),
// which routes while that epoch does. Counting the addresses instead took
// such a record for an incomplete one, and one that had lost a tree and
// gained another for a complete one: the first was not counted registered
// until the next term had the node register again (a line of 200, seeds 3
// and 5), the second was never stored with its new tree until then.
func (r *Router) holdsAll() bool { return r.everyHome(r.namesAll) }

// namesAll reports whether addrs name an address in every tree we have
// one in (a lease counts).
func (r *Router) namesAll(addrs []TreeAddr) bool {
	for k := range r.t.Count() {
		if _, ok := r.t.Current(k); !ok {
			if _, ok := r.leases.inTree(k); !ok {
				continue
			}
		}
		if !slices.ContainsFunc(addrs, func(a TreeAddr) bool { return int(a.Tree) == k }) {
			return false
		}
	}
	return true
}

// pendingSend is a Package we originated, waiting for its receipt.
type pendingSend struct {
	res      *node.Result
	dst      Destination
	pkg      packet.Package
	opt      *node.SendOptions
	mode     bool
	forced   *int // the one tree to route in (nil: all)
	attempts int
	since    time.Time // when the send began: receipts and errors dated before it (less the skew) are replays
	// nonces are those of the send's attempts so far (path.go), for a
	// destination that signs its receipts: one naming any of them counts.
	nonces []uint64
	timer  clock.Timer
}

// Destination is where to send: a node's addresses (from a lookup), and
// its node_id when known.
type Destination struct {
	ID    identity.NodeID
	Addrs []TreeAddr
	// Proxy is the delegated proxy that signed the record the addresses
	// came from (zero if the node signed it): its signed receipts and
	// errors for the node count as the node's. Unvouched says the record
	// was a proxy's with no delegation from the node: a reference board
	// behind the proxy, which cannot sign (signed.go).
	Proxy     identity.NodeID
	Unvouched bool
}

// Options tune a routed send.
type Options struct {
	// Mode selects the relays' metric: false tree distance, true
	// common-prefix distance (the flags' mode bit).
	Mode     bool
	Priority int
	// Tree forces a tree (-1 or unset: all of them, see path headers).
	Tree *int
}

// Send looks the node up (once, then from a cache) and sends it blob for
// application app; the Result completes on the destination's receipt.
//
// A send that fails for want of a way (its addresses, from the cache, may
// be stale) looks the node up afresh, once, and for no longer than
// refreshPatience: a
// node that moved has registered its new record by then, and a node that
// is gone is found nowhere (it may have been the home of its own record).
// If the lookup finds the addresses that just failed (a node that is gone,
// whose record lives on until it lapses), they are not tried again. The
// send then ends with its own error (no route, abandoned, ...), in
// bounded time: a lookup's full patience, meant for nodes that have not
// registered yet, kept a send to a node that is gone from failing for
// three minutes, and a message for it from being handed to a store.
func (r *Router) Send(to identity.NodeID, app packet.AppID, blob []byte, opt *Options) *node.Result {
	res := newResult()
	var send func(d Destination, fresh bool)
	send = func(d Destination, fresh bool) {
		r.SendTo(d, app, blob, opt).OnDone(func(err error) {
			if err == nil || fresh || !stale(err) {
				completeResult(res, err)
				return
			}
			// Addresses from the cache may be stale (the trees moved
			// on): look the node up afresh, once.
			// (Another send may have dropped or refreshed the entry
			// meanwhile: drop it only if it is the one we used.)
			if c := r.cache[to]; c != nil && slices.Equal(c.d.Addrs, d.Addrs) {
				delete(r.cache, to)
			}
			failed := d
			r.refreshLookup(to, failed.Addrs, func(d Destination, lerr error) {
				if errors.Is(lerr, ErrRevoked) {
					err = lerr
				}
				if lerr != nil || sameWay(d, failed) {
					// No record, or the one whose addresses just failed
					// every try: a node that is gone (a board that lost
					// power, whose proxy still registers its lease) is
					// found so until its record lapses, and trying the
					// same addresses again only doubled the time the send
					// took to fail (81 s on the virtual rack's timing).
					completeResult(res, err)
					return
				}
				send(d, true)
			})
		})
	}
	r.Lookup(to, func(d Destination, err error) {
		if err != nil {
			completeResult(res, err)
			return
		}
		send(d, false)
	})
	return res
}

// sameWay reports whether a lookup found the addresses a send just
// failed on, vouched for alike.
func sameWay(a, b Destination) bool {
	return a.ID == b.ID && a.Proxy == b.Proxy && a.Unvouched == b.Unvouched && slices.Equal(a.Addrs, b.Addrs)
}

// stale reports errors after which a send looks its destination up afresh:
// no way there, or a way that failed (the record in the cache may name
// epochs renewed since, or ways through nodes since gone).
func stale(err error) bool {
	for _, e := range []error{node.ErrNoRoute, ErrNoCommonTree, node.ErrAbandoned, node.ErrHopLimit} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// SendTo sends blob to application app at a destination whose addresses
// are known. d.ID must be the destination's: its receipt is checked
// against that key (or d.Proxy's; signed.go).
func (r *Router) SendTo(d Destination, app packet.AppID, blob []byte, opt *Options) *node.Result {
	if opt == nil {
		opt = &Options{}
	}
	pkg := packet.NewPackage(app, blob)
	res := newResult()
	p := &pendingSend{res: res, dst: d, pkg: pkg, opt: &node.SendOptions{Priority: opt.Priority}, mode: opt.Mode, since: r.clk.Now()}
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

// attempt sends (or resends) a pending Package, in a path header toward
// every address of the destination this node shares an epoch with (or the
// forced tree's alone), with our own addresses for the way back.
func (r *Router) attempt(hash [16]byte, p *pendingSend, forced *int) {
	p.attempts++
	ph, h, ok := r.pathTo(p.dst.Addrs, p.mode, forced, true)
	if !ok {
		r.finish(hash, ErrNoCommonTree)
		return
	}
	if !p.dst.unsignable() {
		// A nonce of this attempt's, for the destination to sign into
		// its receipt (keyless boards sign nothing, and their parser
		// knows no nonce).
		ph.nonce, ph.hasNonce = r.nonces.Uint64(), true
		p.nonces = append(p.nonces, ph.nonce)
		// And its node_id's tag: no other node takes it as its own (a
		// place the record names may be another's now: path.go).
		ph.setDst(p.dst.ID)
	}
	if p.attempts > 1 && forced == nil {
		// A try again: the receipt or the error of the last may have been
		// lost on its way back by the one tree the header names (a failure
		// broke that tree's way to us, and greedy routing by it dead-ends).
		// This one carries all our addresses: what comes back travels by
		// every tree, in phases, as the Package went. (Bytes only on
		// retries: most sends need none.)
		all := r.srcAddrs(h.TreeState)
		if len(ph.src) == 1 && (len(all) == 0 || all[0].TreeState != ph.src[0].TreeState) {
			// Our address in the header's epoch (one gone by) first: it is
			// the one from_addr could not hold, and the destination reads
			// the first as from_addr's.
			all = append(ph.src[:1:1], all[:min(len(all), maxPathAddrs-1)]...)
		}
		ph.src = all
	}
	clock.Stop(&p.timer)
	p.timer = r.clk.AfterFunc(r.cfg.ReceiptTimeout, func() {
		p.timer = nil
		if p.attempts >= r.cfg.Attempts {
			r.finish(hash, ErrNoReceipt)
			return
		}
		r.attempt(hash, p, forced)
	})
	r.forward(r.wrap(h, ph, p.pkg), true, nil)
}

// ErrNoReceipt: no receipt came back for any attempt of a send, and no
// error either: the Package, or its receipt, was lost on the way (a
// relay's queue overflowing, a hop given up on). It is a *NoReceiptError
// and wraps node.ErrAbandoned (the send is abandoned end to end: what
// tested for that still does, and its wire code is that one's).
var ErrNoReceipt error = &NoReceiptError{}

// NoReceiptError is the type of ErrNoReceipt.
type NoReceiptError struct{}

func (*NoReceiptError) Error() string {
	return "route: no receipt for any attempt (the Package or its receipt was lost on the way)"
}

// Unwrap makes errors.Is(err, node.ErrAbandoned) hold.
func (*NoReceiptError) Unwrap() error { return node.ErrAbandoned }

// ErrNoCommonTree: the destination has no address in any epoch we are in.
var ErrNoCommonTree = errors.New("route: no tree in common with the destination")

// pathTo builds a path header toward dst (a node's addresses) and the
// packet header it travels under: dst ordered by our distance to each (an
// address in an epoch we are not in goes last: relays may share it), the
// phases' order; the header names the nearest in its tree, to_addr and
// from_addr as the wire holds them. withSrc adds our own address in that
// tree where from_addr cannot hold it (receipts and errors go back by it).
func (r *Router) pathTo(dst []TreeAddr, mode bool, forced *int, withSrc bool) (*pathHeader, node.RouteHeader, bool) {
	m := metric(mode)
	type entry struct {
		a    TreeAddr
		dist uint32
		ours bool
	}
	var es []entry
	for _, da := range dst {
		if forced != nil && *forced >= 0 && int(da.Tree) != *forced {
			continue
		}
		if len(es) == maxPathAddrs {
			break
		}
		e := entry{a: da, dist: math.MaxUint32}
		if self, ok := r.position(da.TreeState); ok {
			e.dist, e.ours = m.PathKey(self.Addr, da.Addr), true
		}
		es = append(es, e)
	}
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(a.dist, b.dist) })
	if len(es) == 0 || !es[0].ours {
		return nil, node.RouteHeader{}, false
	}
	ph := &pathHeader{bound: noBound}
	size := 0
	for _, e := range es {
		// The nearest first; the farther ones while they fit the budget
		// (on a deep mesh a Long takes 40 bytes and more, and six of them
		// would cost every hop a frame more than the Package itself).
		n := 2 + len(e.a.Addr.AppendCompact(nil))
		if len(ph.dst) > 0 && size+n > maxPathBytes {
			break
		}
		size += n
		ph.dst = append(ph.dst, e.a)
	}
	// The header's tree is the one answers (receipts, errors) come back
	// by, one tree alone: the nearest in a current epoch that is whole
	// here, else the nearest. After a failure the nearest may be a term
	// whose root died, or one our way up is gone from: greedy routing back
	// to us in it dead-ends at the gap, and the receipt of a delivered
	// Package is lost, every attempt.
	hd := es[0]
	for _, e := range es {
		if !e.ours {
			break
		}
		if cur, ok := r.t.Current(int(e.a.Tree)); ok && cur.TreeState == e.a.TreeState && r.t.Sound(int(e.a.Tree)) {
			hd = e
			break
		}
	}
	self, _ := r.position(hd.a.TreeState)
	if _, fits := self.Addr.Wire(); withSrc && !fits {
		// Our address in the header's tree, where from_addr cannot hold
		// it: answers go back by it (a path header of every tree for a
		// receipt would cost more than the receipt's stretch).
		ph.src = []TreeAddr{{Tree: hd.a.Tree, TreeState: hd.a.TreeState, Addr: self.Addr}}
	}
	h := node.RouteHeader{To: hd.a.Addr.Truncate(), From: self.Addr.Truncate(), TreeState: hd.a.TreeState, TTL: r.cfg.TTL, Mode: mode}
	return ph, h, true
}

// srcAddrs is our addresses for a path header's way back: the header's
// tree first (its from_addr's), then the others in tree order, at most
// maxPathAddrs.
func (r *Router) srcAddrs(ts uint8) []TreeAddr {
	all := r.Addrs()
	out := make([]TreeAddr, 0, len(all))
	for _, a := range all {
		if a.TreeState == ts {
			out = append(out, a)
		}
	}
	for _, a := range all {
		if a.TreeState != ts && len(out) < maxPathAddrs {
			out = append(out, a)
		}
	}
	return out
}

// wrap makes the routed form of pkg: in a path header (ph) or as it is.
func (r *Router) wrap(h node.RouteHeader, ph *pathHeader, pkg packet.Package) *routed {
	rp := &routed{Header: h, Inner: pkg, Time: r.clk.Now()}
	if ph == nil {
		rp.Pkg = pkg
	} else {
		rp.Path = ph
		rp.Pkg = packet.NewPackage(PathApp, appendPath(nil, ph, &pkg))
	}
	return rp
}

func metric(mode bool) addr.Metric {
	if mode {
		return addr.MetricCPL
	}
	return addr.MetricTree
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
// pause (a congested relay needs a moment) or report it. A path header
// holds every tree: each attempt tries all of them again (the relays'
// knowledge, and the trees, may have moved on meanwhile). A relay's
// signed report (relay) is always tried again while attempts remain: it
// is one node's word that one way failed (signed.go).
func (r *Router) failed(hash [16]byte, err error, relay bool) {
	p := r.pending[hash]
	if p == nil {
		return
	}
	limit := r.cfg.Attempts
	noRoute := errors.Is(err, node.ErrNoRoute)
	if noRoute {
		limit = max(limit, r.t.Count()) // every tree may be tried
	}
	if !relay && !retryable(err) || p.attempts >= limit {
		r.finish(hash, err)
		return
	}
	clock.Stop(&p.timer)
	// 2 s, 4 s, 8 s ...: a relay's queue that was full is drained by then,
	// and a storm of registrations after a new epoch has passed. No route
	// waits as long: each try's path header holds every tree already, and
	// what a try at once would meet is the same broken trees; in a few
	// seconds they mend (a dead neighbour falls silent, an orphan asks
	// for a new term). (Tried again at once, the tries were spent in a
	// second, long before.)
	pause := time.Second << min(p.attempts, 4)
	if noRoute {
		// The trees mend in claim periods: on a fast mesh (claims every
		// second) a pause of 16 s would only keep a send to a node that is
		// gone from failing, and what waits on that failure (a message
		// handed to a store) waiting with it.
		pause = min(pause, max(r.t.Config().ClaimPeriod, 100*time.Millisecond))
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
	r.sendControl(p.TreeState, addr.Long{}, false, r.appendRenew(nil, msgRenewSigned, k, p.TreeState))
	via := r.appendRenew(nil, msgRenewViaSigned, k, p.TreeState)
	for _, peer := range r.b.Peers() {
		for _, ep := range peer.Endpoints {
			if r.b.SpeaksOurs(ep) {
				r.b.Send(ep, ControlApp, via, nil)
			}
		}
	}
}

// onRenewVia passes a neighbour's signed renew request on toward the root,
// unchanged (once per epoch: every orphan of a failure asks every
// neighbour).
func (r *Router) onRenewVia(b []byte) {
	k, ts, ok := r.renewFrom(b, msgRenewViaSigned)
	if !ok {
		return
	}
	p, ok := r.t.ByState(ts)
	if !ok || int(p.Tree) != k {
		return
	}
	if p.Root {
		r.renew(k, ts)
		return
	}
	if r.renewed == nil {
		r.renewed = map[uint8]bool{}
	}
	if r.renewed[ts] {
		return
	}
	r.renewed[ts] = true
	fwd := append([]byte{msgRenewSigned}, b[1:]...)
	r.sendControl(ts, addr.Long{}, false, fwd)
}

// renew answers a request for an early term of tree k from an orphan of
// epoch ts: only the root of that epoch can, and only while it is the
// current one. A request for the epoch before came from an orphan the
// new term has not reached yet (the orphans of one failure notice it
// over a period or two, each in its own time): that term is what it asked
// for. Renewing again would end the term that repaired the tree, and with
// it the epoch in which the mesh's records were just stored again —
// after a tenth of a mesh's nodes died, terms followed each other every
// claim period, and senders found their destinations' records naming
// epochs the relays had left.
func (r *Router) renew(k int, ts uint8) {
	if p, ok := r.t.Current(k); ok && p.Root && p.TreeState == ts {
		r.t.Renew(k)
	}
}

// suspect notes that a hop to ep failed for want of answers.
func (r *Router) suspect(ep peer.Endpoint) {
	if r.down == nil {
		r.down = map[peer.Endpoint]time.Time{}
	}
	r.down[ep] = r.clk.Now()
}

// isDown reports whether ep is left out of routing decisions (used only
// when no other neighbour makes progress): it failed a hop less than
// suspectFor ago, or since and has not been heard since, or it has been
// silent for two claim periods and a half
// (tree.Trees.Silent: every live node passes every claim on). The peer
// table keeps a silent neighbour for minutes, and every Package sent its
// way meanwhile would be lost, with its sender's tries.
func (r *Router) isDown(ep peer.Endpoint) bool {
	if r.t.Silent(ep) {
		return true
	}
	at, ok := r.down[ep]
	if !ok {
		return false
	}
	if p := r.b.PeerAt(ep); p != nil && p.LastRx.After(at) && r.clk.Now().Sub(at) >= suspectFor {
		delete(r.down, ep)
		return false
	}
	return true
}

// leaving reports whether our place in the epoch ts is our previous one
// in its tree: the tree has a newer epoch (a new term), and the place is
// kept only while the new one settles.
func (r *Router) leaving(ts uint8) bool {
	k := tree.TreeOf(ts)
	p, ok := r.t.Previous(k)
	if !ok || p.TreeState != ts {
		return false
	}
	c, ok := r.t.Current(k)
	return !ok || c.TreeState != ts
}

// heardSinceDown reports whether a neighbour that is down has been heard
// since it failed a hop (and is not silent): alive, its air busy, rather
// than gone.
func (r *Router) heardSinceDown(ep peer.Endpoint) bool {
	if r.t.Silent(ep) {
		return false
	}
	p := r.b.PeerAt(ep)
	at, ok := r.down[ep]
	return p != nil && ok && p.LastRx.After(at)
}

// suspectFor is the least a neighbour that failed a hop is left out, heard
// or not: a busy gateway heard all the time may still drop what we send it
// (hidden neighbours of ours talk over its answers).
const suspectFor = 30 * time.Second

// control handles a control message that reached us.
func (r *Router) control(rp *routed, b []byte) {
	if checkControl(b) != nil {
		r.stats.Malformed++
		return
	}
	switch b[0] {
	case msgReceipt, msgReceiptSigned, msgReceiptNonce:
		r.onReceipt(b)
	case msgError, msgErrorSigned, msgErrorNonce:
		r.onError(b)
	case msgRenew, msgRenewSigned:
		r.onRenew(b)
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
	case msgRenewVia, msgRenewViaSigned:
		r.onRenewVia(m.Blob)
	case msgNameHello:
		r.onNameHello(m)
	case msgHood:
		r.onHood(m)
	}
}

func (r *Router) peerEvent(p *peer.Peer, up bool) {
	r.leases.peerEvent(r, p, up)
	r.hoodPeer(p, up)
	if up {
		r.helloName(p)
		return
	}
	for _, ep := range p.Endpoints {
		delete(r.down, ep)
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
