package node

// Drop reasons a node counts for what it receives.
const (
	DropMalformed  = iota // not a packet (too short, bad lengths)
	DropVersion           // a protocol version above ours
	DropSchema            // unknown schema id
	DropChecksum          // checksum mismatch
	DropHash              // Package hash mismatch
	DropUnknownApp        // no application with that app_id
	DropDuplicate         // seen before
	DropBudget            // no memory left for it within the budgets
	DropStray             // control packet for nothing we know (e.g. a reference node's rtx for a sequence that never existed)
	DropNotForUs          // routed elsewhere with no router to forward it
	DropBeacon            // beacon message that does not parse
	numDrops
)

var dropNames = [numDrops]string{"malformed", "version", "schema", "checksum", "hash", "unknown_app", "duplicate", "budget", "stray", "not_for_us", "beacon"}

// DropName names a drop reason.
func DropName(i int) string {
	if i >= 0 && i < numDrops {
		return dropNames[i]
	}
	return "unknown"
}

// NumDrops is the number of drop reasons.
const NumDrops = numDrops

// Stats counts a node's traffic.
type Stats struct {
	PacketsSent, PacketsRecv uint64
	BytesSent, BytesRecv     uint64
	Retransmits              uint64 // data packets sent again
	Delivered                uint64 // Packages handed to local applications
	DeliveredBytes           uint64 // their blob bytes
	SendsOK                  uint64 // sends that completed successfully
	SendsFailed              map[uint8]uint64
	Drops                    [numDrops]uint64
	RNSSent, NIASent         uint64
	NoAcks                   uint64 // unicast frames the link reports the receiver never acknowledged
	StrayTxDone              uint64 // completions a link reported for no frame it had taken
	PeakRxBytes              int    // largest reassembly memory held
	PeakCacheBytes           int    // largest send cache held
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

func (n *Node) drop(reason int) { n.stats.Drops[reason]++ }

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
