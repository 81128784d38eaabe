package node

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
)

// Every send ends — delivered, or a typed error — under random loss,
// reordering and duplication; nothing hangs and nothing is delivered twice.
func TestStressNoHang(t *testing.T) {
	seeds := 100
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 1))
		loss := rng.Float64() * 0.4
		reorder := time.Duration(rng.IntN(3)) * 10 * time.Millisecond
		dup := rng.Float64() * 0.3 * float64(rng.IntN(2))
		name := fmt.Sprintf("seed%d/loss%.2f/reorder%v/dup%.2f", seed, loss, reorder, dup)
		me := newMesh(t, 2, phys.ESPNOW(), sim.Independent(loss), seed, func(i int, cfg *Config) {
			cfg.Links[0] = &mangler{Link: cfg.Links[0], clk: cfg.Clock, rng: rand.New(rand.NewPCG(seed, uint64(i))), reorder: reorder, dupP: dup}
		})
		me.start()
		me.discover()
		a, b := me.nodes[0], me.nodes[1]
		var rs []*Result
		var sizes []int
		for k := range 4 {
			size := rng.IntN(30000)
			sizes = append(sizes, size)
			rs = append(rs, a.Send(b.ID(), testApp, blob(size, byte(k)), nil))
		}
		me.clk.RunWhile(me.clk.Now().Add(time.Hour), func() bool {
			for _, r := range rs {
				if !r.Finished() {
					return true
				}
			}
			return false
		})
		ok := 0
		for k, r := range rs {
			if !r.Finished() {
				for _, ep := range a.eps {
					for _, o := range ep.out {
						t.Logf("res %d seq %d out: started %v fin %v waiting %v askOut %v timer %v fresh %d/%d rq %v acked %d fruitless %d", func() int {
							for i, r := range rs {
								if r == o.res {
									return i
								}
							}
							return -1
						}(), o.seqID, o.started, o.finished, o.waiting, o.askOut, o.timer != nil, o.fresh, o.count, o.rq, o.nAcked, o.silent)
					}
					t.Logf("ep frames %d wake %v notBefore %v inActive %v", len(ep.frames), ep.wake != nil, ep.notBefore, ep.inActive)
				}
				for i, r := range rs {
					t.Logf("rs[%d] finished %v err %v", i, r.Finished(), r.Err())
				}
				t.Logf("seqID %d now %v used0 %v", a.seqID, me.clk.Now(), a.seqUsed[0])
				t.Logf("link inflight %d ctrl %d active %d pending events %d", len(a.links[0].inflt), len(a.links[0].ctrl), len(a.links[0].active), me.clk.Pending())
				t.Fatalf("%s: send %d (%d bytes) never finished", name, k, sizes[k])
			}
			if r.Err() == nil {
				ok++
			}
		}
		me.clk.RunFor(time.Minute)
		// Delivered at most once each, and every confirmed one delivered.
		seen := map[int]int{}
		for _, m := range me.got[1] {
			for k, size := range sizes {
				if bytes.Equal(m.Blob, blob(size, byte(k))) {
					seen[k]++
				}
			}
		}
		for k, r := range rs {
			if seen[k] > 1 {
				t.Fatalf("%s: send %d delivered %d times", name, k, seen[k])
			}
			if r.Err() == nil && seen[k] != 1 {
				t.Fatalf("%s: send %d confirmed but not delivered", name, k)
			}
		}
		for k, r := range rs {
			if r.Err() != nil {
				t.Logf("%s: send %d (%d bytes): %v", name, k, sizes[k], r.Err())
			}
		}
		if ok < 4 && loss < 0.3 {
			t.Errorf("%s: only %d of 4 sends succeeded", name, ok)
		}
		if b.RxBytes() != 0 {
			t.Fatalf("%s: receiver holds %d bytes after a minute of quiet", name, b.RxBytes())
		}
	}
}
