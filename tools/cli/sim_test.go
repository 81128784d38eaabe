package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSimDefaultTable(t *testing.T) {
	out, stderr, st := run("sim", "--duration", "2m")
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	for _, want := range []string{"25 nodes, grid, espnow", "packets", "bytes", "transfers", "failed", "airtime espnow", "goodput", "memory"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestSimJSON(t *testing.T) {
	dir := t.TempDir()
	out, stderr, st := run("sim", "--nodes", "12", "--topology", "random", "--degree", "4", "--link", "mixed", "--duration", "3m", "--seed", "5", "--json", "--pcap", dir)
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range []string{"nodes", "packets", "bytes", "transfers", "airtime", "goodput_bps", "memory", "drops", "wall_time_s", "mesh_time_s"} {
		if _, ok := r[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if r["nodes"].(float64) != 12 || r["link"] != "mixed" {
		t.Fatalf("%v", r)
	}
	for _, f := range []string{"espnow.pcap", "lora.pcap"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() < 100 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	// The ESP-NOW capture reads back through `mycelium pcap`.
	pc, _, st := run("pcap", filepath.Join(dir, "espnow.pcap"))
	if st != 0 || !strings.Contains(pc, `"packet":{"version":0`) {
		t.Fatalf("pcap of the simulation: %d %.200s", st, pc)
	}
}

func TestSimBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "--topology", "torus"},
		{"sim", "--link", "smoke-signals"},
		{"sim", "--loss", "1.5"},
		{"sim", "--link", "lora", "--sf", "99"},
		{"bench", "transfer", "--size", "10"},
		{"bench", "transfer", "--link", "ble"},
		{"bench", "transfer", "--loss", "1"},
	} {
		_, stderr, st := run(args...)
		if st != 1 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: status %d, stderr %q", args, st, stderr)
		}
	}
}

func TestBenchTransferJSON(t *testing.T) {
	out, stderr, st := run("bench", "transfer", "--size", "20000", "--loss", "0.1", "--runs", "3", "--json")
	if st != 0 {
		t.Fatalf("%d %s", st, stderr)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"link", "size", "loss", "runs", "completed", "median_s", "bound_s", "efficiency"} {
		if _, ok := r[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if r["link"] != "espnow" || r["size"].(float64) != 20000 || r["completed"].(float64) != 3 {
		t.Fatalf("%v", r)
	}
	if e := r["efficiency"].(float64); e <= 0.5 || e > 1.2 {
		t.Fatalf("efficiency %v", e)
	}
	tbl, _, st := run("bench", "transfer", "--link", "lora", "--size", "2000", "--runs", "1")
	if st != 0 || !strings.Contains(tbl, "efficiency") || !strings.Contains(tbl, "SF9/BW125") {
		t.Fatalf("%d %s", st, tbl)
	}
}
