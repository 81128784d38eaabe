package route

import (
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// TestReplayedReceipt: a receipt recorded for one send of a Package, dated
// well within the clock-skew allowance, must not confirm a new send of the
// very same Package to the same destination (the hash is the same; the
// attempt's nonce is not). Before nonces, the recorded receipt completed
// the second send at once, whatever became of it.
func TestReplayedReceipt(t *testing.T) {
	me := lineMesh(t, 3, 1, 31)
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

// TestReplayedError: an error report the destination signed for one send
// of a Package, replayed seconds later (well within the clock-skew
// allowance) against a new send of the very same Package, must not end
// it; nor may a relay's error for an earlier attempt cost the new one a
// try. Errors name the attempt's nonce, as receipts do. Before, the
// destination's recorded error (signed with no nonce) ended the second
// send at once with the first one's failure.
func TestReplayedError(t *testing.T) {
	me := lineMesh(t, 3, 1, 31)
	src, dst := me.nodes[0].rt, me.nodes[2]
	d := me.dest(2)
	// The first send goes to an application the destination does not run
	// (yet): it reports the error itself, and that ends the send.
	app := packet.NewAppID("test", "not yet", 1)
	blob := []byte("pay 10 to node 2")
	hash := packet.NewPackage(app, blob).Hash
	res := src.SendTo(d, app, blob, nil)
	p := src.pending[hash]
	if p == nil || len(p.nonces) != 1 {
		t.Fatalf("the first send's attempt drew no nonce: %+v", p)
	}
	first := p.nonces[0]
	if err := me.wait(res, time.Minute); !errors.Is(err, node.ErrUnknownApp) {
		t.Fatalf("the first send: %v, want the destination's %v", err, node.ErrUnknownApp)
	}
	// What an attacker on the path recorded, or could have: the
	// destination's error for that send as it signed it (with the
	// attempt's nonce), the same in the layout with no nonce, and a
	// relay's (node 1's) error for that attempt.
	at := me.clk.Now().UnixNano()
	code := node.CodeOf(node.ErrUnknownApp)
	rep := me.pos(2, 0).Addr.Truncate()
	recorded := [][]byte{
		AppendErrorNonce(nil, hid(2, 31), dst.n.ID(), code, hash, rep, first, at),
		AppendError(nil, hid(2, 31), dst.n.ID(), code, hash, rep, at),
		AppendErrorNonce(nil, hid(1, 31), me.nodes[1].n.ID(), node.CodeOf(node.ErrHopLimit), hash, me.pos(1, 0).Addr.Truncate(), first, at),
	}

	// The destination now runs the application; a second send of the same
	// Package, seconds later.
	dst.n.Register(app, func(node.Message) {})
	me.clk.RunFor(5 * time.Second)
	st := src.Stats()
	res = src.SendTo(d, app, blob, nil)
	p = src.pending[hash]
	if p == nil || len(p.nonces) != 1 || p.nonces[0] == first {
		t.Fatalf("the second send's nonce: %+v (first %x)", p, first)
	}
	rp := &routed{Header: node.RouteHeader{TreeState: me.pos(2, 0).TreeState, TTL: 60, Error: true}}
	for _, rec := range recorded {
		src.control(rp, rec)
	}
	if res.Finished() {
		t.Fatalf("a recorded error ended a new send: %v", res.Err())
	}
	after := src.Stats()
	if got := after.ErrorsRefused - st.ErrorsRefused; got != 3 {
		t.Fatalf("%d recorded errors refused, want 3", got)
	}
	if after.RelayErrors != st.RelayErrors || p.attempts != 1 {
		t.Fatalf("a recorded relay error was taken: %d relay errors, %d attempts", after.RelayErrors-st.RelayErrors, p.attempts)
	}
	// A relay's error naming this attempt is a relay's word (it costs a
	// try, not the send), and the send completes.
	src.control(rp, AppendErrorNonce(nil, hid(1, 31), me.nodes[1].n.ID(), node.CodeOf(node.ErrHopLimit), hash, me.pos(1, 0).Addr.Truncate(), p.nonces[0], me.clk.Now().UnixNano()))
	if src.Stats().RelayErrors != st.RelayErrors+1 || res.Finished() {
		t.Fatalf("a relay's error for the attempt: %d relay errors, finished %v", src.Stats().RelayErrors-st.RelayErrors, res.Finished())
	}
	if err := me.wait(res, time.Minute); err != nil {
		t.Fatal(err)
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
