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
		if b, ok := n.peerBurst(p); ok && p.Counted {
			e := hearWindow * b
			expected += e
			counted++
			heard += min(p.Heard, e)
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

// Quick weigh [ours]: the window above spans three beacon periods, and
// the busy flag it sets goes out in the next burst, a period later: three
// to four minutes from the first lost beacons to the neighbours' slowing.
// A gateway's receiver collapses faster than that: on hubs routed during
// a round of the trees' renewals (300 nodes, seed 10, a gateway of 233
// neighbours) ~200 of them sent it 8–14 thousand frames every 10 s, 83–85 %
// MAC retries, for four minutes; it said busy 50 s in and its neighbours
// heard so only 110 s in (docs/routing-notes.md h32busy). A node that
// expects many beacons in a slice of the period (a crowded one: only
// there is the count large enough to mean something in ten seconds)
// also weighs, every slice, the last whole period, and when it heard at
// most busyOn of what it expected it says busy at once, in a burst sent
// then, not at the next period; it clears so too (at busyOff: the same
// hysteresis), or a spell set in a minute of formation held its crowd's
// control traffic paced for minutes after. On hubs routed on the trees'
// renewals the crowd was paced within seconds of the collapse, which
// then lasted about half as long (h32busy). A node with fewer neighbours
// never arms it (quickMin): the three-period window alone weighs there.

// quickSlices is how many slices of a beacon period the quick weigh
// ticks at: every 10 s at the 60 s period, each time over the last whole
// period (a sliding window: every neighbour's burst falls once in any
// period, whatever its phase, while one slice's count swung from a third
// to twice its share on a quiet channel, the bursts bunched in phase).
const quickSlices = 6

// quickMin is the fewest beacons a period must be expected to bring for
// the quick weigh to say anything: 90 neighbours sending bursts of four.
// Only a crowded node gets its verdict this often with a count that means
// something.
const quickMin = 360

// armQuick runs after each burst's weighHearing: it sums what the peers
// counted now send in a period, and keeps the quick ticks going while
// that is at least quickMin.
func (n *Node) armQuick() {
	n.quickExpect = 0
	if n.cfg.BeaconPeriod <= 0 {
		return
	}
	for _, p := range n.peers.All() {
		if b, ok := n.peerBurst(p); ok && p.Counted {
			n.quickExpect += b
		}
	}
	if n.quickExpect >= quickMin && !n.quickOn {
		n.quickOn = true
		n.quickFill, n.quickHeard = 0, 0 // a period's ring from now
		n.clk.AfterFunc(n.cfg.BeaconPeriod/quickSlices, n.weighQuick)
	}
}

// weighQuick closes a slice: what the counted peers' beacons brought over
// the last quickSlices slices is weighed against a period's worth, and at
// most busyOn of it says busy at once, in a burst sent now.
func (n *Node) weighQuick() {
	if n.closed || n.quickExpect < quickMin {
		n.quickOn = false
		return
	}
	n.clk.AfterFunc(n.cfg.BeaconPeriod/quickSlices, n.weighQuick)
	n.quickRing[n.quickIdx] = n.quickHeard
	n.quickIdx = (n.quickIdx + 1) % quickSlices
	n.quickHeard = 0
	if n.quickFill < quickSlices {
		n.quickFill++
		return
	}
	heard := 0
	for _, h := range n.quickRing {
		heard += h
	}
	f := float64(heard) / float64(n.quickExpect)
	switch {
	case !n.busy && f <= busyOn:
		n.busy = true
		n.stats.BusyWindows++
		n.stats.QuickBusy++
	case n.busy && f >= busyOff:
		n.busy = false
	default:
		return
	}
	n.sendBursts()
}
