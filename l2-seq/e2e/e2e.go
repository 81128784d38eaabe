// Package e2e is end-to-end encryption of Packages between nodes [ours]:
// an application layer on a node that seals a Package for its destination
// node, so that every relay on the way carries only ciphertext, and
// unseals, authenticates and delivers what reaches it.
//
// Sessions are Noise IK handshakes (Noise_IK_25519_ChaChaPoly_BLAKE2s,
// github.com/flynn/noise): each node's static X25519 key is derived from
// its Ed25519 identity (identity.X25519), so the initiator knows the
// responder's from its node_id, and the responder checks that the
// initiator's maps from the node_id it claims. Both sides' ephemeral keys
// enter the session keys, so recording traffic and later stealing a node's
// key reveals nothing of past sessions (forward secrecy); sessions are
// replaced every RekeyAfter. Message 1 carries no data (no 0-RTT: a
// replayed message 1 could replay it), only the initiator's node_id and
// clock, which must grow from one handshake to the next.
//
// A sealed Package (the blob of a Package to AppID) is
//
//	0x03 ‖ receiver's session index (4) ‖ counter (8) ‖ ChaCha20-Poly1305(app_id ‖ blob) ‖ tag (16)
//
// with the header as associated data: 29 bytes more than the clear
// Package. Counters seen are kept in a 1,024-wide sliding window: a
// replayed or duplicated Package is refused with node.ErrReplayed, one
// changed on the way with node.ErrUnauthenticated; both errors go back to
// the sender (node.RegisterChecked), which never sees garbage delivered.
//
// The error report of the layer below names a refused Package by its hash,
// and a relay that changed a sealed Package wrote a hash of its own there,
// which the sender does not know. So the receiver also says so inside the
// session, in a notice sealed as data is (its own type, so that a refused
// notice is never answered with a notice):
//
//	0x04 ‖ receiver's session index (4) ‖ counter (8) ‖ ChaCha20-Poly1305(0x01 ‖ refused counter (8) ‖ error code (1)) ‖ tag (16)
//
// 39 bytes, naming the refused message by the session and counter its
// header carried. The sender ends that send with the error; no relay can
// forge the notice (it is sealed) — only drop it, and then the sender ends
// as the layer below decides.
//
// Under load a responder answers a message 1 beyond its budget with a
// cookie bound to where it came from, which the initiator echoes
// (cookie.go).
//
// Broadcasts are not sealed (a broadcast has no one destination to agree
// keys with), and reference boards cannot take part: a daemon sends to
// them in clear, never falling back to clear for one of our nodes.
package e2e

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/flynn/noise"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/internal/bucket"
	"github.com/mycelium-mesh/mycelium/l2-seq/internal/replay"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// AppID is the end-to-end application: ("Mycelium", "e2e", 1).
var AppID = packet.NewAppID("Mycelium", "e2e", 1)

// Notices (the first byte of a notice's plaintext).
const (
	ctrlRefused     = 0x01 // ‖ counter (8) ‖ code (1): a message of yours I refused
	ctrlRefusedSize = 1 + 8 + 1
)

// ErrMalformed reports a message that does not parse.
var ErrMalformed = errors.New("e2e: malformed message")

// Transport carries the layer's messages to a node by node_id: the
// router's Send for any node of the mesh, or a node's Send to a neighbour.
type Transport interface {
	Send(to identity.NodeID, app packet.AppID, blob []byte) *node.Result
}

// TransportFunc adapts a function to Transport.
type TransportFunc func(to identity.NodeID, app packet.AppID, blob []byte) *node.Result

// Send calls f.
func (f TransportFunc) Send(to identity.NodeID, app packet.AppID, blob []byte) *node.Result {
	return f(to, app, blob)
}

// Config configures a Layer.
type Config struct {
	Identity  identity.Identity // required: its X25519 key is derived from it
	Clock     clock.Clock       // required: the node's loop
	Transport Transport         // required
	// Deliver hands an unsealed Package to its application (required:
	// node.Node.DeliverLocal).
	Deliver func(node.Message) error
	// Entropy is where ephemeral keys and session indices come from
	// (nil: crypto/rand; simulations give a seeded source).
	Entropy io.Reader
	// RekeyAfter is a session's age at which the next send starts a new
	// one (default 2 minutes); a session is refused RekeyAfter + 1 minute
	// after its birth.
	RekeyAfter time.Duration
	// HandshakeTimeout is how long one handshake try waits for its
	// answer (default 5 s; three tries).
	HandshakeTimeout time.Duration
	// MaxSessions bounds the sessions held (default 256).
	MaxSessions int
	// Revocations, when set, names node_ids an operator revoked: no
	// session is begun with one, its handshakes are refused, and the data
	// of a session begun before the revocation is refused too.
	Revocations identity.Revocations
	// Reply sends blob back to where message m came from (the router:
	// the origin address in its header), without knowing its sender's
	// node_id: how a cookie reaches the source of a message 1 the layer
	// has no budget for. nil: no cookies, message 1s beyond the budget
	// are dropped (the initiator tries again).
	Reply func(m node.Message, app packet.AppID, blob []byte)
}

// Stats counts the layer's work and what it refused.
type Stats struct {
	Sealed, Opened          uint64 // Packages sealed and sent, unsealed and delivered
	SealedBytes             uint64 // bytes of sealed messages sent (data only)
	Handshakes              uint64 // sessions established (either side)
	InitsSent, InitsLimited uint64
	Malformed               uint64
	Unauthenticated         uint64 // data or handshakes that did not authenticate
	Replayed                uint64 // data counters, or handshake clocks, seen before
	HandshakeFailed         uint64 // sends failed for want of a session
	CookiesSent             uint64 // cookies sent to the sources of message 1s beyond the budget
	CookiesHeard            uint64 // cookies taken for a handshake of ours (its message 1 sent again with the MAC)
	CookieInits             uint64 // message 1s answered because they echoed a valid cookie
	RefusedSent             uint64 // notices sent that a peer's message was refused
	RefusedHeard            uint64 // sends ended by a peer's notice
	Revoked                 uint64 // handshakes, data and sends refused: the peer's key is revoked
}

// Layer is one node's end-to-end sessions. Its methods run on the node's
// loop.
type Layer struct {
	cfg     Config
	self    identity.NodeID
	static  noise.DHKey
	entropy io.Reader
	byIdx   map[uint32]*session
	cur     map[identity.NodeID]*session // the session we seal with
	pending map[identity.NodeID]*session // our handshake under way
	lastTS  map[identity.NodeID]int64    // each initiator's last handshake clock
	stats   Stats
	inits   bucket.Bucket // handshakes we may still answer
	notices bucket.Bucket // refusal notices we may still send
	// Cookies (cookie.go): the secret they are MACs under (and the one
	// before it, for a cookie made just before a rotation), when it was
	// drawn, and the budgets of cookies sent and of message 1s answered
	// for a valid cookie.
	secret, prevSecret [32]byte
	secretAt           time.Time
	cookies, cookied   bucket.Bucket
}

var suite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

var prologue = []byte("mycelium e2e v1")

// Limits.
const (
	maxQueue       = 32 // sends waiting for a handshake, per destination
	handshakeTries = 3
	initBurst      = 64                     // handshakes answered at once...
	initRefill     = 10 * time.Millisecond  // ...and then 100 a second
	noticeBurst    = 16                     // refusal notices sent at once...
	noticeRefill   = 100 * time.Millisecond // ...and then 10 a second
	rejectGrace    = time.Minute
)

// New builds a layer.
func New(cfg Config) (*Layer, error) {
	if cfg.Identity.IsZero() || cfg.Clock == nil || cfg.Transport == nil || cfg.Deliver == nil {
		return nil, errors.New("e2e: Identity, Clock, Transport and Deliver are required")
	}
	if cfg.RekeyAfter <= 0 {
		cfg.RekeyAfter = 2 * time.Minute
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 256
	}
	l := &Layer{
		cfg: cfg, self: cfg.Identity.ID(), entropy: cfg.Entropy,
		byIdx: map[uint32]*session{}, cur: map[identity.NodeID]*session{},
		pending: map[identity.NodeID]*session{}, lastTS: map[identity.NodeID]int64{},
		inits:   bucket.Bucket{Burst: initBurst, Every: initRefill},
		notices: bucket.Bucket{Burst: noticeBurst, Every: noticeRefill},
		cookies: bucket.Bucket{Burst: cookieBurst, Every: cookieRefill},
		cookied: bucket.Bucket{Burst: initBurst, Every: initRefill},
	}
	if l.entropy == nil {
		l.entropy = rand.Reader
	}
	priv, pub := cfg.Identity.X25519()
	l.static = noise.DHKey{Private: priv, Public: pub}
	return l, nil
}

// Attach builds a layer on n that reaches other nodes through t, and
// registers it as the node's e2e application.
func Attach(n *node.Node, id identity.Identity, t Transport, cfg Config) (*Layer, error) {
	cfg.Identity, cfg.Clock, cfg.Transport, cfg.Deliver = id, n.Clock(), t, n.DeliverLocal
	if id.ID() != n.ID() {
		return nil, errors.New("e2e: the identity is not the node's")
	}
	l, err := New(cfg)
	if err != nil {
		return nil, err
	}
	n.RegisterChecked(AppID, l.Handle)
	return l, nil
}

// Stats returns the layer's counters.
func (l *Layer) Stats() Stats { return l.stats }

// session is one Noise session with a peer.
type session struct {
	peer          identity.NodeID
	local, remote uint32
	initiator     bool
	hs            *noise.HandshakeState // ours, waiting for the response
	send, recv    noise.Cipher
	ctr           uint64
	win           replay.Window
	confirmed     bool // we may seal with it (a responder: once the initiator used it)
	born          time.Time
	queue         []queued
	tries         int
	tmr           clock.Timer
	// cookie is the responder's, to echo in our next message 1 (cookie.go).
	cookie   [CookieLen]byte
	cookieAt time.Time
	// waiting are our sends sealed in it, by counter, until the layer
	// below completes them (or the peer's notice does).
	waiting map[uint64]*node.Result
}

type queued struct {
	app  packet.AppID
	blob []byte
	res  *node.Result
}

// Send seals blob for application app at node to and sends it; the Result
// is the transport's, or ErrHandshake when no session could be set up.
func (l *Layer) Send(to identity.NodeID, app packet.AppID, blob []byte) *node.Result {
	now := l.cfg.Clock.Now()
	if l.revoked(to) {
		l.stats.Revoked++
		res := node.NewResult()
		res.Complete(fmt.Errorf("%w: %s's key is revoked", node.ErrHandshake, to.Short()))
		return res
	}
	s := l.cur[to]
	usable := s != nil && s.confirmed && now.Sub(s.born) < l.cfg.RekeyAfter+rejectGrace/2
	if usable && now.Sub(s.born) < l.cfg.RekeyAfter {
		return l.seal(s, app, blob)
	}
	p := l.pending[to]
	if p == nil {
		var err error
		if p, err = l.initiate(to, now); err != nil {
			l.stats.HandshakeFailed++
			res := node.NewResult()
			res.Complete(fmt.Errorf("%w: %v", node.ErrHandshake, err))
			return res
		}
	}
	if usable {
		return l.seal(s, app, blob) // the old session serves while the new one is agreed
	}
	res := node.NewResult()
	if len(p.queue) >= maxQueue {
		res.Complete(node.ErrBusy)
		return res
	}
	p.queue = append(p.queue, queued{app: app, blob: blob, res: res})
	return res
}

func (l *Layer) seal(s *session, app packet.AppID, blob []byte) *node.Result {
	pt := make([]byte, 0, packet.AppIDSize+len(blob))
	pt = append(append(pt, app[:]...), blob...)
	ctr, tr := l.sealAs(s, typeData, pt)
	res := node.NewResult()
	if s.waiting == nil {
		s.waiting = map[uint64]*node.Result{}
	}
	s.waiting[ctr] = res
	tr.OnDone(func(err error) {
		if s.waiting[ctr] == res {
			delete(s.waiting, ctr)
		}
		res.Complete(err)
	})
	return res
}

// sealAs seals plaintext pt in s as a message of type typ and sends it.
func (l *Layer) sealAs(s *session, typ byte, pt []byte) (uint64, *node.Result) {
	ctr := s.ctr
	s.ctr++
	out := make([]byte, dataHeader, dataHeader+len(pt)+tagSize)
	out[0] = typ
	binary.BigEndian.PutUint32(out[1:], s.remote)
	binary.BigEndian.PutUint64(out[5:], ctr)
	out = s.send.Encrypt(out, ctr, out[:dataHeader], pt)
	if typ == typeData {
		l.stats.Sealed++
		l.stats.SealedBytes += uint64(len(out))
	}
	return ctr, l.cfg.Transport.Send(s.peer, AppID, out)
}

// refused tells the peer of s, inside s, that its message ctr was refused
// with err (see the package comment).
func (l *Layer) refused(s *session, ctr uint64, err error) {
	if s.send == nil || !l.notices.Take(l.cfg.Clock.Now()) {
		return
	}
	b := make([]byte, 0, ctrlRefusedSize)
	b = append(b, ctrlRefused)
	b = binary.BigEndian.AppendUint64(b, ctr)
	b = append(b, node.CodeOf(err))
	l.stats.RefusedSent++
	l.sealAs(s, typeNotice, b)
}

// onNotice handles a notice from the peer of s.
func (l *Layer) onNotice(s *session, b []byte) {
	if len(b) != ctrlRefusedSize || b[0] != ctrlRefused {
		l.stats.Malformed++
		return
	}
	ctr := binary.BigEndian.Uint64(b[1:9])
	res := s.waiting[ctr]
	if res == nil {
		return // done already, or not ours
	}
	delete(s.waiting, ctr)
	l.stats.RefusedHeard++
	res.Complete(&node.RemoteError{Err: node.ErrorForCode(b[9]), From: s.peer.Short()})
}

// newIndex draws a session index not in use.
func (l *Layer) newIndex() uint32 {
	var b [4]byte
	for {
		if _, err := io.ReadFull(l.entropy, b[:]); err != nil {
			panic("e2e: entropy source failed: " + err.Error())
		}
		if i := binary.BigEndian.Uint32(b[:]); i != 0 && l.byIdx[i] == nil {
			return i
		}
	}
}

// add keeps s, forgetting the oldest session when the table is full.
func (l *Layer) add(s *session) {
	if len(l.byIdx) >= l.cfg.MaxSessions {
		var old *session
		for _, x := range l.byIdx {
			if old == nil || x.born.Before(old.born) || x.born.Equal(old.born) && x.local < old.local {
				old = x
			}
		}
		l.drop(old, node.ErrHandshake)
	}
	l.byIdx[s.local] = s
}

// drop forgets s, failing what waits on it.
func (l *Layer) drop(s *session, err error) {
	delete(l.byIdx, s.local)
	if l.cur[s.peer] == s {
		delete(l.cur, s.peer)
	}
	if l.pending[s.peer] == s {
		delete(l.pending, s.peer)
	}
	clock.Stop(&s.tmr)
	q := s.queue
	s.queue = nil
	for _, x := range q {
		x.res.Complete(err)
	}
}

// revoked reports whether an operator revoked id's key.
func (l *Layer) revoked(id identity.NodeID) bool {
	return l.cfg.Revocations != nil && l.cfg.Revocations.Revoked(id)
}

// initiate starts a handshake with to.
func (l *Layer) initiate(to identity.NodeID, now time.Time) (*session, error) {
	if to == l.self {
		return nil, errors.New("e2e: a session with ourselves")
	}
	if _, err := identity.X25519Public(to); err != nil {
		return nil, err
	}
	s := &session{peer: to, local: l.newIndex(), initiator: true, born: now}
	l.add(s)
	l.pending[to] = s
	l.sendInit(s)
	return s, nil
}

// sendInit sends a fresh message 1 (a new ephemeral key and clock each
// try: a responder refuses a clock it has seen).
func (l *Layer) sendInit(s *session) {
	now := l.cfg.Clock.Now()
	pub, _ := identity.X25519Public(s.peer)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: suite, Random: l.entropy, Pattern: noise.HandshakeIK, Initiator: true,
		Prologue: prologue, StaticKeypair: l.static, PeerStatic: pub,
	})
	if err != nil {
		l.drop(s, fmt.Errorf("%w: %v", node.ErrHandshake, err))
		return
	}
	payload := make([]byte, 0, initPayload)
	payload = append(payload, l.self[:]...)
	payload = binary.BigEndian.AppendUint64(payload, uint64(now.UnixNano()))
	typ := byte(typeInit)
	withCookie := !s.cookieAt.IsZero() && now.Sub(s.cookieAt) < cookieLife
	if withCookie {
		typ = typeInitMAC
	}
	out := binary.BigEndian.AppendUint32([]byte{typ}, s.local)
	out, _, _, err = hs.WriteMessage(out, payload)
	if err != nil {
		l.drop(s, fmt.Errorf("%w: %v", node.ErrHandshake, err))
		return
	}
	if withCookie {
		out = append(out, cookieMAC(s.cookie[:], out)...)
	}
	s.hs, s.born = hs, now
	s.tries++
	l.stats.InitsSent++
	l.cfg.Transport.Send(s.peer, AppID, out)
	s.tmr = l.cfg.Clock.AfterFunc(l.cfg.HandshakeTimeout, func() {
		if l.byIdx[s.local] != s || s.hs == nil {
			return
		}
		if s.tries >= handshakeTries {
			l.stats.HandshakeFailed += uint64(len(s.queue))
			l.drop(s, node.ErrHandshake)
			return
		}
		l.sendInit(s)
	})
}

// Handle is the e2e application's handler (node.RegisterChecked): it
// answers handshakes and delivers what it unseals; the error it returns
// goes back to the sender.
func (l *Layer) Handle(m node.Message) error {
	if m.Broadcast {
		l.stats.Malformed++
		return node.ErrUnauthenticated
	}
	typ, err := decodeHeader(m.Blob)
	if err != nil {
		l.stats.Malformed++
		return node.ErrUnauthenticated
	}
	switch typ {
	case typeInit, typeInitMAC:
		return l.onInit(m)
	case typeResp:
		return l.onResp(m)
	case typeCookie:
		l.onCookie(m.Blob)
		return nil
	default:
		return l.onData(m)
	}
}

func (l *Layer) onInit(m node.Message) error {
	now := l.cfg.Clock.Now()
	if !l.admitInit(m, now) {
		return nil // the initiator tries again (with our cookie, if it came)
	}
	b := m.Blob[:InitSize]
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: suite, Random: l.entropy, Pattern: noise.HandshakeIK,
		Prologue: prologue, StaticKeypair: l.static,
	})
	if err != nil {
		return node.ErrHandshake
	}
	payload, _, _, err := hs.ReadMessage(nil, b[5:])
	if err != nil || len(payload) != initPayload {
		l.stats.Unauthenticated++
		return node.ErrUnauthenticated
	}
	id := identity.NodeID(payload[:32])
	ts := int64(binary.BigEndian.Uint64(payload[32:]))
	if pub, err := identity.X25519Public(id); err != nil || string(pub) != string(hs.PeerStatic()) {
		l.stats.Unauthenticated++ // a static key that is not the node_id's
		return node.ErrUnauthenticated
	}
	if l.revoked(id) {
		l.stats.Revoked++
		return node.ErrUnauthenticated
	}
	if last, ok := l.lastTS[id]; ok && ts <= last {
		l.stats.Replayed++
		return node.ErrReplayed
	}
	l.noteTS(id, ts)
	s := &session{peer: id, local: l.newIndex(), remote: u32(b[1:5]), born: now}
	out := binary.BigEndian.AppendUint32([]byte{typeResp}, s.local)
	out = binary.BigEndian.AppendUint32(out, s.remote)
	out, c1, c2, err := hs.WriteMessage(out, nil)
	if err != nil || c1 == nil {
		return node.ErrHandshake
	}
	s.recv, s.send = c1.Cipher(), c2.Cipher()
	l.add(s)
	l.stats.Handshakes++
	l.cfg.Transport.Send(id, AppID, out)
	return nil
}

// noteTS records an initiator's handshake clock, keeping the table
// bounded (the oldest entries go first).
func (l *Layer) noteTS(id identity.NodeID, ts int64) {
	if _, ok := l.lastTS[id]; !ok && len(l.lastTS) >= 4*l.cfg.MaxSessions {
		var oldest identity.NodeID
		first := true
		for k, v := range l.lastTS {
			if first || v < l.lastTS[oldest] {
				oldest, first = k, false
			}
		}
		delete(l.lastTS, oldest)
	}
	l.lastTS[id] = ts
}

func (l *Layer) onResp(m node.Message) error {
	b := m.Blob
	s := l.byIdx[u32(b[5:9])]
	if s == nil || s.hs == nil {
		l.stats.Unauthenticated++
		return node.ErrUnauthenticated
	}
	_, c1, c2, err := s.hs.ReadMessage(nil, b[9:])
	if err != nil || c1 == nil {
		l.stats.Unauthenticated++
		return node.ErrUnauthenticated
	}
	clock.Stop(&s.tmr)
	s.send, s.recv, s.remote, s.hs = c1.Cipher(), c2.Cipher(), u32(b[1:5]), nil
	s.confirmed = true
	s.born = l.cfg.Clock.Now()
	l.stats.Handshakes++
	delete(l.pending, s.peer)
	l.cur[s.peer] = s
	q := s.queue
	s.queue = nil
	for _, x := range q {
		res := x.res
		l.seal(s, x.app, x.blob).OnDone(res.Complete)
	}
	return nil
}

func (l *Layer) onData(m node.Message) error {
	b := m.Blob
	s := l.byIdx[u32(b[1:5])]
	now := l.cfg.Clock.Now()
	if s == nil || s.recv == nil || now.Sub(s.born) > l.cfg.RekeyAfter+rejectGrace {
		l.stats.Unauthenticated++
		return node.ErrUnauthenticated
	}
	if l.revoked(s.peer) {
		l.stats.Revoked++
		return node.ErrUnauthenticated
	}
	ctr := binary.BigEndian.Uint64(b[5:13])
	if !s.win.Fresh(ctr) {
		l.stats.Replayed++
		return node.ErrReplayed
	}
	pt, err := s.recv.Decrypt(nil, ctr, b[:dataHeader], b[dataHeader:])
	if err != nil || b[0] == typeData && len(pt) < packet.AppIDSize {
		l.stats.Unauthenticated++
		if b[0] == typeData {
			l.refused(s, ctr, node.ErrUnauthenticated)
		}
		return node.ErrUnauthenticated
	}
	s.win.Mark(ctr)
	if b[0] == typeNotice {
		l.onNotice(s, pt)
		return nil
	}
	if !s.initiator && !s.confirmed {
		// The initiator holds the keys: we may seal with them too.
		s.confirmed = true
		if c := l.cur[s.peer]; c == nil || !c.born.After(s.born) {
			l.cur[s.peer] = s
		}
	}
	l.stats.Opened++
	return l.cfg.Deliver(node.Message{
		App: packet.AppID(pt[:packet.AppIDSize]), Blob: pt[packet.AppIDSize:],
		From: s.peer, FromKnown: true, Sealed: true, Via: m.Via, Route: m.Route, Schema: m.Schema, Time: m.Time,
	})
}
