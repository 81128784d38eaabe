package node

import (
	"errors"
	"net"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// outFrame is one datagram waiting for its link.
type outFrame struct {
	dst  link.Addr
	data []byte
	ep   *endpoint   // whose pacing it counts against (nil: none)
	sent func(error) // called when the link is done with it (nil: nothing to do)
	// clear: never authenticated (hopauth.go), as the neighbour-proof
	// messages that agree the keys.
	clear bool
	// challenge: a neighbour-proof challenge, which a newer one to the
	// same neighbour replaces while it waits (sendPlain).
	challenge bool
}

// txLink schedules one link's transmissions and is its Dispatcher.
//
// Control frames (acks, status, RNS/NIA, probes, errors) go first; then
// neighbours take turns, one frame each (round robin), with broadcasts as one
// more participant, so one busy transfer cannot starve the rest. Only a
// couple of frames are handed to the link at a time, so that a control frame
// never waits behind a long queue inside the radio.
type txLink struct {
	n     *Node
	idx   int
	l     link.Link
	info  link.Info
	inflt []inflight // frames handed to the link and not yet completed
	tag   link.Tag   // the tag of the last frame handed over
	max   int

	ctrl     []outFrame
	lastCtrl link.Addr
	bcast    []outFrame
	// lastBcast is when we last broadcast on this link (a beacon, a
	// layer's message): every neighbour heard us then.
	lastBcast time.Time
	active    []*endpoint
	rr        int

	paceTmr clock.Timer
	paceAt  time.Time
	// quiet holds data back while an answer is due on a slow half-duplex
	// link (see hush).
	quiet    time.Time
	quietFor any // the send whose answer the quiet is for (an *outSeq or *outSingle)
	retry    clock.Timer
	buf      []byte
	hbuf     []byte // a frame with its hop trailer (hopauth.go)

	// Timings measured in airtimes of this link.
	airMTU  time.Duration // a full datagram
	airCtrl time.Duration // a status ack
	fbInit  time.Duration // first guess at how long feedback takes
	unit    time.Duration // throttle spacing per unit of a peer's counter
	// giveUp is how long a send on this link may go without progress:
	// Config.GiveUp, or 100 full airtimes on a slow link (LoRa's rounds
	// take seconds), whichever is longer.
	giveUp time.Duration
}

// inflight is a frame the link took: its tag names it in TxDone.
type inflight struct {
	tag  link.Tag
	sent func(error)
	ep   *endpoint // the neighbour a unicast frame is for (nil: none known)
}

const ctrlSize = 48 // bytes of a typical status ack

func newTxLink(n *Node, idx int, l link.Link) *txLink {
	info := l.Info()
	t := &txLink{n: n, idx: idx, l: l, info: info, max: min(2, max(info.TxQueue, 1)), buf: make([]byte, 0, 256), hbuf: make([]byte, 0, 256)}
	t.airMTU = link.Airtime(l, info.MTU)
	if info.MTU > packet.MaxPacketSize {
		t.airMTU = link.Airtime(l, packet.MaxPacketSize)
	}
	t.airCtrl = link.Airtime(l, ctrlSize)
	// Feedback comes after the peer wins the air and sends a short frame:
	// two short airtimes, a fraction of a long one for contention, and 2 ms
	// for processing and serial lines.
	t.fbInit = 2*t.airCtrl + t.airMTU/4 + 2*time.Millisecond
	t.unit = min(max(4*t.airMTU, 10*time.Millisecond), time.Second)
	t.giveUp = max(n.cfg.GiveUp, 100*t.airMTU)
	return t
}

// backlog counts what waits on this link: frames, and each sequence not
// finished as one. A sequence's own packets are not counted one by one: a
// node streaming one large Package would flag every packet of it as
// congested, and the receiver, counting the flags, would pace its own
// sends back to us by hundreds of units (a 100 KiB Package over UDP left
// the answer crawling at seconds per frame).
func (t *txLink) backlog() int {
	b := len(t.ctrl) + len(t.bcast)
	for _, ep := range t.active {
		b += len(ep.frames)
		for _, s := range ep.out {
			if !s.finished {
				b++
			}
		}
	}
	return b
}

// DeliverFrame is the link handing up a datagram.
func (t *txLink) DeliverFrame(f link.Frame) { t.n.receive(t, f) }

// TxDone is the link finishing the datagram it took with tag; links may
// finish them in any order. A tag we do not hold (a link that completed a
// datagram twice) is ignored.
func (t *txLink) TxDone(tag link.Tag, err error) {
	i := slices.IndexFunc(t.inflt, func(f inflight) bool { return f.tag == tag })
	if i < 0 {
		t.n.stats.StrayTxDone++
		return
	}
	cb, ep := t.inflt[i].sent, t.inflt[i].ep
	t.inflt = slices.Delete(t.inflt, i, i+1)
	if errors.Is(err, link.ErrNoAck) {
		t.n.stats.NoAcks++
		if ep != nil {
			ep.hopLost()
		}
	}
	if err == nil && ep != nil && t.info.Caps&link.CapUnicastAck != 0 {
		// The radio's ACK: the frame reached the neighbour.
		if p := t.n.peers.ByEndpoint(ep.key); p != nil {
			p.LastAcked = t.n.clk.Now()
		}
		ep.hopAcked()
	}
	if cb != nil {
		cb(err)
	}
	if ep != nil && errors.Is(err, link.ErrNoAck) {
		ep.giveUpHeld()
	}
	t.pump()
}

// maxCtrlPerDst bounds the control frames queued for one destination, so a
// neighbour that provokes answers (or a flood from strangers) cannot fill
// the control queue.
const maxCtrlPerDst = 16

// queueCtrl puts a control frame ahead of data.
func (t *txLink) queueCtrl(f outFrame) {
	same := 0
	for _, c := range t.ctrl {
		if c.dst == f.dst {
			same++
		}
	}
	if same >= maxCtrlPerDst {
		if f.sent != nil {
			f.sent(link.ErrBusy)
		}
		return
	}
	t.ctrl = append(t.ctrl, f)
	t.pump()
}

// popCtrl takes the next control frame, preferring another destination
// than the last one served, so control traffic is shared fairly too.
func (t *txLink) popCtrl() outFrame {
	i := 0
	for j, c := range t.ctrl {
		if c.dst != t.lastCtrl {
			i = j
			break
		}
	}
	f := t.ctrl[i]
	copy(t.ctrl[i:], t.ctrl[i+1:])
	t.ctrl[len(t.ctrl)-1] = outFrame{}
	t.ctrl = t.ctrl[:len(t.ctrl)-1]
	t.lastCtrl = f.dst
	return f
}

// queueBcast queues a broadcast frame.
func (t *txLink) queueBcast(f outFrame) {
	t.bcast = append(t.bcast, f)
	t.pump()
}

// activate puts ep in the round robin.
func (t *txLink) activate(ep *endpoint) {
	if !ep.inActive {
		ep.inActive = true
		t.active = append(t.active, ep)
	}
	t.pump()
}

// pump hands frames to the link while it has room.
func (t *txLink) pump() {
	n := t.n
	if n.closed {
		return
	}
	for len(t.inflt) < t.max {
		f, ok := t.pick()
		if !ok {
			return
		}
		if !t.send(f) {
			return
		}
	}
}

// send hands one frame to the link; false stops the pump for now.
func (t *txLink) send(f outFrame) bool {
	n := t.n
	t.tag++
	data := t.sealFor(&f)
	err := t.l.Send(f.dst, data, t.tag)
	switch {
	case err == nil:
		in := inflight{tag: t.tag, sent: f.sent}
		if f.dst != nil && !f.dst.IsBroadcast() {
			in.ep = f.ep
		}
		t.inflt = append(t.inflt, in)
		n.stats.PacketsSent++
		n.stats.BytesSent += uint64(len(data))
		now := n.clk.Now()
		if ep := f.ep; ep != nil {
			ep.lastTx = now
			if p := n.peers.ByEndpoint(ep.key); p != nil {
				p.LastTx = now
				if p.Throttle > 0 {
					ep.notBefore = now.Add(time.Duration(p.Throttle) * t.unit)
				}
			}
		}
		for _, s := range n.sleep {
			if s.t == t {
				s.earn()
			}
		}
		return true
	case errors.Is(err, link.ErrDutyCycle) || errors.Is(err, link.ErrBusy):
		// The radio cannot take it now: report the frame unsent (its owner
		// requeues it) and try again later.
		if f.sent != nil {
			f.sent(err)
		}
		if t.retry == nil {
			wait := t.airMTU
			if errors.Is(err, link.ErrDutyCycle) {
				wait = max(10*t.airMTU, time.Second)
			}
			t.retry = n.clk.AfterFunc(wait, func() { t.retry = nil; t.pump() })
		}
		return false
	default:
		// A closed link, or a frame the link can never take: the owner
		// hears of it and gives up on it (never requeues it).
		n.log.Debug("link refused a frame", "link", t.idx, "err", err)
		if f.sent != nil {
			f.sent(err)
		}
		return !errors.Is(err, net.ErrClosed)
	}
}

// pick chooses the next frame: control first, then a round robin over
// neighbours and broadcasts.
func (t *txLink) pick() (outFrame, bool) {
	if t.retry != nil {
		return outFrame{}, false
	}
	if len(t.ctrl) > 0 {
		return t.popCtrl(), true
	}
	now := t.n.clk.Now()
	if t.quiet.After(now) {
		t.paceUntil(t.quiet)
		return outFrame{}, false
	}
	var earliest time.Time
	parts := len(t.active) + 1 // the broadcast queue takes the last turn
	for range parts {
		if t.rr >= parts {
			t.rr = 0
		}
		i := t.rr
		t.rr++
		if i == len(t.active) {
			if len(t.bcast) > 0 {
				f := t.bcast[0]
				t.bcast[0] = outFrame{}
				t.bcast = t.bcast[1:]
				return f, true
			}
			continue
		}
		ep := t.active[i]
		if w := ep.blockedUntil(now); !w.IsZero() {
			if earliest.IsZero() || w.Before(earliest) {
				earliest = w
			}
			continue
		}
		if f, ok := ep.next(t.buf[:0]); ok {
			return f, true
		}
	}
	t.prune()
	if !earliest.IsZero() {
		t.paceUntil(earliest)
	}
	return outFrame{}, false
}

// prune drops endpoints with nothing left from the round robin.
func (t *txLink) prune() {
	kept := t.active[:0]
	for _, ep := range t.active {
		if ep.idle() {
			ep.inActive = false
			continue
		}
		kept = append(kept, ep)
	}
	for i := len(kept); i < len(t.active); i++ {
		t.active[i] = nil
	}
	t.active = kept
	if t.rr > len(t.active) {
		t.rr = 0
	}
}

// paceUntil arranges a pump when the earliest paced neighbour may send.
func (t *txLink) paceUntil(at time.Time) {
	if t.paceTmr != nil && !t.paceAt.After(at) {
		return
	}
	if t.paceTmr != nil {
		t.paceTmr.Stop()
	}
	t.paceAt = at
	t.paceTmr = t.n.clk.AfterFunc(at.Sub(t.n.clk.Now()), func() { t.paceTmr = nil; t.pump() })
}

// slow reports a link whose frames are long and whose radio cannot hear
// while it talks nor sense the carrier (LoRa): there, an answer is lost if
// we transmit anything while it comes back.
func (t *txLink) slow() bool { return t.airMTU > 50*time.Millisecond }

// hush keeps the link quiet (control frames aside) for d after an ask of o
// went out, so the answer has the air; o's answer (or timeout) ends it.
func (t *txLink) hush(o any, d time.Duration) {
	if !t.slow() {
		return
	}
	t.quiet, t.quietFor = t.n.clk.Now().Add(d), o
}

// unhush ends o's quiet time.
func (t *txLink) unhush(o any) {
	if t.quietFor == o {
		t.quiet, t.quietFor = time.Time{}, nil
		t.pump()
	}
}

// defaultSchema is the plainest schema of the link's family (0 on ESP-NOW,
// 20 on LoRa), used for beacons, RNS and NIA.
func (t *txLink) defaultSchema() uint8 {
	for _, s := range t.info.Schemas {
		if s == 0 || s == 20 {
			return s
		}
	}
	return t.info.Schemas[0]
}
