package meshsim

// Adversaries in `mycelium sim route` [ours]: nodes that run our stack
// with keys of their own (an attacker who owns a radio and our software)
// and, once the trees have converged, attack their neighbours every few
// seconds of mesh time until the routing is measured. Each attack is
// checked on its target: tried when the target heard it (it counted a
// refusal, or was fooled), rejected when it was not fooled.

import (
	"crypto/rand"
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
	floodFrames = 64 // bogus sequence packets per flood attack, back to back
)

// adversaries is the attackers' state.
type adversaries struct {
	kinds []string
	is    []bool
	set   []int
	res   map[string]*AdversaryResult
	rng   *mrand.Rand
	on    bool
	vic   victims // the attacks on routing (attacks.go)
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
		rng: mrand.New(mrand.NewPCG(c.Seed, 0x616476)), vic: victims{got: map[[16]byte]int{}}}
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

// advLinks wraps adversary i's links (a blackhole drops the routed frames
// it hears once the attacks are on: it never takes a Package it should
// relay).
func (m *routeMesh) advLinks(i int, ls []link.Link) []link.Link {
	if !m.adv.has("blackhole") || !m.adv.is[i] {
		return ls
	}
	out := make([]link.Link, len(ls))
	for k, l := range ls {
		out[k] = &blackhole{Link: l, a: m.adv, res: m.adv.res["blackhole"]}
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
		m.flood(i, res)
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

// flood sends floodFrames bogus sequence packets back to back from
// adversary i to one honest neighbour: each claims a sequence of as many
// packets as its schema can name under a random seq_id, carrying junk. The target must refuse
// what does not fit its budgets and deliver nothing.
func (m *routeMesh) flood(i int, res *AdversaryResult) {
	a := m.adv
	hs := m.honestNeighbours(i)
	if len(hs) == 0 {
		return
	}
	h := hs[a.rng.IntN(len(hs))]
	r := m.radios[i]
	info := r.Info()
	var s *packet.Schema
	for _, x := range packet.Schemas() {
		if x.Sequenced() && !x.Routed() && slices.Contains(info.Schemas, x.ID) {
			s = x
			break
		}
	}
	if s == nil {
		return
	}
	hn := m.nodes[h]
	drops := func() (n uint64) {
		for _, d := range hn.Stats().Drops {
			n += d
		}
		return n
	}
	before := drops()
	to := m.radios[h].Addr()
	sent := 0
	for k := range floodFrames {
		body := make([]byte, s.MaxBody)
		for b := range body {
			body[b] = byte(a.rng.Uint32())
		}
		// As many parts as the schema can claim (65,536, or 256).
		p := packet.Packet{Schema: s.ID, PacketID: uint16(k), SeqID: uint8(a.rng.Uint32()), SeqSize: 0xffff, Body: body}
		b, err := p.AppendSealed(nil)
		if err != nil {
			p.SeqSize = 0xff
			if b, err = p.AppendSealed(nil); err != nil {
				return
			}
		}
		if r.Send(to, b, link.Tag(1<<63|uint64(k))) == nil { // a tag the node never uses: its completion is a stray to it
			sent++
		}
	}
	res.Tried += sent
	m.clk.AfterFunc(attackCheck, func() {
		// Refused outright (a counted drop: over budget, malformed...);
		// the rest opened reassemblies within h's budgets, which expire
		// (flood_peak_rx_bytes is the most any honest node held).
		res.Rejected += min(sent, int(drops()-before))
	})
}

// blackhole is an adversary's link that, once the attacks are on, drops
// every routed frame it hears.
type blackhole struct {
	link.Link
	a   *adversaries
	res *AdversaryResult
}

func (b *blackhole) Airtime(n int) time.Duration { return link.Airtime(b.Link, n) }

func (b *blackhole) Attach(d link.Dispatcher) {
	if d == nil {
		b.Link.Attach(nil)
		return
	}
	b.Link.Attach(&blackholeDispatcher{b: b, d: d})
}

type blackholeDispatcher struct {
	b *blackhole
	d link.Dispatcher
}

func (bd *blackholeDispatcher) TxDone(tag link.Tag, err error) { bd.d.TxDone(tag, err) }

func (bd *blackholeDispatcher) DeliverFrame(f link.Frame) {
	var p packet.Packet
	if bd.b.a.on && packet.Decode(hop.Packet(f.Data), &p) == nil && p.SchemaOf() != nil && p.SchemaOf().Routed() && !p.Flags.Ack() {
		bd.b.res.Tried++ // a routed frame swallowed
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
