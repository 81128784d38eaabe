// Package node is the node runtime (the Packager): applications hand it
// blobs addressed to a peer or to everyone; it picks the schema and the
// link, cuts the Package into packets, sends them reliably and fairly (a blob
// of any size to a neighbour of ours as a stream of sequences, stream.go),
// and on the other side reassembles, verifies and delivers them. It also
// keeps the
// peer table with the Beacon application, answers and sends modem-sleep
// wake-ups, throttles, and reports every failure to the sender as a typed
// error.
//
// Everything a node owns is touched only on its clock's loop: links call it
// there, timers fire there, and applications' handlers run there. Methods
// are to be called on the loop too (from a handler, a timer, or
// Node.Do from another goroutine).
//
// Life: on a virtual clock (simulations, tests) the owner calls Start and
// Close on the loop and runs the clock itself. In the field, Run owns the
// wall-clock loop: it starts the node, runs until its context ends, says
// goodbye and returns once the loop has stopped.
package node

import (
	"crypto/ecdh"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/internal/bucket"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// Config configures a node.
type Config struct {
	// Clock is the node's loop (required): a clock.Loop in the field (Run
	// runs it), a clock.Virtual in simulations. The node's links must call
	// it on the same clock.
	Clock    clock.Clock
	Identity identity.Identity
	Links    []link.Link
	// Seed drives every random choice the node makes (jitter), so that a
	// simulation repeats.
	Seed uint64

	// Entropy is where the neighbour proof's nonces come from. nil: a
	// ChaCha8 stream keyed by the node's signature over Seed, so a
	// simulation repeats; a node in the field gives crypto/rand.Reader
	// (the daemon does), so no two runs share a nonce whatever their Seed.
	Entropy io.Reader

	// BeaconPeriod is the time between beacon bursts (60 s); 0 keeps the
	// default, a negative value turns periodic beacons off (tests).
	BeaconPeriod time.Duration
	// Reference makes the node leave the capabilities app_id out of its
	// beacons, so its beacons are byte-identical to a reference node's.
	Reference bool
	// HopAuth turns on authenticated hops [ours] (hopauth.go): unicast
	// frames to neighbours that proved us carry a counter and a tag under
	// a key of the pair, and, once one has verified, a proven neighbour's
	// untagged frames are refused. Off at the zero value (the library's
	// callers choose; the daemon turns it on, [node] hop_auth: what it
	// costs in convergence and transfer efficiency is in
	// docs/security.md). Off, a node opens nothing but strips the trailer
	// of a tagged frame, taking it as its sender's plain frames are taken.
	HopAuth bool
	// Sleep turns modem sleep on for links that can sleep.
	Sleep bool
	// Budgets bound the node's memory; zero fields take the defaults.
	Budgets Budgets
	// GiveUp is how long a send to one of our neighbours may go without
	// progress (no packet of it newly confirmed, no ack) before it ends
	// with ErrAbandoned (0: DefaultGiveUp, 30 s; on a link whose full
	// frame takes longer than a hundredth of it, 100 such airtimes). Until
	// then lost frames and silence only cost time.
	GiveUp time.Duration
	// Logger receives debug events; nil discards them.
	Logger *slog.Logger
	// Revocations, when set, names node_ids whose keys an operator
	// revoked: their proofs are refused, so they are never proven (no tree
	// position, no relay). After it learns a new revocation, the owner
	// calls DropRevoked on the loop for neighbours proven already.
	Revocations identity.Revocations
}

// Budgets bound what a node keeps in memory.
type Budgets struct {
	RxPerPeer   int // reassembly bytes per neighbour (default 128 KiB)
	RxTotal     int // reassembly bytes in all (default 512 KiB)
	RxSequences int // concurrent reassemblies in all (default 32)
	RxPerPeerSq int // concurrent reassemblies per neighbour (default 4)
	SendCache   int // bytes of Packages being sent as sequences (default 1 MiB)
	PendingSend int // sends waiting per neighbour (default 32; a quarter kept for sends of Priority > 0)
	Backlog     int // frames queued before we set the throttle flag (default 64)
	// Assembly is what the node reserves for streams it assembles into
	// whole Messages for applications that take no chunks (default 16
	// MiB); a stream larger than it goes only to a StreamHandler.
	Assembly int
}

// DefaultBudgets are the budgets a node takes when Config.Budgets is zero.
func DefaultBudgets() Budgets {
	var b Budgets
	b.fill()
	return b
}

func (b *Budgets) fill() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&b.RxPerPeer, 128<<10)
	def(&b.RxTotal, 512<<10)
	def(&b.RxSequences, 32)
	def(&b.RxPerPeerSq, 4)
	def(&b.SendCache, 1<<20)
	def(&b.PendingSend, 32)
	def(&b.Backlog, 64)
	def(&b.Assembly, 16<<20)
}

// Handler receives the Packages addressed to an application.
type Handler func(m Message)

// Message is a delivered Package.
type Message struct {
	App  packet.AppID
	Blob []byte // the application's to keep
	// From is the sender's node_id when the sender is a known peer (for a
	// routed Package: the neighbour that handed it over).
	From      identity.NodeID
	FromKnown bool
	// Via is where the last packet came from.
	Via       peer.Endpoint
	Broadcast bool
	Schema    uint8
	// Route is the header a routed Package carried to us (nil for a
	// Package from a neighbour to us, one hop).
	Route *RouteHeader
	// Sealed is set on a Package that came sealed end to end and was
	// unsealed for us (l2-seq/e2e): From is then its authenticated sender.
	Sealed bool
	// Signed is set on a broadcast that came signed (BroadcastSigned)
	// by the neighbour proven at Via, for the run it proved, and was not
	// taken before: From is then its authenticated sender. A clear
	// broadcast, or a signed one this node could not verify (no proven
	// neighbour there: a reference board, a neighbour not yet proven),
	// comes with Signed false.
	Signed bool
	Time   time.Time
}

// Authenticated reports whether m's sender is authenticated: m came sealed
// end to end, or is a verified signed broadcast.
func (m Message) Authenticated() bool { return m.Sealed || m.Signed }

// Node is one mesh node.
type Node struct {
	cfg    Config
	clk    clock.Clock
	id     identity.Identity
	nodeID identity.NodeID
	rng    *rand.Rand
	log    *slog.Logger
	bud    Budgets

	links []*txLink
	peers *peer.Table
	nodes *peer.NodeList
	eps   map[peer.Endpoint]*endpoint
	// The last key endpointAt looked up and what it found (nil too): a
	// frame's handling asks for its sender's endpoint several times over
	// (the trust check, the verdict, the receive path), and every
	// look-up hashes an interface in a map that, in a large simulated
	// mesh, the cache no longer holds. Every change to eps forgets it.
	epLast     peer.Endpoint
	epLastHit  *endpoint
	epLastMemo bool
	epGen      uint64 // counts the changes of eps (epForget), for senderNote

	// apps are the applications, a short list: deliverApp scans a
	// handful of ids instead of hashing 16 bytes into a map for every
	// Package delivered (the map's look-up was 1.5 % of a route
	// simulation's CPU).
	apps       []appEntry
	beaconIn   beacon.Message                  // receiveBeacon's, decoded into
	checked    map[packet.AppID]CheckedHandler // apps that may refuse a Package (RegisterChecked)
	streamApps map[packet.AppID]StreamHandler
	appOrder   []packet.AppID
	streamID   uint32 // the last stream_id we used
	assembly   int    // bytes reserved for streams assembled into Messages

	pid   uint16 // next packet_id for non-sequenced packets
	seqID uint8  // next seq_id
	// seqUsed is when each seq_id was last handed out, or is free again
	// from (releaseSeqID), as time since seqBase (seqNever: not yet):
	// durations rather than time.Time values, 2 KB of every node instead
	// of 6 (a tenth of a simulated node's memory).
	seqUsed [256]time.Duration
	seqBase time.Time
	// seqLive marks the seq_ids of our sequences to peers of ours still
	// being sent: none is handed out again until its send has ended
	// (releaseSeqID).
	seqLive [256]bool

	rxBytes   int // reassembly bytes held
	rxSeqs    int // reassemblies open
	cache     sendCache
	layer     Layer // the layer above (Attach), nil if none
	stats     Stats
	started   bool
	closed    bool
	byeSent   bool // the goodbye went out (shutdown)
	beaconTmr clock.Timer
	// busy: we miss much of what neighbours send, and say so in our
	// beacons (busy.go); hearTicks counts beacon bursts since we last
	// weighed what we hear.
	busy      bool
	hearTicks int
	// The quick weigh (busy.go, weighQuick): quickHeard counts the
	// beacons heard from counted peers in the slice under way, quickRing
	// the last slices' counts (quickIdx the next to fill, quickFill how
	// many are), quickExpect what those peers send in a beacon period;
	// quickOn says the slices are ticking.
	quickHeard, quickExpect int
	quickRing               [quickSlices]int
	quickIdx, quickFill     int
	quickOn                 bool
	sleep                   []*sleeper
	dec                     packet.Packet // scratch for decoding

	bsigCtr  uint32                      // the next signed broadcast's counter (bsig.go)
	bsigSeen map[identity.NodeID]*bsigRx // senders' replay windows (bsig.go)

	entropy     io.Reader     // nonces (trust.go)
	boot        proof.Boot    // this run's nonce
	proofBucket bucket.Bucket // signatures we may spend on challenges
	// strangerRetries: retries of challenges to addresses with no peer
	// entry we may send (trust.go).
	strangerRetries bucket.Bucket
	xkey            *ecdh.PrivateKey // our X25519 key, for hop keys (hopauth.go); nil on a reference node
}

// ErrNoClock: Config.Clock is required (a node on a clock nobody runs
// would do nothing).
var ErrNoClock = errors.New("node: no clock: give Config.Clock (a clock.Loop for Run, a clock.Virtual in simulations)")

// New builds a node; Start (or Run) attaches its links and starts beacons.
func New(cfg Config) (*Node, error) {
	if cfg.Clock == nil {
		return nil, ErrNoClock
	}
	if cfg.Identity.IsZero() {
		id, err := identity.Generate(nil)
		if err != nil {
			return nil, err
		}
		cfg.Identity = id
	}
	if cfg.BeaconPeriod == 0 {
		cfg.BeaconPeriod = 60 * time.Second
	}
	cfg.Budgets.fill()
	if cfg.GiveUp <= 0 {
		cfg.GiveUp = DefaultGiveUp
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg: cfg, clk: cfg.Clock, id: cfg.Identity, nodeID: cfg.Identity.ID(),
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x6e6f6465)), log: log, bud: cfg.Budgets,
		peers: peer.NewTable(), nodes: peer.NewNodeList(),
		eps: map[peer.Endpoint]*endpoint{},
	}
	n.cache.budget = cfg.Budgets.SendCache
	n.seqBase = n.clk.Now()
	for i := range n.seqUsed {
		n.seqUsed[i] = seqNever
	}
	// A restarted node does not reuse its stream ids at once (a stream of
	// its own, not the node's, so that the node's other choices stay as
	// they were).
	n.streamID = rand.New(rand.NewPCG(cfg.Seed, 0x73747265616d)).Uint32()
	for i, l := range cfg.Links {
		n.links = append(n.links, newTxLink(n, i, l))
	}
	// The Beacon application is always there (the reference registers it
	// first, so it leads the app list).
	n.setApp(beacon.AppID, n.receiveBeacon)
	n.appOrder = append(n.appOrder, beacon.AppID)
	n.initTrust()
	n.initHop()
	if !cfg.Reference {
		// Not announced: the capabilities app_id implies it.
		n.setApp(proof.AppID, n.receiveProof)
	}
	return n, nil
}

// ID returns the node's node_id.
func (n *Node) ID() identity.NodeID { return n.nodeID }

// Signer signs on the node's behalf (tree certificates, name records); the
// private key stays in the node.
func (n *Node) Signer() identity.Signer { return n.id }

// Clock returns the node's clock.
func (n *Node) Clock() clock.Clock { return n.clk }

// Links returns the node's links, by index.
func (n *Node) Links() []link.Link {
	out := make([]link.Link, len(n.links))
	for i, t := range n.links {
		out[i] = t.l
	}
	return out
}

// Do runs f on the node's loop (from any goroutine).
func (n *Node) Do(f func()) { n.clk.AfterFunc(0, f) }

// Register adds an application; its app_id is announced in beacons.
func (n *Node) Register(id packet.AppID, h Handler) {
	if n.app(id) == nil {
		n.appOrder = append(n.appOrder, id)
	}
	n.setApp(id, h)
}

// appEntry is one application of Node.apps.
type appEntry struct {
	id packet.AppID
	h  Handler
}

// setApp sets id's handler, replacing any.
func (n *Node) setApp(id packet.AppID, h Handler) {
	n.delApp(id)
	n.apps = append(n.apps, appEntry{id, h})
}

// delApp removes id's handler.
func (n *Node) delApp(id packet.AppID) {
	n.apps = slices.DeleteFunc(n.apps, func(e appEntry) bool { return e.id == id })
}

// app is id's handler (nil: none).
func (n *Node) app(id packet.AppID) Handler {
	for i := range n.apps {
		if n.apps[i].id == id {
			return n.apps[i].h
		}
	}
	return nil
}

// Unregister removes an application.
func (n *Node) Unregister(id packet.AppID) {
	if id == beacon.AppID {
		return
	}
	n.delApp(id)
	delete(n.streamApps, id)
	n.appOrder = slices.DeleteFunc(n.appOrder, func(a packet.AppID) bool { return a == id })
}

// Start attaches the links and begins beaconing (and modem sleep).
func (n *Node) Start() {
	if n.started {
		return
	}
	n.started = true
	for _, t := range n.links {
		t.l.Attach(t)
	}
	if n.cfg.Sleep {
		for _, t := range n.links {
			if s, ok := t.l.(link.Sleeper); ok && t.info.Caps.Has(link.CapSleep) {
				n.sleep = append(n.sleep, newSleeper(n, t, s))
			}
		}
	}
	if n.cfg.BeaconPeriod > 0 {
		// The first burst comes soon (a node wants to be known), at a random
		// point of the first tenth of the period so neighbours booted
		// together do not beacon together.
		n.beaconTmr = n.clk.AfterFunc(time.Duration(n.rng.Int64N(int64(n.cfg.BeaconPeriod/10)+1)), n.beaconBurst)
	}
}

// Close says goodbye (a disconnect beacon on every link), fails pending
// sends with ErrClosed and detaches from the links. The links stay open:
// their owner closes them.
func (n *Node) Close() {
	if n.closed {
		return
	}
	if n.started && !n.byeSent {
		n.sendDisconnect()
	}
	n.closed = true
	if n.beaconTmr != nil {
		n.beaconTmr.Stop()
	}
	for _, s := range n.sleep {
		s.stop()
	}
	for _, ep := range n.sortedEndpoints() {
		ep.failAll(ErrClosed)
		ep.freeRx()
	}
	for _, t := range n.links {
		t.l.Attach(nil)
	}
}

// peerEvent tells the layer above of a peer that came (or turned out to
// speak our protocol) or went.
func (n *Node) peerEvent(p *peer.Peer, up bool) {
	if n.layer != nil {
		n.layer.PeerChanged(p, up)
	}
}

// PeerAt returns the peer reachable at ep (nil if none).
func (n *Node) PeerAt(ep peer.Endpoint) *peer.Peer { return n.peers.ByEndpoint(ep) }

// speaksOurs reports whether the neighbour at ep speaks the whole protocol
// (routed schemas included).
func (n *Node) speaksOurs(ep peer.Endpoint) bool {
	if e := n.endpointAt(ep); e != nil {
		return e.peerFull()
	}
	p := n.peers.ByEndpoint(ep)
	return p != nil && p.Full
}

// Peers returns the peer table's entries, ordered by node_id.
func (n *Node) Peers() []*peer.Peer { return n.peers.All() }

// Peer returns a peer by node_id (nil if unknown).
func (n *Node) Peer(id identity.NodeID) *peer.Peer { return n.peers.Get(id) }

// Nodes returns the node list.
func (n *Node) Nodes() *peer.NodeList { return n.nodes }

// Apps returns the registered app_ids in registration order.
func (n *Node) Apps() []packet.AppID { return slices.Clone(n.appOrder) }

func (n *Node) sortedEndpoints() []*endpoint {
	out := make([]*endpoint, 0, len(n.eps))
	for _, ep := range n.eps {
		out = append(out, ep)
	}
	slices.SortFunc(out, func(a, b *endpoint) int {
		if a.key.Link != b.key.Link {
			return a.key.Link - b.key.Link
		}
		if a.key.Addr.String() < b.key.Addr.String() {
			return -1
		}
		if a.key.Addr.String() > b.key.Addr.String() {
			return 1
		}
		return 0
	})
	return out
}

// maxStrangers bounds the state kept for senders that are not peers (no
// beacon heard): a flood from forged addresses costs at most this many
// endpoints.
const maxStrangers = 64

// endpointAt returns the state held for key (nil if none): n.eps[key],
// through a one-entry memo.
func (n *Node) endpointAt(key peer.Endpoint) *endpoint {
	if n.epLastMemo && n.epLast == key {
		return n.epLastHit
	}
	ep := n.eps[key]
	n.epLast, n.epLastHit, n.epLastMemo = key, ep, true
	return ep
}

// epForget drops endpointAt's memo, and the senders' notes: eps has
// changed.
func (n *Node) epForget() {
	n.epLast, n.epLastHit, n.epLastMemo = peer.Endpoint{}, nil, false
	n.epGen++
}

// senderNote is what a node keeps in a link's Frame.Slot for one sender:
// its endpoint state and its peer as the node's maps gave them, good
// while the maps have not changed since (epGen, the table's Hint).
type senderNote struct {
	t    *txLink
	set  bool
	key  peer.Endpoint
	gen  uint64 // n.epGen when ep was looked up
	ep   *endpoint
	peer peer.Hint
}

// noteSender puts key's answers in endpointAt's and ByEndpoint's memos,
// from the note the link keeps for the sender in s while it holds, and
// refreshes the note. Each frame's processing asks both for its sender
// first (the memos answer the rest): on a large mesh these two look-ups
// of an interface-keyed map were a few per cent of the simulator's CPU;
// the note, on the medium's edge the frame came by, is in the cache.
func (n *Node) noteSender(t *txLink, key peer.Endpoint, s *link.Slot) {
	note, _ := s.V.(*senderNote)
	if note == nil || note.t != t {
		note = &senderNote{t: t}
		s.V = note
	}
	if note.set && note.gen == n.epGen && note.key == key {
		n.epLast, n.epLastHit, n.epLastMemo = key, note.ep, true
	} else {
		note.ep, note.gen, note.key, note.set = n.endpointAt(key), n.epGen, key, true
	}
	n.peers.ByEndpointHint(key, &note.peer)
}

// endpointFor returns the state for (link, addr), creating it.
func (n *Node) endpointFor(key peer.Endpoint) *endpoint {
	ep := n.endpointAt(key)
	if ep == nil {
		ep = &endpoint{n: n, key: key, tl: n.links[key.Link]}
		n.eps[key] = ep
		n.epForget()
	}
	return ep
}

// strangerEndpoint is endpointFor for a sender that is not a peer: when
// maxStrangers are held it forgets the stalest idle stranger, one holding
// no hop keys first, or, if every one is busy, returns nil (the caller
// drops the frame).
//
// A stranger's hop keys are those of the challenges we answered it: it
// took our proof and sends under them. Forgotten, its frames fail their
// tags once we prove it, until a rekey agrees new ones. In the simulator
// (hubs 300 seed 3, a gateway of 228 neighbours, many of them strangers
// to it while the trees formed) 31 of the 108 strangers forgotten held
// such keys, and all 187 frames refused for a bad tag were refused at the
// gateway.
func (n *Node) strangerEndpoint(key peer.Endpoint, now time.Time) *endpoint {
	if ep := n.endpointAt(key); ep != nil || n.peers.ByEndpoint(key) != nil {
		return n.endpointFor(key)
	}
	var victim *endpoint
	strangers := 0
	for k, ep := range n.eps {
		if n.peers.ByEndpoint(k) != nil {
			continue
		}
		strangers++
		if ep.idle() && len(ep.singles) == 0 && ep.wake == nil && ep.staler(victim) {
			victim = ep
		}
	}
	if strangers >= maxStrangers {
		if victim == nil {
			return nil
		}
		victim.freeRx()
		delete(n.eps, victim.key)
		n.epForget()
	}
	return n.endpointFor(key)
}

// staler reports whether stranger ep is to be forgotten before v (nil:
// none chosen yet): one without hop keys before one with, then the
// stalest, then by address (a fixed order).
func (ep *endpoint) staler(v *endpoint) bool {
	if v == nil {
		return true
	}
	if ek, vk := ep.pf.hop.keyed(), v.pf.hop.keyed(); ek != vk {
		return vk
	}
	if !ep.lastSeen.Equal(v.lastSeen) {
		return ep.lastSeen.Before(v.lastSeen)
	}
	return ep.key.Addr.String() < v.key.Addr.String()
}

// nextPID returns the next packet_id for a non-sequenced packet.
func (n *Node) nextPID() uint16 {
	p := n.pid & 0xff
	n.pid++
	return p
}

// seqLinger is how long a receiver remembers a finished sequence, and how
// long a sender avoids reusing its seq_id.
const seqLinger = 10 * time.Second

// nextSeqID returns a seq_id not used in the last seqLinger and not held
// by a sequence still being sent, or false if all 256 were (the send then
// waits).
func (n *Node) nextSeqID() (uint8, bool) {
	now := n.clk.Now().Sub(n.seqBase)
	for range 256 {
		id := n.seqID
		n.seqID++
		if n.seqLive[id] {
			continue
		}
		if t := n.seqUsed[id]; t == seqNever || now-t >= seqLinger {
			n.seqUsed[id] = now
			return id, true
		}
	}
	return 0, false
}

// releaseSeqID frees the seq_id of a sequence sent to a peer of ours once
// its send has ended. The receiver may still hold what it got of it: the
// final answer for seqLinger after the last packet came (a confirmed
// send: the id is free seqLinger from now), or, for a send that ended
// otherwise (abandoned after GiveUp without progress), a partial
// reassembly until nothing came for twice giveUp, checked at most a
// quarter of giveUp late (the gap timer). A new sequence under that id
// before then would be taken for the old one: its chunks completing the
// old reassembly (a Package whose hash does not match, refused), or, the
// size the same, answered as the old one done without being delivered.
// Measured on a line of 100 nodes (seeds 1, 5), ids came round every
// 17 s at the busiest relays, while sequences ran for up to a minute.
func (n *Node) releaseSeqID(id uint8, confirmed bool, giveUp time.Duration) {
	n.seqLive[id] = false
	t := n.clk.Now().Sub(n.seqBase)
	if !confirmed {
		t += 3*giveUp - seqLinger
	}
	n.seqUsed[id] = t
}

// seqNever in Node.seqUsed: a seq_id not handed out yet.
const seqNever = time.Duration(math.MinInt64)

// congested reports whether we should ask neighbours to slow down: our
// transmit backlog or reassembly memory is past its threshold.
func (n *Node) congested() bool {
	backlog := 0
	for _, t := range n.links {
		backlog += t.backlog()
	}
	return backlog > n.bud.Backlog || n.rxBytes > n.bud.RxTotal*3/4
}
