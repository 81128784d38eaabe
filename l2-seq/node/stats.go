package node

import "github.com/mycelium-mesh/mycelium/l1-link/link"

// Drop reasons a node counts for what it receives: link.DropReason, the
// one enum every layer counts drops with.
const (
	DropMalformed  = link.DropMalformed  // not a packet (too short, bad lengths)
	DropVersion    = link.DropVersion    // a protocol version above ours
	DropSchema     = link.DropSchema     // unknown schema id
	DropChecksum   = link.DropChecksum   // checksum mismatch
	DropHash       = link.DropHash       // Package hash mismatch
	DropUnknownApp = link.DropUnknownApp // no application with that app_id
	DropDuplicate  = link.DropDuplicate  // seen before
	DropBudget     = link.DropBudget     // no memory left for it within the budgets
	DropStray      = link.DropStray      // control packet for nothing we know
	DropNotForUs   = link.DropNotForUs   // routed elsewhere with no router to forward it
	DropBeacon     = link.DropBeacon     // beacon message that does not parse
)

// Stats counts a node's traffic.
type Stats struct {
	PacketsSent, PacketsRecv uint64
	BytesSent, BytesRecv     uint64
	Retransmits              uint64 // data packets sent again
	Delivered                uint64 // Packages handed to local applications
	DeliveredBytes           uint64 // their blob bytes
	SendsOK                  uint64 // sends that completed successfully
	SendsFailed              map[uint8]uint64
	Drops                    [link.NumDropReasons]uint64 // by link.DropReason
	RNSSent, NIASent         uint64
	NoAcks                   uint64 // unicast frames the link reports the receiver never acknowledged
	StrayTxDone              uint64 // completions a link reported for no frame it had taken
	PeakRxBytes              int    // largest reassembly memory held
	PeakCacheBytes           int    // largest send cache held
	Streams                  uint64 // streams sent (SendStream, and Sends too large for one segment)
	Trust                    TrustStats
	Broadcasts               BroadcastStats // signed broadcasts (bsig.go)
	Hop                      HopStats
	BusyWindows              uint64 // beacon-loss windows (busy.go) we spent saying we are busy
	QuickBusy                uint64 // times a quick weigh (busy.go, weighQuick) set busy
}

// Stats returns a copy of the node's counters.
func (n *Node) Stats() Stats {
	s := n.stats
	s.SendsFailed = make(map[uint8]uint64, len(n.stats.SendsFailed))
	for k, v := range n.stats.SendsFailed {
		s.SendsFailed[k] = v
	}
	return s
}

// RxBytes is the reassembly memory held now.
func (n *Node) RxBytes() int { return n.rxBytes }

// CacheBytes is the send cache held now.
func (n *Node) CacheBytes() int { return n.cache.bytes }

func (n *Node) drop(reason link.DropReason) { n.stats.Drops[reason]++ }

// finishSend completes a send's result and counts it.
func (n *Node) finishSend(r *Result, err error) {
	if r == nil || r.Finished() {
		return
	}
	if err == nil {
		n.stats.SendsOK++
	} else {
		if n.stats.SendsFailed == nil {
			n.stats.SendsFailed = map[uint8]uint64{}
		}
		n.stats.SendsFailed[CodeOf(err)]++
	}
	r.complete(err)
}
