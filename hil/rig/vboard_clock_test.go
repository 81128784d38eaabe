package rig

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mycelium/hil/vboard"
)

// TestVirtualBoardClock: a virtual board's time.ticks_ms() does not follow
// the host's wall clock when it steps (an NTP correction), as an ESP32's
// timer does not. The WebAssembly port reads ticks from Date.now(); before
// the host script gave it a monotonic one, a step back of a minute in the
// middle of a LoRa sequence held the board's RYLR-998 link (its busy
// back-off is a ticks deadline) for that minute: the board fell silent and
// its send ended "abandoned" (lora/sequence/board-to-node, about one CI run
// in 30).
func TestVirtualBoardClock(t *testing.T) {
	host := filepath.Join(firmware(t), "host")
	if err := vboard.EnsureRuntime(host); err != nil {
		t.Fatal(err)
	}
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	// wallstep.cjs stands for the host's wall clock (Date.now) and lets the
	// script step it; it is loaded before vboard.mjs, as the OS clock is
	// there before any process.
	cmd := exec.Command("node", "-r", filepath.Join(td, "wallstep.cjs"),
		filepath.Join(host, "vboard.mjs"), "exec", "--heap", "262144", filepath.Join(td, "ticks_step.py"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s%s", err, out, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var r struct {
		Back    *int `json:"back_ms"`
		Forward *int `json:"forward_ms"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil || r.Back == nil || r.Forward == nil {
		t.Fatalf("no result line (%v): %s%s", err, out, stderr.String())
	}
	// Each step is taken between two reads of ticks_ms a few microseconds
	// apart: the board's clock moves by that, never by the step.
	for _, c := range []struct {
		what string
		ms   int
	}{{"back a minute", *r.Back}, {"forward two minutes", *r.Forward}} {
		if c.ms < 0 || c.ms > 1000 {
			t.Errorf("the host's wall clock stepped %s: the board's ticks_ms moved %d ms", c.what, c.ms)
		}
	}
}
