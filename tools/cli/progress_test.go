package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fakeClock is a progress clock moved by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestProgress(mode string) (*progress, *bytes.Buffer, *fakeClock) {
	var b bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := newProgress(mode, &b)
	p.now = clk.now
	return p, &b, clk
}

// Piped: a line when a stage begins, then a percentage line only when the
// stage has run lineEvery since the last line.
func TestProgressLines(t *testing.T) {
	p, b, clk := newTestProgress("lines")
	p.report("building nodes", 0, 100)
	p.report("building nodes", 50, 100)
	clk.t = clk.t.Add(lineEvery - time.Second)
	p.report("building nodes", 60, 100)
	clk.t = clk.t.Add(time.Second)
	p.report("building nodes", 70, 100)
	p.report("converging", 1, 10)
	p.report("routing", 0, 0)
	p.finish()
	want := "building nodes\nbuilding nodes: 70%\nconverging\nrouting\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}

// On a terminal: one line redrawn, at most every barEvery, cleared at the
// end.
func TestProgressBar(t *testing.T) {
	p, b, clk := newTestProgress("bar")
	p.prefix = "row 1 of 2 (20 nodes, mode 0): "
	p.report("converging", 0, 200)
	p.report("converging", 100, 200) // too soon
	clk.t = clk.t.Add(barEvery)
	p.report("converging", 100, 200)
	p.report("routing", 3, 0)
	p.finish()
	want := "\r\x1b[Krow 1 of 2 (20 nodes, mode 0): converging   0%" +
		"\r\x1b[Krow 1 of 2 (20 nodes, mode 0): converging  50%" +
		"\r\x1b[Krow 1 of 2 (20 nodes, mode 0): routing" +
		"\r\x1b[K"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
	var none *progress = newProgress("never", b)
	none.report("x", 1, 2) // a nil progress takes every call
	none.finish()
	if none.fn() != nil {
		t.Fatal("never: a progress function")
	}
}

// `auto` draws lines when stderr is not a terminal (here, a file).
func TestProgressAutoIsLinesOffTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "err"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p := newProgress("auto", f); p == nil || p.bar {
		t.Fatal("auto on a file: not lines")
	}
}

// The simulators tell their stages: sim route a line each when piped, bench
// route with the row, sim its mesh time; --progress never keeps quiet.
func TestProgressOfTheSimulators(t *testing.T) {
	_, stderr, st := runIn(t, strings.NewReader(""), "sim", "route", "--nodes", "20", "--pairs", "5", "--degree", "5")
	if st != 0 {
		t.Fatalf("%d %s", st, stderr)
	}
	for _, stage := range []string{"building nodes\n", "converging\n", "storing names\n", "steady state\n", "routing\n", "waiting for receipts\n"} {
		if !strings.Contains(stderr, stage) {
			t.Errorf("sim route: no %q in %q", stage, stderr)
		}
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("sim route: a bar when piped: %q", stderr)
	}
	_, stderr, _ = runIn(t, strings.NewReader(""), "bench", "route", "--nodes", "20", "--modes", "1", "--pairs", "5", "--degree", "5")
	if !strings.Contains(stderr, "row 1 of 1 (random, 20 nodes, seed 1): converging\n") {
		t.Errorf("bench route: %q", stderr)
	}
	_, stderr, _ = runIn(t, strings.NewReader(""), "sim", "--duration", "1m", "--nodes", "4")
	if stderr != "building nodes\nsimulating 1m of mesh time\n" {
		t.Errorf("sim: %q", stderr)
	}
	_, stderr, _ = runIn(t, strings.NewReader(""), "bench", "transfer", "--runs", "2", "--progress", "bar")
	if !strings.Contains(stderr, "\r\x1b[K2 runs   0%") || !strings.HasSuffix(stderr, "\r\x1b[K") {
		t.Errorf("bench transfer --progress bar: %q", stderr)
	}
	_, stderr, _ = runIn(t, strings.NewReader(""), "sim", "--duration", "1m", "--nodes", "4", "--progress", "never")
	if stderr != "" {
		t.Errorf("--progress never: %q", stderr)
	}
}

// Figures say what they are: none completed rather than 0.000, mesh time,
// units, per receiver, the time spent building the mesh.
func TestHonestNumbers(t *testing.T) {
	// (At 90 % loss each way the 802.11 retries still get a Package
	// through; at 99.5 % nothing does.)
	out, stderr, st := runIn(t, strings.NewReader(""), "bench", "transfer", "--loss", "0.995", "--runs", "2", "--progress", "never")
	if st != 0 {
		t.Fatalf("%d %s", st, stderr)
	}
	if !strings.Contains(out, "runs        2, 0 completed") || strings.Count(out, "none completed") != 2 || strings.Contains(out, "0.000 s") {
		t.Errorf("no run completed:\n%s", out)
	}
	out, _, _ = runIn(t, strings.NewReader(""), "bench", "transfer", "--loss", "0.995", "--runs", "1", "--json", "--progress", "never")
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"bound_s", "mean_s", "p95_s", "efficiency_mean", "efficiency_p95", "goodput_kbps"} {
		if v, ok := r[k]; !ok || v != nil {
			t.Errorf("none completed: %s = %v, want null", k, v)
		}
	}
	out, _, _ = runIn(t, strings.NewReader(""), "bench", "transfer", "--link", "lora", "--size", "1000", "--runs", "2", "--progress", "never")
	if !strings.Contains(out, "in mesh time") || !strings.Contains(out, "mean ") || !strings.Contains(out, "p95 ") {
		t.Errorf("LoRa times without mean, p95 or mesh time:\n%s", out)
	}
	out, _, _ = runIn(t, strings.NewReader(""), "sim", "--duration", "2m", "--progress", "never")
	for _, want := range []string{"reassembly buffers ", " bytes, send cache ", "per receiver: ", "receptions lost to collisions", "s building the mesh", "s of mesh time on average", "in mesh time"} {
		if !strings.Contains(out, want) {
			t.Errorf("sim table lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runIn(t, strings.NewReader(""), "sim", "--duration", "1m", "--nodes", "4", "--json", "--progress", "never")
	if !strings.Contains(out, `"setup_wall_time_s":`) {
		t.Errorf("sim JSON lacks the setup time: %s", out)
	}
	// No transfer, no latency: null and "none confirmed", not 0.000.
	out, _, _ = runIn(t, strings.NewReader(""), "sim", "--duration", "1m", "--nodes", "4", "--transfers", "0", "--json", "--progress", "never")
	if !strings.Contains(out, `"mean_latency_s":null`) {
		t.Errorf("sim JSON without transfers: %s", out)
	}
	out, _, _ = runIn(t, strings.NewReader(""), "sim", "--duration", "1m", "--nodes", "4", "--transfers", "0", "--progress", "never")
	if !regexp.MustCompile(`\nlatency +none confirmed\n`).MatchString(out) {
		t.Errorf("sim table without transfers:\n%s", out)
	}
	out, _, _ = runIn(t, strings.NewReader(""), "sim", "route", "--nodes", "2", "--degree", "1", "--pairs", "2", "--progress", "never")
	for _, want := range []string{"2 nodes, 1 link ", "deepest    1 level\n", "s building the mesh"} {
		if !strings.Contains(out, want) {
			t.Errorf("route table lacks %q:\n%s", want, out)
		}
	}
}

// A root whose death cuts the graph into single nodes: the table says
// nothing is left to route rather than a repair.
func TestRootFailureThatCutsTheGraph(t *testing.T) {
	g := filepath.Join(t.TempDir(), "line.txt")
	if err := os.WriteFile(g, []byte("0 1\n1 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, st := runIn(t, strings.NewReader(""), "sim", "route", "--graph", g, "--fail-root", "--pairs", "3", "--progress", "never")
	if st != 0 {
		t.Fatalf("%d %s", st, stderr)
	}
	if !regexp.MustCompile(`failure +root failure: 1 node dead, 2 pieces left`).MatchString(out) {
		t.Fatalf("with seed 1 the root of tree 0 is no longer the middle of the line (pick a seed where it is):\n%s", out)
	}
	if !regexp.MustCompile(`repaired +no piece of two nodes or more left: nothing to route`).MatchString(out) {
		t.Fatalf("table:\n%s", out)
	}
}
