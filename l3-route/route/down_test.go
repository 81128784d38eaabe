package route

import (
	"errors"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// A relay whose only way below a Package's bound in the current phase is a
// neighbour that is down (it failed a hop lately, or fell silent: most
// likely dead) takes a live neighbour in a later phase instead, where
// there is one: the hop to the dead one would cost the link's whole
// give-up (30 s) before the Package went on. (It used to take the dead
// one: at 1,000 nodes after killing a tenth, the probes sent three claim
// periods later that failed mostly failed so.) A down neighbour is still
// taken when no phase has a live one.
func TestDownNeighbourLastOfAllPhases(t *testing.T) {
	me := settledGrid(t, 3, 5)
	later, checked := 0, 0
	for s, r := range me.rts {
		for d := range me.rts {
			if s == d {
				continue
			}
			ph, _, ok := r.pathTo(me.rts[d].Addrs(), false, nil, false)
			if !ok {
				t.Fatalf("%d→%d: no path header", s, d)
			}
			first, _, _, _, ok := r.pathNext(ph, false, nil)
			if !ok {
				continue // a neighbour of the destination that holds it in no phase
			}
			checked++
			// Is there a live way without the first choice?
			alt, altPhase, _, _, altOK := r.pathNext(ph, false, []peer.Endpoint{first.Via})
			r.suspect(first.Via)
			got, gotPhase, _, _, ok := r.pathNext(ph, false, nil)
			delete(r.down, first.Via)
			if !ok {
				t.Fatalf("%d→%d: no way at all once %v is down", s, d, first.ID)
			}
			if !altOK {
				if got.Via != first.Via {
					t.Errorf("%d→%d: no live way, but not the down neighbour taken", s, d)
				}
				continue
			}
			if got.Via == first.Via {
				t.Errorf("%d→%d: took the down neighbour in phase %d; a live one was below in phase %d", s, d, gotPhase, altPhase)
				continue
			}
			if got.Via != alt.Via || gotPhase != altPhase {
				t.Errorf("%d→%d: took phase %d, the best live way is in phase %d", s, d, gotPhase, altPhase)
			}
			if altPhase > ph.phase {
				later++
			}
		}
	}
	t.Logf("%d decisions checked, %d went on in a later phase", checked, later)
	if later == 0 {
		t.Fatal("no case where the live way was in a later phase: the test checks nothing")
	}
}

// The receipt of a Package comes back by one tree alone, the one its
// packet header names. After a failure the nearest addresses may be in a
// tree whose way up from the sender is gone (its parent there died, or the
// root): greedy routing back by it dead-ends at the gap and the receipt is
// lost, every attempt ("sequence abandoned", the Package delivered four
// times: at 1,000 nodes after --fail-root, every failure three claim
// periods on was so). The sender names a tree that is whole from where it
// stands instead.
func TestReceiptsAvoidABrokenTree(t *testing.T) {
	me := settledGrid(t, 2, 9)
	pos := func(i, k int) tree.Position { p, _ := me.trees[i].Current(k); return p }
	under := func(a, b tree.Position) bool { // a is b or an ancestor of b
		ca, cb := a.Addr.Coords(), b.Addr.Coords()
		return len(ca) <= len(cb) && slices.Equal(ca, cb[:len(ca)])
	}
	index := func(a tree.Position, k int) int {
		for j := range me.trees {
			if pos(j, k).Addr.Equal(a.Addr) {
				return j
			}
		}
		return -1
	}
	// A sender two levels down tree 0 and a destination outside its
	// subtree there, whose header names tree 0; the sender's parent in
	// tree 0 is on neither's way up tree 1.
	s, d, parent := -1, -1, -1
	var dst Destination
search:
	for i := range me.trees {
		ps := pos(i, 0)
		if ps.Depth < 2 {
			continue
		}
		pa, _ := ps.Addr.Parent()
		p := index(tree.Position{Addr: pa}, 0)
		if p < 0 || pos(p, 1).Root {
			continue
		}
		for j := range me.trees {
			if j == i || j == p || under(ps, pos(j, 0)) || under(pos(p, 1), pos(i, 1)) || under(pos(p, 1), pos(j, 1)) {
				continue
			}
			dst = Destination{ID: me.nodes[j].ID(), Addrs: me.rts[j].Addrs()}
			if _, h, ok := me.rts[i].pathTo(dst.Addrs, false, nil, true); ok && tree.TreeOf(h.TreeState) == 0 {
				s, d, parent = i, j, p
				break search
			}
		}
	}
	if s < 0 {
		t.Fatal("no such pair")
	}
	me.nodes[parent].Close()
	for _, nb := range me.radios[parent].Neighbors() {
		me.m.Disconnect(me.radios[parent], nb)
	}
	// Two claim periods on, the sender has found its parent gone and asked
	// for a new term; the destination's address in tree 0 is still in
	// the old one (as a name record a sender has would be).
	me.clk.RunFor(2 * me.trees[0].Config().ClaimPeriod)
	res := me.rts[s].SendTo(dst, testApp, []byte("after"), nil)
	me.clk.RunFor(10 * time.Minute)
	if !res.Finished() || res.Err() != nil {
		t.Errorf("%d→%d (%d dead): %v, delivered %d times", s, d, parent, res.Err(), len(me.got[d]))
	}
}

// A try again carries all the sender's addresses: the receipt of the try
// before may have been lost on its way back by the one tree the header
// names (a failure broke that tree's way to the sender, and greedy routing
// by it dead-ends at the gap). The destination answers the second by all
// of them: a path header, every tree, in phases.
func TestRetryReceiptByEveryTree(t *testing.T) {
	me := settledGrid(t, 2, 9)
	s, d := 0, 15
	var answers [][]TreeAddr
	me.rts[d].Observe(func(h Hop) {
		if h.From == (identity.NodeID{}) && !h.Delivered && h.Path {
			answers = append(answers, slices.Clone(h.Dst))
		}
	})
	res := me.rts[s].SendTo(Destination{ID: me.nodes[d].ID(), Addrs: me.rts[d].Addrs()}, testApp, []byte("twice"), nil)
	// The try again, at once (as a receipt timeout would have it).
	hash := packet.NewPackage(testApp, []byte("twice")).Hash
	p := me.rts[s].pending[hash]
	if p == nil {
		t.Fatal("no pending send")
	}
	me.rts[s].attempt(hash, p, nil)
	me.clk.RunFor(time.Minute)
	if !res.Finished() || res.Err() != nil {
		t.Fatalf("send: %v", res.Err())
	}
	want := me.rts[s].Addrs()
	for _, a := range answers {
		if len(a) == len(want) {
			return
		}
	}
	t.Fatalf("the destination answered the try again by %v; want a path header of the sender's %d addresses", answers, len(want))
}

// A send whose tries meet no route waits between them as after other
// failures: each try's path header holds every tree already, and a try at
// once meets the same broken trees; in seconds they mend. (It used to try
// again after 100 ms: at 1,000 nodes after a kill the tries were spent in
// a second, and the pair failed "no route" though the trees mended soon.)
func TestNoRouteTriesWait(t *testing.T) {
	// The pause grows to 16 s (and its jitter), and never past a claim
	// period: on a fast mesh the trees mend in claim periods, and a send
	// to a node that is gone should fail as soon as they would have.
	t.Run("default", func(t *testing.T) { noRouteTries(t, 0, 16*time.Second) })
	t.Run("claims every second", func(t *testing.T) { noRouteTries(t, time.Second, 3*time.Second) })
}

func noRouteTries(t *testing.T, claim, maxGap time.Duration) {
	me := newTMesh(t, 4, line(4), 0, tree.Config{Trees: 2, EpochPeriods: -1, ClaimPeriod: claim}, 3)
	me.start()
	me.runUntilConverged(10 * time.Minute)
	me.clk.RunFor(30 * time.Second)
	// A child of node 3's that does not exist: every try reaches node 3,
	// which has no way on.
	var addrs []TreeAddr
	for _, a := range me.rts[3].Addrs() {
		c, err := a.Addr.Child(7)
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, TreeAddr{Tree: a.Tree, TreeState: a.TreeState, Addr: c})
	}
	var tries []time.Time
	me.rts[0].Observe(func(h Hop) {
		if h.From == (identity.NodeID{}) && h.Path && !h.Delivered {
			tries = append(tries, me.clk.Now())
		}
	})
	start := me.clk.Now()
	res := me.rts[0].SendTo(Destination{ID: me.nodes[3].ID(), Addrs: addrs}, testApp, []byte("nowhere"), nil)
	me.clk.RunFor(5 * time.Minute)
	if !res.Finished() || !errors.Is(res.Err(), node.ErrNoRoute) {
		t.Fatalf("send: %v, want no route", res.Err())
	}
	if len(tries) < 2 {
		t.Fatalf("%d tries", len(tries))
	}
	for i := 1; i < len(tries); i++ {
		if gap := tries[i].Sub(tries[i-1]); gap < time.Second || gap > 2*maxGap {
			t.Errorf("try %d %v after the one before, want 1s..%v", i+1, gap, 2*maxGap)
		}
	}
	t.Logf("%d tries over %v", len(tries), tries[len(tries)-1].Sub(start))
}

// A send to a node that is gone ends with a typed error in bounded time,
// also when the node was the only home of its own record (it is the node
// nearest its key in the lookup trees). The send on the cached addresses
// fails; the lookup afresh then finds the record nowhere, and used to keep
// asking for lookupPatience (three minutes) and end "no address known":
// on the lab's mesh (claims every second) the messages app waited that
// long before it handed the message to a store, past the lab test's two
// minutes. It asks for refreshPatience now, and the send ends with its
// own error.
func TestSendToGoneNodeEndsInTime(t *testing.T) {
	// The lab's fast timing (tools/lab FastTiming) on its ring of four;
	// node 0 sends to node 2, the one that is not its neighbour.
	rc := Config{ReceiptTimeout: 3 * time.Second, RegisterQuiet: 500 * time.Millisecond, RegisterMax: 2 * time.Second, RegisterSpread: 200 * time.Millisecond}
	tc := tree.Config{Trees: 6, ClaimPeriod: time.Second, EpochPeriods: 45}
	// Seeds where node 2 was the only home of its record when they were
	// chosen (found by trying seeds 1-240; since records pick their first
	// tree by node_id, 3 of them). Which seeds are so moves with
	// any change to the random draws of trees or records, so the test
	// takes those of the list that still are and wants at least two.
	checked := 0
	for _, seed := range []uint64{13, 74, 93} {
		me := newHMesh(t, tc, seed)
		for range 4 {
			me.add(hspec{rcfg: rc, beacon: 2 * time.Second})
		}
		me.edges([][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 0}})
		me.start()
		me.mustConverge(10 * time.Minute)
		me.mustRegister(time.Minute)
		me.clk.RunFor(5 * time.Second)
		gone := me.nodes[2]
		var holders []int
		for i, hn := range me.nodes {
			if hn.rt.HasRecord(gone.n.ID()) {
				holders = append(holders, i)
			}
		}
		if !slices.Equal(holders, []int{2}) {
			t.Logf("seed %d: node 2's record is held by %v, not by node 2 alone: not a case this test is for", seed, holders)
			continue
		}
		checked++
		sender := me.nodes[0].rt
		if err := me.wait(sender.Send(gone.n.ID(), testApp, []byte("while up"), nil), time.Minute); err != nil {
			t.Fatalf("seed %d: to node 2 while it is up: %v", seed, err)
		}
		gone.n.Close()
		for _, nb := range gone.radios["espnow"].Neighbors() {
			me.media["espnow"].Disconnect(gone.radios["espnow"], nb)
		}
		start := me.clk.Now()
		res := sender.Send(gone.n.ID(), testApp, []byte("while down"), nil)
		// The bound: two sends (on the cached addresses, then on what
		// the lookup afresh finds, if anything) of max(Attempts, trees)
		// tries, each waiting at most the receipt timeout and a pause
		// after no route of at most two claim periods; and the lookup
		// afresh between them.
		tries := time.Duration(max(sender.Config().Attempts, tc.Trees))
		bound := 2*tries*(rc.ReceiptTimeout+2*tc.ClaimPeriod) + sender.refreshPatience()
		me.run(10*time.Minute, res.Finished)
		took := me.clk.Now().Sub(start)
		err := res.Err()
		if !res.Finished() || !(errors.Is(err, node.ErrNoRoute) || errors.Is(err, node.ErrAbandoned) || errors.Is(err, ErrNoCommonTree)) {
			t.Errorf("seed %d: the send to the node that is gone ended %v after %v; want no route, abandoned or no common tree", seed, err, took)
		}
		if took > bound {
			t.Errorf("seed %d: the send to the node that is gone ended after %v, want within %v", seed, took, bound)
		}
		t.Logf("seed %d: %v after %v (bound %v)", seed, err, took, bound)
	}
	if checked < 2 {
		t.Fatalf("only %d of the seeds leave node 2 the only home of its record: the test checks too little; choose seeds again", checked)
	}
}

// A send's refresh (its addresses failed) does not take a record naming
// those very addresses, none in an epoch current here, as the answer: the
// trees renewed since it was stored, and the node registers anew in them
// soon. (At 1,000 nodes after killing a tenth, sends that had found a
// record from before the failure tried it for two minutes, found the same
// one again at once when they looked afresh, and ended "no receipt" while
// the destination had registered its new addresses.)
func TestRefreshWaitsForTheNewRecord(t *testing.T) {
	me := registeredRing(t)
	asker, dst := me.rts[0], me.rts[3]
	old := slices.Clone(dst.registered)
	// The destination registers only 40 s after its addresses change.
	dst.cfg.RegisterQuiet, dst.cfg.RegisterMax = 40*time.Second, 40*time.Second
	for i := range me.rts {
		for k := range me.trees[i].Count() {
			me.trees[i].Renew(k) // (only a root does)
		}
	}
	me.clk.RunFor(2 * time.Second)
	if asker.inCurrent(Record{Addrs: old}) {
		t.Fatal("the asker is still in an epoch of the old record after the new terms")
	}
	var got *Destination
	var lerr error
	asker.refreshLookup(dst.self, old, func(d Destination, err error) { got, lerr = &d, err })
	me.clk.RunFor(3 * time.Minute)
	switch {
	case got == nil:
		t.Fatal("the refresh did not end")
	case lerr != nil:
		t.Fatalf("the refresh ended %v; want the new record", lerr)
	case slices.Equal(got.Addrs, old):
		t.Fatalf("the refresh took the record that failed (%v)", old)
	case !asker.inCurrent(Record{Addrs: got.Addrs}):
		t.Fatalf("the refresh found %v, none in a current epoch", got.Addrs)
	}
}

// registeredRing is a ring of six nodes (0-1-2-3 and 0-4-5-3) on two
// trees, converged and every node registered: two ways between 0 and 3
// for the repair tests.
func registeredRing(t *testing.T) *tmesh {
	t.Helper()
	edges := [][2]int{{0, 1}, {1, 2}, {2, 3}, {0, 4}, {4, 5}, {5, 3}}
	me := newTMesh(t, 6, edges, 0, tree.Config{Trees: 2, EpochPeriods: 45}, 7)
	me.start()
	me.runUntilConverged(10 * time.Minute)
	me.clk.RunFor(time.Minute) // registered
	return me
}

// A relay whose way below a Package's bound in the current epochs is a
// neighbour that is down takes it, if it has heard it since it failed
// (alive, its air busy), before a live way in an epoch it is leaving (its
// previous place in a tree that renewed): nodes drop that epoch as they
// take their new places, and greedy routing by it ends "no route" where
// one has. (After --fail-root at 1,000 nodes, seed 1, every try of a pair
// went so, two hops before the node that had dropped the dead root's
// epoch: h29fail.) A down neighbour not heard since still comes after the
// leaving epoch's way, and a live way in a current epoch before both.
func TestLeavingEpochAfterHeardDown(t *testing.T) {
	me := settledGrid(t, 3, 5)
	old := make([]tree.Position, len(me.trees))
	for i, tr := range me.trees {
		old[i], _ = tr.Current(2)
	}
	for _, tr := range me.trees {
		tr.Renew(2) // (only its root does)
	}
	me.clk.RunFor(me.trees[0].Config().ClaimPeriod)
	me.runUntilConverged(10 * time.Minute)
	me.clk.RunFor(30 * time.Second)
	for i, tr := range me.trees {
		if p, ok := tr.Previous(2); !ok || p.TreeState != old[i].TreeState || !me.rts[i].leaving(p.TreeState) {
			t.Fatalf("node %d: tree 2's previous epoch is %v (%v), want the one before the renewal (%d)", i, p.TreeState, ok, old[i].TreeState)
		}
	}
	leavingWays, checked := 0, 0
	for s, r := range me.rts {
		for d := range me.rts {
			if s == d {
				continue
			}
			var dst []TreeAddr
			for k := range 2 {
				p, _ := me.trees[d].Current(k)
				dst = append(dst, TreeAddr{Tree: uint8(k), TreeState: p.TreeState, Addr: p.Addr})
			}
			dst = append(dst, TreeAddr{Tree: 2, TreeState: old[d].TreeState, Addr: old[d].Addr})
			ph := &pathHeader{bound: noBound, dst: dst}
			leavingPhase := uint8(len(dst))
			first, firstPhase, _, _, ok := r.pathNext(ph, false, nil)
			if !ok || firstPhase == leavingPhase {
				continue
			}
			alt, altPhase, _, _, altOK := r.pathNext(ph, false, []peer.Endpoint{first.Via})
			p := r.b.PeerAt(first.Via)
			if !altOK || p == nil || me.clk.Now().Sub(p.LastRx) > 10*time.Second {
				continue
			}
			checked++
			// Down, and heard since.
			r.suspect(first.Via)
			r.down[first.Via] = p.LastRx.Add(-time.Millisecond)
			got, gotPhase, _, _, _ := r.pathNext(ph, false, nil)
			switch {
			case altPhase == leavingPhase:
				leavingWays++
				if got.Via != first.Via {
					t.Errorf("%d→%d: took phase %d (the epoch being left) over the down neighbour heard since, in phase %d", s, d, gotPhase, firstPhase)
				}
			case got.Via != alt.Via || gotPhase != altPhase:
				t.Errorf("%d→%d: took phase %d, the best live way in a current epoch is in phase %d", s, d, gotPhase, altPhase)
			}
			// Down, and not heard since.
			r.down[first.Via] = me.clk.Now()
			got, gotPhase, _, _, _ = r.pathNext(ph, false, nil)
			if got.Via != alt.Via || gotPhase != altPhase {
				t.Errorf("%d→%d: a down neighbour not heard since: took phase %d, want the live way in phase %d", s, d, gotPhase, altPhase)
			}
			delete(r.down, first.Via)
		}
	}
	t.Logf("%d decisions checked, %d with the live way only in the epoch being left", checked, leavingWays)
	if leavingWays == 0 {
		t.Fatal("no case where the live way was only in the epoch being left: the test checks nothing")
	}
}

// settledGrid is a 4×4 grid of routers on the given number of trees (no
// term ending by age), converged and run on until neighbourhood lists
// have been exchanged.
func settledGrid(t *testing.T, trees int, seed uint64) *tmesh {
	t.Helper()
	var edges [][2]int
	for i := range 16 {
		if i%4 < 3 {
			edges = append(edges, [2]int{i, i + 1})
		}
		if i < 12 {
			edges = append(edges, [2]int{i, i + 4})
		}
	}
	me := newTMesh(t, 16, edges, 0, tree.Config{Trees: trees, EpochPeriods: -1}, seed)
	me.start()
	me.runUntilConverged(10 * time.Minute)
	me.clk.RunFor(30 * time.Second)
	return me
}
