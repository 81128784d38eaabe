package node

import (
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// endpoint is what a node keeps per neighbour address: what it is sending
// there, what it is receiving from there, how fast answers come back, and
// whether the neighbour is awake.
type endpoint struct {
	n        *Node
	key      peer.Endpoint
	tl       *txLink
	inActive bool
	// idWait: a kick is due in a second because no seq_id was free
	// (outSeq.start); one at a time.
	idWait bool

	// Sending.
	frames    []outFrame            // ready datagrams (single packets, retransmissions for reference peers)
	out       []*outSeq             // sequences, oldest first; only the head is on the air
	singles   map[uint16]*outSingle // single packets waiting for their ack, by packet_id
	waiting   int                   // sends queued here (frames excluded)
	notBefore time.Time             // throttle pacing
	lastTx    time.Time
	// The hop's own backoff (hopLost): how many unicast frames in a row
	// the radio reported unacknowledged, and until when a lost single
	// send's retry to it waits (outSingle.sent; first frames go as ever).
	lostRun   int
	lostUntil time.Time

	// Feedback delay estimate (as TCP's SRTT/RTTVAR).
	srtt, rttvar time.Duration
	rttOK        bool

	// Receiving.
	streams     map[uint32]*inStream
	doneStreams map[uint32]bool // streams delivered lately, for late copies of their segments
	in          map[uint8]*inSeq
	inBytes     int
	done        map[uint8]doneSeq
	rxSingles   *singleWindow // single packets received lately (duplicate detection)

	// Modem sleep of the neighbour.
	wake      *waker
	lastResp  time.Time // last beacon response sent here
	lastSeen  time.Time // last frame received from here (it was awake then)
	lastGreet time.Time // last unicast beacon sent to a stranger here
	// lastGreetResp: last greeting from here answered (respondBeacon).
	lastGreetResp time.Time
	ours          bool // its traffic shows it speaks our protocol
	v2            bool // its beacons on this link say it takes ESP-NOW v2 frames

	pf proofState // the neighbour proof (trust.go)

	// refSlots are the seq_ids a reference neighbour may hold a stray
	// reassembly under, until when (see quarantine).
	refSlots map[uint8]time.Time
}

// doneSeq remembers a finished incoming sequence so retransmissions and
// probes get the final answer again instead of a fresh reassembly.
type doneSeq struct {
	count int
	code  uint8 // 0 delivered, else the error code reported
	at    time.Time
}

// singleWindow remembers the single packets received lately from one
// neighbour, by packet_id, so that one sent again (its ack was lost) is
// answered but not delivered twice. A sender numbers its packets from one
// counter for all its neighbours, so the window covers the last 256
// packet_ids it used, whatever their rate: a busy neighbour cannot push a
// packet out of it before its retransmissions are over, as a short list
// would. The Package hash's first bytes are kept too, so a sender that
// restarted its counter is not mistaken for a repeat.
type singleWindow struct {
	hi    uint16 // the highest packet_id seen
	valid [singleSlots / 64]uint64
	hash  [singleSlots]uint32
}

const singleSlots = 256

// seen records (pid, h) and reports whether it was there already.
func (w *singleWindow) seen(pid uint16, h uint32) bool {
	slot := int(pid) % singleSlots
	has := func() bool { return w.valid[slot>>6]&(1<<(slot&63)) != 0 }
	set := func() { w.valid[slot>>6] |= 1 << (slot & 63); w.hash[slot] = h }
	d := int16(pid - w.hi)
	switch {
	case d > 0:
		if int(d) >= singleSlots {
			w.valid = [singleSlots / 64]uint64{}
		} else {
			for q := w.hi + 1; q != pid+1; q++ {
				s := int(q) % singleSlots
				w.valid[s>>6] &^= 1 << (s & 63)
			}
		}
		w.hi = pid
		set()
		return false
	case -int(d) >= singleSlots:
		return false // older than the window: cannot tell; deliver
	case has() && w.hash[slot] == h:
		return true
	default:
		set()
		return false
	}
}

// peerFull reports whether the neighbour speaks the whole protocol: its
// beacons say so, or its traffic did (a probe, a status ack, a schema a
// reference node never sends), or it proved our nonce and we hold a hop
// key for it (only our nodes prove), whatever became of its peer entry
// (unless the address is another node's now).
func (ep *endpoint) peerFull() bool {
	if ep.ours {
		return true
	}
	p := ep.n.peers.ByEndpoint(ep.key)
	if hs := &ep.pf.hop; hs.send != nil && (p == nil || p.ID == hs.sendID) {
		return true
	}
	return p != nil && p.Full
}

// blockedUntil returns when ep may send again (zero: now).
func (ep *endpoint) blockedUntil(now time.Time) time.Time {
	if ep.wake != nil {
		return now.Add(ep.tl.airMTU) // waking up: RNS frames go as control
	}
	if ep.notBefore.After(now) {
		return ep.notBefore
	}
	return time.Time{}
}

// hopLost answers a unicast frame to ep that the radio reports
// unacknowledged after the MAC's own retries (link.ErrNoAck): the hop is
// held for a wait that doubles with each such frame in a row (from two
// airtimes of a full frame, at most giveUp/8, jittered by up to half),
// until a frame is acknowledged again (hopAcked), and the retry of every
// single send lost meanwhile waits it out on top of its own backoff
// (outSingle.sent). Each send backing off on its own is not enough: a
// neighbour with a dozen sends for one deaf hop kept a dozen retry
// streams, each frame of them up to seven times on the air. Around a
// rooftop gateway of 233 hidden neighbours (hubs, 300 nodes, seed 10)
// their unacknowledged queries, requests and registrations were about
// 2,200 frames a second, six in seven of them MAC retries; the gateway
// heard nothing (each frame collided), so acked nothing, so every sender
// sent again. The hop, not the send, is what fails there; the backoff is
// the hop's. A new send's first frame, and a sequence's, are not held:
// holding every frame to the hop (the first version) left a gateway's
// children giving it up as silent after a renewal, 95–155 times a minute
// against main's 9–13 (hubs seed 15, docs/routing-notes.md h28gw).
func (ep *endpoint) hopLost() {
	ep.lostRun++
	t := ep.tl
	hold := min(t.airMTU<<min(ep.lostRun, 20), t.giveUp/8)
	hold += time.Duration(ep.n.rng.Int64N(int64(hold/2) + 1))
	ep.lostUntil = ep.n.clk.Now().Add(hold)
}

// giveUpHeld ends, at a lost frame, the sequences to ep that have made
// no progress for giveUp, rather than at their next ask (outSeq.givenUp
// looks only there): a sequence to a hop that acknowledges nothing is
// over, and its next frames would only add to the hop's air.
func (ep *endpoint) giveUpHeld() {
	for _, s := range slices.Clone(ep.out) {
		if s.started && !s.finished {
			s.givenUp()
		}
	}
}

// hopAcked: a frame to ep was acknowledged; its backoff ends (the link
// pumps again once the completion is handled: txLink.TxDone).
func (ep *endpoint) hopAcked() { ep.lostRun, ep.lostUntil = 0, time.Time{} }

// next returns ep's next frame, encoded into buf when it is built now. A
// neighbour that may be asleep is woken first: the frame is then the RNS.
func (ep *endpoint) next(buf []byte) (outFrame, bool) {
	if ep.wake == nil && ep.n.needsWake(ep) && ep.ready() {
		return ep.n.startWake(ep), true
	}
	if len(ep.frames) > 0 {
		f := ep.frames[0]
		ep.frames[0] = outFrame{}
		ep.frames = ep.frames[1:]
		return f, true
	}
	for len(ep.out) > 0 && ep.out[0].finished {
		ep.out[0] = nil
		ep.out = ep.out[1:]
	}
	// Up to seqWindow sequences go at once: while one waits for the answer
	// to its last ask, the next streams (the answer's round trip would
	// otherwise idle the neighbour). A reference node gets one at a time.
	window := ep.window()
	for i, s := range ep.out {
		if i >= window {
			break
		}
		if s.finished {
			continue
		}
		if !s.started && !s.start() {
			return outFrame{}, false
		}
		if f, ok := s.next(buf); ok {
			return f, true
		}
	}
	return outFrame{}, false
}

// window is how many sequences to this neighbour are in flight at once.
func (ep *endpoint) window() int {
	if ep.peerFull() {
		return seqWindow
	}
	return 1
}

// ready reports whether next would send a data frame (without building it).
func (ep *endpoint) ready() bool {
	if len(ep.frames) > 0 {
		return true
	}
	w := ep.window()
	for i, s := range ep.out {
		if i >= w {
			break
		}
		if s.ready() {
			return true
		}
	}
	return false
}

// seqWindow is how many sequences to one neighbour are in flight at once:
// our receivers reassemble four per neighbour (Budgets.RxPerPeerSq).
const seqWindow = 4

// idle reports whether ep has nothing to send.
func (ep *endpoint) idle() bool {
	if len(ep.frames) > 0 {
		return false
	}
	for _, s := range ep.out {
		if !s.finished {
			return false
		}
	}
	return true
}

// kick puts ep back in its link's round robin.
func (ep *endpoint) kick() { ep.tl.activate(ep) }

// fbTimeout is how long to wait for an answer to an ask.
func (ep *endpoint) fbTimeout() time.Duration {
	if !ep.rttOK {
		return ep.tl.fbInit
	}
	d := ep.srtt + 4*ep.rttvar
	lo := ep.tl.airCtrl + time.Millisecond
	return min(max(d, lo), ep.fbMax())
}

// fbMax is the longest wait for an answer: the cap of the feedback
// timeout, of a sample and of the estimate's deviation.
func (ep *endpoint) fbMax() time.Duration { return 4*ep.tl.fbInit + time.Second }

// sampleRTT folds a measured feedback delay into the estimate. A sample
// below zero (a clock stepped back) is none; one above the longest
// feedback timeout counts as that, so that the sums below cannot
// overflow.
func (ep *endpoint) sampleRTT(d time.Duration) {
	if d < 0 {
		return
	}
	d = min(d, ep.fbMax())
	if !ep.rttOK {
		ep.srtt, ep.rttvar, ep.rttOK = d, d/2, true
		return
	}
	diff := ep.srtt - d
	if diff < 0 {
		diff = -diff
	}
	ep.rttvar = (3*ep.rttvar + diff) / 4
	ep.srtt = (7*ep.srtt + d) / 8
}

// widenRTT answers a feedback timeout. Late answers give no sample (we
// cannot tell which ask they answer), so without this the estimate would
// stay at what a quiet channel measured, and when the air gets busy every
// ask would time out, and its probe add to the crowd: widen the variance
// instead; answers that come in time shrink it again.
func (ep *endpoint) widenRTT() {
	if !ep.rttOK {
		ep.srtt, ep.rttvar, ep.rttOK = ep.tl.fbInit, ep.tl.fbInit/2, true
	}
	ep.rttvar = min(2*ep.rttvar+ep.tl.airCtrl, ep.fbMax())
}

// failAll ends every send queued here with err. The queues are emptied
// before anyone hears of it, so nothing is sent on the way out.
func (ep *endpoint) failAll(err error) {
	outs, singles, frames := ep.out, ep.singles, ep.frames
	ep.out, ep.singles, ep.frames = nil, nil, nil
	for _, s := range outs {
		s.finish(err)
	}
	for _, s := range singles {
		s.finish(err)
	}
	for _, f := range frames {
		if f.sent != nil {
			f.sent(err)
		}
	}
}

// freeRx drops every reassembly in progress.
func (ep *endpoint) freeRx() {
	for id := range ep.in {
		ep.dropIn(id)
	}
	for id := range ep.streams {
		ep.dropStream(id)
	}
}
