package route

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

func hoodSeeds() [][]byte {
	deep, _ := addr.EncodeLong([]uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 2, 3, 4, 5})
	two := appendHood(nil, 0x21, []hoodEntry{{tag: 0x0102, addr: addr.MustEncode(1, 2).Long()}, {tag: 0xfffe, addr: deep}})
	return [][]byte{
		appendHood(nil, 0x10, nil),
		appendHood(nil, 0x10, []hoodEntry{{tag: 7, addr: addr.Long{}}}),
		two,
		two[:len(two)-1],             // truncated
		append(bytes.Clone(two), 0),  // a byte past the list
		{msgHood, 0x10, 1, 0, 7, 65}, // a compact address longer than a Long
		{msgHood, 0x10},
	}
}

// FuzzHood: a neighbourhood list decodes to what encodes to the same bytes
// (one form only), or fails with ErrControl.
func FuzzHood(f *testing.F) {
	for _, s := range hoodSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || data[0] != msgHood {
			return
		}
		ts, es, err := decodeHood(data[1:])
		if err != nil {
			if !errors.Is(err, ErrControl) {
				t.Fatalf("decode error of no known kind: %v", err)
			}
			return
		}
		if got := appendHood(nil, ts, es); !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", data, got)
		}
	})
}

// TestHoodKept: on a line 0–1–2, the middle node holds each end's list
// for each tree, naming itself at its address; a list is kept from a peer
// only, replaced by a newer one, and forgotten when the peer goes.
func TestHoodKept(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 2}, 3)
	for range 3 {
		me.add(hspec{})
	}
	me.edges([][2]int{{0, 1}, {1, 2}})
	me.start()
	me.mustConverge(10 * time.Minute)
	me.run(me.nodes[0].tr.Config().ClaimPeriod, func() bool { return false })
	mid := me.nodes[1]
	r := mid.rt
	id := mid.n.ID()
	for _, end := range []int{0, 2} {
		for k := range 2 {
			pe := me.pos(end, k)
			var h *hood
			for _, nb := range r.t.Neighbors(k, me.pos(1, k).TreeState) {
				if nb.ID == me.nodes[end].n.ID() {
					h = r.hood.heard[nb.Via]
				}
			}
			if h == nil || !h.has[k] || h.ts[k] != pe.TreeState || len(h.lists[k]) != 1 {
				t.Fatalf("node 1 holds no list of node %d in tree %d: %+v", end, k, h)
			}
			if e := h.lists[k][0]; e.tag != uint16(id[0])<<8|uint16(id[1]) || !e.addr.Equal(me.pos(1, k).Addr) {
				t.Errorf("node %d's list in tree %d: %+v, want node 1 at %v", end, k, e, me.pos(1, k).Addr)
			}
		}
	}

	var ep peer.Endpoint
	for _, nb := range r.t.Neighbors(0, me.pos(1, 0).TreeState) {
		if nb.ID == me.nodes[0].n.ID() {
			ep = nb.Via
		}
	}
	list := appendHood(nil, me.pos(1, 0).TreeState, []hoodEntry{{tag: 1, addr: addr.MustEncode(1).Long()}})
	stranger := peer.Endpoint{Link: 5, Addr: ep.Addr} // no peer there
	r.receiveOneHop(node.Message{App: ControlApp, Blob: list, Via: stranger, Broadcast: true})
	if r.hood.heard[stranger] != nil {
		t.Fatal("a stranger's list kept")
	}
	newer := appendHood(nil, me.pos(1, 0).TreeState^0x10, []hoodEntry{{tag: 1, addr: addr.MustEncode(1).Long()}, {tag: 2, addr: addr.MustEncode(2).Long()}})
	r.receiveOneHop(node.Message{App: ControlApp, Blob: newer, Via: ep, Broadcast: true})
	h := r.hood.heard[ep]
	if h.ts[0] != me.pos(1, 0).TreeState^0x10 || len(h.lists[0]) != 2 {
		t.Fatalf("a newer epoch's list did not replace the old: %+v", h)
	}
	before := r.stats.Malformed
	r.receiveOneHop(node.Message{App: ControlApp, Blob: append(bytes.Clone(newer), 0), Via: ep, Broadcast: true})
	if r.stats.Malformed != before+1 || len(h.lists[0]) != 2 {
		t.Fatalf("a malformed list: malformed %d → %d, list %+v", before, r.stats.Malformed, h)
	}
	r.hoodPeer(r.b.PeerAt(ep), false)
	if r.hood.heard[ep] != nil {
		t.Fatal("a gone peer's list kept")
	}
}
