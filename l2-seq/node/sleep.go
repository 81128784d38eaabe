package node

import (
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
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
	clock.Stop(&sl.timer)
	sl.s.SetAwake(true)
}

// Waking a neighbour that may sleep [ours, after PROTOCOL 5.3].
const (
	// WakeTries is how many RNS one wake-up sends, IntersectSpacing apart,
	// before every send waiting for the neighbour fails with ErrPeerAsleep:
	// four sleep cycles' worth of the reference's four. Spaced 36 ms, at
	// least one RNS of every four lands in a 40 ms awake window; with four
	// cycles a lossy channel (10 % each way) leaves a live board unwoken
	// about once in a thousand wake-ups instead of once in five.
	WakeTries = 4 * IntersectTries
	// wakeWindow is how long after we last heard a neighbour that may sleep
	// we trust it to be awake. A board that sends or receives a packet
	// banks one skipped sleep, so it stays up at least one more 40 ms
	// window (ours: 130 ms) from about when it sent; less the few
	// milliseconds a board takes to answer. The reference trusts 800 ms
	// (PROTOCOL 5.3), which is why its packets fall into sleep windows.
	wakeWindow = ModemWake - 10*time.Millisecond
)

// waker wakes a neighbour before we send to it: RNS up to WakeTries times,
// 36 ms apart, until it answers (NIA, or anything else).
type waker struct {
	tries int
	timer clock.Timer
}

// maySleep reports whether ep's neighbour may be asleep when we want to
// send: a peer that is a reference node (boards modem-sleep by default:
// 90 ms off, at least 40 ms on), or one of ours that says it sleeps. It is a
// property of the peer, not of our radio: an ESP-NOW link on Linux never
// sleeps, the board at the other end does.
func (n *Node) maySleep(ep *endpoint) bool {
	p := n.peers.ByEndpoint(ep.key)
	return p != nil && (p.Sleeps || !ep.peerFull())
}

// needsWake reports whether ep's neighbour must be woken before data goes
// to it: it may sleep, and we have not heard it within wakeWindow.
func (n *Node) needsWake(ep *endpoint) bool {
	return n.maySleep(ep) && n.clk.Now().Sub(ep.lastSeen) >= wakeWindow
}

// startWake begins waking ep's neighbour and returns the first RNS, which
// the caller sends at once; until the neighbour answers, ep sends nothing
// else (blockedUntil), and the next RNS follow as control frames.
func (n *Node) startWake(ep *endpoint) outFrame {
	ep.wake = &waker{}
	return n.rnsFrame(ep)
}

// rnsFrame builds the next RNS of ep's wake-up and arms the one after it.
func (n *Node) rnsFrame(ep *endpoint) outFrame {
	w := ep.wake
	w.tries++
	t := ep.tl
	p := packet.Packet{Schema: t.defaultSchema(), PacketID: n.nextPID()}
	p.Flags = p.Flags.WithEncoded(packet.EncRNS)
	b, _ := p.AppendSealed(nil)
	n.stats.RNSSent++
	w.timer = n.clk.AfterFunc(IntersectSpacing, func() { n.retryWake(ep, w) })
	return outFrame{dst: ep.key.Addr, data: b}
}

// retryWake sends the next RNS, or gives up after WakeTries.
func (n *Node) retryWake(ep *endpoint, w *waker) {
	if ep.wake != w || n.closed {
		return
	}
	if w.tries >= WakeTries {
		// The peer never woke. Every send waiting for it reports why
		// (PROTOCOL 5.3 [ours]: the loss is reported, not silent).
		ep.wake = nil
		ep.failAll(ErrPeerAsleep)
		return
	}
	if w.tries%IntersectTries == 0 && !ep.peerFull() {
		// A sleep cycle's worth of RNS and no answer: a reference node
		// answers RNS only from peers it knows, and it learns them only
		// from beacons; it may have missed ours (asleep, or it timed us
		// out). Our beacon, unicast, makes us known again.
		n.beaconTo(ep)
	}
	ep.tl.queueCtrl(n.rnsFrame(ep))
}

// beaconTo sends our beacon (op 0) to ep's neighbour as control frames,
// past the wake-up that holds its data back.
func (n *Node) beaconTo(ep *endpoint) {
	for _, m := range beacon.Messages(beacon.OpBeacon, n.nodeID, n.announced(ep.key.Link)) {
		b, _ := m.AppendTo(nil)
		p := packet.Packet{Schema: ep.tl.defaultSchema(), PacketID: n.nextPID(), Body: packet.NewPackage(beacon.AppID, b).AppendTo(nil)}
		if data, err := p.AppendSealed(nil); err == nil {
			ep.tl.queueCtrl(outFrame{dst: ep.key.Addr, data: data})
		}
	}
}

// woke: the neighbour answered; send what waited.
func (ep *endpoint) woke() {
	if ep.wake == nil {
		return
	}
	clock.Stop(&ep.wake.timer)
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
