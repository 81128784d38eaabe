package tree

// Pulling the root's claim [ours]. Claims spread by a flood of broadcasts,
// which nothing acknowledges: on a line or a ring every relay is the only
// way on, and under load (a route's hops keep the air busy, and a
// relay's two neighbours cannot hear each other) one lost broadcast cuts
// the flood off for everyone beyond. A node whose claim is a round and a
// half old asks its parent (watch), by a hop that is acked; a parent no
// fresher itself asks its own parent in turn, and passes the newer claim,
// once it has one, to each node that asked (acked too). A lost flood is
// then mended in a few round trips up and down the tree instead of one
// hop per watch, and a live root is not buried (three rounds missed)
// because its claims were lost on the way: on a line of 100 under ten
// routed Packages a second every node buried a live root at once, and
// each part of the line elected its own (PROTOCOL 6.1's flood is kept:
// this only fills its gaps).

import (
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// claimStale reports whether our newest claim is older than a round and a
// quarter: a flood since has not reached us.
func (tr *tree) claimStale() bool {
	p := tr.t.cfg.ClaimPeriod
	return !tr.amRoot && tr.t.clk.Now().Sub(tr.lastFresh) > p+p/4
}

// pullFor notes that the neighbour at from asked for the root's newest
// claim: if ours is stale too, it hears the next one we get, and we ask
// our parent for it (at most once a quarter period).
func (tr *tree) pullFor(from peer.Endpoint) {
	t := tr.t
	if !tr.claimStale() {
		return
	}
	if tr.pullers == nil {
		tr.pullers = map[peer.Endpoint]time.Time{}
	}
	if _, ok := tr.pullers[from]; ok || len(tr.pullers) < maxNeighbors {
		tr.pullers[from] = t.clk.Now()
	}
	s := tr.cur
	if s == nil || s.pos.Root || s.parent == from || tr.parentLost {
		return
	}
	if now := t.clk.Now(); tr.pulledAt.IsZero() || now.Sub(tr.pulledAt) >= t.cfg.ClaimPeriod/4 {
		tr.pulledAt = now
		t.sendTo(s.parent, appendQuery(t.buf[:0], tr.k, tr.ts, wantClaim))
	}
}

// servePullers passes a claim we pass on (flood) to the neighbours that
// asked for a newer one while we had none (each by a hop that is acked: their
// flood was lost once already).
func (tr *tree) servePullers(c *cert.Claim) {
	if len(tr.pullers) == 0 {
		return
	}
	t := tr.t
	now := t.clk.Now()
	keep := time.Duration(t.cfg.MissedClaims) * t.cfg.ClaimPeriod
	if len(tr.pullers) >= pullBroadcastMin && t.inCrowd() {
		// Many asked in a crowd: the flood's broadcast, just queued,
		// tells them all (see pullBroadcastMin).
		tr.pullers = nil
		return
	}
	for _, ep := range sortedEndpoints(tr.pullers) {
		if now.Sub(tr.pullers[ep]) <= keep {
			t.sendTo(ep, appendClaim(t.buf[:0], c, tr.distance()))
		}
	}
	tr.pullers = nil
}

// pullBroadcastMin is the fewest neighbours asking for a claim newer than
// ours that the flood's broadcast serves alone, in a crowd (inCrowd)
// [ours]: one by one, a rooftop gateway that had missed a round sent a
// claim to each of its crowd's children (two hundred on hubs of 300
// nodes) by hops that are acked, into the air that had just lost a
// broadcast to it, and missed the next rounds under them: ninety
// seconds of pulls, and probes routed through it lost (h41pullstale).
// A child that misses the broadcast too asks again at its next watch,
// and is answered then (we are fresh). Out of a crowd, on a line or a
// ring, each still hears it by a hop that is acked: there the flood has
// a single way on (with this rule and onQuery's everywhere, ring seed 1
// delivered 998 of 1,000 pairs, with ten terms other than renewals
// started in its routing window; not traced).
const pullBroadcastMin = 2
