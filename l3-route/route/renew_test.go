package route

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// A node whose parent dies keeps its address for the epoch, tells the root
// (a routed renew request, through the other tree: in this one its only
// way up is gone) once the parent has passed no claim on for a claim period
// and a half (tree.Trees.Silent; the peer table gives it up only after four
// beacon periods), and the root starts a new term at once rather than at
// the end of the old one: the orphan re-attaches to the best responder it
// has left, within three claim periods of the death.
func TestParentLossRenewsTheTerm(t *testing.T) {
	// 0 - 1 - 2 - 3, and 0 - 4 - 5 - 3: a ring of six, two ways round.
	edges := [][2]int{{0, 1}, {1, 2}, {2, 3}, {0, 4}, {4, 5}, {5, 3}}
	me := newTMesh(t, 6, edges, 0, tree.Config{Trees: 2, EpochPeriods: -1}, 7)
	me.start()
	me.runUntilConverged(10 * time.Minute)
	pos := func(i int) tree.Position { p, _ := me.trees[i].Current(0); return p }
	// Find a node whose parent is not the root: kill the parent.
	orphan, parent := -1, -1
	for i := range me.nodes {
		p := pos(i)
		if p.Depth < 2 {
			continue
		}
		pa, _ := p.Addr.Parent()
		for j := range me.nodes {
			if pos(j).Addr.Equal(pa) {
				orphan, parent = i, j
			}
		}
		if orphan >= 0 {
			break
		}
	}
	if orphan < 0 {
		t.Fatal("no node two levels down")
	}
	before := pos(orphan)
	me.trees[orphan].OnParentLost(func(k int) { t.Logf("%v: parent lost", me.clk.Now()) })
	t.Logf("orphan %d parent %d", orphan, parent)
	me.nodes[parent].Close()
	for _, nb := range me.radios[parent].Neighbors() {
		me.m.Disconnect(me.radios[parent], nb)
	}
	// Within the epoch the address stands.
	died := me.clk.Now()
	period := me.trees[orphan].Config().ClaimPeriod
	me.clk.RunFor(period)
	if p := pos(orphan); p.TreeState != before.TreeState || !p.Addr.Equal(before.Addr) {
		t.Fatalf("address changed within the epoch: %v → %v", before, p)
	}
	// Terms never end by age here (EpochPeriods < 0): only the renew
	// request can start a new one.
	deadline := died.Add(3 * period)
	for me.clk.Now().Before(deadline) {
		me.clk.RunFor(10 * time.Second)
		if p, ok := me.trees[orphan].Current(0); ok && p.Term != before.Term {
			pa, _ := p.Addr.Parent()
			if pa.Equal(me.addrOf(parent, p.TreeState)) {
				t.Fatalf("re-attached under the dead node")
			}
			t.Logf("new term after %v; orphan at %v (was %v)", me.clk.Now().Sub(died), p.Addr, before.Addr)
			return
		}
	}
	t.Fatal("no new term within three claim periods of the parent's death")
}

// addrOf is node i's address in epoch ts, or the zero address.
func (me *tmesh) addrOf(i int, ts uint8) (a addr.Long) {
	if p, ok := me.trees[i].ByState(ts); ok {
		return p.Addr
	}
	return a
}

// rootOf is the node that is the root of tree k (the test fails if none
// is).
func (m *tmesh) rootOf(t *testing.T, k int) int {
	t.Helper()
	for i := range m.nodes {
		if p, ok := m.trees[i].Current(k); ok && p.Root {
			return i
		}
	}
	t.Fatalf("no root of tree %d", k)
	return -1
}

// A renew request naming the epoch a root has already replaced comes from
// an orphan the new term has not reached yet: the new term is what it
// asked for. The root keeps that term (a second renewal would end the
// term that repaired the tree, and the records stored in it).
func TestLateRenewKeepsTheTerm(t *testing.T) {
	edges := [][2]int{{0, 1}, {1, 2}, {2, 3}, {0, 4}, {4, 5}, {5, 3}}
	me := newTMesh(t, 6, edges, 0, tree.Config{Trees: 2, EpochPeriods: -1}, 7)
	me.start()
	me.runUntilConverged(10 * time.Minute)
	root := me.rootOf(t, 0)
	old, _ := me.trees[root].Current(0)
	period := me.trees[root].Config().ClaimPeriod
	me.clk.RunFor(period) // a term may be renewed once it is a period old
	// An orphan asks: the root starts a new term.
	asker := (root + 3) % 6
	me.rts[asker].askRenew(0)
	me.clk.RunFor(period / 2)
	cur, _ := me.trees[root].Current(0)
	if cur.Term == old.Term {
		t.Fatal("a renew request of the current epoch started no new term")
	}
	// Every node enters the new epoch and keeps the old one as its
	// previous; a late orphan's request for the old epoch arrives then.
	me.clk.RunFor(2 * period)
	if _, ok := me.trees[asker].ByState(old.TreeState); !ok {
		t.Fatalf("node %d no longer holds epoch %d", asker, old.TreeState)
	}
	me.rts[asker].sendControl(old.TreeState, addr.Long{}, false, me.rts[asker].appendRenew(nil, msgRenewSigned, 0, old.TreeState))
	for _, ep := range me.trees[asker].Neighbors(0, cur.TreeState) {
		me.nodes[asker].Send(ep.ID, ControlApp, me.rts[asker].appendRenew(nil, msgRenewViaSigned, 0, old.TreeState), nil)
	}
	me.clk.RunFor(3 * period)
	if now, _ := me.trees[root].Current(0); now.Term != cur.Term {
		t.Errorf("a request for the epoch before started term %d after %d", now.Term, cur.Term)
	}
}

// TestForgedRenew: a renew request reaches the root of tree 0 from node 3
// unsigned, signed by node 3 in node 4's name, and signed but an hour old:
// each is refused and counted, and the term stands. Node 3's own, fresh,
// starts a new term.
func TestForgedRenew(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 2, EpochPeriods: -1}, 41)
	for range 6 {
		me.add(hspec{})
	}
	me.edges(line(6))
	me.start()
	me.mustConverge(10 * time.Minute)
	root := -1
	for i, hn := range me.nodes {
		if p, ok := hn.rt.Trees().Current(0); ok && p.Root {
			root = i
		}
	}
	if root < 0 {
		t.Fatal("no root of tree 0")
	}
	from := 3
	if root == from {
		from = 1
	}
	rr, fr := me.nodes[root].rt, me.nodes[from].rt
	term, _ := rr.Trees().Current(0)
	to := []TreeAddr{{Tree: 0, TreeState: term.TreeState}}
	now := me.clk.Now().UnixNano()
	signer := me.nodes[from].n.Signer()
	forged := [][]byte{
		{msgRenew, 0, term.TreeState},
		signedRenewBy(signer, me.nodes[(from+1)%6].n.ID(), 0, term.TreeState, now),
		signedRenewBy(signer, me.nodes[from].n.ID(), 0, term.TreeState, now-int64(time.Hour)),
	}
	before := rr.Stats().RenewsRefused
	for _, msg := range forged {
		fr.SendControl(to, msg, false)
	}
	period := rr.Trees().Config().ClaimPeriod
	me.clk.RunFor(tree.MinTermPeriods * period * 2)
	if got := rr.Stats().RenewsRefused - before; got != uint64(len(forged)) {
		t.Errorf("the root refused %d renew requests, want %d", got, len(forged))
	}
	if p, _ := rr.Trees().Current(0); p.Term != term.Term {
		t.Fatal("a forged renew request started a new term")
	}
	fr.SendControl(to, signedRenewBy(signer, me.nodes[from].n.ID(), 0, term.TreeState, me.clk.Now().UnixNano()), false)
	me.clk.RunFor(period)
	if p, _ := rr.Trees().Current(0); p.Term == term.Term {
		t.Fatal("node's own renew request started no new term")
	}
}

// signedRenewBy is a renew request naming id, signed by s.
func signedRenewBy(s identity.Signer, id identity.NodeID, k, ts uint8, at int64) []byte {
	body := slices.Concat([]byte{k, ts}, id[:], binary.BigEndian.AppendUint64(nil, uint64(at)))
	return slices.Concat([]byte{msgRenewSigned}, body, s.Sign(slices.Concat([]byte(renewDomain), body)))
}

// After a term a failure started early, each node registers its new
// addresses once, and not again on a timer while nothing of its own
// changes: the mesh's registrations then cross the relays round the roots
// all together, and stored again two and four claim periods on (as they
// were), they filled those relays' queues after a kill of a tenth of
// 1,000 nodes, and the lookups sent through them were dropped (seed 4:
// 3,713 registrations in five minutes instead of 2,147;
// docs/routing-notes.md, "h17repair"). The records stay where lookups
// find them: a home that a nearer node's new place moves past hands the
// record on (handOff).
func TestRepairRegistersOnce(t *testing.T) {
	edges := [][2]int{{0, 1}, {1, 2}, {2, 3}, {0, 4}, {4, 5}, {5, 3}}
	me := newTMesh(t, 6, edges, 0, tree.Config{Trees: 2, EpochPeriods: 45}, 7)
	me.start()
	me.runUntilConverged(10 * time.Minute)
	period := me.trees[0].Config().ClaimPeriod
	all := func() bool {
		for _, rt := range me.rts {
			if !rt.Registered() {
				return false
			}
		}
		return true
	}
	if !me.clk.RunWhile(me.clk.Now().Add(5*time.Minute), func() bool { return !all() }) && !all() {
		t.Fatal("not every node registered after the cold start")
	}
	me.clk.RunFor(2 * period)
	root := me.rootOf(t, 0)
	old, _ := me.trees[root].Current(0)
	// An orphan's request: the root starts the next term long before its
	// 45 claims are up (the repair of a failure).
	me.rts[(root+3)%6].askRenew(0)
	me.clk.RunFor(period / 2)
	cur, _ := me.trees[root].Current(0)
	if cur.Term == old.Term {
		t.Fatal("the renew request started no new term")
	}
	// Every node registers its address in the new epoch (a repair's
	// registration waits half the usual quiet and spread).
	in := func() bool {
		for _, rt := range me.rts {
			if !rt.Registered() || !slices.ContainsFunc(rt.registered, func(a TreeAddr) bool { return a.TreeState == cur.TreeState }) {
				return false
			}
		}
		return true
	}
	if !me.clk.RunWhile(me.clk.Now().Add(3*period), func() bool { return !in() }) && !in() {
		t.Fatal("not every node registered its address in the new term within three claim periods")
	}
	at := make([]time.Time, len(me.rts))
	for i, rt := range me.rts {
		at[i] = rt.regAt
	}
	// Five claim periods on, nothing of theirs changed: no node stored
	// its record again, and every record is still found.
	me.clk.RunFor(5 * period)
	for i, rt := range me.rts {
		if !rt.regAt.Equal(at[i]) {
			t.Errorf("node %d registered again %v after its repair registration, with nothing changed", i, rt.regAt.Sub(at[i]))
		}
	}
	for i := range me.nodes {
		for j := range me.nodes {
			if i == j {
				continue
			}
			var got Destination
			var gerr error
			done := false
			me.rts[i].Lookup(me.nodes[j].ID(), func(d Destination, err error) { got, gerr, done = d, err, true })
			me.clk.RunWhile(me.clk.Now().Add(time.Minute), func() bool { return !done })
			if !done || gerr != nil || len(got.Addrs) == 0 {
				t.Errorf("node %d's lookup of node %d: %v (done %v)", i, j, gerr, done)
			}
		}
	}
}
