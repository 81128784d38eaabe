package e2e

// Cookies [ours], as WireGuard answers handshakes under load: a responder
// answers at most initBurst message 1s at once and 100 a second after that
// (each costs it Diffie-Hellman). Beyond that budget it does not drop a
// message 1 silently but, when it can answer where the message came from
// (Config.Reply: the origin address in the routed header), sends that
// source a cookie, an HMAC under a secret of its own (drawn afresh every
// cookieLife) over the source:
//
//	0x05 ‖ the initiator's session index (4) ‖ cookie (16)
//
// The initiator sends its message 1 again at once, with a MAC under the
// cookie:
//
//	0x06 ‖ message 1 (the rest of its InitSize bytes) ‖ HMAC-SHA-256(cookie, 0x06 ‖ …)[:16]
//
// and the responder answers that one from a budget of its own (as many
// again), after one HMAC: a flood of message 1s from forged sources, which
// never hear their cookies, spends the first budget and not the second,
// so initiators at real addresses still get through. The source is what
// the cookie binds: an attacker must receive traffic at an address to use
// a cookie for it. Cookies themselves are budgeted (cookieBurst at once,
// 1,000 a second), being routed Packages.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
)

const (
	cookieLife   = 2 * time.Minute
	cookieBurst  = 256
	cookieRefill = time.Millisecond
)

// cookieMAC is the first CookieLen bytes of HMAC-SHA-256(key, msg).
func cookieMAC(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)[:CookieLen]
}

// source names where m came from, as a reply to it would go: the routed
// header's tree_state and origin address, or the neighbour's link address
// for a Package one hop. nil: no address to answer (a deep origin whose
// address the header could not hold).
func source(m node.Message) []byte {
	if r := m.Route; r != nil {
		if r.From == ([16]byte{}) {
			return nil
		}
		return append([]byte{'r', r.TreeState}, r.From[:]...)
	}
	if m.Via.Addr == nil {
		return nil
	}
	return append(binary.BigEndian.AppendUint32([]byte{'l'}, uint32(m.Via.Link)), m.Via.Addr.String()...)
}

// rotate draws a new secret when the current one is cookieLife old.
func (l *Layer) rotate(now time.Time) {
	if !l.secretAt.IsZero() && now.Sub(l.secretAt) < cookieLife {
		return
	}
	l.prevSecret = l.secret
	if _, err := io.ReadFull(l.entropy, l.secret[:]); err != nil {
		panic("e2e: entropy source failed: " + err.Error())
	}
	l.secretAt = now
}

// admitInit decides whether message 1 m is answered: within the budget,
// or beyond it with a valid cookie MAC (from a budget of its own); else
// its source is sent a cookie.
func (l *Layer) admitInit(m node.Message, now time.Time) bool {
	src := source(m)
	if m.Blob[0] == typeInitMAC && src != nil {
		l.rotate(now)
		mac := m.Blob[InitSize:]
		for _, sec := range [][32]byte{l.secret, l.prevSecret} {
			if hmac.Equal(mac, cookieMAC(cookieMAC(sec[:], src), m.Blob[:InitSize])) {
				if l.cookied.Take(now) {
					l.stats.CookieInits++
					return true
				}
				l.stats.InitsLimited++
				return false
			}
		}
	}
	if l.inits.Take(now) {
		return true
	}
	l.stats.InitsLimited++
	if l.cfg.Reply == nil || src == nil || !l.cookies.Take(now) {
		return false
	}
	l.rotate(now)
	out := append([]byte{typeCookie}, m.Blob[1:5]...) // the initiator's index
	out = append(out, cookieMAC(l.secret[:], src)...)
	l.stats.CookiesSent++
	l.cfg.Reply(m, AppID, out)
	return false
}

// onCookie takes a responder's cookie for a handshake of ours still
// waiting for its answer, and sends its message 1 again with the MAC.
func (l *Layer) onCookie(b []byte) {
	s := l.byIdx[u32(b[1:5])]
	if s == nil || s.hs == nil || !s.initiator {
		l.stats.Malformed++
		return
	}
	copy(s.cookie[:], b[5:])
	s.cookieAt = l.cfg.Clock.Now()
	l.stats.CookiesHeard++
	if s.tries >= handshakeTries {
		return // the last try's timer ends the handshake
	}
	// The next try at once, with the MAC (it counts as a try: a forged
	// cookie can cost a handshake its tries, not loop it).
	clock.Stop(&s.tmr)
	l.sendInit(s)
}
