// Package linktest is the conformance suite every link.Link passes: send,
// receive, broadcast, oversize rejection, counters, transmit completions and
// close. A driver's test builds an Env and calls Run.
//
// Completions are checked by tag: every datagram Send accepted is answered
// by exactly one TxDone carrying its tag, in any order (a link may finish
// datagrams out of order); a datagram Send refused, and a tag never sent,
// by none.
package linktest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
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

// Recorder is a Dispatcher that keeps what it is handed, and the tags of
// the datagrams sent through it (Send) to check completions against.
type Recorder struct {
	mu     sync.Mutex
	frames []link.Frame
	txDone int
	txErrs int
	next   link.Tag
	sent   map[link.Tag]bool  // accepted by the link, not yet completed
	done   map[link.Tag]error // completed
	bad    []string           // completions that match no send, or a second one
}

// Send sends data to dst on l with a fresh tag, remembering the tag when l
// accepts it.
func (r *Recorder) Send(l link.Link, dst link.Addr, data []byte) (link.Tag, error) {
	r.mu.Lock()
	r.next++
	tag := r.next
	if r.sent == nil {
		r.sent, r.done = map[link.Tag]bool{}, map[link.Tag]error{}
	}
	// Recorded before Send: a link may complete before Send returns.
	r.sent[tag] = true
	r.mu.Unlock()
	err := l.Send(dst, data, tag)
	if err != nil {
		r.mu.Lock()
		delete(r.sent, tag)
		if _, ok := r.done[tag]; ok {
			r.bad = append(r.bad, fmt.Sprintf("tag %d completed though Send refused it (%v)", tag, err))
		}
		r.mu.Unlock()
	}
	return tag, err
}

// DeliverFrame keeps a copy of the frame.
func (r *Recorder) DeliverFrame(f link.Frame) {
	f.Data = bytes.Clone(f.Data)
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

// TxDone counts completions and checks each against the sends.
func (r *Recorder) TxDone(tag link.Tag, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.txDone++
	if err != nil {
		r.txErrs++
	}
	if r.sent == nil {
		r.sent, r.done = map[link.Tag]bool{}, map[link.Tag]error{}
	}
	switch {
	case r.sent[tag]:
		delete(r.sent, tag)
		r.done[tag] = err
	default:
		if _, twice := r.done[tag]; twice {
			r.bad = append(r.bad, fmt.Sprintf("tag %d completed twice", tag))
		} else {
			r.bad = append(r.bad, fmt.Sprintf("tag %d completed but never sent", tag))
		}
	}
}

// Done reports whether tag was completed, and with what error.
func (r *Recorder) Done(tag link.Tag) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	err, ok := r.done[tag]
	return ok, err
}

// Outstanding is the number of accepted datagrams not yet completed.
func (r *Recorder) Outstanding() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

// Check fails t for any completion that matched no send, or came twice.
func (r *Recorder) Check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		t.Error(b)
	}
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

func attach(t *testing.T, e *Env) []*Recorder {
	rs := make([]*Recorder, len(e.Links))
	for i, l := range e.Links {
		rs[i] = &Recorder{}
		l.Attach(rs[i])
	}
	t.Cleanup(func() {
		for _, r := range rs {
			r.Check(t)
		}
	})
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
		rs := attach(t, e)
		a, b, c := e.Links[0], e.Links[1], e.Links[2]
		msg := []byte("unicast \x00\r\n, payload")
		tag, err := rs[0].Send(a, b.Info().Addr, msg)
		if err != nil {
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
		if done, err := rs[0].Done(tag); !done || err != nil {
			t.Fatalf("the datagram's completion: done %v, err %v", done, err)
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
		rs := attach(t, e)
		a := e.Links[0]
		msg := []byte("to everyone")
		tag, err := rs[0].Send(a, link.Broadcast, msg)
		if err != nil {
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
		if !e.Wait(func() bool { done, _ := rs[0].Done(tag); return done }) {
			t.Fatal("the broadcast was never completed")
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
		rs := attach(t, e)
		a, b := e.Links[0], e.Links[1]
		mtu := a.Info().MTU
		if _, err := rs[0].Send(a, b.Info().Addr, make([]byte, mtu+1)); !errors.Is(err, link.ErrTooBig) {
			t.Fatalf("send of MTU+1: %v, want ErrTooBig", err)
		}
		if got := a.Counters().Drops[link.DropOversize]; got != 1 {
			t.Fatalf("oversize drops %d, want 1", got)
		}
		full := bytes.Repeat([]byte{0x5a}, mtu)
		if _, err := rs[0].Send(a, b.Info().Addr, full); err != nil {
			t.Fatalf("send of exactly MTU: %v", err)
		}
		if !e.Wait(func() bool { return rs[1].Has(a.Info().Addr, full) }) {
			t.Fatal("MTU-sized datagram did not arrive")
		}
		// Only the accepted datagram is completed.
		if !e.Wait(func() bool { return rs[0].Outstanding() == 0 }) {
			t.Fatal("the MTU-sized datagram was never completed")
		}
		e.Settle()
		if n := rs[0].TxDoneCount(); n != 1 {
			t.Fatalf("%d completions for one accepted datagram and one refused", n)
		}
	})
	t.Run("Counters", func(t *testing.T) {
		e := newEnv(t)
		rs := attach(t, e)
		a, b := e.Links[0], e.Links[1]
		const n = 5
		var tags []link.Tag
		for i := range n {
			msg := []byte(fmt.Sprintf("frame %d", i))
			tag, err := rs[0].Send(a, b.Info().Addr, msg)
			if errors.Is(err, link.ErrBusy) {
				// Wait for room, as a node's pump would.
				e.Wait(func() bool { return rs[0].Outstanding() == 0 })
				tag, err = rs[0].Send(a, b.Info().Addr, msg)
			}
			if err != nil {
				t.Fatal(err)
			}
			tags = append(tags, tag)
		}
		if !e.Wait(func() bool { return len(rs[1].Frames()) >= n && rs[0].TxDoneCount() == n }) {
			t.Fatalf("received %d of %d, %d TxDone", len(rs[1].Frames()), n, rs[0].TxDoneCount())
		}
		for _, tag := range tags {
			if done, err := rs[0].Done(tag); !done || err != nil {
				t.Fatalf("datagram %d: done %v, err %v", tag, done, err)
			}
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
		rs := attach(t, e)
		a, b := e.Links[0], e.Links[1]
		b.Attach(nil)
		if _, err := rs[0].Send(a, b.Info().Addr, []byte("nobody home")); err != nil {
			t.Fatal(err)
		}
		if !e.Wait(func() bool { return b.Counters().Drops[link.DropNoHandler] == 1 }) {
			t.Fatalf("detached link counters %+v", b.Counters())
		}
	})
	t.Run("Close", func(t *testing.T) {
		e := newEnv(t)
		rs := attach(t, e)
		a, b := e.Links[0], e.Links[1]
		// Datagrams accepted just before Close are each completed once,
		// whether they left or not.
		accepted := 0
		for i := range 3 {
			if _, err := rs[0].Send(a, b.Info().Addr, []byte{byte(i)}); err == nil {
				accepted++
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := rs[0].Send(a, b.Info().Addr, []byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("send after close: %v", err)
		}
		if _, err := rs[0].Send(a, link.Broadcast, []byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("broadcast after close: %v", err)
		}
		if !e.Wait(func() bool { return rs[0].Outstanding() == 0 }) {
			t.Fatalf("%d of %d datagrams accepted before Close never completed", rs[0].Outstanding(), accepted)
		}
		e.Settle()
		if n := rs[0].TxDoneCount(); n != accepted {
			t.Fatalf("%d completions for %d accepted datagrams", n, accepted)
		}
		if err := a.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second close: %v", err)
		}
		_ = a.Counters()
		_ = a.Info()
	})
	t.Run("WrongAddress", func(t *testing.T) {
		e := newEnv(t)
		rs := attach(t, e)
		a := e.Links[0]
		if _, err := rs[0].Send(a, foreign{}, []byte("x")); !errors.Is(err, link.ErrAddr) {
			t.Fatalf("send to a foreign address: %v", err)
		}
		// Another kind's broadcast address is a foreign address too: only
		// link.Broadcast (or the link's own kind of broadcast) means everyone.
		if _, err := rs[0].Send(a, foreign{bcast: true}, []byte("x")); !errors.Is(err, link.ErrAddr) {
			t.Fatalf("send to a foreign broadcast address: %v", err)
		}
		if _, err := rs[0].Send(a, nil, []byte("x")); !errors.Is(err, link.ErrAddr) {
			t.Fatalf("send to nil: %v", err)
		}
		e.Settle()
		if n := rs[0].TxDoneCount(); n != 0 {
			t.Fatalf("%d completions for refused datagrams", n)
		}
	})
}

type foreign struct{ bcast bool }

func (foreign) Network() string     { return "foreign" }
func (foreign) String() string      { return "foreign" }
func (f foreign) IsBroadcast() bool { return f.bcast }

// Virtual returns an Env of links that run on the virtual clock clk: Wait
// runs it for at most patience of its time, Settle for settle.
func Virtual(clk *clock.Virtual, patience, settle time.Duration, links ...link.Link) *Env {
	return &Env{
		Links: links,
		Wait: func(cond func() bool) bool {
			return clk.RunWhile(clk.Now().Add(patience), func() bool { return !cond() }) || cond()
		},
		Settle: func() { clk.RunFor(settle) },
	}
}
