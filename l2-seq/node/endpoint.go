package node

import (
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
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

	// Sending.
	frames    []outFrame            // ready datagrams (single packets, retransmissions for reference peers)
	out       []*outSeq             // sequences, oldest first; only the head is on the air
	singles   map[uint16]*outSingle // single packets waiting for their ack, by packet_id
	waiting   int                   // sends queued here (frames excluded)
	notBefore time.Time             // throttle pacing
	lastTx    time.Time

	// Feedback delay estimate (as TCP's SRTT/RTTVAR).
	srtt, rttvar time.Duration
	rttOK        bool

	// Receiving.
	in      map[uint8]*inSeq
	inBytes int
	done    map[uint8]doneSeq
	recent  [16]recentSingle
	recentN int

	// Modem sleep of the neighbour.
	awakeUntil time.Time
	wake       *waker
	lastResp   time.Time // last beacon response sent here
	lastSeen   time.Time // last frame received from here
	lastGreet  time.Time // last unicast beacon sent to a stranger here
	ours       bool      // its traffic shows it speaks our protocol
}

// doneSeq remembers a finished incoming sequence so retransmissions and
// probes get the final answer again instead of a fresh reassembly.
type doneSeq struct {
	count int
	code  uint8 // 0 delivered, else the error code reported
	at    time.Time
}

type recentSingle struct {
	pid  uint16
	hash [16]byte
	at   time.Time
}

// peerFull reports whether the neighbour speaks the whole protocol: its
// beacons say so, or its traffic did (a probe, a status ack, a schema a
// reference node never sends).
func (ep *endpoint) peerFull() bool {
	if ep.ours {
		return true
	}
	p := ep.n.peers.ByEndpoint(ep.key)
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

// next returns ep's next frame, encoded into buf when it is built now.
func (ep *endpoint) next(buf []byte) (outFrame, bool) {
	if len(ep.frames) > 0 {
		f := ep.frames[0]
		ep.frames[0] = outFrame{}
		ep.frames = ep.frames[1:]
		return f, true
	}
	for len(ep.out) > 0 {
		s := ep.out[0]
		if s.finished {
			ep.out = ep.out[1:]
			continue
		}
		if !s.started && !s.start() {
			return outFrame{}, false
		}
		return s.next(buf)
	}
	return outFrame{}, false
}

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
	hi := 4*ep.tl.fbInit + time.Second
	return min(max(d, lo), hi)
}

// sampleRTT folds a measured feedback delay into the estimate.
func (ep *endpoint) sampleRTT(d time.Duration) {
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
}

// timer is a small helper: stop t if set.
func stopTimer(t *clock.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}
