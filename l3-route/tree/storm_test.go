package tree

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// jammer is a radio with no node that sends full frames back to back while
// on: a neighbour hidden from the parent, talking over it at the child, as
// the core of a dense mesh does in the storm that follows a renewal.
type jammer struct {
	l   link.Link
	on  bool
	tag link.Tag
	buf []byte
}

func (j *jammer) DeliverFrame(link.Frame) {}

func (j *jammer) TxDone(link.Tag, error) { j.send() }

func (j *jammer) send() {
	if !j.on {
		return
	}
	j.tag++
	_ = j.l.Send(link.Broadcast, j.buf, j.tag) // not one of ours: garbage to every node
}

// TestParentHeardOnlyByItsAcksNotLost: a live parent whose every frame
// collides at its child (a neighbour hidden from the parent talks all the
// time there) is not reported lost while the child's radio has its ACKs:
// they prove it alive and in reach, and the report would rebuild the whole
// tree. In a 200-node mesh of degree 28 (seed 4) such reports, 22 of them
// in the two minutes after two trees renewed, rebuilt all six trees at
// once, and the trees did not converge in 30 minutes. A parent that is
// gone is still reported.
func TestParentHeardOnlyByItsAcksNotLost(t *testing.T) {
	m := newMesh(t, 4, lineEdges(4), Config{Trees: 1, EpochPeriods: -1}, 3)
	m.start()
	m.waitConverged(10 * beaconPeriod)
	child, parent := m.childAndParent(func(p Position) bool { return p.Depth == 2 })
	if child < 0 {
		t.Fatal("no node at depth 2")
	}
	var lost []time.Time
	m.trees[child].OnParentLost(func(int) { lost = append(lost, m.clk.Now()) })
	tr := m.trees[child].trees[0]

	// The jammer: heard by the child alone.
	js := m.net.AddStation(sim.Position{X: -1}, "espnow")
	m.net.Connect("espnow", js, child, sim.Independent(0), sim.Independent(0))
	jl := m.net.Links(js)[0]
	j := &jammer{l: jl, buf: make([]byte, jl.Info().MTU)}
	jl.Attach(j)
	j.on = true
	j.send()
	j.send()

	// Long enough for the child to find its parent silent, ask it, and
	// give up on it, and short of the three claim periods that bury a
	// silent root.
	probed := false
	m.runUntil(tr.t.cfg.ClaimPeriod*5/2, func() bool {
		probed = probed || tr.probing
		return false
	})
	if !probed {
		t.Fatal("the child never asked its parent (the jammer did not silence it)")
	}
	if len(lost) > 0 {
		t.Fatalf("a live parent whose radio acked the child's frames was reported lost at %v", lost)
	}

	// Gone for good: reported (its ACKs stop with it).
	j.on = false
	m.clk.RunFor(2 * tr.t.cfg.ClaimPeriod) // the root's claims reach the child again
	if tr.probing || tr.parentLost || tr.rootDead {
		t.Fatalf("not settled after the jammer stopped: probing %v, parent lost %v, root dead %v", tr.probing, tr.parentLost, tr.rootDead)
	}
	m.kill(parent)
	if _, ok := m.runUntil(4*tr.t.cfg.ClaimPeriod, func() bool { return len(lost) > 0 }); !ok {
		t.Fatal("a dead parent was never reported lost")
	}
}
