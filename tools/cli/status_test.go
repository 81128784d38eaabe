package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mycelium/tools/control"
)

// mycelium status shows the periods the node runs at: its links' profile
// and the keys its configuration set in the profile's place.
func TestStatusShowsTiming(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	st := control.Status{NodeID: "5d14", Links: []control.Link{{Type: "rylr998"}}, Trees: []control.TreePos{},
		Timing: &control.Timing{Profile: "lora", BeaconS: 3600, ClaimS: 1800, Trees: 1, EpochPeriods: 336, HelloS: 7200, RefreshS: 86400, Explicit: []string{"routing.claim_period"}}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	out, errOut, code := run("status", "--socket", sock)
	if code != 0 {
		t.Fatalf("status: %d %s", code, errOut)
	}
	want := "lora: beacon every 1h0m0s, trees 1, claims every 30m0s, term 336 claims, gossip hello every 2h0m0s, services announced every 24h0m0s (set: routing.claim_period)"
	if !strings.Contains(out, want) {
		t.Errorf("status prints\n%s\nwant a line with %q", out, want)
	}
	out, _, code = run("status", "--socket", sock, "--json")
	var got control.Status
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got.Timing == nil || got.Timing.Profile != "lora" || got.Timing.ClaimS != 1800 {
		t.Errorf("status --json: %d %v %s", code, err, out)
	}
}
