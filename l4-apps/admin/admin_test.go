package admin

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type fakeHost struct {
	level string
	cfg   map[string]string
	down  []int
}

func (h *fakeHost) Status() (map[string]any, error) {
	return map[string]any{"name": "alpha", "peers": 2, "uptime_s": 1.5}, nil
}
func (h *fakeHost) Peers() ([]any, error) {
	return []any{map[string]any{"name": "bravo"}, map[string]any{"name": "charlie"}}, nil
}
func (h *fakeHost) Trees() ([]any, error) { return []any{}, nil }
func (h *fakeHost) Stats() (map[string]any, error) {
	return map[string]any{"node": map[string]uint64{"packets_sent": 7}}, nil
}
func (h *fakeHost) ConfigGet(k string) (string, error) {
	v, ok := h.cfg[k]
	if !ok {
		return "", errors.New("not an allowed key")
	}
	return v, nil
}
func (h *fakeHost) ConfigSet(k, v string) error {
	if _, ok := h.cfg[k]; !ok {
		return errors.New("not an allowed key")
	}
	h.cfg[k] = v
	return nil
}
func (h *fakeHost) Ping(string, time.Duration) (float64, error) { return 1.25, nil }
func (h *fakeHost) Send(string, string, []byte) error           { return nil }
func (h *fakeHost) LinkUp(int) error                            { return nil }
func (h *fakeHost) LinkDown(i int) error                        { h.down = append(h.down, i); return nil }
func (h *fakeHost) LogLevel(l string) error                     { h.level = l; return nil }

func newAdmin(t *testing.T, c Config) (*Admin, *fakeHost, string) {
	t.Helper()
	h := &fakeHost{cfg: map[string]string{"log.level": "info"}}
	c.Host = h
	c.AuditFile = filepath.Join(t.TempDir(), "audit.log")
	a, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, h, c.AuditFile
}

func audit(t *testing.T, path string) []AuditRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []AuditRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestBuiltins(t *testing.T) {
	a, h, path := newAdmin(t, Config{})
	for _, c := range []struct{ src, want string }{
		{"peers()", `[{"name": "bravo"}, {"name": "charlie"}]`},
		{"[p['name'] for p in peers()]", `["bravo", "charlie"]`},
		{"status()['name']", `"alpha"`},
		{"stats()['node']['packets_sent']", "7"},
		{"ping('bravo')", "1.25"},
		{"config_get('log.level')", `"info"`},
		{"for p in peers():\n  print(p['name'])", "bravo\ncharlie"},
		{"log_level('debug')", ""},
		{"link_down(1)", ""},
	} {
		got, err := a.Exec("local:0", "local", c.src)
		if err != nil || got != c.want {
			t.Errorf("%q: %q %v, want %q", c.src, got, err, c.want)
		}
	}
	if h.level != "debug" || len(h.down) != 1 {
		t.Errorf("host saw level %q, links down %v", h.level, h.down)
	}
	if _, err := a.Exec("local:0", "local", "config_set('node.identity', 'x')"); err == nil {
		t.Error("a key off the allow list was set")
	}
	if recs := audit(t, path); len(recs) != 10 || recs[0].Command != "peers()" || recs[0].Outcome != "ok" || recs[9].Outcome != "error" {
		t.Errorf("audit: %+v", recs)
	}
}

// No files, no processes, no loading of code: those names do not exist.
func TestSandbox(t *testing.T) {
	a, _, _ := newAdmin(t, Config{})
	for _, src := range []string{"open('/etc/passwd')", "load('x.star', 'y')", "exec('1')", "__import__('os')", "eval('1')"} {
		if _, err := a.Exec("local:0", "local", src); err == nil {
			t.Errorf("%q ran", src)
		}
	}
}

// A loop that never ends is stopped by the step limit.
func TestStepLimit(t *testing.T) {
	a, _, path := newAdmin(t, Config{Steps: 10000})
	start := time.Now()
	_, err := a.Exec("local:0", "local", "while True:\n  pass")
	if !errors.Is(err, ErrSteps) {
		t.Fatalf("%v, want ErrSteps", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopped after %v", d)
	}
	recs := audit(t, path)
	if len(recs) != 1 || recs[0].Outcome != "error" || !strings.Contains(recs[0].Result, "step limit") {
		t.Errorf("audit %+v", recs)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1e9, 0)
	a, _, path := newAdmin(t, Config{Burst: 3, Rate: 60, Now: func() time.Time { return now }})
	for i := range 3 {
		if _, err := a.Exec("op1", "remote", "1"); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	if _, err := a.Exec("op1", "remote", "1"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("fourth: %v", err)
	}
	if _, err := a.Exec("op2", "remote", "1"); err != nil {
		t.Fatalf("another operator: %v", err)
	}
	now = now.Add(time.Second) // one token a second
	if _, err := a.Exec("op1", "remote", "1"); err != nil {
		t.Fatalf("a second later: %v", err)
	}
	if recs := audit(t, path); recs[3].Outcome != "rate_limited" {
		t.Errorf("audit %+v", recs[3])
	}
}

func TestRemote(t *testing.T) {
	a, _, path := newAdmin(t, Config{})
	nonces := &Nonces{TTL: 30 * time.Second, Max: 16, Now: time.Now}
	var self [32]byte
	self[0] = 9
	opPub, opKey, _ := ed25519.GenerateKey(nil)
	strPub, strKey, _ := ed25519.GenerateKey(nil)
	var op, stranger [32]byte
	copy(op[:], opPub)
	copy(stranger[:], strPub)
	cmd := func(pub [32]byte, key ed25519.PrivateKey, text string) Command {
		n := nonces.Issue()
		return Command{Operator: pub, Nonce: n, Text: text, Sig: ed25519.Sign(key, SignedBytes(self, n, text))}
	}
	ops := [][32]byte{op}
	c := cmd(op, opKey, "peers()")
	// The wire round trip.
	dc, err := DecodeCommand(AppendCommand(nil, &c))
	if err != nil || dc.Text != "peers()" {
		t.Fatal(dc, err)
	}
	if o, text := a.Remote(self, ops, nonces, dc); o != OutcomeOK || !strings.Contains(text, "bravo") {
		t.Fatalf("operator: %d %q", o, text)
	}
	// Replayed: refused.
	if o, _ := a.Remote(self, ops, nonces, dc); o != OutcomeRefused {
		t.Fatalf("replay: %d", o)
	}
	// Another key: refused and audited.
	if o, _ := a.Remote(self, ops, nonces, cmd(stranger, strKey, "peers()")); o != OutcomeRefused {
		t.Fatalf("stranger: %d", o)
	}
	// The operator's key but another target's nonce signature: refused.
	bad := cmd(op, opKey, "peers()")
	bad.Text = "link_down(0)"
	if o, _ := a.Remote(self, ops, nonces, bad); o != OutcomeRefused {
		t.Fatalf("altered command: %d", o)
	}
	recs := audit(t, path)
	if len(recs) != 4 || recs[0].Outcome != "ok" || recs[2].Outcome != "refused" || recs[2].Operator != strings.ToLower(hexOf(stranger)) {
		t.Errorf("audit %+v", recs)
	}
}

func hexOf(b [32]byte) string {
	const d = "0123456789abcdef"
	out := make([]byte, 64)
	for i, x := range b {
		out[2*i], out[2*i+1] = d[x>>4], d[x&15]
	}
	return string(out)
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(AppendCommand(nil, &Command{Sig: make([]byte, 64), Text: "peers()"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err == nil && len(c.Text) > MaxCommand {
			t.Fatal("command over the bound")
		}
	})
}
