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
		{"sim", "--reference-nodes", "-1"},
		{"sim", "--nodes", "10", "--reference-nodes", "11"},
		{"sim", "--link", "lora", "--reference-nodes", "1"},
		{"bench", "transfer", "--link", "lora", "--reference"},
		{"bench", "transfer", "--size", "10"},
		{"bench", "transfer", "--link", "ble"},
		{"bench", "transfer", "--loss", "1"},
		{"bench", "transfer", "--rate", "7"},
		{"bench", "transfer", "--link", "lora", "--rate", "1"},
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
	for _, k := range []string{"link", "size", "loss", "runs", "completed", "bound_s", "mean_s", "p95_s", "efficiency_mean", "efficiency_p95", "goodput_kbps"} {
		if _, ok := r[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if r["link"] != "espnow" || r["size"].(float64) != 20000 || r["completed"].(float64) != 3 {
		t.Fatalf("%v", r)
	}
	if e, p := r["efficiency_mean"].(float64), r["efficiency_p95"].(float64); e <= 0.5 || e > 1 || p > e {
		t.Fatalf("efficiency mean %v, p95 %v", e, p)
	}
	tbl, _, st := run("bench", "transfer", "--link", "lora", "--size", "2000", "--runs", "1")
	if st != 0 || !strings.Contains(tbl, "efficiency") || !strings.Contains(tbl, "SF9/BW125") {
		t.Fatalf("%d %s", st, tbl)
	}
}

func TestSimReferenceNodes(t *testing.T) {
	out, stderr, st := run("sim", "--reference-nodes", "5", "--duration", "3m", "--json")
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	var r struct {
		Transfers struct {
			Unreported *int `json:"unreported"`
			Boards     *struct {
				Nodes       int `json:"nodes"`
				SentTo      int `json:"sent_to"`
				ConfirmedTo int `json:"confirmed_to"`
				FailedTo    int `json:"failed_to"`
			} `json:"reference_boards"`
		} `json:"transfers"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	b := r.Transfers.Boards
	if r.Transfers.Unreported == nil || *r.Transfers.Unreported != 0 || b == nil || b.Nodes != 5 || b.SentTo == 0 {
		t.Fatalf("%s", out)
	}
	tbl, _, st := run("sim", "--reference-nodes", "5", "--duration", "3m")
	if st != 0 || !strings.Contains(tbl, "reference boards  5; our sends to them") || !strings.Contains(tbl, "unreported        0 confirmed but never delivered") {
		t.Fatalf("%d\n%s", st, tbl)
	}
	// Without boards the table still says nothing went unreported.
	tbl, _, _ = run("sim", "--duration", "1m")
	if strings.Contains(tbl, "reference boards") || !strings.Contains(tbl, "unreported") {
		t.Fatalf("%s", tbl)
	}
}

func TestBenchTransferReference(t *testing.T) {
	out, stderr, st := run("bench", "transfer", "--reference", "--size", "10272", "--loss", "0.1", "--runs", "5", "--json")
	if st != 0 {
		t.Fatalf("%d %s", st, stderr)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r["reference"] != true || r["schema"].(float64) != 2 || r["packets"].(float64) != 43 || r["completed"].(float64) != 5 {
		t.Fatalf("%v", r)
	}
	if m, p := r["mean_s"].(float64), r["p95_s"].(float64); m <= 0 || p < m*0.5 {
		t.Fatalf("mean %v p95 %v", m, p)
	}
}
