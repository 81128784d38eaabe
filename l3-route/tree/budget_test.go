package tree

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l2-seq/hop"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// queryWant returns the want of the tree query a frame carries, if it
// carries one (as a capture would read it).
func queryWant(frame []byte) (uint8, bool) {
	var p packet.Packet
	if packet.Decode(hop.Packet(frame), &p) != nil || p.Flags.Ack() || len(p.Body) < packet.PackageOverhead+4 {
		return 0, false
	}
	var app packet.AppID
	copy(app[:], p.Body)
	blob := p.Body[packet.PackageOverhead:]
	if app != AppID || blob[0] != MsgQuery {
		return 0, false
	}
	return blob[3], true
}

// TestPendingAskedOncePerParent: a node in a crowd (inCrowd) that hears
// many neighbours' places hanging on one parent it does not know asks one
// of them for the end of its chain, not each: the answer brings the parent's place, and every
// other position waiting for it verifies then. Round the densest node of
// a 200-node mesh of degree 28 the queries and their two-certificate
// answers, retried by the MAC, took most of the air while six trees
// formed.
//
// The root R has two children, Q and P; X hangs under Q; C1..C15 hang
// under P and are X's neighbours, but P is not: each Ci's position names
// P, whose place X learns only from a Ci's suffix.
func TestPendingAskedOncePerParent(t *testing.T) {
	const seed, kids = 11, crowdMin - 1 // X hears Q and the kids: a crowd
	n := 4 + kids
	// The root must be R: give the role to the best score of tree 0.
	order := make([]int, n)
	best := 0
	for i := range n {
		order[i] = i
		if cert.Less(cert.Score(testIdentity(i, seed).Public(), 0), cert.Score(testIdentity(best, seed).Public(), 0)) {
			best = i
		}
	}
	order[0], order[best] = order[best], order[0]
	R, Q, X, P := order[0], order[1], order[2], order[3]
	edges := [][2]int{{R, Q}, {Q, X}, {R, P}}
	var cs []int
	for _, c := range order[4:] {
		cs = append(cs, c)
		edges = append(edges, [2]int{P, c}, [2]int{X, c})
	}
	m := newMesh(t, n, edges, Config{Trees: 1, EpochPeriods: -1}, seed)
	asked := map[string]bool{} // the Ci that X asked for two certificates
	from := m.radios[X]
	m.med.SetAttemptLog(func(a *sim.Attempt) {
		if a.From != from || a.Dst == nil {
			return
		}
		if want, ok := queryWant(a.Data); ok && want == 2 {
			asked[a.Dst.String()] = true
		}
	})
	m.start()
	m.waitConverged(10 * beaconPeriod)
	m.med.SetAttemptLog(nil)
	if r, _ := m.trees[X].Root(0); m.index(r) != R {
		t.Fatalf("root is node %d, want %d", m.index(r), R)
	}
	if p, _ := m.trees[X].Current(0); p.Depth != 2 {
		t.Fatalf("X at depth %d, want 2 (under Q)", p.Depth)
	}
	for _, c := range cs {
		if p, _ := m.trees[c].Current(0); p.Depth != 2 {
			t.Fatalf("node %d at depth %d, want 2 (under P)", c, p.Depth)
		}
	}
	if len(asked) == 0 || len(asked) > 2 {
		t.Errorf("X asked %d of the %d neighbours under P for the end of their chains (want 1, 2 if an answer was lost)", len(asked), kids)
	}
	t.Logf("X asked %d of %d", len(asked), kids)
}

// TestQueriesWaitForAirBudget: a node that has sent more than its share of
// a crowded neighbourhood's air (QueryAirShare over the nodes round it)
// asks nothing until the budget has refilled, and then learns what it
// missed. Here 17 nodes all hear each other; one that is not the root
// has just sent over a second of broadcasts,
// where its share of a claim period is 20 s × 0.5 / 17, 588 ms.
func TestQueriesWaitForAirBudget(t *testing.T) {
	const n = 17
	var edges [][2]int
	for i := range n {
		for j := i + 1; j < n; j++ {
			edges = append(edges, [2]int{i, j})
		}
	}
	m := newMesh(t, n, edges, Config{Trees: 1, EpochPeriods: -1}, 3)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	cp := m.trees[0].Config().ClaimPeriod
	m.clk.RunFor(2 * cp)
	x := 0
	if r, _ := m.trees[0].Root(0); m.index(r) == 0 {
		x = 1
	}
	if !m.trees[x].inCrowd() {
		t.Fatalf("node %d with %d peers is no crowd", x, n-1)
	}
	before := m.radios[x].Counters().TxAirtime
	junk := make([]byte, 180)
	junk[0] = 0xaa // no tree message: the others drop it as malformed
	for range 12 {
		for range 50 {
			m.trees[x].b.Broadcast(AppID, junk, nil)
		}
		m.clk.RunFor(cp / 40) // the link's queue drains
	}
	spent := m.radios[x].Counters().TxAirtime - before
	share := cp / 2 / n // QueryAirShare of a claim period, over the nodes round it
	if spent < 2*share {
		t.Fatalf("node %d sent %v of broadcasts, want at least %v", x, spent, 2*share)
	}
	tr := m.trees[x].trees[0]
	ts := tr.ts
	tr.nbrs.del(ts) // as if every notification had been lost
	tr.queried = nil
	tr.queryMissing()
	if q := len(tr.queried); q > 0 {
		t.Errorf("%d neighbours asked right after node %d spent %v of air (its share of a claim period %v): want none", q, x, spent, share)
	}
	took, ok := m.runUntil(6*cp, func() bool { return len(m.trees[x].Neighbors(0, ts)) == n-1 })
	if !ok {
		t.Fatalf("%d of %d places known again after %v", len(m.trees[x].Neighbors(0, ts)), n-1, took)
	}
	t.Logf("node %d sent %v; all %d places known again after %v", x, spent, n-1, took)
}

// TestGatewayNotHeldWhileAirQuiet: a gateway, more nodes round it than
// crowdMax, whose neighbours hear only it, is not held to its budget
// while the air is not busy: its answers and positions to them alone
// outspend a forty-eighth of the channel, and held it asked nothing (hubs
// of 300 nodes, two trees, seed 3: the gateway sent no query in 20
// minutes and the trees took 1,164.5 s against 241). Here the gateway of
// a star of crowdMax+4 leaves has just sent far past its share; it asks
// for the places it lost at once.
func TestGatewayNotHeldWhileAirQuiet(t *testing.T) {
	const leaves = crowdMax + 4
	var edges [][2]int
	for i := 1; i <= leaves; i++ {
		edges = append(edges, [2]int{0, i})
	}
	m := newMesh(t, leaves+1, edges, Config{Trees: 1, EpochPeriods: -1}, 5)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	cp := m.trees[0].Config().ClaimPeriod
	m.clk.RunFor(2 * cp)
	g := m.trees[0]
	before := m.radios[0].Counters().TxAirtime
	junk := make([]byte, 180)
	junk[0] = 0xaa // no tree message: the others drop it as malformed
	for range 12 {
		for range 50 {
			g.b.Broadcast(AppID, junk, nil)
		}
		m.clk.RunFor(cp / 40) // the link's queue drains
	}
	spent := m.radios[0].Counters().TxAirtime - before
	share := time.Duration(QueryAirShare * float64(cp) / crowdMax)
	if spent < 2*share {
		t.Fatalf("the gateway sent %v of broadcasts, want at least %v", spent, 2*share)
	}
	if !g.inCrowd() || g.b.AirBusy() {
		t.Fatalf("gateway with %d peers: in a crowd %v, air busy %v; want a crowd, quiet air", g.b.PeerCount(), g.inCrowd(), g.b.AirBusy())
	}
	if g.queryAllowed() {
		t.Fatalf("the gateway's budget is not spent after %v (share of a claim period %v)", spent, share)
	}
	tr := g.trees[0]
	ts := tr.ts
	tr.nbrs.del(ts) // as if every notification had been lost
	tr.queried = nil
	tr.queryMissing()
	asked := len(tr.queried)
	if asked == 0 {
		t.Errorf("the gateway asked none of its %d neighbours after spending %v of air on quiet air", leaves, spent)
	}
	took, ok := m.runUntil(3*cp, func() bool { return len(g.Neighbors(0, ts)) == leaves })
	if !ok {
		t.Fatalf("%d of %d places known again after %v", len(g.Neighbors(0, ts)), leaves, took)
	}
	t.Logf("asked %d at once; all %d places known again after %v", asked, leaves, took)
}
