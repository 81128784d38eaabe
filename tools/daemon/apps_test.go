package daemon

import (
	"errors"
	"strings"
	"testing"
)

func TestAppsConfig(t *testing.T) {
	good, err := Template(InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(good+"\n[[service]]\nname = \"wx\"\napp = \"weather\"\nmeta = \"temp\"\n", "/x/m.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Service) != 1 || cfg.Service[0].App != "weather" {
		t.Fatalf("%+v", cfg.Service)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`# hello_period = "1m0s"`, `hello_period = "10ms"`, "gossip.hello_period"},
		{`# hello_period = "1m0s"`, `hello_period = "25h"`, "gossip.hello_period"},
		{`# refresh = "10m0s"`, `refresh = "1s"`, "services.refresh"},
		{`[services]`, "[[service]]\napp = \"x\"\n[services]", "service 1: name"},
		{`[services]`, "[[service]]\nname = \"" + strings.Repeat("n", 256) + "\"\n[services]", "service 1: name"},
	} {
		if !strings.Contains(good, tc.from) {
			t.Fatalf("template has no %q", tc.from)
		}
		_, err := Parse(strings.Replace(good, tc.from, tc.to, 1), "/x/mycelium.toml")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: %v, want an error naming %s", tc.from, tc.to, err, tc.want)
		}
	}
}

func TestTrustConfig(t *testing.T) {
	good, err := Template(InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(good, "/x/m.toml")
	if err != nil || cfg.Trust.Revocations != "revocations" || cfg.Trust.ProxyRevocations != "proxy-revocations" || cfg.Trust.MaxRevocations != 1024 || len(cfg.Trust.Operators) != 0 {
		t.Fatalf("defaults: %+v %v", cfg.Trust, err)
	}
	// The [trust] table's operators line (admin has one too).
	head, trust, _ := strings.Cut(good, "[trust]\n")
	operators := func(v string) string {
		return head + "[trust]\n" + strings.Replace(trust, "operators = []", "operators = "+v, 1)
	}
	if cfg, err := Parse(operators(`["`+strings.Repeat("ab", 32)+`"]`), "/x/m.toml"); err != nil || len(cfg.Trust.Operators) != 1 {
		t.Fatalf("an operator key: %v", err)
	}
	if _, err := Parse(operators(`["abcd"]`), "/x/m.toml"); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "trust.operators[0]") {
		t.Errorf("a short operator key: %v", err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`republish = "6h0m0s"`, `republish = "1m"`, "trust.republish"},
		{`max_revocations = 1024`, `max_revocations = 0`, "trust.max_revocations"},
		{`revocations = "revocations"`, `revocations = ""`, "trust.revocations"},
		{`proxy_revocations = "proxy-revocations"`, `proxy_revocations = ""`, "trust.proxy_revocations"},
	} {
		if !strings.Contains(good, tc.from) {
			t.Fatalf("template has no %q", tc.from)
		}
		_, err := Parse(strings.Replace(good, tc.from, tc.to, 1), "/x/mycelium.toml")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: %v, want an error naming %s", tc.from, tc.to, err, tc.want)
		}
	}
}
