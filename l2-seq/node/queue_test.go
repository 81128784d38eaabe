package node

import (
	"errors"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
)

// A neighbour whose queue here is full of default-priority sends (what a
// relay's requests and registrations are) still takes a send of higher
// priority (a router's answers and receipts): the last quarter of
// PendingSend is theirs. On one shared limit the answer was refused with
// ErrBusy like the requests (h34renewtrace).
func TestQueueKeepsRoomForAnswers(t *testing.T) {
	me := newMesh(t, 2, phys.ESPNOW(), sim.Loss{}, 1, nil)
	me.start()
	me.discover()
	a, b := me.nodes[0], me.nodes[1]
	me.net.Disconnect("m", 0, 1) // nothing is acked: every send stays waiting
	pending := a.bud.PendingSend
	busy := func(r *Result) bool { return r.Finished() && errors.Is(r.Err(), ErrBusy) }
	taken := 0
	for range pending + 1 {
		if busy(a.Send(b.ID(), testApp, blob(20, byte(taken)), nil)) {
			break
		}
		taken++
	}
	if want := pending - pending/4; taken != want {
		t.Fatalf("default sends taken before ErrBusy: %d, want %d of PendingSend %d", taken, want, pending)
	}
	answers := 0
	for range pending + 1 {
		if busy(a.Send(b.ID(), testApp, blob(20, byte(answers)), &SendOptions{Priority: 1})) {
			break
		}
		answers++
	}
	if want := pending / 4; answers != want {
		t.Fatalf("with %d default sends waiting, %d answer-priority sends taken, want %d (the rest of PendingSend %d)", taken, answers, want, pending)
	}
	// Full now for both.
	if !busy(a.Send(b.ID(), testApp, blob(20, 0), nil)) || !busy(a.Send(b.ID(), testApp, blob(20, 0), &SendOptions{Priority: 1})) {
		t.Fatal("a queue holding PendingSend sends took another")
	}
}
