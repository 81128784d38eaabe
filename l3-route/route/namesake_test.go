package route

import (
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
)

// TestOnlyTheDestinationTakesIt: a send names its destination's node_id in
// the path header (its tag), and a node whose places the header lists
// takes the Package as its own only if the tag is its own. An address
// names a place, not a node: a record older than the trees can list
// places another node holds now, and two terms of a tree that share a
// tree_state give one place to two nodes (namesakes; on a line of 200
// nodes, 23 of 1,000 probes were taken by the wrong node so). Here the
// records are written so on a line 0–1–2–3 with two trees: the Package
// for node 3 passes node 2, which holds the places listed.
func TestOnlyTheDestinationTakesIt(t *testing.T) {
	me := lineMesh(t, 4, 2, 15)

	at := func(i, k int) TreeAddr {
		p := me.pos(i, k)
		return TreeAddr{Tree: uint8(k), TreeState: p.TreeState, Addr: p.Addr}
	}
	taken := func(i int, blob string) bool {
		for _, m := range me.nodes[i].got {
			if string(m.Blob) == blob {
				return true
			}
		}
		return false
	}

	t.Run("every place another's", func(t *testing.T) {
		// Node 3's record naming only places node 2 holds: the count of
		// places (two held, none not) says node 2's.
		const blob = "for node 3, at node 2's places"
		d := Destination{ID: me.nodes[3].n.ID(), Addrs: []TreeAddr{at(2, 0), at(2, 1)}}
		namesakes := me.nodes[2].rt.Stats().Namesakes
		err := me.wait(me.nodes[0].rt.SendTo(d, testApp, []byte(blob), nil), 5*time.Minute)
		if taken(2, blob) {
			t.Fatal("node 2 took node 3's Package as its own")
		}
		if !errors.Is(err, node.ErrNoRoute) {
			t.Errorf("send to places node 3 does not hold: %v, want no route (the sender looks again)", err)
		}
		if me.nodes[2].rt.Stats().Namesakes == namesakes {
			t.Error("node 2 counted no namesake")
		}
	})

	t.Run("one place against one", func(t *testing.T) {
		// Node 3's place in tree 0 and node 2's in tree 1: one against
		// one at node 2 and at node 3, a tie the count took as ours at
		// the first of them. The tag sends it on to node 3.
		const blob = "for node 3, one place of node 2's"
		d := Destination{ID: me.nodes[3].n.ID(), Addrs: []TreeAddr{at(3, 0), at(2, 1)}}
		if err := me.wait(me.nodes[0].rt.SendTo(d, testApp, []byte(blob), nil), 5*time.Minute); err != nil {
			t.Errorf("send: %v", err)
		}
		if taken(2, blob) {
			t.Error("node 2 took node 3's Package as its own")
		}
		if !taken(3, blob) {
			t.Error("node 3 did not get its Package")
		}
	})
}
