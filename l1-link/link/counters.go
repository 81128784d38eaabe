package link

import (
	"sync/atomic"
	"time"
)

// DropReason says why a datagram, a packet or a message was dropped: one
// enum for every layer, so that counters name drops alike from the radio
// up (links count the first group, nodes the second).
type DropReason uint8

// Reasons for drops.
const (
	DropOversize  DropReason = iota // larger than the MTU
	DropQueueFull                   // transmit queue full
	DropDutyCycle                   // duty-cycle budget exhausted
	DropMalformed                   // received bytes that are not a frame of this link
	DropDuplicate                   // a frame seen before
	DropNotForUs                    // addressed to another station
	DropNoHandler                   // nothing attached
	DropTxError                     // the radio or socket refused it
	DropCollision                   // overlapped another transmission (simulated medium)
	DropLoss                        // lost on the air (simulated medium)
	DropAsleep                      // arrived while the radio slept
	// Reasons a node counts for what its links hand up (besides
	// malformed, duplicate and not_for_us above).
	DropVersion    // a protocol version above ours
	DropSchema     // unknown schema id, or a schema of another link's family
	DropChecksum   // checksum mismatch
	DropHash       // Package hash mismatch
	DropUnknownApp // no application with that app_id
	DropBudget     // no memory left for it within the budgets
	DropStray      // control packet for nothing we know (a reference node's rtx for a sequence that never existed)
	DropBeacon     // beacon message that does not parse
	NumDropReasons
)

var dropNames = [NumDropReasons]string{
	"oversize", "queue_full", "duty_cycle", "malformed", "duplicate", "not_for_us", "no_handler", "tx_error", "collision", "loss", "asleep",
	"version", "schema", "checksum", "hash", "unknown_app", "budget", "stray", "beacon",
}

// String names the reason.
func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// Counters is a snapshot of a link's traffic.
type Counters struct {
	TxFrames, TxBytes uint64
	RxFrames, RxBytes uint64
	TxAirtime         time.Duration // time spent transmitting, where the link knows it
	Drops             [NumDropReasons]uint64
}

// Dropped returns the total of every drop reason.
func (c Counters) Dropped() uint64 {
	var n uint64
	for _, d := range c.Drops {
		n += d
	}
	return n
}

// Stats holds a link's live counters; drivers embed it and update it from
// any goroutine.
type Stats struct {
	txFrames, txBytes, rxFrames, rxBytes atomic.Uint64
	airtime                              atomic.Int64
	drops                                [NumDropReasons]atomic.Uint64
}

// Tx counts one transmitted datagram of n bytes taking airtime d.
func (s *Stats) Tx(n int, d time.Duration) {
	s.txFrames.Add(1)
	s.txBytes.Add(uint64(n))
	s.airtime.Add(int64(d))
}

// Rx counts one received datagram of n bytes.
func (s *Stats) Rx(n int) {
	s.rxFrames.Add(1)
	s.rxBytes.Add(uint64(n))
}

// Drop counts one drop.
func (s *Stats) Drop(r DropReason) {
	if r < NumDropReasons {
		s.drops[r].Add(1)
	}
}

// Snapshot returns the counters.
func (s *Stats) Snapshot() Counters {
	c := Counters{
		TxFrames: s.txFrames.Load(), TxBytes: s.txBytes.Load(),
		RxFrames: s.rxFrames.Load(), RxBytes: s.rxBytes.Load(),
		TxAirtime: time.Duration(s.airtime.Load()),
	}
	for i := range c.Drops {
		c.Drops[i] = s.drops[i].Load()
	}
	return c
}
