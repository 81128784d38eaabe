package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998/emulator"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond every millisecond for up to ten seconds.
func waitFor(cond func() bool) bool {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return cond()
		}
	}
	return true
}

// lora emulate prints one "<tty> address <n>" line per module, and lora at
// talks to those terminals.
func TestLoraEmulateAndAT(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	root := newRoot()
	root.SetArgs([]string{"lora", "emulate", "--modules", "2", "--sf", "7", "--bw", "500"})
	root.SetOut(&out)
	root.SetErr(&errb)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("emulate: %v", err)
		}
	}()
	if !waitFor(func() bool { return strings.Count(out.String(), "\n") == 2 }) {
		t.Fatalf("emulate printed %q, stderr %q", out.String(), errb.String())
	}
	lineRE := regexp.MustCompile(`^(/dev/pts/\d+) address (\d+)$`)
	var ports []string
	for i, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil || m[2] != []string{"1", "2"}[i] {
			t.Fatalf("line %q", l)
		}
		ports = append(ports, m[1])
	}
	o, e, st := run("lora", "at", "--port", ports[0], "AT+VER?")
	if st != 0 || o != "+VER="+emulator.Version+"\n" {
		t.Fatalf("at: %q %q %d", o, e, st)
	}
	o, _, st = run("lora", "at", "--port", ports[1], "AT+ADDRESS?")
	if st != 0 || o != "+ADDRESS=2\n" {
		t.Fatalf("at: %q %d", o, st)
	}
	o, _, st = run("lora", "at", "--port", ports[1], "AT+PARAMETER?")
	if st != 0 || o != "+PARAMETER=7,9,1,12\n" {
		t.Fatalf("at: %q %d", o, st)
	}
	o, _, st = run("lora", "at", "--port", ports[0], "AT+RESET")
	if st != 0 || o != "+RESET\n+READY\n" {
		t.Fatalf("reset: %q %d", o, st)
	}
	o, e, st = run("lora", "at", "--port", ports[0], "AT+NOPE")
	if st != 1 || o != "+ERR=4\n" || !strings.Contains(e, "unknown command") || strings.Count(e, "\n") != 1 {
		t.Fatalf("error: %q %q %d", o, e, st)
	}
}

// lora listen prints what lora send sends, as JSON lines.
func TestLoraSendListen(t *testing.T) {
	loop := clock.NewLoop()
	ctx, cancel := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() { loop.Run(ctx); close(loopDone) }()
	defer func() { cancel(); <-loopDone }()
	net := emulator.NewNetwork(loop, lora.Params{SF: 7, Bandwidth: 500000, CR: 1, Preamble: 12}, 1)
	defer net.Close()
	var ms []*emulator.Module
	for range 2 {
		m, err := net.AddModule(emulator.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if !waitFor(func() bool { return ms[0].Idle() && ms[1].Idle() }) {
		t.Fatal("modules did not boot")
	}
	// Generous command timeouts: the machine running the tests may be loaded.
	radio := []string{"--sf", "7", "--bw", "500", "--network-id", "5", "--timeout", "3s"}
	var lout, lerr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(append([]string{"lora", "listen", "--port", ms[1].Path(), "--address", "7", "--count", "2"}, radio...), &lout, &lerr)
	}()
	if !waitFor(func() bool { return strings.Contains(lerr.String(), "listening") }) {
		t.Fatalf("listen: %q", lerr.String())
	}
	if s := ms[1].Settings(); s.Address != 7 || s.NetworkID != 5 {
		t.Fatalf("listen did not configure the module: %+v", s)
	}
	o, e, st := run(append([]string{"lora", "send", "--port", ms[0].Path(), "--address", "5", "--to", "7", "68656c6c6f"}, radio...)...)
	if st != 0 || !strings.HasPrefix(o, "sent 5 bytes to 7 (airtime ") {
		t.Fatalf("send: %q %q %d", o, e, st)
	}
	o, e, st = run(append([]string{"lora", "send", "--port", ms[0].Path(), "--address", "5", "--to", "0", "0d0a2c00"}, radio...)...)
	if st != 0 {
		t.Fatalf("broadcast: %q %q %d", o, e, st)
	}
	select {
	case st := <-done:
		if st != 0 {
			t.Fatalf("listen: status %d: %s", st, lerr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("listen did not stop after 2 datagrams")
	}
	lines := strings.Split(strings.TrimSpace(lout.String()), "\n")
	want := []string{
		`{"src":5,"rssi":-47,"snr":10,"data":"68656c6c6f"}`,
		`{"src":5,"rssi":-47,"snr":10,"data":"0d0a2c00"}`,
	}
	if len(lines) != 2 || lines[0] != want[0] || lines[1] != want[1] {
		t.Fatalf("listen printed %q", lout.String())
	}
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil || len(r) != 4 {
			t.Fatalf("%q: %v", l, err)
		}
	}
}

func TestLoraBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"lora", "send", "--port", "/dev/null", "--address", "1", "--to", "2", "zz"},
		{"lora", "send", "--port", "/dev/null", "--address", "1", "--to", "70000", "00"},
		{"lora", "send", "--port", "/dev/null", "--address", "0", "--to", "2", "00"},
		{"lora", "send", "--port", "/dev/null", "--address", "1", "--to", "2", "--sf", "12", "00"},
		{"lora", "listen", "--address", "1"},
		{"lora", "at", "AT"},
		{"lora", "emulate", "--modules", "0"},
		{"lora", "emulate", "--bw", "62"},
		{"lora", "emulate", "--loss", "2"},
	} {
		_, e, st := run(args...)
		if st != 1 || strings.Count(e, "\n") != 1 {
			t.Errorf("%v: status %d, stderr %q", args, st, e)
		}
	}
}
