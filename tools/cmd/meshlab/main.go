// Command meshlab measures real `mycelium node` processes in a ring over
// UDP on 127.0.0.1 (static peers, no group): how long the ring takes to
// converge, ping round trips, the goodput of a 1 MiB send over one hop and
// over three, how long traffic takes to flow round a SIGKILLed relay, and a
// node's idle memory and CPU. Each figure over --runs rings, mean and p95.
//
//	go run ./tools/cmd/meshlab --runs 5 [--timing fast|default] [--idle 60s] [--set section.key=value]... [--json]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mycelium-mesh/mycelium/tools/control"
	"github.com/mycelium-mesh/mycelium/tools/lab"
)

type run struct {
	ConvergeS   float64 `json:"converge_s"`
	PingMS      float64 `json:"ping_far_ms"`
	Goodput1    float64 `json:"goodput_1hop_kbps"`
	Goodput3    float64 `json:"goodput_3hop_kbps"`
	RerouteS    float64 `json:"reroute_s"`
	IdleRSSMiB  float64 `json:"idle_rss_mib,omitempty"`
	IdleCPUPerc float64 `json:"idle_cpu_percent,omitempty"`
}

func main() {
	runs := flag.Int("runs", 3, "rings to build, one after another")
	nodes := flag.Int("nodes", 6, "nodes in the ring (at least 4)")
	timing := flag.String("timing", "fast", "fast (claims every 1 s, beacons every 2 s: as the tests) or default (the configuration's defaults)")
	idle := flag.Duration("idle", 0, "also sample one node's memory and CPU over this long once the ring is idle (e.g. 60s)")
	asJSON := flag.Bool("json", false, "print every run and the summary as JSON")
	reroute := flag.Bool("reroute", true, "kill the first relay toward the far side and time how long until ping gets through again (up to --reroute-wait)")
	rerouteWait := flag.Duration("reroute-wait", 5*time.Minute, "how long to wait for traffic to flow round the killed relay")
	var sets []string
	flag.Func("set", "section.key=TOML value for every node's configuration (repeatable), e.g. stream.window=4", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("want section.key=value")
		}
		sets = append(sets, s)
		return nil
	})
	flag.Parse()
	if *nodes < 4 || *runs < 1 || (*timing != "fast" && *timing != "default") {
		fmt.Fprintln(os.Stderr, "meshlab: --nodes >= 4, --runs >= 1, --timing fast|default")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "meshlab-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	bin, err := lab.Build(dir)
	if err != nil {
		fail(err)
	}
	edits := maps.Clone(lab.FastTiming)
	if *timing == "default" {
		edits = map[string]string{}
	}
	for _, kv := range sets {
		k, v, _ := strings.Cut(kv, "=")
		edits[k] = v
	}
	var rs []run
	for i := range *runs {
		r, err := measure(bin, fmt.Sprintf("%s/run%d", dir, i), *nodes, edits, *idle, *reroute, *rerouteWait)
		if err != nil {
			fail(fmt.Errorf("run %d: %w", i+1, err))
		}
		rs = append(rs, r)
		if !*asJSON {
			fmt.Fprintf(os.Stderr, "run %d: %+v\n", i+1, r)
		}
	}
	summary := map[string][2]float64{}
	for _, f := range []struct {
		name string
		get  func(run) float64
	}{
		{"converge_s", func(r run) float64 { return r.ConvergeS }},
		{"ping_far_ms", func(r run) float64 { return r.PingMS }},
		{"goodput_1hop_kbps", func(r run) float64 { return r.Goodput1 }},
		{"goodput_3hop_kbps", func(r run) float64 { return r.Goodput3 }},
		{"reroute_s", func(r run) float64 { return r.RerouteS }},
		{"idle_rss_mib", func(r run) float64 { return r.IdleRSSMiB }},
		{"idle_cpu_percent", func(r run) float64 { return r.IdleCPUPerc }},
	} {
		var v []float64
		for _, r := range rs {
			v = append(v, f.get(r))
		}
		summary[f.name] = [2]float64{mean(v), p95(v)}
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(map[string]any{"nodes": *nodes, "timing": *timing, "runs": rs, "mean_p95": summary})
		return
	}
	fmt.Printf("%d rings of %d nodes, %s timing: mean (p95)\n", *runs, *nodes, *timing)
	for _, k := range []string{"converge_s", "ping_far_ms", "goodput_1hop_kbps", "goodput_3hop_kbps", "reroute_s", "idle_rss_mib", "idle_cpu_percent"} {
		fmt.Printf("  %-18s %10.2f (%.2f)\n", k, summary[k][0], summary[k][1])
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "meshlab: %v\n", err)
	os.Exit(1)
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// p95 is the nearest-rank 95th percentile.
func p95(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[int(math.Ceil(0.95*float64(len(s))))-1]
}

func measure(bin, dir string, n int, edits map[string]string, idle time.Duration, reroute bool, rerouteWait time.Duration) (run, error) {
	var r run
	nodes, err := lab.Ring(bin, dir, "m", n, edits)
	if err != nil {
		return r, err
	}
	defer func() {
		for _, nd := range nodes {
			nd.Kill()
		}
	}()
	start := time.Now()
	for _, nd := range nodes {
		if err := nd.Start(); err != nil {
			return r, err
		}
	}
	ctx := context.Background()
	if !lab.Poll(ctx, 15*time.Minute, 100*time.Millisecond, func(ctx context.Context) bool { return lab.Converged(ctx, nodes, 2, 6) }) {
		return r, fmt.Errorf("not converged in 15 minutes")
	}
	r.ConvergeS = time.Since(start).Seconds()
	src, far := nodes[0], nodes[n/2]
	c := src.Client()
	ping, err := c.Ping(ctx, control.PingRequest{Target: far.Name, Count: 5, IntervalMS: 200})
	if err != nil || ping.Received == 0 {
		return r, fmt.Errorf("ping: %+v %v", ping, err)
	}
	r.PingMS = mean(ping.RTTms)
	if idle > 0 {
		// Idle: nothing sent for a while but the mesh's own upkeep.
		pid := nodes[1].Pid()
		u0, err := lab.ProcUsage(pid)
		if err != nil {
			return r, err
		}
		t0 := time.Now()
		time.Sleep(idle)
		u1, err := lab.ProcUsage(pid)
		if err != nil {
			return r, err
		}
		r.IdleRSSMiB = float64(u1.RSS) / (1 << 20)
		r.IdleCPUPerc = 100 * float64(u1.CPU-u0.CPU) / float64(time.Since(t0))
	}
	blob := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := range blob {
		blob[i] = byte(rng.Uint32())
	}
	for _, to := range []struct {
		node *lab.Node
		out  *float64
	}{{nodes[1], &r.Goodput1}, {far, &r.Goodput3}} {
		stop, err := sink(to.node)
		if err != nil {
			return r, err
		}
		res, err := c.Send(ctx, to.node.Name, "meshlab", bytes.NewReader(blob), int64(len(blob)), nil)
		stop()
		if err != nil {
			return r, fmt.Errorf("send to %s: %w", to.node.Name, err)
		}
		*to.out = res.GoodputBps / 1000
	}
	if !reroute {
		return r, nil
	}
	tr, err := c.Traceroute(ctx, control.TraceRequest{Target: far.Name})
	if err != nil || len(tr.Hops) < 2 {
		return r, fmt.Errorf("traceroute: %+v %v", tr, err)
	}
	relay := slices.IndexFunc(nodes, func(nd *lab.Node) bool { return nd.ID == tr.Hops[1].NodeID })
	if relay < 0 {
		return r, fmt.Errorf("relay %s not in the ring", tr.Hops[1].NodeID)
	}
	nodes[relay].Kill()
	killed := time.Now()
	if !lab.Poll(ctx, rerouteWait, 100*time.Millisecond, func(ctx context.Context) bool {
		p, err := c.Ping(ctx, control.PingRequest{Target: far.Name, Count: 1, TimeoutMS: 1000})
		if os.Getenv("MESHLAB_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "  %.1fs after the kill: %+v %v\n", time.Since(killed).Seconds(), p.Errors, err)
		}
		return err == nil && p.Received == 1
	}) {
		return r, fmt.Errorf("no way round the killed relay in %v", rerouteWait)
	}
	r.RerouteS = time.Since(killed).Seconds()
	return r, nil
}

// sink listens for the lab's application on n until stop is called.
func sink(n *lab.Node) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	go n.Client().Listen(ctx, "meshlab", func(control.Received) error { return nil })
	// Registered when a probe is accepted.
	if !lab.Poll(ctx, 10*time.Second, 50*time.Millisecond, func(ctx context.Context) bool {
		_, err := n.Client().Send(ctx, n.ID, "meshlab", bytes.NewReader([]byte("probe")), 5, nil)
		return err == nil
	}) {
		cancel()
		return nil, fmt.Errorf("listener on %s not up", n.Name)
	}
	return cancel, nil
}
