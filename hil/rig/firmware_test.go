package rig

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mycelium/hil/vboard"
)

type pyResult struct {
	Passed   int      `json:"passed"`
	Failed   int      `json:"failed"`
	Failures []string `json:"failures"`
	Platform string   `json:"platform"`
}

// runMicroPython runs one of boards/esp32/tests/run_*.py under MicroPython's
// WebAssembly port, with the firmware in /fw, the tests in /tests and the
// wire vectors in /vectors.
func runMicroPython(t *testing.T, script string) pyResult {
	t.Helper()
	fw := firmware(t)
	host := filepath.Join(fw, "host")
	if err := vboard.EnsureRuntime(host); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(host, "vboard.mjs"), "exec", "--heap", "8388608",
		"--put", filepath.Join(fw, "tests") + "=/tests",
		"--put", filepath.Join(fw, "..", "..", "l1-link", "vectors") + "=/vectors"}
	for _, f := range FirmwareFiles {
		args = append(args, "--put", filepath.Join(fw, f)+"=/fw/"+f)
	}
	args = append(args, filepath.Join(fw, "tests", script))
	cmd := exec.Command("node", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	return parse(t, out, err)
}

func parse(t *testing.T, out []byte, err error) pyResult {
	t.Helper()
	var r pyResult
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &r); jerr != nil {
		t.Fatalf("no result line (%v): %s", err, out)
	}
	for _, f := range r.Failures {
		t.Errorf("%s: %s", r.Platform, f)
	}
	if err != nil || r.Failed > 0 || r.Passed == 0 {
		t.Fatalf("%s: %d passed, %d failed, exit %v", r.Platform, r.Passed, r.Failed, err)
	}
	return r
}

// TestVectorsMicroPython: the board's codec against the wire vectors, under
// MicroPython (the same interpreter core as a board's).
func TestVectorsMicroPython(t *testing.T) {
	r := runMicroPython(t, "run_vectors.py")
	if r.Platform != "webassembly" || r.Passed < 3000 {
		t.Fatalf("%+v", r)
	}
	t.Logf("%s: %d vector checks passed", r.Platform, r.Passed)
}

// TestNodeMicroPython: the board's node (beacons, singles, sequences under
// loss, modem sleep, a receiver lost mid-transfer) on an in-process radio
// under MicroPython.
func TestNodeMicroPython(t *testing.T) {
	r := runMicroPython(t, "run_node.py")
	t.Logf("%s: %d node checks passed", r.Platform, r.Passed)
}

// TestFirmwareCPython: the same tests under CPython with the stand-ins
// (where python3 is installed; .ci/run installs it and sets
// MYCELIUM_REQUIRE_PYTHON, so there a missing python3 fails the test).
func TestFirmwareCPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("MYCELIUM_REQUIRE_PYTHON") != "" {
			t.Fatal("python3 not installed, and MYCELIUM_REQUIRE_PYTHON is set: the firmware's CPython run must not be skipped")
		}
		t.Skip("python3 not installed: the firmware's CPython run is skipped (MicroPython runs above)")
	}
	fw := firmware(t)
	for _, s := range []string{"vectors.py", "node_test.py"} {
		cmd := exec.Command(py, filepath.Join(fw, "tests", s), filepath.Join(fw, "..", "..", "l1-link", "vectors"))
		cmd.Env = append(cmd.Environ(), "PYTHONPATH="+fw+":"+filepath.Join(fw, "host"))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), " 0 failed") {
			t.Fatalf("python3 %s: %v\n%s", s, err, out)
		}
		t.Logf("CPython %s: %s", s, strings.TrimSpace(string(out)))
	}
}
