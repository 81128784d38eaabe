package daemon

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

const (
	loraLink = "\n[[link]]\ntype = \"rylr998\"\nport = \"/dev/ttyS0\"\n"
	udpLink  = "\n[[link]]\ntype = \"udp\"\nlisten = \"0.0.0.0:4242\"\n"
)

type periods struct {
	beacon, claim time.Duration
	trees, epochs int
}

func periodsOf(c *Config) periods {
	return periods{c.Node.BeaconPeriod, c.Routing.ClaimPeriod, c.Routing.Trees, c.Routing.EpochPeriods}
}

// A node whose links are all RYLR-998s runs at the LoRa profile (the
// simulator's: a beacon and a claim an hour, one tree, a term every two
// weeks) where its file is silent; a value the file sets wins; a node
// with any faster link keeps the ESP-NOW defaults. The file mycelium init
// writes does not pin the periods: with its UDP link swapped for a
// RYLR-998 it too runs at the LoRa profile.
func TestLinkProfile(t *testing.T) {
	lp, dp := tree.LoRaProfile(), tree.DefaultProfile()
	lora := periods{time.Hour, time.Hour, 1, 336}
	esp := periods{time.Minute, 20 * time.Second, 6, 45}
	if got := (periods{lp.Beacon, lp.ClaimPeriod, lp.Trees, lp.EpochPeriods}); got != lora {
		t.Fatalf("LoRa profile %+v, want %+v", got, lora)
	}
	if got := (periods{dp.Beacon, dp.ClaimPeriod, dp.Trees, dp.EpochPeriods}); got != esp {
		t.Fatalf("default profile %+v, want %+v", got, esp)
	}
	tmpl, err := Template(InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmplLoRa := tmpl[:strings.Index(tmpl, "\n[[link]]\n")] + loraLink
	for _, tc := range []struct {
		name, text string
		profile    string
		want       periods
		explicit   []string
	}{
		{"rylr998 only", loraLink, "lora", lora, nil},
		{"two rylr998", loraLink + "\n[[link]]\ntype = \"rylr998\"\nport = \"/dev/ttyS1\"\n", "lora", lora, nil},
		{"init's file, rylr998", tmplLoRa, "lora", lora, nil},
		{"rylr998, explicit", "[node]\nbeacon_period = \"2h\"\n[routing]\nclaim_period = \"30m\"\ntrees = 2\n" + loraLink, "lora",
			periods{2 * time.Hour, 30 * time.Minute, 2, 336}, []string{"node.beacon_period", "routing.trees", "routing.claim_period"}},
		{"rylr998, explicit ESP-NOW values", "[node]\nbeacon_period = \"1m\"\n[routing]\nclaim_period = \"20s\"\ntrees = 6\nepoch_periods = 45\n" + loraLink, "lora",
			esp, []string{"node.beacon_period", "routing.trees", "routing.claim_period", "routing.epoch_periods"}},
		{"rylr998 and udp", loraLink + udpLink, "default", esp, nil},
		{"udp only", udpLink, "default", esp, nil},
		{"init's file", tmpl, "default", esp, nil},
		{"udp, explicit", "[routing]\nepoch_periods = -1\n" + udpLink, "default", periods{time.Minute, 20 * time.Second, 6, -1}, []string{"routing.epoch_periods"}},
	} {
		cfg, err := Parse(tc.text, "/x/mycelium.toml")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := periodsOf(cfg); got != tc.want || cfg.Profile != tc.profile || !slices.Equal(cfg.Explicit, tc.explicit) {
			t.Errorf("%s: %s %+v (set %v), want %s %+v (set %v)", tc.name, cfg.Profile, got, cfg.Explicit, tc.profile, tc.want, tc.explicit)
		}
		tm := cfg.timing()
		if tm.Profile != tc.profile || tm.BeaconS != tc.want.beacon.Seconds() || tm.ClaimS != tc.want.claim.Seconds() || tm.Trees != tc.want.trees || tm.EpochPeriods != tc.want.epochs {
			t.Errorf("%s: status timing %+v", tc.name, *tm)
		}
	}
}

// The LoRa profile's periodic control, even counting every beacon and
// claim as a full frame at SF9, stays within a tenth of a 1 %
// duty cycle; the ESP-NOW periods set explicitly on a LoRa node do not,
// and the node says so at start.
func TestControlShareWarning(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		warn       bool
	}{
		{"LoRa profile", loraLink, false},
		{"LoRa, ESP-NOW periods", "[node]\nbeacon_period = \"1m\"\n[routing]\nclaim_period = \"20s\"\ntrees = 6\n" + loraLink, true},
		{"LoRa, gossip hello every minute", "[gossip]\nhello_period = \"1m\"\n" + loraLink, true},
		{"LoRa, claims every 10 minutes", "[routing]\nclaim_period = \"10m\"\n" + loraLink, true},
		{"LoRa, 10 % duty cycle, claims every 10 minutes", "[routing]\nclaim_period = \"10m\"\n" + loraLink + "duty_cycle = 0.1\nduty_window = \"1h\"\n", false},
		{"mixed, ESP-NOW defaults", loraLink + udpLink, true},
		{"udp", udpLink, false},
	} {
		cfg, err := Parse(tc.text, "/x/mycelium.toml")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		w := cfg.Warnings()
		if (len(w) > 0) != tc.warn {
			t.Errorf("%s: warnings %q, want some: %v", tc.name, w, tc.warn)
		}
	}
	cfg, err := Parse(loraLink, "/x/m.toml")
	if err != nil {
		t.Fatal(err)
	}
	share, budget, ok := cfg.ControlShare()
	// Two and a half full frames an hour (a beacon, a claim, half a
	// hello) at SF9/125 kHz/CR 4/5 (240 bytes and the module's 8: 1,246 ms
	// each, docs/lora-rylr998.md): 3.12 s, 8.7 % of 36 s.
	if !ok || budget != 0.01 || share < 3.11/3600 || share > 3.12/3600 {
		t.Errorf("LoRa profile control share %v s an hour of budget %v (ok %v), want 3.12 s an hour of 1 %%", share*3600, budget, ok)
	}
}

// The apps' periodic broadcasts follow the links too: at the default
// minute a LoRa node's gossip hellos alone would take more than its whole
// 1 % duty budget. A value the file sets wins, and the file mycelium init
// writes pins neither.
func TestAppPeriodsFollowLinks(t *testing.T) {
	tmpl, err := Template(InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmplLoRa := tmpl[:strings.Index(tmpl, "\n[[link]]\n")] + loraLink
	for _, tc := range []struct {
		name, text     string
		hello, refresh time.Duration
		explicit       []string
	}{
		{"rylr998 only", loraLink, 2 * time.Hour, 24 * time.Hour, nil},
		{"init's file, rylr998", tmplLoRa, 2 * time.Hour, 24 * time.Hour, nil},
		{"rylr998, explicit", "[gossip]\nhello_period = \"30m\"\n[services]\nrefresh = \"1h\"\n" + loraLink, 30 * time.Minute, time.Hour,
			[]string{"gossip.hello_period", "services.refresh"}},
		{"rylr998 and udp", loraLink + udpLink, time.Minute, 10 * time.Minute, nil},
		{"init's file", tmpl, time.Minute, 10 * time.Minute, nil},
	} {
		cfg, err := Parse(tc.text, "/x/mycelium.toml")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if cfg.Gossip.HelloPeriod != tc.hello || cfg.Services.Refresh != tc.refresh || !slices.Equal(cfg.Explicit, tc.explicit) {
			t.Errorf("%s: hello %v, refresh %v (set %v), want %v, %v (set %v)", tc.name, cfg.Gossip.HelloPeriod, cfg.Services.Refresh, cfg.Explicit, tc.hello, tc.refresh, tc.explicit)
		}
		if tm := cfg.timing(); tm.HelloS != tc.hello.Seconds() || tm.RefreshS != tc.refresh.Seconds() {
			t.Errorf("%s: status timing %+v", tc.name, *tm)
		}
	}
}
