package node

import (
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// Modem sleep constants (PROTOCOL 5.3).
const (
	ModemSleep       = 90 * time.Millisecond
	ModemWake        = 40 * time.Millisecond
	IntersectSpacing = 36 * time.Millisecond
	IntersectTries   = 4
	maxSleepCredits  = 10
)

// sleeper runs a sleeping node's radio cycle on one link: at least 40 ms
// awake, then 90 ms off, except that every packet sent or received earns
// one skipped sleep (at most ten banked), so a node in a conversation stays
// reachable.
type sleeper struct {
	n       *Node
	t       *txLink
	s       link.Sleeper
	credits int
	timer   clock.Timer
	stopped bool
}

func newSleeper(n *Node, t *txLink, s link.Sleeper) *sleeper {
	sl := &sleeper{n: n, t: t, s: s}
	sl.wakeUp()
	return sl
}

func (sl *sleeper) wakeUp() {
	if sl.stopped {
		return
	}
	sl.s.SetAwake(true)
	sl.timer = sl.n.clk.AfterFunc(ModemWake, sl.endWake)
}

func (sl *sleeper) endWake() {
	if sl.stopped {
		return
	}
	if sl.credits > 0 {
		sl.credits--
		sl.timer = sl.n.clk.AfterFunc(ModemSleep+ModemWake, sl.endWake)
		return
	}
	sl.s.SetAwake(false)
	sl.timer = sl.n.clk.AfterFunc(ModemSleep, sl.wakeUp)
}

func (sl *sleeper) earn() {
	if sl.credits < maxSleepCredits {
		sl.credits++
	}
}

func (sl *sleeper) stop() {
	sl.stopped = true
	stopTimer(&sl.timer)
	sl.s.SetAwake(true)
}

// waker wakes a neighbour before we send to it: RNS up to four times, 36 ms
// apart, until it answers (NIA, or anything else).
type waker struct {
	tries int
	timer clock.Timer
}

// needsWake reports whether ep's neighbour may be asleep: the link can
// sleep, the neighbour is a peer that may sleep (a reference node, or one of
// ours that said so), and we have not heard it for 800 ms.
func (n *Node) needsWake(ep *endpoint) bool {
	if !ep.tl.info.Caps.Has(link.CapSleep) {
		return false
	}
	p := n.peers.ByEndpoint(ep.key)
	if p == nil || (p.Full && !p.Sleeps) {
		return false
	}
	return !n.clk.Now().Before(ep.awakeUntil)
}

// wakeThen runs f (which queues a send at ep) after making sure the
// neighbour is woken first when it may be asleep: while waking, ep sends
// nothing.
func (n *Node) wakeThen(ep *endpoint, f func()) {
	if ep.wake == nil && n.needsWake(ep) {
		ep.wake = &waker{}
		n.sendRNS(ep)
	}
	f()
}

func (n *Node) sendRNS(ep *endpoint) {
	w := ep.wake
	if w == nil {
		return
	}
	if w.tries >= IntersectTries {
		// Four RNS unanswered: the peer never woke. Its queue is dropped,
		// and every send in it reports why (PROTOCOL 5.3 [ours]).
		ep.wake = nil
		ep.failAll(ErrPeerAsleep)
		return
	}
	w.tries++
	t := ep.tl
	p := packet.Packet{Schema: t.defaultSchema(), PacketID: n.nextPID()}
	p.Flags = p.Flags.WithEncoded(packet.EncRNS)
	b, _ := p.AppendSealed(nil)
	n.stats.RNSSent++
	t.queueCtrl(outFrame{dst: ep.key.Addr, data: b})
	w.timer = n.clk.AfterFunc(IntersectSpacing, func() { n.sendRNS(ep) })
}

// woke: the neighbour answered; send what waited.
func (ep *endpoint) woke() {
	if ep.wake == nil {
		return
	}
	stopTimer(&ep.wake.timer)
	ep.wake = nil
	ep.kick()
}

// answerRNS answers a known peer's RNS with NIA at once (a reference node
// gives up after 4 × 36 ms).
func (n *Node) answerRNS(t *txLink, key peer.Endpoint, pr *peer.Peer) {
	if pr == nil {
		n.drop(DropStray)
		return
	}
	p := packet.Packet{Schema: t.defaultSchema(), PacketID: n.nextPID()}
	p.Flags = p.Flags.WithEncoded(packet.EncNIA)
	b, _ := p.AppendSealed(nil)
	n.stats.NIASent++
	t.queueCtrl(outFrame{dst: key.Addr, data: b})
}
