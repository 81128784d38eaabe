package route

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// TestReplayedReceipt: a receipt recorded for one send of a Package, dated
// well within the clock-skew allowance, must not confirm a new send of the
// very same Package to the same destination (the hash is the same; the
// attempt's nonce is not). Before nonces, the recorded receipt completed
// the second send at once, whatever became of it.
func TestReplayedReceipt(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 1}, 31)
	for range 3 {
		me.add(hspec{})
	}
	me.edges(line(3))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	src, dst := me.nodes[0].rt, me.nodes[2]
	d := me.dest(2)
	blob := []byte("pay 10 to node 2")
	hash := pkgHash(blob)

	res := src.SendTo(d, testApp, blob, nil)
	p := src.pending[hash]
	if p == nil || len(p.nonces) != 1 {
		t.Fatalf("the first send's attempt drew no nonce: %+v", p)
	}
	first := p.nonces[0]
	if err := me.wait(res, time.Minute); err != nil {
		t.Fatal(err)
	}
	// What an attacker on the path recorded, or could have: the
	// destination's receipt for that send, as it signed it (with the
	// attempt's nonce), and one without a nonce (the earlier layout).
	at := me.clk.Now().UnixNano()
	recorded := [][]byte{
		AppendReceiptNonce(nil, hid(2, 31), hash, first, at),
		AppendReceipt(nil, hid(2, 31), hash, at),
	}

	// A second send of the same Package, seconds later.
	me.clk.RunFor(5 * time.Second)
	refused := src.Stats().ReceiptsRefused
	res = src.SendTo(d, testApp, blob, nil)
	p = src.pending[hash]
	if p == nil || len(p.nonces) != 1 || p.nonces[0] == first {
		t.Fatalf("the second send's nonce: %+v (first %x)", p, first)
	}
	rp := &routed{Header: node.RouteHeader{TreeState: me.pos(2, 0).TreeState, TTL: 60}}
	for _, rec := range recorded {
		src.control(rp, rec)
	}
	if res.Finished() {
		t.Fatalf("a recorded receipt confirmed a new send (err %v)", res.Err())
	}
	if got := src.Stats().ReceiptsRefused - refused; got != 2 {
		t.Fatalf("%d recorded receipts refused, want 2", got)
	}
	// The destination's own receipt for this send still confirms it.
	before := dst.rt.Stats().Copies
	if err := me.wait(res, time.Minute); err != nil {
		t.Fatal(err)
	}
	if dst.rt.Stats().Copies != before+1 {
		t.Fatalf("the second send reached the destination %d times as a copy", dst.rt.Stats().Copies-before)
	}
}

// TestNotify: a Package sent to addresses alone reaches the node there,
// once, and leaves nothing waiting at the sender.
func TestNotify(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 1}, 32)
	for range 3 {
		me.add(hspec{})
	}
	me.edges(line(3))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.nodes[0].rt.Notify(me.nodes[2].rt.Addrs(), false, testApp, []byte("a cookie"))
	me.run(time.Minute, func() bool { return len(me.nodes[2].got) > 0 })
	if len(me.nodes[2].got) != 1 || string(me.nodes[2].got[0].Blob) != "a cookie" || me.nodes[2].got[0].Route == nil {
		t.Fatalf("delivered: %+v", me.nodes[2].got)
	}
	me.clk.RunFor(time.Minute)
	if len(me.nodes[0].rt.pending) != 0 || len(me.nodes[2].got) != 1 {
		t.Fatalf("pending %d, delivered %d", len(me.nodes[0].rt.pending), len(me.nodes[2].got))
	}
}
