// Package messages is store-and-forward messaging (what Reticulum's LXMF
// propagation nodes and Meshtastic's Store & Forward give their users): a
// text to a node that is asleep, out of range or off is kept by nodes that
// offer storage and delivered when the target is back; the sender hears
// "delivered" only from the target's own signed receipt.
//
// End to end encryption [ours]: each node has an X25519 key for messages
// (a key file of its own beside its identity) and binds it to its
// identity by an Ed25519 signature; the binding rides gossip on the topic
// "mycelium/messages/keys", with a flag for nodes that offer storage,
// when a node starts and every Refresh. A message is sealed to the
// target's key with HPKE (RFC 9180, base mode: DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305; Go's crypto/hpke), the
// ciphertext bound to the message's id, sender and target, and the
// envelope signed by the sender: a store can check who a message is from
// and for, and cannot read it. (The trust work of issue 11, encryption as
// a facility of the node, cannot serve here: its Noise sessions are
// interactive, and the target of a stored message is absent when the
// message is sealed. HPKE seals to a static key in one message.)
//
// Delivery: the sender sends the envelope to the target (routed, l3). If
// that fails, it deposits it with up to two storage nodes, and keeps it
// itself (a message no store took goes to the next store that announces
// itself). Whoever holds it sends it again when the target's key
// announcement comes by (the target is back), until the target's node
// confirms it. The target stores the text in its inbox and sends the
// sender a receipt signed by itself; a receipt that cannot go is sent
// again when the sender's announcement comes by.
//
// Wire [ours], the blobs of the messages application's Packages:
//
//	0x01 envelope  ‖ id (16) ‖ from (32) ‖ to (32) ‖ created (8) ‖ expires (8) ‖ n (2) ‖ sealed (n) ‖ signature (64, by from)
//	0x02 deposit   ‖ the same envelope, for a store to keep and forward
//	0x03 receipt   ‖ id (16) ‖ target (32) ‖ sender (32) ‖ signature (64, by target)
//
// Like every application here it runs on the node's loop.
package messages

import (
	"crypto/ecdh"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l4-apps/gossip"
)

// AppID is the messages application's app_id.
var AppID = packet.NewAppID("Mycelium", "messages", 1)

// KeyTopic carries the key announcements.
var KeyTopic = gossip.Topic("mycelium/messages/keys")

// Router is what messages need of the routing layer (*route.Router).
type Router interface {
	Send(to identity.NodeID, app packet.AppID, blob []byte, opt *route.Options) *node.Result
}

// Gossip is what messages need of gossip (*gossip.Service).
type Gossip interface {
	Publish(topic gossip.TopicID, data []byte) (gossip.MessageID, error)
	Subscribe(topic gossip.TopicID, f func(gossip.Delivery)) (cancel func())
}

// Config configures a Service.
type Config struct {
	Clock  clock.Clock
	Router Router
	Gossip Gossip
	Signer identity.Signer
	Key    *ecdh.PrivateKey // this node's X25519 key for messages
	Rand   *rand.Rand       // message ids
	// Store: this node offers storage for others' messages.
	Store bool
	// TTL is how long a message may wait for its target (default 7 days);
	// Refresh how often the key is announced again (default 10 min);
	// Delay the wait before the first announcement (default 10 s).
	TTL, Refresh, Delay time.Duration
	// Bounds: messages held for others (default 1,000 and 1 MiB), sent
	// and not yet delivered (1,000), kept in the inbox (1,000), keys known
	// (4,096).
	MaxHeld, HeldBytes, MaxOutbox, MaxInbox, MaxKeys int
	Logger                                           *slog.Logger
}

func (c *Config) fill() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxHeld, 1000)
	def(&c.HeldBytes, 1<<20)
	def(&c.MaxOutbox, 1000)
	def(&c.MaxInbox, 1000)
	def(&c.MaxKeys, 4096)
	if c.TTL <= 0 {
		c.TTL = 7 * 24 * time.Hour
	}
	if c.Refresh <= 0 {
		c.Refresh = 10 * time.Minute
	}
	if c.Delay <= 0 {
		c.Delay = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// State is where a sent message is.
type State string

// States.
const (
	Sending   State = "sending"   // on its way to the target
	Stored    State = "stored"    // the target was not reached; storage nodes (and we) hold it
	Waiting   State = "waiting"   // the target was not reached and no store took it: we hold it
	Delivered State = "delivered" // the target's signed receipt came
	Expired   State = "expired"   // its TTL passed undelivered
)

// Sent is a message in the outbox.
type Sent struct {
	ID          ID
	To          identity.NodeID
	Created     time.Time
	State       State
	Stores      int // storage nodes that took it
	DeliveredAt time.Time
}

// Received is a message in the inbox.
type Received struct {
	ID      ID
	From    identity.NodeID
	Text    string
	Created time.Time // the sender's clock
	At      time.Time // ours, when it arrived
}

// Stats counts a service's work.
type Stats struct {
	Sent, Delivered, Expired, Received, Duplicates uint64
	Deposited, Held, Forwarded, HeldDropped        uint64 // as a store
	Refused, Malformed                             uint64
}

type peerKey struct {
	key   *ecdh.PublicKey
	seq   uint64
	store bool
}

type outgoing struct {
	Sent
	env *envelope
	// with: the stores it was handed to, or is on its way to.
	with map[identity.NodeID]bool
}

type held struct {
	env *envelope
	at  time.Time
}

// Service is one node's messaging.
type Service struct {
	cfg      Config
	self     identity.NodeID
	seq      uint64
	keys     map[identity.NodeID]*peerKey
	out      map[ID]*outgoing
	outOrder []ID
	inbox    []Received
	got      map[ID]bool
	held     map[ID]*held
	heldQ    []ID
	heldB    int
	receipts map[ID][]byte // receipts not yet through, by message
	rcptTo   map[ID]identity.NodeID
	timer    clock.Timer
	cancel   func()
	notify   []func(Sent)
	stats    Stats
}

// New returns a service; register its Handle for AppID and Start it once
// the node and gossip run.
func New(c Config) *Service {
	c.fill()
	s := &Service{cfg: c, keys: map[identity.NodeID]*peerKey{}, out: map[ID]*outgoing{}, got: map[ID]bool{},
		held: map[ID]*held{}, receipts: map[ID][]byte{}, rcptTo: map[ID]identity.NodeID{}}
	copy(s.self[:], c.Signer.Public())
	s.seq = uint64(c.Clock.Now().UnixNano())
	return s
}

// Start subscribes to the key announcements and schedules ours.
func (s *Service) Start() {
	s.cancel = s.cfg.Gossip.Subscribe(KeyTopic, s.onKey)
	s.timer = s.cfg.Clock.AfterFunc(s.cfg.Delay, s.announce)
}

// Stop ends the announcements.
func (s *Service) Stop() {
	clock.Stop(&s.timer)
	if s.cancel != nil {
		s.cancel()
	}
}

// Stats returns the counters.
func (s *Service) Stats() Stats { return s.stats }

// OnState calls f whenever a sent message changes state.
func (s *Service) OnState(f func(Sent)) { s.notify = append(s.notify, f) }

func (s *Service) announce() {
	s.timer = s.cfg.Clock.AfterFunc(s.cfg.Refresh, s.announce)
	s.seq++
	if _, err := s.cfg.Gossip.Publish(KeyTopic, appendKeyAnn(nil, s.cfg.Signer, s.cfg.Key.PublicKey(), s.seq, s.cfg.Store)); err != nil {
		s.cfg.Logger.Warn("messaging key not announced", "err", err)
	}
}

// KnowsKey reports whether a key for to is known (Send needs one).
func (s *Service) KnowsKey(to identity.NodeID) bool { return to == s.self || s.keys[to] != nil }

// Send seals text to the target and sends it; the outbox follows it.
func (s *Service) Send(to identity.NodeID, text string) (ID, error) {
	var pub *ecdh.PublicKey
	if to == s.self {
		pub = s.cfg.Key.PublicKey()
	} else if k := s.keys[to]; k != nil {
		pub = k.key
	} else {
		return ID{}, ErrNoKey
	}
	var id ID
	binary.BigEndian.PutUint64(id[:], s.cfg.Rand.Uint64())
	binary.BigEndian.PutUint64(id[8:], s.cfg.Rand.Uint64())
	now := s.cfg.Clock.Now()
	env, err := seal(id, s.cfg.Signer, to, pub, []byte(text), now, s.cfg.TTL)
	if err != nil {
		return ID{}, err
	}
	s.expire(now)
	for len(s.outOrder) >= s.cfg.MaxOutbox {
		delete(s.out, s.outOrder[0])
		s.outOrder = s.outOrder[1:]
	}
	o := &outgoing{Sent: Sent{ID: id, To: to, Created: now, State: Sending}, env: env}
	s.out[id] = o
	s.outOrder = append(s.outOrder, id)
	s.stats.Sent++
	s.attempt(o, true)
	return id, nil
}

// attempt sends o to its target; on failure (first time) deposits it.
func (s *Service) attempt(o *outgoing, first bool) {
	s.cfg.Router.Send(o.To, AppID, append([]byte{typeEnvelope}, o.env.raw...), nil).OnDone(func(err error) {
		if err == nil || o.State == Delivered || !first {
			return
		}
		s.deposit(o)
	})
}

// deposit hands o to up to two storage nodes, chosen by a hash of the
// message id (so different messages spread over the stores).
func (s *Service) deposit(o *outgoing) {
	var stores []identity.NodeID
	for id, k := range s.keys {
		if k.store && id != o.To && id != s.self {
			stores = append(stores, id)
		}
	}
	slices.SortFunc(stores, func(a, b identity.NodeID) int {
		return cmpRank(rank(o.ID, a), rank(o.ID, b))
	})
	stores = stores[:min(len(stores), 2)]
	s.setState(o, Waiting)
	for _, st := range stores {
		s.depositWith(o, st)
	}
}

// depositWith hands o to the storage node st (once: a store counts once).
func (s *Service) depositWith(o *outgoing, st identity.NodeID) {
	if o.with[st] {
		return
	}
	if o.with == nil {
		o.with = map[identity.NodeID]bool{}
	}
	o.with[st] = true
	s.cfg.Router.Send(st, AppID, append([]byte{typeDeposit}, o.env.raw...), nil).OnDone(func(err error) {
		if err != nil {
			delete(o.with, st)
			return
		}
		if o.State == Delivered || o.State == Expired {
			return
		}
		o.Stores++
		s.setState(o, Stored)
	})
}

func rank(id ID, n identity.NodeID) uint64 {
	h := packet.HalfSHA256(append(id[:], n[:]...))
	return binary.BigEndian.Uint64(h[:])
}

func cmpRank(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Service) setState(o *outgoing, st State) {
	if o.State == st {
		return
	}
	o.State = st
	for _, f := range s.notify {
		f(o.Sent)
	}
}

// Outbox returns the sent messages still followed, oldest first.
func (s *Service) Outbox() []Sent {
	s.expire(s.cfg.Clock.Now())
	out := make([]Sent, 0, len(s.outOrder))
	for _, id := range s.outOrder {
		out = append(out, s.out[id].Sent)
	}
	return out
}

// Inbox returns the received messages, oldest first.
func (s *Service) Inbox() []Received { return slices.Clone(s.inbox) }

// Handle is the node handing us a messages Package.
func (s *Service) Handle(m node.Message) {
	if len(m.Blob) == 0 {
		s.stats.Malformed++
		return
	}
	switch m.Blob[0] {
	case typeEnvelope, typeDeposit:
		env, err := decodeEnvelope(m.Blob[1:])
		if err != nil {
			s.stats.Malformed++
			return
		}
		env.raw = append([]byte(nil), env.raw...)
		if m.Blob[0] == typeEnvelope {
			s.receive(env)
		} else {
			s.keep(env)
		}
	case typeReceipt:
		id, target, sender, err := decodeReceipt(m.Blob[1:])
		if err != nil || sender != s.self {
			s.stats.Malformed++
			return
		}
		if o := s.out[id]; o != nil && o.To == target && o.State != Delivered {
			o.DeliveredAt = s.cfg.Clock.Now()
			s.stats.Delivered++
			s.setState(o, Delivered)
		}
	default:
		s.stats.Malformed++
	}
}

// receive takes an envelope addressed to us into the inbox and answers
// with a receipt (again for a copy: the first receipt may have been lost).
func (s *Service) receive(env *envelope) {
	if env.To != s.self {
		s.stats.Refused++
		return
	}
	if !s.got[env.ID] {
		text, err := env.open(s.cfg.Key)
		if err != nil {
			s.stats.Malformed++
			return
		}
		s.got[env.ID] = true
		for len(s.inbox) >= s.cfg.MaxInbox {
			delete(s.got, s.inbox[0].ID)
			s.inbox = s.inbox[1:]
		}
		s.inbox = append(s.inbox, Received{ID: env.ID, From: env.From, Text: string(text), Created: env.Created, At: s.cfg.Clock.Now()})
		s.stats.Received++
	} else {
		s.stats.Duplicates++
	}
	s.sendReceipt(env.ID, env.From)
}

func (s *Service) sendReceipt(id ID, to identity.NodeID) {
	r := s.receipts[id]
	if r == nil {
		if len(s.receipts) >= s.cfg.MaxInbox {
			for k := range s.receipts { // drop one: bounded
				delete(s.receipts, k)
				delete(s.rcptTo, k)
				break
			}
		}
		r = appendReceipt(nil, id, s.cfg.Signer, to)
		s.receipts[id], s.rcptTo[id] = r, to
	}
	if to == s.self {
		s.Handle(node.Message{App: AppID, Blob: r})
		delete(s.receipts, id)
		delete(s.rcptTo, id)
		return
	}
	s.cfg.Router.Send(to, AppID, r, nil).OnDone(func(err error) {
		if err == nil {
			delete(s.receipts, id)
			delete(s.rcptTo, id)
		}
	})
}

// keep holds an envelope for its target (we offer storage) and tries it at
// once.
func (s *Service) keep(env *envelope) {
	now := s.cfg.Clock.Now()
	if !s.cfg.Store || !env.Expires.After(now) {
		s.stats.Refused++
		return
	}
	if env.To == s.self {
		s.receive(env)
		return
	}
	if s.held[env.ID] != nil {
		return
	}
	s.expire(now)
	for len(s.heldQ) > 0 && (len(s.held) >= s.cfg.MaxHeld || s.heldB+len(env.raw) > s.cfg.HeldBytes) {
		s.drop(s.heldQ[0])
		s.stats.HeldDropped++
	}
	if len(env.raw) > s.cfg.HeldBytes {
		s.stats.Refused++
		return
	}
	s.held[env.ID] = &held{env: env, at: now}
	s.heldQ = append(s.heldQ, env.ID)
	s.heldB += len(env.raw)
	s.stats.Deposited++
	s.forward(env)
}

func (s *Service) drop(id ID) {
	if h := s.held[id]; h != nil {
		s.heldB -= len(h.env.raw)
		delete(s.held, id)
	}
	s.heldQ = slices.DeleteFunc(s.heldQ, func(x ID) bool { return x == id })
}

// forward sends a held envelope to its target; the target's node
// confirming it, we let it go.
func (s *Service) forward(env *envelope) {
	s.cfg.Router.Send(env.To, AppID, append([]byte{typeEnvelope}, env.raw...), nil).OnDone(func(err error) {
		if err == nil && s.held[env.ID] != nil {
			s.drop(env.ID)
			s.stats.Forwarded++
		}
	})
}

// Held is how many messages this node holds for others.
func (s *Service) Held() int { return len(s.held) }

// onKey learns a node's key; a node announcing is up: what we hold for it
// goes, and receipts we owe it.
func (s *Service) onKey(d gossip.Delivery) {
	a, err := decodeKeyAnn(d.Data)
	if err != nil {
		s.stats.Malformed++
		return
	}
	if a.Node == s.self {
		return
	}
	k := s.keys[a.Node]
	if k != nil && k.seq >= a.Seq {
		return
	}
	if k == nil && len(s.keys) >= s.cfg.MaxKeys {
		return
	}
	s.keys[a.Node] = &peerKey{key: a.Key, seq: a.Seq, store: a.Store}
	now := s.cfg.Clock.Now()
	s.expire(now)
	for _, id := range slices.Clone(s.heldQ) {
		if h := s.held[id]; h != nil && h.env.To == a.Node {
			s.forward(h.env)
		}
	}
	for _, id := range s.outOrder {
		o := s.out[id]
		switch {
		case o.To == a.Node && o.State != Delivered && o.State != Expired:
			s.attempt(o, false)
		case a.Store && o.State == Waiting && o.To != s.self:
			// A message no store took (none was known when its target
			// failed, or the deposits failed) goes to a store when one
			// announces itself: else only we would hold it.
			s.depositWith(o, a.Node)
		}
	}
	for id, to := range s.rcptTo {
		if to == a.Node {
			s.sendReceipt(id, to)
		}
	}
}

// expire drops what outlived its TTL.
func (s *Service) expire(now time.Time) {
	for _, id := range slices.Clone(s.heldQ) {
		if h := s.held[id]; h != nil && !h.env.Expires.After(now) {
			s.drop(id)
		}
	}
	for _, id := range s.outOrder {
		if o := s.out[id]; o.State != Delivered && o.State != Expired && !o.env.Expires.After(now) {
			s.stats.Expired++
			s.setState(o, Expired)
		}
	}
}
