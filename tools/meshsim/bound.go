package meshsim

import (
	"hash/crc32"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l2-seq/hop"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// boundMeter measures the true lower bound of one transfer from the
// medium's attempt log: the time the data frames the realised losses
// forced would take on their own, each with the MAC's unavoidable cost.
//
// A data frame is forced while its packet has not got through: on a link
// that acknowledges unicast frames (802.11), every attempt of a packet up
// to the first the receiver acknowledged — the MAC retries that follow a
// lost ACK included, as no sender can tell a lost ACK from a lost frame —
// but no new transmission of a packet the receiver already holds; on a
// link without ACKs (LoRa), every attempt up to the first the receiver
// decoded.
//
// Each forced attempt costs the inter-frame space before it, a backoff
// drawn from the first attempt's window (CWmin), the frame, and SIFS with
// the ACK (or the ACK timeout). The backoff is the one the medium drew,
// reduced modulo CWmin+1 for a retry whose window had doubled: that is a
// uniform CWmin draw, never more than what the sender waited, so the
// doubling is charged to the MAC, not to the bound. Each attempt's cost is
// thus part of the interval its sender lived through (zero wait when it
// went at once); the intervals never overlap and are clipped to the
// transfer, so the bound never exceeds the measured time: efficiency =
// bound / time is at most 1.
type boundMeter struct {
	from, to *sim.Radio
	dcf      *sim.DCF // nil: no backoff to reduce
	start    time.Time
	state    map[pktKey]uint8 // per data packet: pktAcked, pktGot, pktChain
	spans    []span           // the forced attempts, with the wait before them
	schemas  [256]int         // data packets by schema
	dec      packet.Packet
}

// pktKey names a data packet across the sequences of a transfer (a stream
// runs hundreds, and seq_ids come round again): its ids, and a checksum of
// its body.
type pktKey struct {
	seq      uint8
	pid, ssz uint16
	sum      uint32
}

const (
	pktAcked = 1 << iota // the MAC acknowledged it
	pktGot               // the receiver decoded it
	pktChain             // its current MAC retry chain is forced
)

type span struct{ from, to time.Time }

func newBoundMeter(phy sim.PHY, from, to *sim.Radio, start time.Time) *boundMeter {
	return &boundMeter{from: from, to: to, dcf: phy.DCF, start: start, state: map[pktKey]uint8{}}
}

// attempt is the medium's attempt log.
func (b *boundMeter) attempt(a *sim.Attempt) {
	if a.From != b.from || a.Dst == nil || a.Dst.String() != b.to.Addr().String() || a.Start.Before(b.start) {
		return
	}
	k, ok := b.dataKey(a.Data)
	if !ok {
		return
	}
	st, seen := b.state[k]
	if !seen {
		b.schemas[b.dec.Schema]++
	}
	if a.Try == 1 {
		st &^= pktChain
		if st&(pktAcked|pktGot) == 0 {
			st |= pktChain
		}
	}
	if st&pktChain != 0 && st&pktAcked == 0 {
		wait := a.Wait
		if d := b.dcf; d != nil {
			w := d.CWMin(a.Rate) + 1
			wait -= time.Duration(a.Backoff-a.Backoff%w) * d.Slot
		}
		b.spans = append(b.spans, span{a.Start.Add(-wait), a.Done})
	}
	if a.Acked {
		st |= pktAcked
	}
	if a.Delivered {
		st |= pktGot
	}
	b.state[k] = st
}

// packets is how many data packets the transfer carried, and the schema
// most of them had.
func (b *boundMeter) packets() (int, uint8) {
	best := 0
	for id, n := range b.schemas {
		if n > b.schemas[best] {
			best = id
		}
	}
	return len(b.state), uint8(best)
}

// dataKey names the data packet in frame data: a sequence's packet with a
// body (a probe has none), or the one packet of an unsequenced Package
// (not an ack).
func (b *boundMeter) dataKey(data []byte) (pktKey, bool) {
	p := &b.dec
	if packet.Decode(hop.Packet(data), p) != nil || p.Flags.Ack() || p.Flags.Error() || len(p.Body) == 0 {
		return pktKey{}, false
	}
	return pktKey{seq: p.SeqID, pid: p.PacketID, ssz: p.SeqSize, sum: crc32.ChecksumIEEE(p.Body)}, true
}

// bound is the sum of the forced attempts that lie inside [start, end].
func (b *boundMeter) bound(end time.Time) time.Duration {
	var d time.Duration
	for _, s := range b.spans {
		from, to := s.from, s.to
		if from.Before(b.start) {
			from = b.start
		}
		if to.After(end) {
			to = end
		}
		if to.After(from) {
			d += to.Sub(from)
		}
	}
	return d
}
