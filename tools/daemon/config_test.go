package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The file init writes is the defaults, every option present: parsed, it
// is Defaults() plus the UDP link; and every option of the configuration
// appears in it (a new option without a line in the template fails here).
func TestTemplateIsDefaults(t *testing.T) {
	text, err := Template(InitOptions{Name: "pi-1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(text, "/etc/mycelium/mycelium.toml")
	if err != nil {
		t.Fatalf("the template does not parse: %v", err)
	}
	want := Defaults()
	want.Node.Name = "pi-1"
	want.Links = []LinkConfig{linkDefaults("udp")}
	want.Links[0].Peers = []string{}
	want.Path = "/etc/mycelium/mycelium.toml"
	if !reflect.DeepEqual(*cfg, want) {
		t.Fatalf("template parses to\n%+v\nwant\n%+v", *cfg, want)
	}
	for _, sec := range []any{cfg.Node, cfg.Control, cfg.Metrics, cfg.Log, cfg.Routing, cfg.Budgets, cfg.Stream} {
		for _, key := range tomlKeys(sec) {
			// The periods the links' profile fills are there commented
			// out: written, they would pin a LoRa node to ESP-NOW's.
			line := "\n" + key + " = "
			if profileKeys[key] {
				line = "\n# " + key + " = "
			}
			if !strings.Contains(text, line) {
				t.Errorf("option %s is not in the template (as %q)", key, line[1:])
			}
		}
	}
	for typ, keys := range linkKeys {
		for _, k := range keys {
			if !strings.Contains(text, k+" = ") {
				t.Errorf("%s link option %s is not in the template", typ, k)
			}
		}
	}
	// The commented-out links are complete configurations too.
	for _, typ := range []string{"espnow", "rylr998"} {
		i := strings.Index(text, "# type = \""+typ+"\"")
		if i < 0 {
			t.Fatalf("no %s example", typ)
		}
		block := text[strings.LastIndex(text[:i], "# [[link]]"):]
		if j := strings.Index(block[1:], "\n\n"); j > 0 {
			block = block[:j+1]
		}
		var lines []string
		for _, l := range strings.Split(block, "\n") {
			l = strings.TrimPrefix(l, "# ")
			if !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		ex := text[:strings.Index(text, "\n[[link]]\n")+1] + strings.Join(lines, "\n")
		if _, err := Parse(ex, "/x/mycelium.toml"); err != nil {
			t.Errorf("the %s example does not parse: %v", typ, err)
		}
	}
}

// profileKeys are the options the links' profile fills when left out.
var profileKeys = map[string]bool{"beacon_period": true, "trees": true, "claim_period": true, "epoch_periods": true}

func tomlKeys(v any) []string {
	var out []string
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		if k := rt.Field(i).Tag.Get("toml"); k != "" && k != "-" {
			out = append(out, k)
		}
	}
	return out
}

func TestParseErrorsNameTheKey(t *testing.T) {
	good, err := Template(InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`# trees = 6`, `trees = 0`, "routing.trees"},
		{`metric = "tree"`, `metric = "fastest"`, "routing.metric"},
		{`# epoch_periods = 45`, `epoch_periods = 0`, "routing.epoch_periods"},
		{`level = "info"`, `level = "loud"`, "log.level"},
		{`format = "auto"`, `format = "xml"`, "log.format"},
		{`socket = "mycelium.sock"`, `socket = ""`, "control.socket"},
		{`chunk = 24576`, `chunk = 100000`, "stream.chunk"},
		{`# beacon_period = "1m0s"`, `beacon_period = "10ms"`, "node.beacon_period"},
		{`# claim_period = "20s"`, `claim_period = "10ms"`, "routing.claim_period"},
		{`hops = 1`, `hops = 0`, "hops"},
		{`listen = "0.0.0.0:4242"`, `listen = "nowhere"`, "listen"},
		{`group = "239.255.77.77:4242"`, `group = ""`, "no peers"},
		{`peers = []`, `peers = ["1.2.3.4"]`, "peers"},
		{`listen = ""`, `listen = "localhost"`, "metrics.listen"},
		{`rx_total = 524288`, `rx_total = -1`, "budgets.rx_total"},
		{`[routing]`, "[routing]\nspeed = 3", `"routing.speed"`},
	} {
		if !strings.Contains(good, tc.from) {
			t.Fatalf("template has no %q", tc.from)
		}
		_, err := Parse(strings.Replace(good, tc.from, tc.to, 1), "/x/mycelium.toml")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: %v, want an error naming %s", tc.from, tc.to, err, tc.want)
		}
	}
	twoSame := good + "\n[[link]]\ntype = \"udp\"\nlisten = \"0.0.0.0:4242\"\n"
	if _, err := Parse(twoSame, "/x/m.toml"); err == nil || !strings.Contains(err.Error(), "same udp link") {
		t.Errorf("two links on one port: %v", err)
	}
	espBad := good + "\n[[link]]\ntype = \"espnow\"\ninterface = \"wlan1\"\nrate = \"7M\"\n"
	if _, err := Parse(espBad, "/x/m.toml"); err == nil || !strings.Contains(err.Error(), "rate") {
		t.Errorf("rate 7M: %v", err)
	}
	loraBad := good + "\n[[link]]\ntype = \"rylr998\"\nport = \"/dev/ttyS0\"\nsf = 12\n"
	if _, err := Parse(loraBad, "/x/m.toml"); err == nil || !strings.Contains(err.Error(), "sf") {
		t.Errorf("sf 12: %v", err)
	}
}

// Init writes both files (the key 0600), refuses to overwrite either and
// writes nothing when it refuses; relative paths resolve next to the file.
func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n1")
	id, err := Init(InitOptions{Dir: dir, Name: "alpha", Listen: "127.0.0.1:7001", Peers: []string{"127.0.0.1:7002"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, IdentityFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity: %v %v", st.Mode(), err)
	}
	cfg, err := Load(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Links[0]; l.Listen != "127.0.0.1:7001" || l.Group != "" || len(l.Peers) != 1 {
		t.Fatalf("link %+v", l)
	}
	got, err := loadIdentity(cfg)
	if err != nil || got.ID() != id {
		t.Fatalf("identity: %v", err)
	}
	if p := cfg.Resolve(cfg.Control.Socket); p != filepath.Join(dir, "mycelium.sock") {
		t.Fatalf("socket resolves to %s", p)
	}
	before, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	if _, err := Init(InitOptions{Dir: dir, Name: "beta"}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second init: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	if string(before) != string(after) {
		t.Fatal("init changed an existing configuration")
	}
	// Only the key exists: still refused, and no configuration appears.
	dir2 := filepath.Join(t.TempDir(), "n2")
	if _, err := Init(InitOptions{Dir: dir2}); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir2, ConfigFile))
	if _, err := Init(InitOptions{Dir: dir2}); err == nil {
		t.Fatal("init over an existing identity")
	}
	if _, err := os.Stat(filepath.Join(dir2, ConfigFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused init wrote the configuration")
	}
	if _, err := Init(InitOptions{Dir: t.TempDir(), Name: "BAD"}); err == nil || !strings.Contains(err.Error(), "--name") {
		t.Fatalf("bad name: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

// [node] hop_auth is on unless the file turns it off.
func TestHopAuthSetting(t *testing.T) {
	if !Defaults().Node.HopAuth {
		t.Fatal("hop_auth off by default")
	}
	for text, want := range map[string]bool{"": true, "[node]\nhop_auth = false\n": false, "[node]\nhop_auth = true\n": true} {
		cfg, err := Parse(text+"[[link]]\ntype = \"udp\"\n", "/etc/mycelium/mycelium.toml")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Node.HopAuth != want {
			t.Errorf("%q: hop_auth %v", text, cfg.Node.HopAuth)
		}
	}
}
