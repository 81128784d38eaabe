package route

import (
	"bytes"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// TestLateReceiptDeliversOnce: a sender whose receipt is late sends the
// Package again (ReceiptTimeout); the destination must hand it to the
// application once and answer every copy with a receipt. Here the timeout
// is shorter than the round trip on purpose (on a LoRa path the default
// 30 s is: see TestGatewayResequences).
func TestLateReceiptDeliversOnce(t *testing.T) {
	me := newHMesh(t, tree.Config{Trees: 1}, 71)
	for i := range 4 {
		var c Config
		if i == 0 {
			c.ReceiptTimeout = 3 * time.Millisecond
		}
		me.add(hspec{rcfg: c})
	}
	me.edges(line(4))
	me.start()
	me.mustConverge(10 * time.Minute)
	res := me.nodes[0].rt.SendTo(me.dest(3), testApp, []byte("once only"), nil)
	err := me.wait(res, time.Minute)
	me.clk.RunFor(time.Minute)
	got := me.nodes[3].got
	// (The sender may well give up: every try timed out before its
	// receipt could come back. That is the timeout's doing; the copies are
	// what this test is about.)
	t.Logf("send: %v", err)
	if len(got) != 1 || !bytes.Equal(got[0].Blob, []byte("once only")) {
		t.Fatalf("the application got %d copies, want 1", len(got))
	}
}
