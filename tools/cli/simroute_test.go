package cli

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The JSON of `sim route` carries the keys the issue names, with values
// that mean what they say; --svg writes a well-formed picture.
func TestSimRouteJSONAndSVG(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "mesh.svg")
	out, stderr, st := run("sim", "route", "--nodes", "40", "--pairs", "40", "--seed", "2", "--fail-root", "--json", "--svg", svg)
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range []string{"nodes", "edges", "trees", "diameter", "converged_s", "converged_claim_periods", "delivered", "pairs", "delivery_ratio", "unreported", "attempts_mean", "stretch_mean", "stretch_p95", "stretch_p95_all_pairs", "steady", "forming", "repair", "loops", "wall_us_per_event", "routing_window"} {
		if _, ok := r[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if r["nodes"].(float64) != 40 || r["pairs"].(float64) != 40 || r["trees"].(float64) != 6 {
		t.Errorf("nodes/pairs/trees: %v %v %v", r["nodes"], r["pairs"], r["trees"])
	}
	if r["delivery_ratio"].(float64) != 1 || r["loops"].(float64) != 0 {
		t.Errorf("delivery %v, loops %v: %v", r["delivery_ratio"], r["loops"], r["errors"])
	}
	if s := r["stretch_mean"].(float64); s < 1 || s > 1.5 {
		t.Errorf("stretch %v", s)
	}
	rep, _ := r["repair"].(map[string]any)
	after, _ := rep["after"].(map[string]any)
	during, _ := rep["during"].(map[string]any)
	if rep["event"] != "root failure" || after["delivered"] != after["pairs"] || during["unreported"] != 0.0 {
		t.Errorf("after --fail-root: %v", rep)
	}
	if st, _ := r["steady"].(map[string]any); st["frames_per_node_per_min"].(float64) <= 0 || st["airtime_share_max"].(float64) <= 0 {
		t.Errorf("steady air %v", st)
	}
	f, err := os.Open(svg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := xml.NewDecoder(f)
	circles, lines := 0, 0
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("svg does not parse: %v", err)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "circle":
				circles++
			case "line":
				lines++
			}
		}
	}
	// The legend explains every colour and mark.
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	legend := string(b)
	if i := strings.Index(legend, `<g id="legend"`); i < 0 {
		t.Error("svg has no legend")
	} else {
		legend = legend[i:]
		legend = legend[:strings.Index(legend, "</g>\n</g>")]
		for _, want := range []string{"radio link", "tree 0", "#20a040", "root of tree 0", "a sampled route", "its source", "its destination"} {
			if !strings.Contains(legend, want) {
				t.Errorf("legend lacks %q", want)
			}
		}
	}
	// A dot per node (plus the root and the route's ends), a line per link
	// and per tree edge.
	if circles < 40+3 || lines < 40+39-1 {
		t.Errorf("svg has %d circles and %d lines", circles, lines)
	}
}

// A graph file gives the topology; the table reports it.
func TestSimRouteGraphFile(t *testing.T) {
	g := filepath.Join(t.TempDir(), "ring.txt")
	var b strings.Builder
	b.WriteString("# a ring of 12 with two chords\n")
	for i := range 12 {
		b.WriteString(strings.Join([]string{itoa(i), itoa((i + 1) % 12)}, " ") + "\n")
	}
	b.WriteString("0 6\n3 9\n")
	if err := os.WriteFile(g, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, st := run("sim", "route", "--graph", g, "--pairs", "20", "--mode", "1")
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	for _, want := range []string{"12 nodes, 14 links", "mode 1", "20/20 delivered", "loops      0"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestRouteBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "route", "--mode", "2"},
		{"sim", "route", "--topology", "torus"},
		{"sim", "route", "--trees", "17"},
		{"sim", "route", "--graph", "/nonexistent/graph"},
		{"bench", "route", "--nodes", "1"},
		{"sim", "route", "--steady", "0s"},
		{"bench", "route", "--modes", "0,3", "--nodes", "10"},
	} {
		if _, _, st := run(args...); st == 0 {
			t.Errorf("%v: status 0", args)
		}
	}
}

// --steady is range-checked with a message naming the flag and the range,
// before anything runs; set, it places the routing window, which the JSON
// and the table report.
func TestSimRouteSteady(t *testing.T) {
	for _, v := range []string{"0s", "-1m", "500ms", "745h", "soon"} {
		_, stderr, st := run("sim", "route", "--nodes", "10", "--steady", v)
		if st == 0 || !strings.Contains(stderr, "--steady") || (v != "soon" && !strings.Contains(stderr, "want 1s..744h of mesh time")) {
			t.Errorf("--steady %s: status %d, %q", v, st, stderr)
		}
	}
	out, stderr, st := run("sim", "route", "--nodes", "20", "--pairs", "10", "--steady", "100s", "--json")
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	var r struct {
		Converged float64 `json:"converged_s"`
		Window    struct {
			StartS float64 `json:"start_s"`
		} `json:"routing_window"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Window.StartS != r.Converged+100 {
		t.Errorf("--steady 100s: routed from %v s, converged at %v s", r.Window.StartS, r.Converged)
	}
	out, _, _ = run("sim", "route", "--nodes", "20", "--pairs", "10", "--steady", "100s")
	if !strings.Contains(out, "routed     from ") {
		t.Errorf("table lacks the routing window:\n%s", out)
	}
}

// `bench route` prints a row per topology, size, metric and seed, then the
// means over the seeds.
func TestBenchRouteTable(t *testing.T) {
	out, stderr, st := run("bench", "route", "--topologies", "random,grid", "--nodes", "20", "--modes", "0,1", "--seeds", "1,2", "--pairs", "10")
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1+8+2+4 || !strings.HasPrefix(lines[0], "topology") {
		t.Fatalf("table:\n%s", out)
	}
	for i, want := range []string{"random         20     0     1", "random         20     0     2", "random         20     1     1", "random         20     1     2", "grid           20     0     1"} {
		if !strings.HasPrefix(lines[i+1], want) {
			t.Errorf("row %d %q does not begin %q", i+1, lines[i+1], want)
		}
	}
	if !strings.HasPrefix(lines[10], "over the seeds") || !strings.HasPrefix(lines[11], "random         20     0      2") {
		t.Errorf("summary:\n%s", strings.Join(lines[9:], "\n"))
	}
}

// --hop-auth runs every node with authenticated hops and reports what was
// tagged, opened and refused; without it the JSON has no "hop".
func TestSimRouteHopAuth(t *testing.T) {
	for _, on := range []bool{false, true} {
		args := []string{"sim", "route", "--nodes", "20", "--pairs", "20", "--seed", "3", "--json"}
		if on {
			args = append(args, "--hop-auth")
		}
		out, stderr, st := run(args...)
		if st != 0 {
			t.Fatalf("status %d: %s", st, stderr)
		}
		var r struct {
			Delivered int `json:"delivered"`
			Pairs     int `json:"pairs"`
			Hop       *struct {
				Sealed   uint64 `json:"sealed"`
				Opened   uint64 `json:"opened"`
				BadTag   uint64 `json:"bad_tag"`
				Replayed uint64 `json:"replayed"`
			} `json:"hop"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if r.Delivered != r.Pairs {
			t.Errorf("hop-auth %v: delivered %d of %d", on, r.Delivered, r.Pairs)
		}
		switch {
		case !on && r.Hop != nil:
			t.Errorf("hop counters without --hop-auth: %+v", r.Hop)
		case on && (r.Hop == nil || r.Hop.Sealed == 0 || r.Hop.Opened == 0 || r.Hop.BadTag+r.Hop.Replayed != 0):
			t.Errorf("hop counters with --hop-auth: %+v", r.Hop)
		}
	}
}

// --cpuprofile writes the run's CPU profile (gzipped pprof) where it is
// told, and only there.
func TestSimRouteCPUProfile(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "route.pprof")
	_, stderr, st := run("sim", "route", "--nodes", "20", "--degree", "5", "--pairs", "5", "--json", "--cpuprofile", prof)
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("not a gzipped profile: % x", b[:min(len(b), 8)])
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("left %d files in the directory", len(es))
	}
}
