// Package linktest is the conformance suite every link.Link passes: send,
// receive, broadcast, oversize rejection, counters, transmit completions and
// close. A driver's test builds an Env and calls Run.
package linktest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// Env is a set of links that can all reach each other.
type Env struct {
	// Links are at least three fresh links, none attached yet.
	Links []link.Link
	// Wait drives the links' clock (runs a virtual clock, or waits on a real
	// one) until cond returns true; it returns false if cond never does
	// within the environment's patience. cond is safe to call at any time.
	Wait func(cond func() bool) bool
	// Settle lets in-flight traffic finish (for checks that nothing arrives).
	Settle func()
}

// Factory builds a fresh Env for one subtest; it registers its own cleanup.
type Factory func(t *testing.T) *Env

// Recorder is a Dispatcher that keeps what it is handed.
type Recorder struct {
	mu     sync.Mutex
	frames []link.Frame
	txDone int
	txErrs int
}

// DeliverFrame keeps a copy of the frame.
func (r *Recorder) DeliverFrame(f link.Frame) {
	f.Data = bytes.Clone(f.Data)
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

// TxDone counts completions.
func (r *Recorder) TxDone(err error) {
	r.mu.Lock()
	r.txDone++
	if err != nil {
		r.txErrs++
	}
	r.mu.Unlock()
}

// Frames returns the frames received so far.
func (r *Recorder) Frames() []link.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]link.Frame(nil), r.frames...)
}

// TxDoneCount returns the number of TxDone calls.
func (r *Recorder) TxDoneCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.txDone
}

// Has reports whether a frame with this payload arrived from src.
func (r *Recorder) Has(src link.Addr, data []byte) bool {
	for _, f := range r.Frames() {
		if f.Src == src && bytes.Equal(f.Data, data) {
			return true
		}
	}
	return false
}

func attach(e *Env) []*Recorder {
	rs := make([]*Recorder, len(e.Links))
	for i, l := range e.Links {
		rs[i] = &Recorder{}
		l.Attach(rs[i])
	}
	return rs
}

// Run runs the suite.
func Run(t *testing.T, newEnv Factory) {
	t.Run("Info", func(t *testing.T) {
		e := newEnv(t)
		if len(e.Links) < 3 {
			t.Fatalf("env has %d links, need 3", len(e.Links))
		}
		seen := map[link.Addr]bool{}
		for _, l := range e.Links {
			in := l.Info()
			if in.Name == "" || in.Addr == nil || in.MTU <= 0 || in.Bitrate <= 0 || len(in.Schemas) == 0 || in.TxQueue <= 0 {
				t.Fatalf("incomplete info %+v", in)
			}
			if in.Addr.IsBroadcast() {
				t.Fatalf("own address %v is broadcast", in.Addr)
			}
			if seen[in.Addr] {
				t.Fatalf("two links share address %v", in.Addr)
			}
			seen[in.Addr] = true
			if in.ID() != link.InterfaceID(in.Name, uint32(in.Bitrate), in.Schemas) {
				t.Fatal("interface id")
			}
		}
	})
	t.Run("Unicast", func(t *testing.T) {
		e := newEnv(t)
		rs := attach(e)
		a, b, c := e.Links[0], e.Links[1], e.Links[2]
		msg := []byte("unicast \x00\r\n, payload")
		if err := a.Send(b.Info().Addr, msg); err != nil {
			t.Fatalf("send: %v", err)
		}
		msg[0] = 'X' // the link copied it
		want := []byte("unicast \x00\r\n, payload")
		if !e.Wait(func() bool { return rs[1].Has(a.Info().Addr, want) }) {
			t.Fatalf("b did not receive; got %v", rs[1].Frames())
		}
		if !e.Wait(func() bool { return rs[0].TxDoneCount() == 1 }) {
			t.Fatalf("TxDone called %d times, want 1", rs[0].TxDoneCount())
		}
		e.Settle()
		for _, f := range rs[2].Frames() {
			if bytes.Equal(f.Data, want) {
				t.Fatalf("c received a frame unicast to b: %+v", f)
			}
		}
		if f := rs[1].Frames()[0]; f.Broadcast {
			t.Fatal("unicast frame marked broadcast")
		}
		_ = c
	})
	t.Run("Broadcast", func(t *testing.T) {
		e := newEnv(t)
		rs := attach(e)
		a := e.Links[0]
		msg := []byte("to everyone")
		if err := a.Send(link.Broadcast, msg); err != nil {
			t.Fatalf("send: %v", err)
		}
		ok := e.Wait(func() bool {
			for _, r := range rs[1:] {
				if !r.Has(a.Info().Addr, msg) {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatal("not every link received the broadcast")
		}
		e.Settle()
		if len(rs[0].Frames()) != 0 {
			t.Fatalf("sender heard its own broadcast: %v", rs[0].Frames())
		}
		for i, r := range rs[1:] {
			for _, f := range r.Frames() {
				// A link that cannot tell reports false; any other must say so.
				noDest := e.Links[i+1].Info().Caps.Has(link.CapNoRxDest)
				if f.Broadcast == noDest {
					t.Fatalf("link %d: broadcast frame has Broadcast=%v (CapNoRxDest %v)", i+1, f.Broadcast, noDest)
				}
			}
		}
	})
	t.Run("Oversize", func(t *testing.T) {
		e := newEnv(t)
		rs := attach(e)
		a, b := e.Links[0], e.Links[1]
		mtu := a.Info().MTU
		if err := a.Send(b.Info().Addr, make([]byte, mtu+1)); !errors.Is(err, link.ErrTooBig) {
			t.Fatalf("send of MTU+1: %v, want ErrTooBig", err)
		}
		if got := a.Counters().Drops[link.DropOversize]; got != 1 {
			t.Fatalf("oversize drops %d, want 1", got)
		}
		full := bytes.Repeat([]byte{0x5a}, mtu)
		if err := a.Send(b.Info().Addr, full); err != nil {
			t.Fatalf("send of exactly MTU: %v", err)
		}
		if !e.Wait(func() bool { return rs[1].Has(a.Info().Addr, full) }) {
			t.Fatal("MTU-sized datagram did not arrive")
		}
	})
	t.Run("Counters", func(t *testing.T) {
		e := newEnv(t)
		rs := attach(e)
		a, b := e.Links[0], e.Links[1]
		const n = 5
		sent := 0
		for i := range n {
			msg := []byte(fmt.Sprintf("frame %d", i))
			if err := a.Send(b.Info().Addr, msg); err != nil {
				if errors.Is(err, link.ErrBusy) {
					// Wait for room, as a node's pump would.
					e.Wait(func() bool { return rs[0].TxDoneCount() >= sent })
					if err = a.Send(b.Info().Addr, msg); err != nil {
						t.Fatal(err)
					}
				} else {
					t.Fatal(err)
				}
			}
			sent++
		}
		if !e.Wait(func() bool { return len(rs[1].Frames()) >= n && rs[0].TxDoneCount() == n }) {
			t.Fatalf("received %d of %d, %d TxDone", len(rs[1].Frames()), n, rs[0].TxDoneCount())
		}
		ca, cb := a.Counters(), b.Counters()
		if ca.TxFrames != n || ca.TxBytes != uint64(5*len("frame 0")) {
			t.Fatalf("sender counters %+v", ca)
		}
		if cb.RxFrames < n || cb.RxBytes < uint64(5*len("frame 0")) {
			t.Fatalf("receiver counters %+v", cb)
		}
	})
	t.Run("Detached", func(t *testing.T) {
		e := newEnv(t)
		rs := attach(e)
		a, b := e.Links[0], e.Links[1]
		b.Attach(nil)
		if err := a.Send(b.Info().Addr, []byte("nobody home")); err != nil {
			t.Fatal(err)
		}
		if !e.Wait(func() bool { return b.Counters().Drops[link.DropNoHandler] == 1 }) {
			t.Fatalf("detached link counters %+v", b.Counters())
		}
		_ = rs
	})
	t.Run("Close", func(t *testing.T) {
		e := newEnv(t)
		attach(e)
		a, b := e.Links[0], e.Links[1]
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.Send(b.Info().Addr, []byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("send after close: %v", err)
		}
		if err := a.Send(link.Broadcast, []byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("broadcast after close: %v", err)
		}
		if err := a.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second close: %v", err)
		}
		_ = a.Counters()
		_ = a.Info()
	})
	t.Run("WrongAddress", func(t *testing.T) {
		e := newEnv(t)
		attach(e)
		a := e.Links[0]
		if err := a.Send(foreign{}, []byte("x")); !errors.Is(err, link.ErrAddr) {
			t.Fatalf("send to a foreign address: %v", err)
		}
	})
}

type foreign struct{}

func (foreign) Network() string   { return "foreign" }
func (foreign) String() string    { return "foreign" }
func (foreign) IsBroadcast() bool { return false }
