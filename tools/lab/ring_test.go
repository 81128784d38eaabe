package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mycelium-mesh/mycelium/tools/control"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the command once for the package's tests.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mycelium-lab-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath, binErr = Build(dir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// startAll starts the nodes and stops them (SIGKILL) when the test ends;
// a node's log is shown if the test failed.
func startAll(t *testing.T, nodes []*Node) {
	t.Helper()
	for _, n := range nodes {
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.Kill()
			if t.Failed() {
				t.Logf("--- %s log:\n%s", n.Name, lastLines(n.Stderr(), 30))
			}
		}
	})
}

func lastLines(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// mustPoll fails the test if cond does not hold within d.
func mustPoll(t *testing.T, d time.Duration, what string, cond func(ctx context.Context) bool) time.Duration {
	t.Helper()
	start := time.Now()
	if !Poll(context.Background(), d, 100*time.Millisecond, cond) {
		t.Fatalf("%s: not within %v", what, d)
	}
	return time.Since(start)
}

// TestRing is the first check: six `mycelium node` processes in a
// ring over UDP on 127.0.0.1 (static peers, no group) converge; ping and
// traceroute reach the far side (three hops); 1 MiB sent there arrives
// intact and confirmed; after SIGKILL of the relay the path used, ping
// reaches the far side the other way round; the killed node, restarted
// with its identity, rejoins; SIGTERM ends a node cleanly within 2 s and
// its neighbours hear its goodbye; a Prometheus scrape parses.
func TestRing(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes: a minute of wall time")
	}
	bin := binary(t)
	dir := t.TempDir()
	nodes, err := Ring(bin, dir, "r", 6, FastTiming)
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr, err := FreeTCP()
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].Set(map[string]string{"metrics.listen": `"` + metricsAddr + `"`}); err != nil {
		t.Fatal(err)
	}
	startAll(t, nodes)
	took := mustPoll(t, 90*time.Second, "ring converged", func(ctx context.Context) bool { return Converged(ctx, nodes, 2, 6) })
	t.Logf("converged (6 trees, names registered) %.1f s after start", took.Seconds())

	ctx := context.Background()
	src, far := nodes[0], nodes[3]
	c := src.Client()

	// Ping and traceroute to the far side, by name.
	ping, err := c.Ping(ctx, control.PingRequest{Target: far.Name, Count: 3, IntervalMS: 50})
	if err != nil || ping.Received == 0 || ping.NodeID != far.ID {
		t.Fatalf("ping %s: %+v %v", far.Name, ping, err)
	}
	tr, err := c.Traceroute(ctx, control.TraceRequest{Target: far.Name})
	if err != nil || !tr.Complete || len(tr.Hops) != 4 {
		t.Fatalf("traceroute %s: %+v %v", far.Name, tr, err)
	}
	if tr.Hops[0].NodeID != src.ID || tr.Hops[3].NodeID != far.ID || tr.Hops[3].Name != far.Name {
		t.Fatalf("traceroute ends: %+v", tr.Hops)
	}
	relay := indexOf(nodes, tr.Hops[1].NodeID)
	if relay != 1 && relay != 5 {
		t.Fatalf("the first relay is node %d, not a neighbour of node 0: %+v", relay, tr.Hops)
	}
	for i := 1; i < len(tr.Hops); i++ {
		if tr.Hops[i].RTTms < 0 {
			t.Fatalf("negative rtt: %+v", tr.Hops)
		}
	}

	// 1 MiB to the far side, confirmed, arriving intact.
	blob := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range blob {
		blob[i] = byte(r.Uint32())
	}
	want := sha256.Sum256(blob)
	got := listen(t, far, "files")
	res, err := c.Send(ctx, far.Name, "files", bytes.NewReader(blob), int64(len(blob)), nil)
	if err != nil {
		t.Fatalf("send 1 MiB: %v", err)
	}
	if res.Bytes != len(blob) || res.SHA256 != hex.EncodeToString(want[:]) || !res.Streamed {
		t.Fatalf("send result %+v", res)
	}
	t.Logf("1 MiB over 3 UDP hops: %.2f s, %.0f kbit/s", res.Seconds, res.GoodputBps/1000)
	select {
	case rcv := <-got:
		if sha256.Sum256(rcv.Data) != want || rcv.SHA256 != res.SHA256 || rcv.From != src.ID {
			t.Fatalf("received %d bytes from %s (%s): not what was sent", rcv.Size, rcv.From, rcv.FromName)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the listener on the far side got nothing")
	}

	// A Prometheus scrape parses, and says what the node is.
	scrape(t, metricsAddr)

	// Kill the relay the trace went through; ping finds the other way.
	nodes[relay].Kill()
	killed := time.Now()
	mustPoll(t, 2*time.Minute, "ping around the killed relay", func(ctx context.Context) bool {
		p, err := c.Ping(ctx, control.PingRequest{Target: far.Name, Count: 1, TimeoutMS: 2000})
		return err == nil && p.Received == 1
	})
	t.Logf("ping reached the far side again %.1f s after SIGKILL of node %d", time.Since(killed).Seconds(), relay)
	// The path goes the other way round (the trees may still be mending:
	// a trace in a tree broken beyond the first hop comes back incomplete).
	other := 6 - relay // 1 <-> 5
	mustPoll(t, time.Minute, "a complete traceroute the other way round", func(ctx context.Context) bool {
		tr, err = c.Traceroute(ctx, control.TraceRequest{Target: far.Name, TimeoutMS: 3000})
		return err == nil && tr.Complete
	})
	if len(tr.Hops) != 4 || indexOf(nodes, tr.Hops[1].NodeID) != other {
		t.Fatalf("the path after the kill does not go the other way round (via node %d): %+v", other, tr.Hops)
	}

	// The killed node comes back with its identity and is reached again.
	if err := nodes[relay].Start(); err != nil {
		t.Fatal(err)
	}
	mustPoll(t, 2*time.Minute, "restarted node reachable", func(ctx context.Context) bool {
		s, err := nodes[relay].Client().Status(ctx)
		if err != nil || s.NodeID != nodes[relay].ID || s.Peers < 2 {
			return false
		}
		p, err := c.Ping(ctx, control.PingRequest{Target: nodes[relay].Name, Count: 1, TimeoutMS: 2000})
		return err == nil && p.Received == 1
	})

	// SIGTERM: exit 0 within 2 s, and the goodbye reaches the neighbours
	// (they drop the node long before a beacon timeout could).
	term := nodes[4]
	if err := term.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err, exited := term.Wait(2 * time.Second)
	if !exited {
		t.Fatal("SIGTERM: still running after 2 s")
	}
	if err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, lastLines(term.Stderr(), 10))
	}
	t.Logf("SIGTERM to exit: %v", time.Since(start))
	if _, err := os.Stat(term.Socket()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("control socket left behind: %v", err)
	}
	mustPoll(t, 3*time.Second, "neighbours drop the node that said goodbye", func(ctx context.Context) bool {
		for _, nb := range []*Node{nodes[3], nodes[5]} {
			ps, err := nb.Client().Peers(ctx)
			if err != nil || slices.ContainsFunc(ps, func(p control.Peer) bool { return p.NodeID == term.ID }) {
				return false
			}
		}
		return true
	})
}

func indexOf(nodes []*Node, id string) int {
	return slices.IndexFunc(nodes, func(n *Node) bool { return n.ID == id })
}

// listen starts a listener for app on n and returns what arrives; the
// listener is registered when listen returns.
func listen(t *testing.T, n *Node, app string) <-chan control.Received {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := make(chan control.Received, 8)
	ready := make(chan error, 1)
	go func() {
		ready <- n.Client().Listen(ctx, app, func(r control.Received) error {
			out <- r
			return nil
		})
	}()
	// Listen returns only at the end; registration is visible as the app
	// being accepted: poll until a tiny send to ourselves is accepted.
	mustPoll(t, 10*time.Second, "listener registered", func(ctx context.Context) bool {
		select {
		case err := <-ready:
			t.Fatalf("listen: %v", err)
		default:
		}
		_, err := n.Client().Send(ctx, n.ID, app, bytes.NewReader([]byte("probe")), 5, nil)
		return err == nil
	})
	select {
	case <-out: // the probe
	case <-time.After(5 * time.Second):
		t.Fatal("the listener did not get the probe")
	}
	return out
}

// scrape reads /metrics and checks it parses as the exposition format and
// holds the node's families.
func scrape(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("scrape does not parse: %v", err)
	}
	for _, name := range []string{"mycelium_peers", "mycelium_link_frames_total", "mycelium_link_drops_total", "mycelium_node_retransmits_total",
		"mycelium_tree_depth", "mycelium_route_packages_total", "mycelium_stream_total", "mycelium_scrape_ok", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("scrape lacks %s", name)
		}
	}
	if f := fams["mycelium_peers"]; f != nil && f.GetMetric()[0].GetGauge().GetValue() != 2 {
		t.Errorf("mycelium_peers %v, want 2", f.GetMetric()[0].GetGauge().GetValue())
	}
	if f := fams["mycelium_tree_depth"]; f != nil && len(f.GetMetric()) != 6 {
		t.Errorf("tree depth for %d trees, want 6", len(f.GetMetric()))
	}
	if f := fams["mycelium_stream_total"]; f != nil {
		sent := 0.0
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == "sent" {
					sent = m.GetCounter().GetValue()
				}
			}
		}
		if sent != 1 {
			t.Errorf("streams sent %v, want 1", sent)
		}
	}
}
