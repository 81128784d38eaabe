package e2e

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/internal/bucket"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
)

// flood has b handle message 1s from forged origin addresses (nobody is
// there to hear a cookie) at rate a second until stop.
func (w *wire) flood(b *Layer, every time.Duration, stop time.Time) {
	k := 0
	var tick func()
	tick = func() {
		if w.clk.Now().After(stop) {
			return
		}
		k++
		junk := make([]byte, InitSize)
		junk[0] = typeInit
		junk[7] = byte(k)
		_ = b.Handle(node.Message{App: AppID, Blob: junk, Route: &node.RouteHeader{TreeState: 16, From: [16]byte{0xee, byte(k), byte(k >> 8)}}})
		w.clk.AfterFunc(every, tick)
	}
	tick()
}

// TestCookieUnderLoad: a flood of message 1s from forged sources, faster
// than the responder's budget (100 a second), spends it. Rate-limited
// only (no cookies: Config.Reply nil), an honest initiator's tries are
// all dropped and its send fails with ErrHandshake; with cookies, its
// first try is answered with a cookie, its second echoes it, and the
// session is set up.
func TestCookieUnderLoad(t *testing.T) {
	for _, cookies := range []bool{false, true} {
		w, ls := newWire(t, 2)
		a, b := ls[0], ls[1]
		if !cookies {
			b.cfg.Reply = nil
		}
		w.flood(b, 5*time.Millisecond, w.clk.Now().Add(time.Minute))
		w.clk.RunFor(time.Second) // the budget is spent
		err := w.wait(a.Send(b.self, testApp, []byte("through the flood")))
		as, bs := a.Stats(), b.Stats()
		if !cookies {
			if !errors.Is(err, node.ErrHandshake) || bs.CookiesSent != 0 {
				t.Fatalf("rate-limited only: %v (cookies %d)", err, bs.CookiesSent)
			}
			continue
		}
		if err != nil {
			t.Fatalf("with cookies: %v (a %+v, b %+v)", err, as, bs)
		}
		if len(w.got[b.self]) != 1 || as.CookiesHeard != 1 || bs.CookieInits != 1 || as.InitsSent != 2 {
			t.Fatalf("with cookies: delivered %d; a %+v; b %+v", len(w.got[b.self]), as, bs)
		}
		if bs.InitsLimited == 0 || bs.CookiesSent != bs.InitsLimited {
			t.Fatalf("every message 1 beyond the budget gets a cookie: %+v", bs)
		}
	}
}

// TestCookieBoundToSource: a cookie is good only from the address it was
// sent to: a message 1 with a valid MAC under a's cookie, from another
// address, is no better than one without.
func TestCookieBoundToSource(t *testing.T) {
	w, ls := newWire(t, 3)
	a, b := ls[0], ls[1]
	var cookie []byte
	w.tap = func(to identity.NodeID, m []byte) []byte {
		if m[0] == typeCookie && to == a.self {
			cookie = append([]byte(nil), m[5:]...)
		}
		return m
	}
	w.flood(b, 5*time.Millisecond, w.clk.Now().Add(time.Minute))
	w.clk.RunFor(time.Second)
	if err := w.wait(a.Send(b.self, testApp, nil)); err != nil || cookie == nil {
		t.Fatalf("%v (cookie %x)", err, cookie)
	}
	// c (ls[2]) sends a message 1 with a's cookie under its own address.
	msg := make([]byte, InitSize)
	msg[0] = typeInitMAC
	msg = append(msg, cookieMAC(cookie, msg)...)
	before := b.Stats()
	_ = b.Handle(node.Message{App: AppID, Blob: msg, Route: &node.RouteHeader{TreeState: 16, From: addrOf(2)}})
	after := b.Stats()
	if after.CookieInits != before.CookieInits || after.InitsLimited != before.InitsLimited+1 {
		t.Fatalf("a's cookie from c's address: %+v then %+v", before, after)
	}
}

// FuzzCookie hands any bytes, as from a neighbour's origin address, to a
// responder whose budget is spent (every message 1 takes the cookie path)
// and to an initiator waiting for its answer: nothing panics, errors are
// typed, and no run of forged cookies makes the initiator send more than
// its three message 1s.
func FuzzCookie(f *testing.F) {
	f.Add(append([]byte{typeCookie, 0, 0, 0, 1}, make([]byte, CookieLen)...))
	f.Add(append([]byte{typeInitMAC}, make([]byte, InitMACSize-1)...))
	f.Add(append([]byte{typeInit}, make([]byte, InitSize-1)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, ls := newWire(t, 2)
		a, r := ls[0], ls[1]
		r.inits = bucket.Bucket{Burst: 0, Every: time.Hour}
		a.Send(r.self, testApp, nil)
		for i := 0; i < 5; i++ {
			for _, l := range ls {
				err := l.Handle(node.Message{App: AppID, Blob: bytes.Clone(b), Route: &node.RouteHeader{TreeState: 16, From: addrOf(1 - i%2)}})
				if err != nil && node.CodeOf(err) == 0 {
					t.Fatalf("untyped error %v", err)
				}
			}
			w.clk.RunFor(time.Second)
		}
		w.clk.RunFor(time.Minute)
		if n := a.Stats().InitsSent; n > handshakeTries {
			t.Fatalf("%d message 1s sent", n)
		}
	})
}
