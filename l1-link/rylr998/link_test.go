package rylr998_test

import (
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998/emulator"
)

var (
	_ link.Link             = (*rylr998.Link)(nil)
	_ link.AirtimeEstimator = (*rylr998.Link)(nil)
	_ link.Sleeper          = (*rylr998.Link)(nil)
)

// The driver passes the conformance suite against three emulated modules
// on one medium, each through its own pseudo-terminal. It declares
// CapNoRxDest: a +RCV line names only the sender, so the suite checks that
// Frame.Broadcast is false for unicast and broadcast alike.
func TestConformance(t *testing.T) {
	linktest.Run(t, func(t *testing.T) *linktest.Env {
		e := newEnv(t, 3, nil)
		le := &linktest.Env{Wait: waitFor, Settle: e.settle}
		for _, l := range e.links {
			le.Links = append(le.Links, l)
		}
		return le
	})
}

// The suite again, through modules that end AT+SEND's data at the first CR
// LF: with the framing, any bytes still cross.
func TestConformanceDataToCRLF(t *testing.T) {
	linktest.Run(t, func(t *testing.T) *linktest.Env {
		e := newEnvWith(t, 3, emulator.Options{DataEndsAtCRLF: true}, nil)
		le := &linktest.Env{Wait: waitFor, Settle: e.settle}
		for _, l := range e.links {
			le.Links = append(le.Links, l)
		}
		return le
	})
}

// Frame.Broadcast is false whatever the destination: the module does not
// report it.
func TestBroadcastFlagUnknown(t *testing.T) {
	e := newEnv(t, 2, nil)
	var r recorder
	e.links[1].Attach(&r)
	e.links[0].Attach(&recorder{})
	if err := e.links[0].Send(link.Broadcast, []byte("all"), 0); err != nil {
		t.Fatal(err)
	}
	if err := e.links[0].Send(e.links[1].Info().Addr, []byte("one"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool { return len(r.Frames()) == 2 }) {
		t.Fatalf("received %d frames", len(r.Frames()))
	}
	for _, f := range r.Frames() {
		if f.Broadcast {
			t.Fatalf("frame %q marked broadcast", f.Data)
		}
		if f.Src != rylr998.Addr(10) {
			t.Fatalf("source %v", f.Src)
		}
	}
	// The module heard one of each (ground truth).
	h := e.mods[1].Heard()
	if len(h) != 2 || h[0].Dst != 0 || h[1].Dst != 11 {
		t.Fatalf("heard %+v", h)
	}
}
