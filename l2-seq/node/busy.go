package node

import "github.com/mycelium-mesh/mycelium/l2-seq/peer"

// Hearing loss [ours]: a node in range of many neighbours that are hidden
// from each other (a rooftop gateway) hears everything they send, and
// when they together offer more than its channel can carry, their frames
// collide at it: it misses claims, places and requests, and the mesh
// around it never settles. Only it can tell; its neighbours each see a
// quiet channel. It measures what it misses by the one traffic whose rate
// it knows, its neighbours' beacons (periodic, a known number per burst),
// and says so by listing beacon.BusyID in its own beacons. Every
// neighbour that hears it then slows its deferrable control traffic
// (Bind.NeighbourBusy; the trees and the router), and speeds up again
// once the busy node's beacons stop listing it.

// hearWindow is how many of our beacon bursts one measure spans: a
// neighbour's period wanders by ±10 % as ours does, so over three it
// sends two to four bursts, and the sum over all neighbours is near
// three each.
const hearWindow = 3

// Hysteresis of the busy signal: set when we heard at most busyOn of the
// beacons we expected, cleared when we heard at least busyOff. The
// neighbours' slowing lowers the loss; without the gap the signal would
// flap at every window.
const (
	busyOn  = 0.5
	busyOff = 0.75
)

// minCounted: with fewer neighbours a lost beacon is chance or a weak
// link, not crowding (the trouble is a node that hears many neighbours
// hidden from each other), and says nothing.
const minCounted = 6

// weighHearing runs once a beacon burst: every hearWindow bursts it
// compares the beacons heard from each neighbour that was there for the
// whole window with those it sent (its burst length on the link we share
// with it, times the window), and sets or clears busy.
func (n *Node) weighHearing() {
	n.hearTicks++
	if n.hearTicks < hearWindow {
		return
	}
	n.hearTicks = 0
	expected, heard, counted := 0, 0, 0
	for _, p := range n.peers.All() {
		if p.Counted && len(p.Endpoints) > 0 {
			l := p.Endpoints[0].Link
			if l < len(n.links) {
				e := hearWindow * n.links[l].burstLen()
				expected += e
				counted++
				heard += min(p.Heard, e)
			}
		}
		p.Heard, p.Counted = 0, true
	}
	if counted < minCounted {
		n.busy = false
		return
	}
	f := float64(heard) / float64(expected)
	switch {
	case !n.busy && f <= busyOn:
		n.busy = true
		n.stats.BusyWindows++
	case n.busy && f >= busyOff:
		n.busy = false
	case n.busy:
		n.stats.BusyWindows++
	}
}

// neighbourBusy reports whether a full neighbour that proved its key says
// it is busy. Proven only: a beacon from a new node_id is anyone's to
// send, and one listing the busy app_id would otherwise slow every
// listener's control traffic for nothing (docs/security.md).
func (n *Node) neighbourBusy() bool {
	return n.peers.Any(func(p *peer.Peer) bool {
		return p.Busy && p.Full && p.Proven && !n.revoked(p.ID)
	})
}

// Busy reports whether we say in our beacons that we miss much of what
// our neighbours send.
func (n *Node) Busy() bool { return n.busy }
