package meshsim

// Adversaries in `mycelium sim route` [ours]: nodes that run our stack
// with keys of their own (an attacker who owns a radio and our software)
// and, once the trees have converged, attack their neighbours every few
// seconds of mesh time until the routing is measured. Each attack is
// checked on its target: tried when the target heard it (it counted a
// refusal, or was fooled), rejected when it was not fooled.

import (
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/hop"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// AdversaryKinds are the attacks the simulator plays.
var AdversaryKinds = []string{"forge-beacon", "forge-goodbye", "flood", "blackhole",
	"forge-receipt", "forge-error", "replay-packet", "forge-proxy", "future-record",
	"forge-claim", "replay-cert", "lie-distance", "lie-hood"}

// AdversaryReport is what a run with adversaries adds to its RouteResult.
type AdversaryReport struct {
	// With adversaries: each kind's attacks tried on honest nodes and
	// rejected by them; the delivery between honest pairs whose every
	// shortest path avoids the adversaries; and the most reassembly memory
	// any honest node held (against its budget).
	Adversary           map[string]*AdversaryResult `json:"adversary,omitempty"`
	Adversaries         []int                       `json:"adversaries,omitempty"`
	HonestPairs         int                         `json:"honest_pairs,omitempty"`
	HonestDelivered     int                         `json:"honest_delivered,omitempty"`
	HonestDeliveryRatio *float64                    `json:"honest_delivery_ratio,omitempty"`
	PeakRxBytes         int                         `json:"peak_rx_bytes_per_node,omitempty"`
	RxBudgetBytes       int                         `json:"rx_budget_bytes,omitempty"`
}

// AdversaryResult counts one kind of attack.
type AdversaryResult struct {
	Tried    int `json:"tried"`
	Rejected int `json:"rejected"`
	// Attracted (lie-hood): decisions an honest node took toward the
	// adversary, ranked by its list, though it is on no shortest path to
	// the destination, within the bound (rejected) or not.
	Attracted int `json:"attracted,omitempty"`
}

// attackEvery is how often each adversary attacks (mesh time), and
// attackCheck how long after an attack its target is examined.
const (
	attackEvery = 5 * time.Second
	attackCheck = time.Second
)

// adversaries is the attackers' state.
type adversaries struct {
	kinds []string
	is    []bool
	set   []int
	res   map[string]*AdversaryResult
	rng   *mrand.Rand
	on    bool
	vic   victims          // the attacks on routing (attacks.go)
	flood map[int]*flooder // by flooding adversary
	// heard is the Package a victim sent last and the nonce its attempt
	// carried (what an adversary next to it overhears: onHop).
	heard struct {
		hash     [16]byte
		nonce    uint64
		hasNonce bool
	}
}

// pickAdversaries chooses c.Adversaries nodes (from their own random
// source: the honest mesh is the one the same seed builds without them).
func (m *routeMesh) pickAdversaries() {
	c := m.cfg
	if len(c.Adversary) == 0 {
		return
	}
	n := len(m.adj)
	a := &adversaries{kinds: c.Adversary, is: make([]bool, n), res: map[string]*AdversaryResult{},
		rng: mrand.New(mrand.NewPCG(c.Seed, 0x616476)), vic: victims{got: map[[16]byte]int{}}, flood: map[int]*flooder{}}
	for _, k := range c.Adversary {
		a.res[k] = &AdversaryResult{}
	}
	for _, i := range a.rng.Perm(n)[:c.Adversaries] {
		a.is[i] = true
		a.set = append(a.set, i)
	}
	slices.Sort(a.set)
	m.adv = a
}

func (a *adversaries) has(kind string) bool { return a != nil && slices.Contains(a.kinds, kind) }

// advLinks wraps adversary i's links: a blackhole drops the routed frames
// it hears once the attacks are on (it never takes a Package it should
// relay); a flooder hears of its bogus frames' completions (floodDispatcher).
func (m *routeMesh) advLinks(i int, ls []link.Link) []link.Link {
	a := m.adv
	if a == nil || !a.is[i] {
		return ls
	}
	out := slices.Clone(ls)
	if a.has("blackhole") {
		for k, l := range out {
			res := a.res["blackhole"]
			out[k] = &advLink{Link: l, wrap: func(d link.Dispatcher) link.Dispatcher { return &blackholeDispatcher{a: a, res: res, d: d} }}
		}
	}
	if a.has("flood") {
		f := &flooder{m: m, i: i, res: a.res["flood"]}
		a.flood[i] = f
		for k, l := range out {
			out[k] = &advLink{Link: l, wrap: func(d link.Dispatcher) link.Dispatcher { return &floodDispatcher{f: f, d: d} }}
		}
	}
	return out
}

// start begins the attacks: each adversary at its own point of the period.
func (m *routeMesh) startAttacks() {
	a := m.adv
	if a == nil {
		return
	}
	a.on = true
	for _, i := range a.set {
		m.startFlood(i)
		var tick func()
		tick = func() {
			if !a.on || m.dead[i] {
				return
			}
			for _, k := range a.kinds {
				m.attack(i, k)
			}
			m.clk.AfterFunc(attackEvery, tick)
		}
		m.clk.AfterFunc(time.Duration(a.rng.Int64N(int64(attackEvery))), tick)
	}
}

func (m *routeMesh) stopAttacks() {
	if m.adv != nil {
		m.adv.on = false
		for _, i := range m.adv.set {
			if f := m.adv.flood[i]; f != nil {
				f.stop()
			}
		}
	}
}

// target picks an honest neighbour h of adversary i and an honest
// neighbour v of h (not i) that h holds as a proven peer: the victim.
func (m *routeMesh) target(i int) (h, v int, ok bool) {
	a := m.adv
	hs := m.honestNeighbours(i)
	if len(hs) == 0 {
		return 0, 0, false
	}
	h = hs[a.rng.IntN(len(hs))]
	var vs []int
	for _, j := range m.adj[h] {
		if j != i && !a.is[j] && !m.dead[j] {
			if p := m.nodes[h].Peer(m.nodes[j].ID()); p != nil && p.Proven {
				vs = append(vs, j)
			}
		}
	}
	if len(vs) == 0 {
		return 0, 0, false
	}
	return h, vs[a.rng.IntN(len(vs))], true
}

// attack runs one attack of kind by adversary i.
func (m *routeMesh) attack(i int, kind string) {
	a := m.adv
	res := a.res[kind]
	me := m.nodes[i]
	switch kind {
	case "forge-goodbye":
		h, v, ok := m.target(i)
		if !ok {
			return
		}
		hn, vid := m.nodes[h], m.nodes[v].ID()
		before := hn.Stats().Trust.ForgedGoodbyes
		msg := beacon.Message{Op: beacon.OpDisconnect, NodeID: vid}
		blob, _ := msg.AppendTo(nil)
		// With a tail signed by our own key for a boot of our choosing:
		// the best an attacker without v's key can do.
		var boot proof.Boot
		_, _ = rand.Read(boot[:])
		blob = proof.AppendGoodbyeTail(blob, me.Signer(), boot)
		me.Broadcast(beacon.AppID, blob, nil)
		m.clk.AfterFunc(attackCheck, func() {
			fooled := hn.Peer(vid) == nil && !m.dead[v]
			heard := hn.Stats().Trust.ForgedGoodbyes > before
			m.count(res, fooled, heard)
		})
	case "forge-beacon":
		h, v, ok := m.target(i)
		if !ok {
			return
		}
		hn, vid := m.nodes[h], m.nodes[v].ID()
		mine := hn.Peer(me.ID())
		if mine == nil || len(mine.Endpoints) == 0 {
			return
		}
		at := mine.Endpoints[0] // where h hears us
		before := hn.Stats().Trust.ClaimsRefused
		apps := []packet.AppID{beacon.AppID, beacon.CapabilitiesID}
		for _, op := range []beacon.Op{beacon.OpBeacon, beacon.OpResponse} {
			for _, bm := range beacon.Messages(op, vid, apps) {
				blob, _ := bm.AppendTo(nil)
				me.Broadcast(beacon.AppID, blob, nil)
			}
		}
		m.clk.AfterFunc(attackCheck, func() {
			p := hn.PeerAt(at)
			fooled := p != nil && p.ID == vid
			if q := hn.Peer(vid); q != nil && q.HasEndpoint(at) {
				fooled = true
			}
			heard := hn.Stats().Trust.ClaimsRefused > before
			m.count(res, fooled, heard)
		})
	case "flood":
		// Not in rounds: at line rate from the start of the attacks
		// (startFlood).
	case "forge-receipt":
		m.forgeReceipt(i, res)
	case "forge-error":
		m.forgeError(i, res)
	case "replay-packet":
		m.replayPacket(i, res)
	case "forge-proxy":
		m.forgeRecord(i, res, 0)
	case "future-record":
		m.forgeRecord(i, res, time.Hour)
	case "forge-claim":
		m.forgeClaim(i, res)
	case "replay-cert":
		m.replayCert(i, res)
	case "lie-distance":
		m.lieDistance(i, res)
	case "lie-hood":
		m.lieHood(i, res)
	}
}

func (m *routeMesh) count(res *AdversaryResult, fooled, heard bool) {
	switch {
	case fooled:
		res.Tried++
	case heard:
		res.Tried++
		res.Rejected++
	}
}

// flood keeps adversary i's radio busy with bogus sequence packets from
// the start of the attacks to their end: line rate. One bogus frame is in
// the radio's queue at a time and the next is queued as it completes
// (floodDispatcher), so the flood contends for the air under the medium's DCF
// like any frame, interleaved with the adversary's own traffic. Each frame
// goes to the next honest neighbour in turn. Three in four carry the next
// part of a sequence the adversary keeps open at that neighbour, under a
// seq_id and a size of its own that fits the neighbour's per-peer budget,
// never its last part (the sequence never completes; it holds as much of
// the neighbour's reassembly memory as the budgets let it, until the
// neighbour gives it up, and then the next takes its place); one in four
// claims as many parts as the schema can name under a random seq_id
// (refused outright). The targets must refuse what does not fit their
// budgets and deliver nothing. Tried counts the frames the adversary's
// radio sent; Rejected those the targets refused outright for want of
// memory (the rest were held within the budgets and expired).
type flooder struct {
	m        *routeMesh
	i        int
	res      *AdversaryResult
	s        *packet.Schema
	hs       []int
	open     []floodSeq // by target: the sequence kept open there
	body     []byte
	buf      []byte // the frame being built
	k        uint64 // frames queued
	busy     bool   // a bogus frame is in the radio's queue
	drops0   []uint64
	fullSize uint16 // the largest claim the schema takes
	fitSize  int    // the largest claim a per-peer budget takes
}

// floodSeq is a sequence a flooder keeps open at a target: its id, its
// size (seq_size: parts 0..size, the last never sent) and the next part.
type floodSeq struct {
	id         uint8
	size, next uint16
}

// floodTag marks the adversary's bogus frames: a tag its node never uses.
const floodTag = link.Tag(1 << 63)

// startFlood sets adversary i's flooder going.
func (m *routeMesh) startFlood(i int) {
	a := m.adv
	f := a.flood[i]
	if f == nil {
		return
	}
	info := m.radios[i].Info()
	for _, x := range packet.Schemas() {
		// The one that can claim the longest sequences.
		if x.Sequenced() && !x.Routed() && slices.Contains(info.Schemas, x.ID) && (f.s == nil || x.MaxSeq > f.s.MaxSeq) {
			f.s = x
		}
	}
	f.hs = m.honestNeighbours(i)
	if f.s == nil || len(f.hs) == 0 {
		return
	}
	f.body = make([]byte, f.s.MaxBody)
	for b := range f.body {
		f.body[b] = byte(a.rng.Uint32())
	}
	f.fullSize = uint16(f.s.MaxSeq - 1)
	f.fitSize = max(1, min(int(f.fullSize), (node.DefaultBudgets().RxPerPeer-1)/f.s.MaxBody))
	f.open = make([]floodSeq, len(f.hs))
	f.drops0 = make([]uint64, len(f.hs))
	for k, h := range f.hs {
		f.drops0[k] = m.drops(h)
	}
	f.next()
}

// drops is node h's count of frames it refused for want of memory.
func (m *routeMesh) drops(h int) uint64 { return m.nodes[h].Stats().Drops[node.DropBudget] }

// next queues the next bogus frame, unless the attacks are over.
func (f *flooder) next() {
	m, a := f.m, f.m.adv
	if !a.on || m.dead[f.i] || f.busy {
		return
	}
	t := int(f.k % uint64(len(f.hs)))
	h := f.hs[t]
	// The body differs from any frame before it.
	binary.LittleEndian.PutUint64(f.body, f.k)
	p := packet.Packet{Schema: f.s.ID, SeqID: uint8(a.rng.Uint32()), SeqSize: f.fullSize, Body: f.body}
	if a.rng.IntN(4) != 0 {
		o := &f.open[t]
		if o.next >= o.size {
			// Done with this one (all but its last part sent): the next.
			*o = floodSeq{id: uint8(a.rng.Uint32()), size: uint16(max(1, f.fitSize/2+a.rng.IntN(f.fitSize/2+1)))}
		}
		p.SeqID, p.SeqSize, p.PacketID = o.id, o.size, o.next
		o.next++
	} else {
		p.PacketID = uint16(a.rng.IntN(int(f.fullSize) + 1))
	}
	b, err := p.AppendSealed(f.buf[:0]) // the radio keeps a copy
	if err != nil {
		return // not a frame the schema takes: no flood
	}
	f.buf = b
	f.k++
	if m.radios[f.i].Send(m.radios[h].Addr(), b, floodTag|link.Tag(f.k)) != nil {
		// The queue is full of the adversary's own frames: try again
		// after a frame's air.
		m.clk.AfterFunc(m.radios[f.i].Airtime(len(b)), f.next)
		return
	}
	f.busy = true
}

// sent is a bogus frame's completion: queue the next at once.
func (f *flooder) sent() {
	f.busy = false
	f.res.Tried++
	f.next()
}

// stop ends the flood's count: what its targets dropped outright.
func (f *flooder) stop() {
	if f.drops0 == nil {
		return
	}
	var d uint64
	for k, h := range f.hs {
		d += f.m.drops(h) - f.drops0[k]
	}
	f.drops0 = nil
	f.res.Rejected += min(f.res.Tried, int(d))
}

// advLink is an adversary's link whose dispatcher its attack wraps: a
// flooder takes its bogus frames' completions (floodDispatcher), a
// blackhole what it hears (blackholeDispatcher).
type advLink struct {
	link.Link
	wrap func(link.Dispatcher) link.Dispatcher
}

func (l *advLink) Airtime(n int) time.Duration { return link.Airtime(l.Link, n) }

func (l *advLink) Attach(d link.Dispatcher) {
	if d != nil {
		d = l.wrap(d)
	}
	l.Link.Attach(d)
}

// floodDispatcher passes the completions of a flooder's bogus frames to
// it, not to its node.
type floodDispatcher struct {
	f *flooder
	d link.Dispatcher
}

func (fd *floodDispatcher) TxDone(tag link.Tag, err error) {
	if tag&floodTag != 0 {
		fd.f.sent()
		return
	}
	fd.d.TxDone(tag, err)
}

func (fd *floodDispatcher) DeliverFrame(f link.Frame) { fd.d.DeliverFrame(f) }

// blackholeDispatcher, once the attacks are on, drops every routed frame
// an adversary hears.
type blackholeDispatcher struct {
	a   *adversaries
	res *AdversaryResult
	d   link.Dispatcher
}

func (bd *blackholeDispatcher) TxDone(tag link.Tag, err error) { bd.d.TxDone(tag, err) }

func (bd *blackholeDispatcher) DeliverFrame(f link.Frame) {
	var p packet.Packet
	if bd.a.on && packet.Decode(hop.Packet(f.Data), &p) == nil && p.SchemaOf() != nil && p.SchemaOf().Routed() && !p.Flags.Ack() {
		bd.res.Tried++ // a routed frame swallowed
		return
	}
	bd.d.DeliverFrame(f)
}

// honestPair reports whether no adversary is on any shortest path from s
// to t (nor is either).
func (m *routeMesh) honestPair(s, t int, ds, dt []int) bool {
	if m.adv == nil {
		return true
	}
	if m.adv.is[s] || m.adv.is[t] {
		return false
	}
	for _, x := range m.adv.set {
		if ds[x] >= 0 && dt[x] >= 0 && ds[x]+dt[x] == ds[t] {
			return false
		}
	}
	return true
}

// ValidateAdversary checks the adversary settings.
func (c *RouteConfig) validateAdversary(nodes int) error {
	for _, k := range c.Adversary {
		if !slices.Contains(AdversaryKinds, k) {
			return settingf("adversary", k, "want one of %v", AdversaryKinds)
		}
	}
	if len(c.Adversary) == 0 && c.Adversaries != 0 {
		return settingf("adversaries", c.Adversaries, "needs --adversary")
	}
	if c.Attempts < 0 || c.Attempts > 16 {
		return settingf("attempts", c.Attempts, "want 1..16 (0: the router's default, 4)")
	}
	if len(c.Adversary) > 0 && (c.Adversaries < 1 || c.Adversaries > nodes/2) {
		return settingf("adversaries", c.Adversaries, "want 1 to half the nodes (%d)", nodes/2)
	}
	return nil
}

// adversaryResult fills the adversary fields of res.
func (m *routeMesh) adversaryResult(res *RouteResult) {
	a := m.adv
	if a == nil {
		return
	}
	res.Adversary, res.Adversaries = a.res, a.set
	if res.HonestPairs > 0 {
		r := float64(res.HonestDelivered) / float64(res.HonestPairs)
		res.HonestDeliveryRatio = &r
	}
	for i, n := range m.nodes {
		if !a.is[i] {
			res.PeakRxBytes = max(res.PeakRxBytes, n.Stats().PeakRxBytes)
		}
	}
	res.RxBudgetBytes = node.DefaultBudgets().RxTotal
}
