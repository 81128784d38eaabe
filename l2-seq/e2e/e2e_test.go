package e2e

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

var testApp = packet.NewAppID("test", "e2e tests", 1)

// wire joins layers by node_id on a virtual clock, a millisecond apart;
// tap sees (and may change or drop) every message, and the sender's
// Result completes with what the receiver's Handle said (as the router's
// receipt or error report would carry it).
type wire struct {
	t      *testing.T
	clk    *clock.Virtual
	layers map[identity.NodeID]*Layer
	got    map[identity.NodeID][]node.Message
	tap    func(to identity.NodeID, b []byte) []byte
	addrs  []identity.NodeID // by layer index
	sent   [][]byte
	// lostReports: the sender's Result never hears of a message the tap
	// changed (the router's report names it by a hash the forger wrote,
	// which the sender does not know).
	lostReports bool
}

func newWire(t *testing.T, n int) (*wire, []*Layer) {
	w := &wire{t: t, clk: clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		layers: map[identity.NodeID]*Layer{}, got: map[identity.NodeID][]node.Message{}}
	var out []*Layer
	for i := range n {
		id := identity.FromSeed([32]byte{byte(i + 1), 0xe2})
		w.addrs = append(w.addrs, id.ID())
		l, err := New(Config{Identity: id, Clock: w.clk, Entropy: rand.NewChaCha8([32]byte{byte(i)}),
			Transport: TransportFunc(func(to identity.NodeID, app packet.AppID, blob []byte) *node.Result {
				return w.sendFrom(i, to, app, blob)
			}),
			Reply: func(m node.Message, app packet.AppID, blob []byte) { w.reply(i, m, blob) },
			Deliver: func(m node.Message) error {
				if m.App != testApp {
					return node.ErrUnknownApp
				}
				w.got[id.ID()] = append(w.got[id.ID()], m)
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		w.layers[id.ID()] = l
		out = append(out, l)
	}
	return w, out
}

// addrOf is layer i's address on the wire (as a routed header's from_addr).
func addrOf(i int) [16]byte { return [16]byte{0x10, byte(i + 1)} }

// reply is Config.Reply: back to whoever is at m's origin address (no
// one, for a forged one).
func (w *wire) reply(from int, m node.Message, blob []byte) {
	for i, id := range w.addrs {
		if m.Route != nil && addrOf(i) == m.Route.From {
			w.sendFrom(from, id, AppID, blob)
		}
	}
}

func (w *wire) sendFrom(from int, to identity.NodeID, app packet.AppID, blob []byte) *node.Result {
	res := node.NewResult()
	b := bytes.Clone(blob)
	w.sent = append(w.sent, b)
	w.clk.AfterFunc(time.Millisecond, func() {
		orig := bytes.Clone(b)
		if w.tap != nil {
			if b = w.tap(to, b); b == nil {
				return // lost
			}
		}
		l := w.layers[to]
		if l == nil {
			return
		}
		err := l.Handle(node.Message{App: app, Blob: b, Route: &node.RouteHeader{TreeState: 16, From: addrOf(from)}})
		if w.lostReports && !bytes.Equal(orig, b) {
			return
		}
		res.Complete(err)
	})
	return res
}

func (w *wire) wait(r *node.Result) error {
	w.t.Helper()
	w.clk.RunWhile(w.clk.Now().Add(time.Minute), func() bool { return !r.Finished() })
	if !r.Finished() {
		w.t.Fatal("send did not finish")
	}
	return r.Err()
}

func TestSealedDelivery(t *testing.T) {
	w, ls := newWire(t, 2)
	a, b := ls[0], ls[1]
	secret := []byte("the pump house key is under the third stone")
	for i := range 3 {
		if err := w.wait(a.Send(b.self, testApp, secret)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	got := w.got[b.self]
	if len(got) != 3 || !bytes.Equal(got[0].Blob, secret) || got[0].From != a.self || !got[0].FromKnown {
		t.Fatalf("delivered %d, first %+v", len(got), got)
	}
	for _, m := range w.sent {
		if bytes.Contains(m, secret) || bytes.Contains(m, secret[:8]) {
			t.Fatal("plaintext on the wire")
		}
	}
	if a.Stats().Handshakes != 1 || b.Stats().Handshakes != 1 || a.Stats().InitsSent != 1 {
		t.Fatalf("handshakes: %+v / %+v", a.Stats(), b.Stats())
	}
	// b answers over the session a set up once a has used it.
	if err := w.wait(b.Send(a.self, testApp, []byte("ack"))); err != nil || b.Stats().InitsSent != 0 {
		t.Fatalf("reply: %v, %d inits", err, b.Stats().InitsSent)
	}
}

// TestRefusedNotice: a relay changes a sealed Package and recomputes its
// hash, so the router's error report names a Package the sender does not
// know and never reaches its send; before the notice, the send waited
// for the router's retries to end (abandoned). The receiver's notice,
// sealed in the session, ends it with ErrUnauthenticated; a notice
// forged on the way is nothing.
func TestRefusedNotice(t *testing.T) {
	w, ls := newWire(t, 2)
	a, b := ls[0], ls[1]
	if err := w.wait(a.Send(b.self, testApp, []byte("first"))); err != nil {
		t.Fatal(err)
	}
	w.lostReports = true
	w.tap = func(to identity.NodeID, m []byte) []byte {
		if to == b.self && m[0] == typeData {
			m[len(m)-20] ^= 0x01 // the ciphertext
		}
		return m
	}
	err := w.wait(a.Send(b.self, testApp, []byte("forged on the way")))
	if !errors.Is(err, node.ErrUnauthenticated) {
		t.Fatalf("the sender of a forged message: %v", err)
	}
	if a.Stats().RefusedHeard != 1 || b.Stats().RefusedSent != 1 || len(w.got[b.self]) != 1 {
		t.Fatalf("notices: a %+v b %+v, delivered %d", a.Stats(), b.Stats(), len(w.got[b.self]))
	}
	// Notices forged too: the sender hears nothing it can trust (its
	// send is left to the layer below), and delivers nothing.
	w.tap = func(_ identity.NodeID, m []byte) []byte {
		if m[0] == typeData || m[0] == typeNotice {
			m[len(m)-20] ^= 0x01
		}
		return m
	}
	r := a.Send(b.self, testApp, []byte("both ways forged"))
	w.clk.RunFor(time.Minute)
	if r.Finished() || a.Stats().RefusedHeard != 1 || a.Stats().Unauthenticated != 1 {
		t.Fatalf("forged notice: finished %v, a %+v", r.Finished(), a.Stats())
	}
}

func TestTamperAndReplay(t *testing.T) {
	w, ls := newWire(t, 2)
	a, b := ls[0], ls[1]
	if err := w.wait(a.Send(b.self, testApp, []byte("first"))); err != nil {
		t.Fatal(err)
	}
	captured := w.sent[len(w.sent)-1]
	// One byte changed anywhere in a sealed Package: refused, typed.
	for _, at := range []int{1, 6, dataHeader, len(captured) - 1} {
		w.tap = func(_ identity.NodeID, m []byte) []byte {
			if m[0] == typeData {
				m[at] ^= 0x20
			}
			return m
		}
		err := w.wait(a.Send(b.self, testApp, []byte("tampered")))
		if !errors.Is(err, node.ErrUnauthenticated) {
			t.Fatalf("byte %d changed: %v", at, err)
		}
	}
	w.tap = nil
	// The captured Package again: delivered once only.
	res := node.NewResult()
	w.clk.AfterFunc(0, func() { res.Complete(b.Handle(node.Message{App: AppID, Blob: captured})) })
	if err := w.wait(res); !errors.Is(err, node.ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	if n := len(w.got[b.self]); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
	// A replayed handshake message 1 is refused too.
	init := w.sent[0]
	if init[0] != typeInit {
		t.Fatal("first message not an init")
	}
	if err := b.Handle(node.Message{App: AppID, Blob: init}); !errors.Is(err, node.ErrReplayed) {
		t.Fatalf("replayed init: %v", err)
	}
	// Counters out of order within the window are fine.
	var rs []*node.Result
	for i := range 5 {
		rs = append(rs, a.Send(b.self, testApp, []byte{byte(i)}))
	}
	for _, r := range rs {
		if err := w.wait(r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImpersonation(t *testing.T) {
	w, ls := newWire(t, 3)
	a, b, c := ls[0], ls[1], ls[2]
	// c's message 1 to b claiming to be a: its static key is not a's.
	w.tap = func(to identity.NodeID, m []byte) []byte { return m }
	c.self = a.self // c lies in its payload
	err := w.wait(c.Send(b.self, testApp, []byte("from a, honest")))
	if !errors.Is(err, node.ErrHandshake) {
		t.Fatalf("impersonating send: %v", err)
	}
	if b.Stats().Unauthenticated == 0 || len(w.got[b.self]) != 0 {
		t.Fatal("the impersonation was not refused")
	}
}

func TestHandshakeFailures(t *testing.T) {
	w, ls := newWire(t, 2)
	a := ls[0]
	// No key: a board's opaque id, or an id off the curve.
	if err := w.wait(a.Send(identity.NodeID{2}, testApp, nil)); !errors.Is(err, node.ErrHandshake) {
		t.Fatalf("to a keyless id: %v", err)
	}
	// Nobody answers: three tries, then ErrHandshake.
	ghost := identity.FromSeed([32]byte{99}).ID()
	if err := w.wait(a.Send(ghost, testApp, nil)); !errors.Is(err, node.ErrHandshake) {
		t.Fatalf("to a silent node: %v", err)
	}
	if a.Stats().InitsSent != 3 {
		t.Fatalf("%d tries", a.Stats().InitsSent)
	}
}

func TestRekey(t *testing.T) {
	w, ls := newWire(t, 2)
	a, b := ls[0], ls[1]
	for range 3 {
		if err := w.wait(a.Send(b.self, testApp, []byte("x"))); err != nil {
			t.Fatal(err)
		}
		w.clk.RunFor(a.cfg.RekeyAfter + time.Second)
	}
	if a.Stats().Handshakes != 3 {
		t.Fatalf("%d handshakes in three session lives", a.Stats().Handshakes)
	}
}

func FuzzHandle(f *testing.F) {
	f.Add([]byte{typeInit})
	f.Add(append([]byte{typeData, 0, 0, 0, 1}, make([]byte, 40)...))
	f.Add(make([]byte, RespSize))
	f.Add(append([]byte{typeNotice, 0, 0, 0, 1}, make([]byte, NoticeSize-5)...))
	f.Add(append([]byte{typeCookie, 0, 0, 0, 1}, make([]byte, CookieLen)...))
	f.Add(append([]byte{typeInitMAC}, make([]byte, InitMACSize-1)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, ls := newWire(t, 1)
		_ = w
		err := ls[0].Handle(node.Message{App: AppID, Blob: b})
		if err != nil && node.CodeOf(err) == 0 {
			t.Fatalf("untyped error %v", err)
		}
	})
}

type revokedSet map[identity.NodeID]bool

func (r revokedSet) Revoked(id identity.NodeID) bool { return r[id] }

// A node whose key an operator revoked gets no session: its handshakes
// are refused, no send to it begins one, and a session it held before the
// revocation carries nothing more.
func TestRevokedPeer(t *testing.T) {
	w, ls := newWire(t, 3)
	a, b, c := ls[0], ls[1], ls[2]
	c.cfg.Revocations = revokedSet{a.self: true}
	if err := w.wait(a.Send(c.self, testApp, []byte("to c"))); err == nil {
		t.Fatal("c took a session from revoked a")
	}
	if len(w.got[c.self]) != 0 || c.Stats().Revoked == 0 || c.Stats().Handshakes != 0 {
		t.Fatalf("c: delivered %d, %+v", len(w.got[c.self]), c.Stats())
	}
	if err := w.wait(c.Send(a.self, testApp, []byte("to a"))); !errors.Is(err, node.ErrHandshake) {
		t.Fatalf("c's send to revoked a: %v", err)
	}
	// a and b hold a session when b learns of the revocation.
	if err := w.wait(a.Send(b.self, testApp, []byte("before"))); err != nil {
		t.Fatal(err)
	}
	b.cfg.Revocations = revokedSet{a.self: true}
	if err := w.wait(a.Send(b.self, testApp, []byte("after"))); err == nil {
		t.Fatal("b took data from revoked a over an old session")
	}
	if len(w.got[b.self]) != 1 || b.Stats().Revoked != 1 {
		t.Fatalf("b: delivered %d, %+v", len(w.got[b.self]), b.Stats())
	}
}
