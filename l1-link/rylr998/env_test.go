package rylr998_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998/emulator"
)

// fast keeps the tests quick: SF7 at 500 kHz puts 240 bytes on the air in
// under 100 ms.
var fast = lora.Params{SF: 7, Bandwidth: 500000, CR: 1, Preamble: 12}

// patience bounds every wait on the real clock.
const patience = 10 * time.Second

// runLoop starts a real-time clock loop for the test.
func runLoop(t *testing.T) *clock.Loop {
	loop := clock.NewLoop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return loop
}

// waitFor polls cond every millisecond until it holds or patience runs out.
func waitFor(cond func() bool) bool {
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return cond()
		}
	}
}

// barrier returns once everything already queued on loop has run.
func barrier(loop *clock.Loop) {
	done := make(chan struct{})
	loop.AfterFunc(0, func() { close(done) })
	<-done
}

// env is emulated modules on one medium (on their own loop) and a driver
// on each module's terminal (on another loop, as on another machine).
type env struct {
	t      *testing.T
	netClk *clock.Loop
	drvClk *clock.Loop
	net    *emulator.Network
	mods   []*emulator.Module
	links  []*rylr998.Link
	closed []atomic.Bool
}

// newEnv starts n modules and opens a driver on each through its pty, as
// a serial device; edit adjusts driver i's Config. The drivers use
// FrameBytes (most tests send text); edit may set another framing.
func newEnv(t *testing.T, n int, edit func(i int, c *rylr998.Config)) *env {
	return newEnvWith(t, n, emulator.Options{}, edit)
}

// newEnvWith is newEnv with modules made with o.
func newEnvWith(t *testing.T, n int, o emulator.Options, edit func(i int, c *rylr998.Config)) *env {
	t.Helper()
	e := &env{t: t, netClk: runLoop(t), drvClk: runLoop(t)}
	e.net = emulator.NewNetwork(e.netClk, fast, 1)
	t.Cleanup(func() { e.net.Close() })
	for range n {
		m, err := e.net.AddModule(o)
		if err != nil {
			t.Fatal(err)
		}
		e.mods = append(e.mods, m)
	}
	// Let the modules boot (their +READY is then stale when a driver opens
	// the terminal, and flushed).
	if !waitFor(func() bool {
		for _, m := range e.mods {
			if !m.Idle() {
				return false
			}
		}
		return true
	}) {
		t.Fatal("modules did not boot")
	}
	e.closed = make([]atomic.Bool, n)
	for i, m := range e.mods {
		c := rylr998.Config{
			Port: m.Path(), Address: uint16(10 + i), Params: fast, Clock: e.drvClk,
			Framing: rylr998.FrameBytes,
			// Generous: the machine running the tests may be loaded; the
			// timeout tests set their own.
			CommandTimeout: 2 * time.Second,
		}
		if edit != nil {
			edit(i, &c)
		}
		l, err := rylr998.Open(c)
		for try := 1; errors.Is(err, rylr998.ErrTimeout) && try < 3; try++ {
			// Short timeouts on a loaded machine: try again.
			t.Logf("open module %d: %v; again", i, err)
			l, err = rylr998.Open(c)
		}
		if err != nil {
			t.Fatalf("open module %d: %v", i, err)
		}
		t.Cleanup(func() {
			if !e.closed[i].Swap(true) {
				l.Close()
			}
		})
		e.links = append(e.links, l)
	}
	return e
}

// dataModes runs f against modules that read AT+SEND's data by its length
// and against modules that end it at the first CR LF.
func dataModes(t *testing.T, f func(t *testing.T, o emulator.Options)) {
	for _, crlf := range []bool{false, true} {
		name := "by-length"
		if crlf {
			name = "ends-at-crlf"
		}
		t.Run(name, func(t *testing.T) { f(t, emulator.Options{DataEndsAtCRLF: crlf}) })
	}
}

// settle waits until nothing is in flight: every module idle, and every
// +RCV a module wrote read by its (open) driver and run on the driver's
// loop.
func (e *env) settle() {
	waitFor(func() bool {
		for i, m := range e.mods {
			if !m.Idle() {
				return false
			}
			if !e.closed[i].Load() && m.Stats().Received != e.links[i].Health().Frames {
				return false
			}
		}
		return true
	})
	barrier(e.drvClk)
}

// recorder keeps what a link hands up.
type recorder struct {
	mu     sync.Mutex
	frames []link.Frame
	errs   []error
	done   int
}

func (r *recorder) DeliverFrame(f link.Frame) {
	f.Data = bytes.Clone(f.Data)
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

func (r *recorder) TxDone(_ link.Tag, err error) {
	r.mu.Lock()
	r.done++
	if err != nil {
		r.errs = append(r.errs, err)
	}
	r.mu.Unlock()
}

func (r *recorder) Frames() []link.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]link.Frame(nil), r.frames...)
}

func (r *recorder) Done() (int, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done, append([]error(nil), r.errs...)
}

func (r *recorder) has(data []byte) bool {
	for _, f := range r.Frames() {
		if bytes.Equal(f.Data, data) {
			return true
		}
	}
	return false
}
