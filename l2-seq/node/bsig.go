package node

// Signed broadcasts [ours] (package bsig): an application broadcast signed
// by the sender's key for its current run. A receiver that proved the
// neighbour at the sender's address verifies it against that neighbour's
// node_id and run, and keeps a replay window of its counters; what it
// cannot verify (no proven neighbour there, or a run other than the one
// proven) it delivers as a clear broadcast is, unauthenticated.

import (
	"bytes"
	"math"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/bsig"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/internal/replay"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// BroadcastStats counts signed broadcasts sent and what became of those
// received.
type BroadcastStats struct {
	Signed     uint64 // signed broadcasts sent
	Verified   uint64 // received, verified and delivered as Signed
	Unverified uint64 // received from a neighbour not proven here, or of another run: delivered unauthenticated
	Forged     uint64 // refused: the signature did not verify for the proven neighbour at the sender's address
	Replayed   uint64 // refused: a counter of the sender's run already taken
	Malformed  uint64 // refused: not an envelope
}

// bsigRx is what a node keeps per sender of signed broadcasts.
type bsigRx struct {
	boot proof.Boot
	win  replay.Window
	used time.Time
}

// maxBsigSenders bounds the senders whose replay windows are kept (each
// about 150 bytes); only proven neighbours' verified broadcasts make one.
const maxBsigSenders = 1024

// BroadcastSigned is Broadcast with the blob signed (package bsig): our
// nodes that proved this one deliver it with Message.Signed set. It adds
// bsig.Overhead (93) bytes to the Package, so the largest blob one
// ESP-NOW frame carries signed is 119 bytes (109 on LoRa); a larger one
// goes as a broadcast sequence, and one larger than any broadcast schema
// carries fails with ErrTooLarge. Reference boards do not know the
// envelope and drop it: broadcast to them with Broadcast. A node in
// Reference mode cannot sign (it stands for a board) and broadcasts in
// clear.
func (n *Node) BroadcastSigned(app packet.AppID, blob []byte, opt *SendOptions) *Result {
	if n.cfg.Reference {
		return n.Broadcast(app, blob, opt)
	}
	if n.closed {
		return failed(ErrClosed)
	}
	if n.bsigCtr == math.MaxUint32 {
		return n.fail(ErrBusy) // 4 billion signed broadcasts in one run: restart for a new one
	}
	env := bsig.Append(make([]byte, 0, bsig.Min+len(blob)), n.id, n.nodeID, n.boot, n.bsigCtr, app, blob)
	n.bsigCtr++
	n.stats.Broadcasts.Signed++
	return n.Broadcast(bsig.AppID, env, opt)
}

// Signing is a node whose Broadcast signs (BroadcastSigned): what an
// application that takes a node as its network (gossip) is given to sign
// its broadcasts.
type Signing struct{ *Node }

// Broadcast signs and broadcasts.
func (s Signing) Broadcast(app packet.AppID, blob []byte, opt *SendOptions) *Result {
	return s.BroadcastSigned(app, blob, opt)
}

// receiveSigned takes a signed broadcast's envelope from key.
func (n *Node) receiveSigned(key peer.Endpoint, blob []byte, bcast bool, schema uint8, now time.Time) error {
	// Not only broadcasts: a link that carries a broadcast to static
	// peers one datagram each (UDP) hands it up as unicast.
	var e bsig.Envelope
	if e.UnmarshalBinary(blob) != nil {
		n.stats.Broadcasts.Malformed++
		n.drop(DropMalformed)
		return ErrUnauthenticated
	}
	m := Message{App: e.App, Blob: bytes.Clone(e.Blob), Via: key, Broadcast: bcast, Schema: schema, Time: now}
	ep, p := n.endpointAt(key), n.peers.ByEndpoint(key)
	if p == nil || !p.Proven || !ep.provenFor(p.ID) {
		// No key to check it with: as good as a clear broadcast.
		n.stats.Broadcasts.Unverified++
		return n.deliverApp(m)
	}
	if e.Verify(p.ID) != nil {
		n.stats.Broadcasts.Forged++
		return ErrUnauthenticated
	}
	if e.Boot != ep.pf.boot {
		// Signed by the neighbour in another run: an old broadcast
		// replayed, or the neighbour restarted and we hold its old
		// proof. Ask it to prove its run again (spaced as any
		// challenge); meanwhile it counts as unauthenticated.
		n.stats.Broadcasts.Unverified++
		n.challenge(ep, now)
		return n.deliverApp(m)
	}
	rx := n.bsigRx(p.ID, e.Boot, now)
	if !rx.win.Fresh(uint64(e.Counter)) {
		n.stats.Broadcasts.Replayed++
		return ErrReplayed
	}
	rx.win.Mark(uint64(e.Counter))
	n.stats.Broadcasts.Verified++
	m.From, m.FromKnown, m.Signed = p.ID, true, true
	return n.deliverApp(m)
}

// bsigRx returns the replay state of id's run boot, starting it afresh
// for a new run and forgetting the stalest sender when the table is full.
func (n *Node) bsigRx(id identity.NodeID, boot proof.Boot, now time.Time) *bsigRx {
	rx := n.bsigSeen[id]
	if rx == nil {
		if n.bsigSeen == nil {
			n.bsigSeen = map[identity.NodeID]*bsigRx{}
		}
		if len(n.bsigSeen) >= maxBsigSenders {
			var old identity.NodeID
			first := true
			for k, v := range n.bsigSeen {
				if first || v.used.Before(n.bsigSeen[old].used) || v.used.Equal(n.bsigSeen[old].used) && bytes.Compare(k[:], old[:]) < 0 {
					old, first = k, false
				}
			}
			delete(n.bsigSeen, old)
		}
		rx = &bsigRx{boot: boot}
		n.bsigSeen[id] = rx
	}
	if rx.boot != boot {
		*rx = bsigRx{boot: boot}
	}
	rx.used = now
	return rx
}
