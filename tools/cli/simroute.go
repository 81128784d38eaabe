package cli

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/tools/dashboard"
	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

// routeFlags are the flags `sim route` and `bench route` share.
type routeFlags struct {
	cfg      meshsim.RouteConfig
	topo     string
	progress string
	link     string
}

// routeLimits is the help's paragraph on the limits of a route run.
var routeLimits = fmt.Sprintf(`Limits (checked before anything runs): %s..%s nodes (a graph file too), --degree
up to %d, --pairs up to %s, --trees 1..%d. A run keeps about 0.15 MB per node
live at 1,000 nodes (more on deeper meshes); the collector lets the heap
grow to five times that, up to 3 GiB (or half the machine's memory), unless
GOGC or GOMEMLIMIT is set. The CPU time per event grows with the node
count (the README has measured figures). A random graph (random, ring,
hubs, clustered) is drawn once and made connected: nodes cut off from the
largest piece move next to it.`,
	meshsim.Group(meshsim.MinNodes), meshsim.Group(meshsim.MaxRouteNodes), meshsim.MaxDegree,
	meshsim.Group(meshsim.MaxPairs), meshsim.MaxTrees)

func (rf *routeFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.Float64Var(&rf.cfg.Degree, "degree", 8, fmt.Sprintf("mean degree of a random, ring or hubs topology, above 0 and at most %d (and below the node count)", meshsim.MaxDegree))
	f.StringVar(&rf.topo, "topology", "random", "random (random geometric), grid, line, ring (a loop road), clustered (towns joined by chains) or hubs (gateways hearing hundreds)")
	f.IntVar(&rf.cfg.Pairs, "pairs", 1000, fmt.Sprintf("random source-destination pairs to route between, 1..%s", meshsim.Group(meshsim.MaxPairs)))
	f.Uint64Var(&rf.cfg.Seed, "seed", 1, "random seed: the same seed gives the same run")
	f.IntVar(&rf.cfg.Trees, "trees", 0, fmt.Sprintf("parallel trees (each with its own root), 1..%d (default: the link's, 6 on ESP-NOW, 1 on LoRa)", meshsim.MaxTrees))
	f.Float64Var(&rf.cfg.Loss, "loss", 0, "independent frame loss on every link, each direction: at least 0, below 1")
	f.StringVar(&rf.progress, "progress", "auto", progressHelp)
	f.StringVar(&rf.link, "link", "espnow", "espnow, or lora (SF9, 125 kHz: a beacon and a claim an hour, one tree, a new term every two weeks)")
	f.Float64Var(&rf.cfg.DutyCycle, "duty-cycle", meshsim.DefaultDutyCycle, "with --link lora: a node's transmit budget, the share of the time the steady airtime is held against")
	f.BoolVar(&rf.cfg.FailRoot, "fail-root", false, fmt.Sprintf("kill the root of tree 0 once the pairs are routed, and measure the repair (probes every second, a batch %d claim periods after; 3 nodes or more)", meshsim.RepairPeriods))
	f.BoolVar(&rf.cfg.HopAuth, "hop-auth", false, "authenticated hops in every node (node.Config.HopAuth, the daemon's [node] hop_auth; docs/security.md): a counter and tag on every unicast frame between proven neighbours")
	f.Float64Var(&rf.cfg.Kill, "kill", 0, fmt.Sprintf("kill this share of the nodes at random once the pairs are routed (0..%g), and measure the repair as --fail-root does", meshsim.MaxKill))
}

// config checks the shared flags and returns the measurement's config
// (Nodes still to be set).
func (rf *routeFlags) config(cmd *cobra.Command) (meshsim.RouteConfig, error) {
	c := rf.cfg
	t, err := meshsim.ParseRouteTopology(rf.topo)
	if err != nil {
		return c, fmt.Errorf("--topology %q: want random, grid, line, ring, clustered or hubs", rf.topo)
	}
	c.Topology = t
	if cmd.Flags().Changed("trees") && c.Trees == 0 {
		return c, fmt.Errorf("--trees 0: want 1..%d", meshsim.MaxTrees)
	}
	if err := oneOf("progress", rf.progress, progressModes...); err != nil {
		return c, err
	}
	if err := oneOf("link", rf.link, meshsim.RouteLinks...); err != nil {
		return c, err
	}
	c.Link = rf.link
	if err := onlyWith(cmd, c.Link == "lora", "to --link lora", "duty-cycle"); err != nil {
		return c, err
	}
	if err := onlyWith(cmd, t.HasDegree() && c.Graph == "", "to --topology random, ring or hubs", "degree"); err != nil {
		return c, err
	}
	return c, nil
}

func simRouteCmd() *cobra.Command {
	var (
		rf     routeFlags
		mode   int
		asJSON bool
		svg    string
		page   string
		prof   string
	)
	c := &cobra.Command{
		Use:   "route",
		Short: "Build a mesh, let its trees converge, and route between random pairs",
		Long: `Builds a topology (random geometric with a given mean degree, a grid, a
line, a ring, clustered towns joined by chains, hubs, or a graph file) of
nodes running the trees and the router on the simulated ESP-NOW medium,
lets the trees converge from a cold start in virtual (mesh) time, measures
the steady control traffic (every frame on the air, and its airtime by kind
of message at the busiest node), then routes a Package between --pairs
random pairs and compares each path with the shortest one (breadth-first
search on the same graph). With --fail-root the root of tree 0 is killed
afterwards and the re-convergence is timed, with traffic flowing. Every
routing decision is checked against the invariant that makes loops
impossible (each hop strictly closer to the destination); "loops" counts
violations. The same seed gives the same run.

With --adversary, --adversaries nodes (our software, keys of their own)
attack their neighbours every 5 s of mesh time from convergence until the
routing is measured: forge-goodbye (a goodbye in a neighbour's name),
forge-beacon (beacons claiming a neighbour's node_id), flood (bursts of
bogus sequence packets claiming 65,536 parts), blackhole (it drops every
routed frame it hears); on routing and the trees (tools/meshsim/attacks.go):
forge-receipt (a receipt for a neighbour's Package, plain or signed by
itself, before the destination's), forge-error (a hop-limit error for it:
plain, in the destination's name, or its own, with no nonce or the one it
overheard), replay-packet (the same
Package to its destination again once delivered), forge-proxy and
future-record (a proxy record for another node, dated now or an hour
ahead, to its homes), forge-claim (a new term in the current root's name),
replay-cert (a neighbour's position certificate as its own), lie-distance
(its claims passed on with hops 0), lie-hood (neighbourhood lists naming
far nodes as its neighbours). The JSON adds "adversary": {KIND: {"tried",
"rejected"}} (tried: an honest node heard the attack; rejected: it was not
fooled; for blackhole, the routed frames swallowed; for lie-hood, tried is
an honest neighbour's decision for a destination named, rejected when it
did not rank the liar nearer than its certified depths allow, and
"attracted" the decisions its list drew to it off every shortest path),
the delivery between
honest pairs whose every shortest path avoids the adversaries
("honest_delivery_ratio"), and the most reassembly memory an honest node
held ("peak_rx_bytes_per_node", against "rx_budget_bytes"). Pairs are
drawn among honest nodes.

With --cpuprofile the run's CPU profile (Go's pprof format, building
included) is written to a file: where a large mesh's time goes
(` + "`go tool pprof -top mycelium FILE`" + `).

` + routeLimits,
		Example: `  mycelium sim route --nodes 200
  mycelium sim route --nodes 500 --mode 1 --fail-root --json
  mycelium sim route --graph ring.txt --pairs 100 --svg ring.svg
  mycelium sim route --nodes 200 --html mesh.html
  mycelium sim route --nodes 500 --adversary forge-goodbye,forge-beacon --adversaries 10 --json`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := rf.config(cmd)
			if err != nil {
				return err
			}
			if cfg.Graph != "" {
				for _, f := range []string{"nodes", "topology"} {
					if cmd.Flags().Changed(f) {
						return fmt.Errorf("--%s and --graph: the graph file gives the nodes and links", f)
					}
				}
			}
			if cmd.Flags().Changed("steady") && cfg.Steady == 0 {
				return fmt.Errorf("--steady 0s: want %s..%s of mesh time", meshsim.FormatDuration(meshsim.MinSteady), meshsim.FormatDuration(meshsim.MaxSteady))
			}
			if mode != 0 && mode != 1 {
				return fmt.Errorf("--mode %d: want 0 (tree distance) or 1 (common-prefix distance)", mode)
			}
			cfg.Mode = mode == 1
			if len(cfg.Adversary) > 0 && !cmd.Flags().Changed("adversaries") {
				cfg.Adversaries = 1
			}
			if err := cfg.Validate(); err != nil {
				return settingError(err)
			}
			var out *pendingFile
			if svg != "" {
				if out, err = createPending(svg); err != nil {
					return fmt.Errorf("--svg: %v", err)
				}
				defer out.discard()
			}
			var htmlOut *pendingFile
			if page != "" {
				if htmlOut, err = createPending(page); err != nil {
					return fmt.Errorf("--html: %v", err)
				}
				defer htmlOut.discard()
			}
			var profOut *pendingFile
			if prof != "" {
				if profOut, err = createPending(prof); err != nil {
					return fmt.Errorf("--cpuprofile: %v", err)
				}
				defer profOut.discard()
				if err := pprof.StartCPUProfile(profOut.f); err != nil {
					return fmt.Errorf("--cpuprofile: %v", err)
				}
			}
			prog := newProgress(rf.progress, cmd.ErrOrStderr())
			defer prog.finish()
			cfg.Progress = prog.fn()
			defer meshsim.TuneCollector()()
			r, err := meshsim.Route(cfg)
			prog.finish()
			if profOut != nil {
				// Kept when the run fails too: a mesh that did not
				// converge is one to profile.
				pprof.StopCPUProfile()
				if err := profOut.commit(); err != nil {
					return fmt.Errorf("--cpuprofile: %v", err)
				}
			}
			if err != nil {
				return settingError(err)
			}
			if out != nil {
				if err := meshsim.WriteRouteSVG(out.f, r); err != nil {
					return fmt.Errorf("--svg: %v", err)
				}
				if err := out.commit(); err != nil {
					return fmt.Errorf("--svg: %v", err)
				}
			}
			if htmlOut != nil {
				if err := dashboard.WriteRoutePage(htmlOut.f, r); err != nil {
					return fmt.Errorf("--html: %v", err)
				}
				if err := htmlOut.commit(); err != nil {
					return fmt.Errorf("--html: %v", err)
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			return printRouteTable(cmd.OutOrStdout(), r)
		},
	}
	rf.add(c)
	f := c.Flags()
	f.IntVar(&rf.cfg.Nodes, "nodes", 1000, fmt.Sprintf("number of nodes, %d..%s (not with --graph)", meshsim.MinNodes, meshsim.Group(meshsim.MaxRouteNodes)))
	f.StringVar(&rf.cfg.Graph, "graph", "", `read the graph from a file instead: one edge "i j" a line, nodes numbered from 0, # comments`)
	f.IntVar(&mode, "mode", 0, "routing metric: 0 tree distance, 1 common-prefix distance")
	f.StringSliceVar(&rf.cfg.Adversary, "adversary", nil, "attacks adversary nodes play once the trees converge: "+strings.Join(meshsim.AdversaryKinds, ", ")+" (comma-separated)")
	f.DurationVar(&rf.cfg.Steady, "steady", 0, fmt.Sprintf("length of the quiet window measured after convergence, before the pairs are routed, %s..%s of mesh time (default: one epoch cycle, 15m on ESP-NOW, two weeks on LoRa); the trees renew every epoch cycle from their terms' starts (\"trees_term_s\"), so this places the routing window on a round of renewals or between two (\"routing_window\" reports the renewals it met)", meshsim.FormatDuration(meshsim.MinSteady), meshsim.FormatDuration(meshsim.MaxSteady)))
	f.BoolVar(&rf.cfg.SteadyOnCycle, "steady-on-cycle", false, "begin the steady window once every tree has started a term since convergence, not at convergence: a tree's first term runs on to its slot of the cycle, so a window from convergence holds the renewals of only some trees, and one of a cycle from then holds each tree's renewal once (\"steady_from_s\" says when it began; the wait is at most two cycles)")
	f.IntVar(&rf.cfg.Attempts, "attempts", 0, "sends per probe, each after a failure in the next best tree, 1..16 (default: the router's, 4; 1: no retry)")
	f.IntVar(&rf.cfg.Adversaries, "adversaries", 0, "how many adversary nodes (1 to half the nodes; default 1 with --adversary)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of the table")
	f.StringVar(&svg, "svg", "", "write a picture of the graph, tree 0 and one sampled route to this file")
	f.StringVar(&page, "html", "", "write a self-contained web page of the run to this file: the graph, every tree, sampled routes, the stretch histogram")
	f.StringVar(&rf.cfg.Pcap, "pcap", "", "write every frame on the medium to this capture file (radiotap + 802.11; tools/wireshark/mycelium.lua dissects it)")
	f.StringVar(&prof, "cpuprofile", "", "write the run's CPU profile (pprof) to this file")
	return c
}

// pendingFile is an output written at the end of a run but checked before
// it: a temporary file beside the target, renamed over it on success, so
// that an unwritable path fails before minutes of work and a failed run
// leaves an existing file as it was.
type pendingFile struct {
	f    *os.File
	path string
}

func createPending(path string) (*pendingFile, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s is a directory", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %v", path, unwrapPath(err))
	}
	return &pendingFile{f: f, path: path}, nil
}

// unwrapPath drops the temporary file's name from an error.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (p *pendingFile) commit() error {
	if err := p.f.Chmod(0o644); err != nil {
		return err
	}
	if err := p.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(p.f.Name(), p.path); err != nil {
		return err
	}
	p.f = nil
	return nil
}

// discard removes the temporary file unless committed.
func (p *pendingFile) discard() {
	if p.f != nil {
		p.f.Close()
		os.Remove(p.f.Name())
	}
}

func printRouteTable(w io.Writer, r *meshsim.RouteResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	p("mesh\t%s, %s (mean degree %.2f, at most %d; diameter %d); %s on %s; %s, mode %d, seed %d", plural(r.Nodes, "node", "nodes"), plural(r.Edges, "link", "links"), r.MeanDegree, r.MaxDegree, r.Diameter, r.Topology, r.Link, plural(r.Trees, "tree", "trees"), r.Mode, r.Seed)
	if r.ConvergedS != nil {
		p("converged\t%.1f s of mesh time from a cold start (%.2f claim periods), names stored and confirmed; the trees after %.1f s", *r.ConvergedS, *r.ConvergedPeriods, *r.TreesS)
	} else {
		p("converged\tthe trees after %.1f s of mesh time; %d names still not confirmed stored when the wait ended", *r.TreesS, r.NamesPending)
	}
	printProbes(p, "routes", &r.ProbeStats)
	rw := r.Window
	p("routed\tfrom %.1f s of mesh time, for %.1f s: %s of roots in it (%s started in all), %s entered", rw.StartS, rw.MeshS, plural(int(rw.Renewals), "renewal", "renewals"), plural(int(rw.Terms), "term", "terms"), plural(int(rw.Epochs), "epoch", "epochs"))
	p("deepest\t%s", plural(r.MaxDepth, "level", "levels"))
	p("addresses\t%d nibbles at most (32 fit the wire); %d places leased (no parent had room)", r.MaxNibbles, r.Leased)
	air := func(name string, a *meshsim.AirStats) {
		duty := ""
		if a.DutyShareMax != nil {
			duty = fmt.Sprintf("; the busiest node used %.1f %% of its duty-cycle budget", 100**a.DutyShareMax)
		}
		p("%s\t%.1f frames, %.0f bytes on the air per node per minute (%.0f bytes of tree and router messages); airtime %.3f %% of the time per node, %.3f %% at the busiest%s",
			name, a.FramesPerNodeMin, a.BytesPerNodeMin, a.ControlBytesPerNodeMin, 100*a.AirtimeShareMean, 100*a.AirtimeShareMax, duty)
		if len(a.BusiestByKind) > 0 {
			p("\tthe busiest, node %d: %s", a.BusiestNode, topKinds(a.BusiestByKind, 4))
		}
	}
	air("steady", &r.Steady)
	air("forming", &r.Forming)
	if rs := r.Repair; rs != nil {
		p("failure\t%s: %s dead, %s left", rs.Event, plural(rs.Killed, "node", "nodes"), plural(rs.Components, "piece", "pieces"))
		if rs.During.Pairs == 0 && rs.After.Pairs == 0 {
			p("repaired\tno piece of two nodes or more left: nothing to route")
		} else {
			printRepair(p, rs)
		}
	}
	p("loops\t%d decisions that broke the loop invariant (%d stale views, no loop)", r.Loops, r.StaleViews)
	if h := r.Hop; h != nil {
		p("hop\t%d frames tagged, %d opened; refused: %d bad tags, %d replays, %d untagged from armed neighbours; %d tagged from unproven addresses taken plain; %d rekeys, %d lapsed challenges (%d challenges in all), %d sequences recut", h.Sealed, h.Opened, h.BadTag, h.Replayed, h.Unauthenticated, h.Unverified, h.Rekeys, h.Lapsed, h.Challenges, h.Recut)
	}
	for _, e := range r.LoopErrors {
		p("loop\t%s", e)
	}
	p("time\t%.1f s of wall time, of which %.1f s building the mesh; %d events, %.2f µs each; heap at most %.0f MB", r.WallTimeS, r.SetupWallS, r.Events, r.WallPerEvent, r.HeapMB)
	return tw.Flush()
}

// printRepair prints how the mesh came back after a failure.
func printRepair(p func(string, ...any), rs *meshsim.RepairStats) {
	{
		when := func(s, per *float64) string {
			if s == nil {
				return "not within the wait"
			}
			return fmt.Sprintf("%.1f s (%.2f claim periods)", *s, *per)
		}
		p("repaired\ttrees after %s, names after %s", when(rs.TreesS, rs.TreesPeriods), when(rs.NamesS, rs.NamesPeriods))
		printProbes(p, "during", &rs.During)
		printProbes(p, fmt.Sprintf("after %d periods", rs.AfterPeriods), &rs.After)
	}
}

// printProbes prints a batch of probes: what came of them, and how long
// the delivered ones' paths were.
func printProbes(p func(string, ...any), name string, s *meshsim.ProbeStats) {
	failed := 0
	var kinds []string
	for k, n := range s.Failed {
		failed += n
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	slices.Sort(kinds)
	line := fmt.Sprintf("%d/%d delivered (%.3f), %d failed, %d unreported; %.2f attempts each", s.Delivered, s.Pairs, s.DeliveryRatio, failed, s.Unreported, s.Attempts)
	if len(kinds) > 0 {
		line += " (" + strings.Join(kinds, ", ") + ")"
	}
	p("%s\t%s", name, line)
	if s.Delivered > 0 {
		all := "over 5 % failed"
		if s.StretchP95All != nil {
			all = fmt.Sprintf("%.3f", *s.StretchP95All)
		}
		p("\tstretch mean %.3f, p95 %.3f, max %.3f (p95 of every pair, a failure as infinite: %s); %.2f hops against %.2f shortest; every hop of every attempt %.3f× the shortest", s.StretchMean, s.StretchP95, s.StretchMax, all, s.MeanHops, s.MeanShortest, s.Effort)
	}
	for _, e := range s.Errors {
		p("\tfailed %s", e)
	}
}

func benchRouteCmd() *cobra.Command {
	var (
		rf     routeFlags
		sizes  string
		modes  string
		topos  string
		seeds  string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "route",
		Short: "The routing measurement over topologies, sizes, seeds and metrics, as a table",
		Long: `Runs the measurement of "mycelium sim route" for every topology in
--topologies, size in --nodes, seed in --seeds and metric in --modes, and
prints one row each: convergence (trees and names, in claim periods),
delivery, stretch against the shortest paths (mean and p95 of the delivered;
p95 of every pair, a failure counted as infinite), steady control on the air
(frames and airtime per node; on LoRa the busiest node's share of its
duty-cycle budget), the repair after --fail-root or --kill (the share of
probes delivered during it and of the batch RepairPeriods claim periods
after), loops and wall time. Then, per topology, size and metric, the mean
over the seeds of each stretch column and the worst delivery.

` + routeLimits + ` At most 20 sizes, topologies and seeds each.`,
		Example: `  mycelium bench route --nodes 200 --seeds 1,2,3 --modes 0 --pairs 200
  mycelium bench route --topologies random,grid,ring,clustered,hubs --nodes 1000 --seeds 11,12,13,14 --modes 0
  mycelium bench route --json > route.json`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := rf.config(cmd)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("topology") {
				return fmt.Errorf("--topology: bench route takes --topologies")
			}
			if cmd.Flags().Changed("seed") {
				return fmt.Errorf("--seed: bench route takes --seeds")
			}
			ns, err := intList("nodes", sizes, 20)
			if err != nil {
				return err
			}
			ms, err := intList("modes", modes, 2)
			if err != nil {
				return err
			}
			for _, m := range ms {
				if m != 0 && m != 1 {
					return fmt.Errorf("--modes: %d is not 0 (tree distance) or 1 (common-prefix distance)", m)
				}
			}
			ss, err := intList("seeds", seeds, 20)
			if err != nil {
				return err
			}
			var ts []meshsim.Topology
			for _, name := range strings.Split(topos, ",") {
				t, err := meshsim.ParseRouteTopology(strings.TrimSpace(name))
				if err != nil {
					return fmt.Errorf("--topologies: %q: want random, grid, line, ring, clustered or hubs", name)
				}
				if slices.Contains(ts, t) {
					return fmt.Errorf("--topologies: %s twice", t)
				}
				ts = append(ts, t)
			}
			if len(ts) > 20 {
				return fmt.Errorf("--topologies: %d, at most 20", len(ts))
			}
			// Every row checked before the first runs.
			type row struct {
				cfg meshsim.RouteConfig
			}
			var rows []row
			for _, t := range ts {
				for _, n := range ns {
					for _, m := range ms {
						for _, sd := range ss {
							if sd < 0 {
								return fmt.Errorf("--seeds: %d is negative", sd)
							}
							c := cfg
							c.Topology, c.Nodes, c.Mode, c.Seed = t, n, m == 1, uint64(sd)
							if !t.HasDegree() {
								c.Degree = 0
							}
							if err := c.Validate(); err != nil {
								return settingError(err)
							}
							rows = append(rows, row{c})
						}
					}
				}
			}
			prog := newProgress(rf.progress, cmd.ErrOrStderr())
			defer prog.finish()
			var results []*meshsim.RouteResult
			out := cmd.OutOrStdout()
			defer meshsim.TuneCollector()()
			for i, rw := range rows {
				if prog != nil {
					prog.prefix = fmt.Sprintf("row %d of %d (%s, %s, seed %d): ", i+1, len(rows), rw.cfg.Topology, plural(rw.cfg.Nodes, "node", "nodes"), rw.cfg.Seed)
				}
				rw.cfg.Progress = prog.fn()
				r, err := meshsim.Route(rw.cfg)
				prog.finish()
				if err != nil {
					return fmt.Errorf("%s, %s, seed %d: %w", rw.cfg.Topology, plural(rw.cfg.Nodes, "node", "nodes"), rw.cfg.Seed, settingError(err))
				}
				r.Positions, r.Graph, r.Parents = nil, nil, nil
				results = append(results, r)
				if !asJSON {
					// Rows as they come: a thousand nodes take a while.
					if len(results) == 1 {
						fmt.Fprintln(out, benchRouteHeader)
					}
					fmt.Fprintln(out, benchRouteRow(r))
				}
			}
			if asJSON {
				return printJSON(out, results)
			}
			printBenchSummary(out, results)
			return nil
		},
	}
	rf.add(c)
	f := c.Flags()
	f.StringVar(&sizes, "nodes", "1000", fmt.Sprintf("mesh sizes, comma separated, each %d..%s", meshsim.MinNodes, meshsim.Group(meshsim.MaxRouteNodes)))
	f.StringVar(&modes, "modes", "0", "metrics, comma separated: 0 tree distance, 1 common-prefix distance")
	f.StringVar(&topos, "topologies", "random", "topologies, comma separated (random, grid, line, ring, clustered, hubs)")
	f.StringVar(&seeds, "seeds", "1", "random seeds, comma separated")
	f.BoolVar(&asJSON, "json", false, "print one JSON array instead of the table")
	return c
}

const benchRouteHeader = "topology    nodes  mode  seed  diam  converged_periods  delivery  stretch_mean  stretch_p95  p95_all  steady_frames/node/min  steady_airtime_max  duty_share_max  repair_during  repair_after  loops  wall_s"

// benchRouteRow is one run's row.
func benchRouteRow(r *meshsim.RouteResult) string {
	opt := func(v *float64, f string) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf(f, *v)
	}
	during, after := "-", "-"
	if rs := r.Repair; rs != nil {
		during = fmt.Sprintf("%d/%d", rs.During.Delivered, rs.During.Pairs)
		after = fmt.Sprintf("%d/%d", rs.After.Delivered, rs.After.Pairs)
	}
	return fmt.Sprintf("%-10s  %5d  %4d  %4d  %4d  %17s  %8.3f  %12.3f  %11.3f  %7s  %22.1f  %18.5f  %14s  %13s  %12s  %5d  %6.1f",
		r.Topology, r.Nodes, r.Mode, r.Seed, r.Diameter, opt(r.ConvergedPeriods, "%.2f"), r.DeliveryRatio, r.StretchMean, r.StretchP95, opt(r.StretchP95All, "%.3f"),
		r.Steady.FramesPerNodeMin, r.Steady.AirtimeShareMax, opt(r.Steady.DutyShareMax, "%.3f"), during, after, r.Loops, r.WallTimeS)
}

// printBenchSummary prints, per topology, size and metric, the mean over
// the seeds of the stretch figures and the worst delivery.
func printBenchSummary(w io.Writer, rs []*meshsim.RouteResult) {
	type key struct {
		topo        string
		nodes, mode int
	}
	var keys []key
	by := map[key][]*meshsim.RouteResult{}
	for _, r := range rs {
		k := key{r.Topology, r.Nodes, r.Mode}
		if by[k] == nil {
			keys = append(keys, k)
		}
		by[k] = append(by[k], r)
	}
	fmt.Fprintln(w, "\nover the seeds: topology  nodes  mode  seeds  worst_delivery  stretch_mean  stretch_p95 (means of the seeds')  loops")
	for _, k := range keys {
		g := by[k]
		worst, mean, p95, loops := 1.0, 0.0, 0.0, 0
		for _, r := range g {
			worst = min(worst, r.DeliveryRatio)
			mean += r.StretchMean / float64(len(g))
			p95 += r.StretchP95 / float64(len(g))
			loops += r.Loops
		}
		fmt.Fprintf(w, "%-10s  %5d  %4d  %5d  %14.3f  %12.3f  %11.3f  %5d\n", k.topo, k.nodes, k.mode, len(g), worst, mean, p95, loops)
	}
}

// intList parses a flag's "1,2,3": at most most entries, no repeats.
func intList(flag, s string, most int) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not an integer (want a comma-separated list such as 100,200)", flag, f)
		}
		if seen[v] {
			return nil, fmt.Errorf("--%s: %d is listed twice", flag, v)
		}
		seen[v] = true
		out = append(out, v)
	}
	if len(out) > most {
		return nil, fmt.Errorf("--%s: %d entries, at most %d", flag, len(out), most)
	}
	return out, nil
}

// topKinds lists the n kinds of message that took the most airtime, as
// shares of the time ("route register 1.37 %, ack 0.19 %").
func topKinds(by map[string]float64, n int) string {
	kinds := make([]string, 0, len(by))
	for k := range by {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int {
		if c := cmp.Compare(by[b], by[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range kinds[:min(n, len(kinds))] {
		parts = append(parts, fmt.Sprintf("%s %.3f %%", k, 100*by[k]))
	}
	return strings.Join(parts, ", ")
}
