package route

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// A node holding a record whose key's branch has grown past it (a tree
// still filling in after a failure: the node nearer the key took its place
// after the record was stored) hands the record on to the branch's new
// end, where lookups go; in a settled mesh nothing is handed on. (Without
// it the record stayed behind: lookups reached the new end, found nothing,
// and failed "no address known" until the node registered again.)
func TestRecordHandedOnPastHome(t *testing.T) {
	var edges [][2]int
	for i := range 16 {
		if i%4 < 3 {
			edges = append(edges, [2]int{i, i + 1})
		}
		if i < 12 {
			edges = append(edges, [2]int{i, i + 4})
		}
	}
	me := newTMesh(t, 16, edges, 0, tree.Config{Trees: 1, EpochPeriods: -1}, 3)
	me.start()
	me.runUntilConverged(10 * time.Minute)
	me.clk.RunFor(2 * time.Minute) // registered
	handed := func() (n uint64) {
		for _, r := range me.rts {
			n += r.Stats().RecordsHanded
		}
		return n
	}
	before := handed()
	me.clk.RunFor(2 * time.Minute)
	if n := handed() - before; n != 0 {
		t.Fatalf("%d records handed on in a settled mesh, want 0", n)
	}
	// A destination whose home is another node, and a node next to the
	// home that is farther from the key: the record goes there, as if the
	// home had taken its place after the record was stored.
	dst, home, past := -1, -1, -1
	for d := range me.rts {
		id := me.nodes[d].ID()
		for h, r := range me.rts {
			if h == d || r.records[id] == nil {
				continue
			}
			p, _ := me.trees[h].Current(0)
			key := keyAddr(id, 0)
			for _, nb := range me.trees[h].Neighbors(0, p.TreeState) {
				y := -1
				for j, n := range me.nodes {
					if n.ID() == nb.ID {
						y = j
					}
				}
				if y == d || me.rts[y].records[id] != nil {
					continue
				}
				if m := metric(false); m.RouteKey(nb.Addr, key) > m.RouteKey(p.Addr, key) {
					dst, home, past = d, h, y
				}
			}
		}
		if dst >= 0 {
			break
		}
	}
	if dst < 0 {
		t.Fatal("no record with a neighbour of its home farther from the key")
	}
	id := me.nodes[dst].ID()
	moved := *me.rts[home].records[id]
	delete(me.rts[home].records, id)
	moved.at, moved.handed, moved.done = me.clk.Now(), 0, false
	me.rts[past].records[id] = &moved
	if me.rts[past].handTmr == nil {
		me.rts[past].scheduleHandOn()
	}
	regAt := me.rts[dst].regAt
	period := me.trees[0].Config().ClaimPeriod
	me.clk.RunFor(period)
	if me.rts[dst].regAt != regAt {
		t.Fatal("the destination registered again meanwhile: the test proves nothing")
	}
	if !me.rts[home].HasRecord(id) {
		t.Fatalf("node %d (the key's end) has no record of node %d a claim period after node %d held it", home, dst, past)
	}
	// A lookup from a third node finds it.
	asker := -1
	for i := range me.rts {
		if i != dst && i != home && i != past {
			asker = i
			break
		}
	}
	var got error = node.ErrNoRoute
	done := false
	me.rts[asker].Lookup(id, func(d Destination, err error) { got, done = err, true })
	me.clk.RunWhile(me.clk.Now().Add(period), func() bool { return !done })
	if !done || got != nil {
		t.Fatalf("lookup of node %d from node %d: done %v, %v", dst, asker, done, got)
	}
}
