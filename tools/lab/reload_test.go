package lab

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP re-reads the configuration: what can change in place does (the
// log level, a UDP link's static peers), anything else is refused with a
// log line naming it, and the node runs on either way.
func TestReload(t *testing.T) {
	bin := binary(t)
	nodes, err := Ring(bin, t.TempDir(), "h", 2, FastTiming)
	if err != nil {
		t.Fatal(err)
	}
	startAll(t, nodes)
	a := nodes[0]
	mustPoll(t, 30*time.Second, "pair up", func(ctx context.Context) bool {
		s, err := a.Client().Status(ctx)
		return err == nil && s.Peers == 1
	})
	hup := func(edits map[string]string, want string) {
		t.Helper()
		if err := a.Set(edits); err != nil {
			t.Fatal(err)
		}
		before := strings.Count(a.Stderr(), want)
		if err := a.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		mustPoll(t, 5*time.Second, "log line "+want, func(context.Context) bool { return strings.Count(a.Stderr(), want) > before })
		s, err := a.Client().Status(context.Background())
		if err != nil || !a.Running() {
			t.Fatalf("after SIGHUP: %v", err)
		}
		_ = s
	}
	extra, err := FreeUDP(1)
	if err != nil {
		t.Fatal(err)
	}
	hup(map[string]string{"log.level": `"debug"`}, `"msg":"reload: log level"`)
	hup(map[string]string{"link.peers": `["` + nodes[1].Listen + `", "` + extra[0] + `"]`}, `"msg":"reload: static peers"`)
	hup(map[string]string{"routing.trees": "3"}, `"change":"[routing]"`)
	hup(map[string]string{"routing.trees": "6", "node.beacon_period": `"oops"`}, `"msg":"reload refused"`)
	// Still a working node with its old settings.
	s, err := a.Client().Status(context.Background())
	if err != nil || s.Peers != 1 || len(s.Trees) > 6 {
		t.Fatalf("status after reloads: %+v %v", s, err)
	}
}
