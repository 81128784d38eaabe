package linktest_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
	"github.com/mycelium-mesh/mycelium/l1-link/loopback"
)

// reversing is a link that completes its datagrams out of order: it holds
// the completions of a burst and hands them up last first, as a BLE link
// whose writes to different peers finish in any order would.
type reversing struct {
	link.Link
	clk  clock.Clock
	mu   sync.Mutex
	d    link.Dispatcher
	held []held
	tmr  clock.Timer
}

type held struct {
	tag link.Tag
	err error
}

func (r *reversing) Attach(d link.Dispatcher) {
	r.mu.Lock()
	r.d = d
	r.mu.Unlock()
	if d == nil {
		r.Link.Attach(nil)
		return
	}
	r.Link.Attach(dispatcher{r, d})
}

type dispatcher struct {
	r *reversing
	d link.Dispatcher
}

func (d dispatcher) DeliverFrame(f link.Frame) { d.d.DeliverFrame(f) }

// TxDone holds the completion; a millisecond after the first of a burst,
// the burst's completions go up in reverse.
func (d dispatcher) TxDone(tag link.Tag, err error) {
	r := d.r
	r.held = append(r.held, held{tag, err})
	if r.tmr == nil {
		r.tmr = r.clk.AfterFunc(time.Millisecond, func() {
			hs := r.held
			r.held, r.tmr = nil, nil
			slices.Reverse(hs)
			for _, h := range hs {
				d.d.TxDone(h.tag, h.err)
			}
		})
	}
}

// TestOutOfOrder runs the suite on a link that completes out of order:
// the suite matches completions to sends by tag, not by order.
func TestOutOfOrder(t *testing.T) {
	linktest.Run(t, func(t *testing.T) *linktest.Env {
		clk := clock.NewVirtual(time.Time{})
		hub := loopback.NewHub(clk)
		var ls []link.Link
		for range 3 {
			ls = append(ls, &reversing{Link: hub.NewLink(), clk: clk})
		}
		return linktest.Virtual(clk, time.Minute, time.Second, ls...)
	})
}

// TestRecorderCatches checks that the recorder flags completions that
// match no send: a second completion, and a tag never sent.
func TestRecorderCatches(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	hub := loopback.NewHub(clk)
	a, b := hub.NewLink(), hub.NewLink()
	var r linktest.Recorder
	a.Attach(&r)
	tag, err := r.Send(a, b.Info().Addr, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	clk.RunFor(time.Second)
	if done, err := r.Done(tag); !done || err != nil {
		t.Fatalf("done %v err %v", done, err)
	}
	r.TxDone(tag, nil)    // twice
	r.TxDone(tag+99, nil) // never sent
	ft := &fakeT{TB: t}
	r.Check(ft)
	if ft.errors != 2 {
		t.Fatalf("%d errors flagged, want 2", ft.errors)
	}
}

type fakeT struct {
	testing.TB
	errors int
}

func (f *fakeT) Helper()           {}
func (f *fakeT) Error(args ...any) { f.errors++ }
