// Package gossip spreads small messages to every node of the mesh
// (PROTOCOL 10: Message, Notification, Request), by broadcast, through a
// small set of relays, and repairs what loss left out.
//
// Relaying [ours] combines OLSR's multipoint relays with neighbour-coverage
// self-pruning (the Scalable Broadcast Algorithm). Every node says hello
// to its neighbours once a period: its neighbours and the few of them it
// chose as its relays (together they reach every node two hops away). A
// node that hears a new Message waits a moment, listening to its
// neighbours pass it on, and relays it only if a node it heard send it
// chose it as a relay, some neighbour of its own is covered by none of the
// broadcasts it heard, and fewer than three neighbours were heard relaying
// it (a neighbour that has no other neighbour is always served). The wait
// is shorter the more neighbours are left uncovered, so the nodes that
// cover most go first and silence the rest. The publisher broadcasts again
// (twice at most) when it hears none of its relays pass the Message on.
//
// Repair [ours]: a hello also carries a bloom filter of the ids its sender
// saw in the last four periods. A neighbour that holds a Message the
// filter lacks broadcasts it again, after the neighbours ranked before it
// (by a hash of the id and the round) had their turn, and stays quiet if
// it heard two of them do so. A Message too large for one packet is
// relayed as a Notification, which neighbours answer with a Request.
//
// Like every application here it runs on the node's loop: Handle,
// Publish, Subscribe and the callbacks are called there.
package gossip

import (
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// AppID is the gossip application's app_id.
var AppID = packet.NewAppID("Mycelium", "gossip", 1)

// Net is what gossip needs of the node (*node.Node).
type Net interface {
	Broadcast(app packet.AppID, blob []byte, opt *node.SendOptions) *node.Result
	SendTo(to peer.Endpoint, app packet.AppID, blob []byte, opt *node.SendOptions) *node.Result
}

// Config configures a Service.
type Config struct {
	Clock clock.Clock
	Net   Net
	Self  identity.NodeID
	Seed  uint64 // the service's random choices (jitter)
	// Inline is the largest serialized Message relayed as itself (default
	// 200 bytes: one ESP-NOW or LoRa packet); a larger one is relayed as a
	// Notification and fetched with a Request.
	Inline int
	// MaxMessage bounds a serialized Message sent or taken (default 4 KiB).
	MaxMessage int
	// HelloPeriod is how often a node says hello (default 60 s); a
	// neighbour not heard for three periods is forgotten.
	HelloPeriod time.Duration
	// Window bounds the wait before relaying (default 200 ms).
	Window time.Duration
	// Enough prunes a relay once that many neighbours were heard relaying
	// the Message, whatever their lists say (default 3; repair fills what
	// that leaves out).
	Enough int
	// SeenMax bounds the ids remembered (default 8,192), SeenFor how long
	// (default 30 min): a Message is never delivered or relayed twice
	// within that.
	SeenMax int
	SeenFor time.Duration
	// StoreBytes bounds the Messages kept to answer Requests and repair
	// neighbours (default 1 MiB); each is kept for four hello periods.
	StoreBytes int
	Logger     *slog.Logger
}

func (c *Config) fill() {
	if c.Inline <= 0 {
		c.Inline = 200
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 4 << 10
	}
	if c.HelloPeriod <= 0 {
		c.HelloPeriod = 60 * time.Second
	}
	if c.Enough <= 0 {
		c.Enough = 3
	}
	if c.Window <= 0 {
		c.Window = 200 * time.Millisecond
	}
	if c.SeenMax <= 0 {
		c.SeenMax = 8192
	}
	if c.SeenFor <= 0 {
		c.SeenFor = 30 * time.Minute
	}
	if c.StoreBytes <= 0 {
		c.StoreBytes = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Delivery is a Message handed to a subscriber.
type Delivery struct {
	ID    MessageID
	Topic TopicID
	Data  []byte // the subscriber's to keep
	Time  time.Time
	Local bool // published on this node
	// Signed: the neighbour that handed the Message to this node sent it
	// as a signed broadcast that verified (node.Message.Signed). It
	// authenticates that one hop, not who published the Message.
	Signed bool
}

// Stats counts a service's work.
type Stats struct {
	Published, Delivered, Duplicates            uint64
	Relayed, Pruned                             uint64 // relays sent, relays found unneeded
	NotificationsSent, RequestsSent, RequestsIn uint64
	Pushed                                      uint64 // Messages sent to repair a neighbour
	Resent                                      uint64 // broadcasts sent again, none of our relays heard passing them on
	HellosSent, HellosRecv                      uint64
	Malformed                                   uint64
	SendsFailed                                 uint64 // unicasts (repairs, Requests, answers) not confirmed
	Neighbours                                  int
}

type neighbour struct {
	ep   peer.Endpoint
	list []uint32
	// relay: it chose us to carry its broadcasts on; relaysKnown: it has
	// told us its choice.
	relay, relaysKnown bool
	last               time.Time
	round              uint16
	bloom              []byte
}

type stored struct {
	msg []byte
	at  time.Time
}

type pending struct {
	heard []uint32
	blind bool // heard from a node whose neighbours we do not know
	timer clock.Timer
}

// Service is one node's gossip.
type Service struct {
	cfg  Config
	self uint32
	rng  *rand.Rand

	nbrs map[uint32]*neighbour
	byEp map[peer.Endpoint]uint32

	seen     map[MessageID]time.Time
	seenQ    []MessageID // oldest first
	store    map[MessageID]*stored
	storeQ   []MessageID
	bytes    int
	pend     map[MessageID]*pending
	pushes   map[MessageID]*push
	watching map[MessageID]*watch
	asked    map[MessageID]time.Time
	subs     map[TopicID][]*sub
	round    uint16
	hello    clock.Timer
	helloAt  time.Time // when the next hello goes
	relays   []uint32  // the relays our last hello named
	early    int
	started  bool
	stopped  bool
	stats    Stats
	frame    Frame
}

type sub struct{ f func(Delivery) }

// New returns a service; register its Handle for AppID on the node, then
// Start it once the node runs.
func New(c Config) *Service {
	c.fill()
	return &Service{
		cfg: c, self: shortID(c.Self), rng: rand.New(rand.NewPCG(c.Seed, 0x676f73)),
		nbrs: map[uint32]*neighbour{}, byEp: map[peer.Endpoint]uint32{},
		seen: map[MessageID]time.Time{}, store: map[MessageID]*stored{},
		pend: map[MessageID]*pending{}, pushes: map[MessageID]*push{}, watching: map[MessageID]*watch{}, asked: map[MessageID]time.Time{}, subs: map[TopicID][]*sub{},
	}
}

func shortID(id identity.NodeID) uint32 { return binary.BigEndian.Uint32(id[:4]) }

// Start begins the hellos: two soon (a node learns its neighbours from the
// first, their neighbours from the second), then one a period.
func (s *Service) Start() {
	if s.started {
		return
	}
	s.started = true
	s.scheduleHello(s.jitter(2 * time.Second))
	s.early = 2
}

// Stop cancels the timers.
func (s *Service) Stop() {
	s.stopped = true
	clock.Stop(&s.hello)
	for _, p := range s.pend {
		clock.Stop(&p.timer)
	}
	for _, ps := range s.pushes {
		ps.timer.Stop()
	}
	for _, w := range s.watching {
		w.timer.Stop()
	}
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	st := s.stats
	st.Neighbours = len(s.nbrs)
	return st
}

// Subscribe calls f with every new Message on topic (those published here
// too); the returned function cancels.
func (s *Service) Subscribe(topic TopicID, f func(Delivery)) (cancel func()) {
	sb := &sub{f}
	s.subs[topic] = append(s.subs[topic], sb)
	return func() {
		s.subs[topic] = slices.DeleteFunc(s.subs[topic], func(x *sub) bool { return x == sb })
		if len(s.subs[topic]) == 0 {
			delete(s.subs, topic)
		}
	}
}

// Publish sends data on topic to every node; it is delivered here too.
// The same data on the same topic is the same Message: published again
// within SeenFor it goes nowhere (ErrDuplicate).
func (s *Service) Publish(topic TopicID, data []byte) (MessageID, error) {
	msg := AppendMessage(nil, topic, data)
	if len(msg) > s.cfg.MaxMessage {
		return MessageID{}, ErrTooLarge
	}
	id := IDOf(msg)
	if _, ok := s.seen[id]; ok {
		return id, ErrDuplicate
	}
	s.stats.Published++
	s.accept(id, msg, topic, data, true, false)
	s.transmit(id, msg)
	s.watch(id, 2)
	return id, nil
}

// Handle is the node handing us a gossip Package.
func (s *Service) Handle(m node.Message) {
	if s.stopped {
		return
	}
	f := &s.frame
	if err := Decode(m.Blob, f); err != nil {
		s.stats.Malformed++
		return
	}
	switch f.Type {
	case TypeMessage:
		if len(m.Blob) > s.cfg.MaxMessage {
			s.stats.Malformed++
			return
		}
		s.onMessage(m.Blob, f, m.Via, m.Broadcast, m.Signed)
	case TypeNotification:
		s.onNotification(f.ID, m.Via)
	case TypeRequest:
		s.stats.RequestsIn++
		if st, ok := s.store[f.ID]; ok {
			s.cfg.Net.SendTo(m.Via, AppID, st.msg, nil).OnDone(s.countFailure)
		}
	case TypeHello:
		s.onHello(&f.Hello, m.Via)
	}
}

func (s *Service) onMessage(msg []byte, f *Frame, via peer.Endpoint, broadcast, signed bool) {
	id := IDOf(msg)
	from, known := s.byEp[via]
	if _, ok := s.seen[id]; ok {
		s.stats.Duplicates++
		if p := s.pend[id]; p != nil && broadcast {
			s.heard(p, from, known)
		}
		if w := s.watching[id]; w != nil && broadcast && known && slices.Contains(s.relays, from) {
			w.heard = true
		}
		if ps, ok := s.pushes[id]; ok && broadcast {
			// Other nodes repaired the hole first: twice is enough (one
			// broadcast is lost one time in ten).
			if ps.heard++; ps.heard >= 2 {
				ps.timer.Stop()
				delete(s.pushes, id)
			}
		}
		return
	}
	msg = slices.Clone(msg)
	delete(s.asked, id)
	s.accept(id, msg, f.Topic, msg[MessageHead:], false, signed)
	p := &pending{}
	if broadcast {
		s.heard(p, from, known)
	} else if known {
		// A repair or a fetched Message: the sender has it, and covered
		// only us.
		p.heard = append(p.heard, from)
	}
	s.consider(id, p)
}

// chosen reports whether a node we heard broadcast the Message chose us
// as a relay (or has not told us its choice yet).
func (s *Service) chosen(p *pending) bool {
	for _, h := range p.heard {
		if nb := s.nbrs[h]; nb == nil || !nb.relaysKnown || nb.relay {
			return true
		}
	}
	return false
}

func (s *Service) heard(p *pending, from uint32, known bool) {
	if !known || s.nbrs[from] == nil {
		p.blind = true
		return
	}
	p.heard = append(p.heard, from)
}

// consider schedules a relay of id if some neighbour is left uncovered.
func (s *Service) consider(id MessageID, p *pending) {
	unc := s.uncovered(id, p)
	if !s.needed(unc, p) {
		s.stats.Pruned++
		return
	}
	// The more of our neighbours the broadcast left uncovered, the sooner
	// we go: a relay that covers many silences those that would cover few.
	frac := 1 - float64(unc.n)/float64(len(s.nbrs)+1)
	d := time.Duration((frac*frac + 0.05*s.rng.Float64()) * float64(s.cfg.Window))
	s.pend[id] = p
	p.timer = s.cfg.Clock.AfterFunc(d, func() {
		delete(s.pend, id)
		if s.stopped {
			return
		}
		if !s.needed(s.uncovered(id, p), p) {
			s.stats.Pruned++
			return
		}
		if st, ok := s.store[id]; ok {
			s.stats.Relayed++
			s.transmit(id, st.msg)
		}
	})
}

// needed reports whether a relay is worth its frame: a neighbour that
// hangs on us alone is uncovered; or a node that chose us as a relay was
// heard sending the Message, some neighbour of ours is still uncovered,
// and fewer than Enough neighbours were heard relaying.
func (s *Service) needed(u uncov, p *pending) bool {
	if u.leaf {
		return true
	}
	if len(p.heard) >= s.cfg.Enough {
		return false
	}
	if !p.blind && !s.chosen(p) {
		return false
	}
	return u.n > 0
}

type uncov struct {
	n    int
	leaf bool // one of them has no neighbour but us
}

// uncovered counts our neighbours that none of the broadcasts heard
// reached (as far as their hellos tell), and that do not say they have id.
// Having heard a node we know nothing about, we count every neighbour.
func (s *Service) uncovered(id MessageID, p *pending) uncov {
	var u uncov
	for nid, nb := range s.nbrs {
		if p.blind || !s.covered(nid, p.heard) && !(nb.bloom != nil && bloomHas(nb.bloom, &id, nb.round)) {
			u.n++
			if len(nb.list) == 1 && nb.list[0] == s.self {
				u.leaf = true
			}
		}
	}
	return u
}

func (s *Service) covered(nid uint32, heard []uint32) bool {
	for _, h := range heard {
		if h == nid {
			return true
		}
		if nb := s.nbrs[h]; nb != nil {
			if _, ok := slices.BinarySearch(nb.list, nid); ok {
				return true
			}
		}
	}
	return false
}

// transmit broadcasts a Message, or its Notification when it does not fit
// one packet.
func (s *Service) transmit(id MessageID, msg []byte) {
	if len(msg) <= s.cfg.Inline {
		s.cfg.Net.Broadcast(AppID, msg, nil)
		return
	}
	s.stats.NotificationsSent++
	s.cfg.Net.Broadcast(AppID, AppendNotification(nil, id), nil)
}

type watch struct {
	timer clock.Timer
	heard bool // one of our relays was heard sending it on
}

// watch listens, after we published id, for one of the relays we chose
// to send it on: the implicit acknowledgement of flooding. Hearing none
// within three windows, we broadcast again, up to tries times: a Message
// whose first broadcast was lost around its origin would otherwise wait
// for repair, a hello period or more. (Relays do not watch: their relays
// may rightly stay quiet, the others having covered their neighbours.)
func (s *Service) watch(id MessageID, tries int) {
	if len(s.relays) == 0 || tries <= 0 {
		return
	}
	if w := s.watching[id]; w != nil {
		w.timer.Stop()
	}
	w := &watch{}
	s.watching[id] = w
	w.timer = s.cfg.Clock.AfterFunc(3*s.cfg.Window, func() {
		if s.watching[id] != w {
			return
		}
		delete(s.watching, id)
		st, ok := s.store[id]
		if w.heard || !ok || s.stopped {
			return
		}
		s.stats.Resent++
		s.transmit(id, st.msg)
		s.watch(id, tries-1)
	})
}

func (s *Service) onNotification(id MessageID, via peer.Endpoint) {
	if _, ok := s.seen[id]; ok {
		if p := s.pend[id]; p != nil {
			from, known := s.byEp[via]
			s.heard(p, from, known)
		}
		return
	}
	now := s.cfg.Clock.Now()
	if t, ok := s.asked[id]; ok && now.Sub(t) < 5*time.Second {
		return
	}
	if len(s.asked) >= s.cfg.SeenMax {
		s.pruneAsked(now)
	}
	s.asked[id] = now
	s.stats.RequestsSent++
	s.cfg.Net.SendTo(via, AppID, AppendRequest(nil, id), nil).OnDone(s.countFailure)
}

func (s *Service) pruneAsked(now time.Time) {
	for id, t := range s.asked {
		if now.Sub(t) >= 5*time.Second {
			delete(s.asked, id)
		}
	}
	if len(s.asked) >= s.cfg.SeenMax {
		clear(s.asked)
	}
}

// accept remembers, stores and delivers a new Message.
func (s *Service) accept(id MessageID, msg []byte, topic TopicID, data []byte, local, signed bool) {
	now := s.cfg.Clock.Now()
	s.expire(now)
	for len(s.seenQ) >= s.cfg.SeenMax {
		delete(s.seen, s.seenQ[0])
		s.seenQ = s.seenQ[1:]
	}
	s.seen[id] = now
	s.seenQ = append(s.seenQ, id)
	if len(msg) <= s.cfg.StoreBytes {
		for s.bytes+len(msg) > s.cfg.StoreBytes {
			s.dropOldest()
		}
		s.store[id] = &stored{msg: msg, at: now}
		s.storeQ = append(s.storeQ, id)
		s.bytes += len(msg)
	}
	subs := s.subs[topic]
	if len(subs) > 0 {
		s.stats.Delivered++
	}
	for _, sb := range slices.Clone(subs) {
		sb.f(Delivery{ID: id, Topic: topic, Data: slices.Clone(data), Time: now, Local: local, Signed: signed})
	}
}

func (s *Service) dropOldest() {
	id := s.storeQ[0]
	s.storeQ = s.storeQ[1:]
	if st, ok := s.store[id]; ok {
		s.bytes -= len(st.msg)
		delete(s.store, id)
	}
}

// keepFor is how long a Message is stored for repairs: past the window of
// the blooms that ask for it.
func (s *Service) keepFor() time.Duration { return s.bloomWindow() + 10*time.Second }

func (s *Service) expire(now time.Time) {
	for len(s.seenQ) > 0 && now.Sub(s.seen[s.seenQ[0]]) > s.cfg.SeenFor {
		delete(s.seen, s.seenQ[0])
		s.seenQ = s.seenQ[1:]
	}
	for len(s.storeQ) > 0 {
		st, ok := s.store[s.storeQ[0]]
		if ok && now.Sub(st.at) <= s.keepFor() {
			break
		}
		s.dropOldest()
	}
}
