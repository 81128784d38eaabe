package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
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
}

// routeLimits is the help's paragraph on the limits of a route run.
var routeLimits = fmt.Sprintf(`Limits (checked before anything runs): %s..%s nodes (a graph file too), --degree
up to %d, --pairs up to %s, --trees 1..%d. A run keeps about 0.45 MB per node
and its wall time grows faster than the node count (the README has measured
figures). A random geometric graph is connected only above a mean degree
of about ln(N): --degree 8 placed 2,000 nodes, but 5,000 needed 9 (seed 1);
an unconnected graph is refused after 50 placements.`,
	meshsim.Group(meshsim.MinNodes), meshsim.Group(meshsim.MaxRouteNodes), meshsim.MaxDegree,
	meshsim.Group(meshsim.MaxPairs), meshsim.MaxTrees)

func (rf *routeFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.Float64Var(&rf.cfg.Degree, "degree", 8, fmt.Sprintf("mean degree of a random topology, above 0 and at most %d (and below the node count)", meshsim.MaxDegree))
	f.StringVar(&rf.topo, "topology", "random", "random (random geometric), grid or line")
	f.IntVar(&rf.cfg.Pairs, "pairs", 1000, fmt.Sprintf("random source-destination pairs to route between, 1..%s", meshsim.Group(meshsim.MaxPairs)))
	f.Uint64Var(&rf.cfg.Seed, "seed", 1, "random seed: the same seed gives the same run")
	f.IntVar(&rf.cfg.Trees, "trees", 6, fmt.Sprintf("parallel trees (each with its own root), 1..%d", meshsim.MaxTrees))
	f.Float64Var(&rf.cfg.Loss, "loss", 0, "independent frame loss on every link, each direction: at least 0, below 1")
	f.StringVar(&rf.progress, "progress", "auto", progressHelp)
}

// config checks the shared flags and returns the measurement's config
// (Nodes still to be set).
func (rf *routeFlags) config(cmd *cobra.Command) (meshsim.RouteConfig, error) {
	c := rf.cfg
	t, err := meshsim.ParseTopology(rf.topo)
	if err != nil {
		return c, fmt.Errorf("--topology %q: want random, grid or line", rf.topo)
	}
	c.Topology = t
	if err := oneOf("progress", rf.progress, progressModes...); err != nil {
		return c, err
	}
	if err := onlyWith(cmd, t == meshsim.Random && c.Graph == "", "to --topology random", "degree"); err != nil {
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
	)
	c := &cobra.Command{
		Use:   "route",
		Short: "Build a mesh, let its trees converge, and route between random pairs",
		Long: `Builds a topology (random geometric with a given mean degree, a grid, a
line, or a graph file) of nodes running the trees and the router on the
simulated ESP-NOW medium, lets the trees converge from a cold start in
virtual (mesh) time, measures the steady control traffic, then routes a
Package between --pairs random pairs and compares each path with the
shortest one (breadth-first search on the same graph). With --fail-root the
root of tree 0 is killed afterwards and the re-convergence is timed, with
traffic flowing. Every routing decision is checked against the invariant
that makes loops impossible (each hop strictly closer to the destination);
"loops" counts violations. The same seed gives the same run.

With --adversary, --adversaries nodes (our software, keys of their own)
attack their neighbours every 5 s of mesh time from convergence until the
routing is measured: forge-goodbye (a goodbye in a neighbour's name),
forge-beacon (beacons claiming a neighbour's node_id), flood (bursts of
bogus sequence packets claiming 65,536 parts), blackhole (it drops every
routed frame it hears). The JSON adds "adversary": {KIND: {"tried",
"rejected"}} (tried: an honest node heard the attack; rejected: it was not
fooled; for blackhole, the routed frames swallowed), the delivery between
honest pairs whose every shortest path avoids the adversaries
("honest_delivery_ratio"), and the most reassembly memory an honest node
held ("peak_rx_bytes_per_node", against "rx_budget_bytes"). Pairs are
drawn among honest nodes.

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
			prog := newProgress(rf.progress, cmd.ErrOrStderr())
			defer prog.finish()
			cfg.Progress = prog.fn()
			r, err := meshsim.Route(cfg)
			prog.finish()
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
	f.BoolVar(&rf.cfg.FailRoot, "fail-root", false, "kill the root of tree 0 after convergence and time the re-convergence (3 nodes or more)")
	f.StringSliceVar(&rf.cfg.Adversary, "adversary", nil, "attacks adversary nodes play once the trees converge: "+strings.Join(meshsim.AdversaryKinds, ", ")+" (comma-separated)")
	f.IntVar(&rf.cfg.Attempts, "attempts", 0, "sends per probe, each after a failure in the next best tree, 1..16 (default: the router's, 4; 1: no retry)")
	f.IntVar(&rf.cfg.Adversaries, "adversaries", 0, "how many adversary nodes (1 to half the nodes; default 1 with --adversary)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of the table")
	f.StringVar(&svg, "svg", "", "write a picture of the graph, tree 0 and one sampled route to this file")
	f.StringVar(&page, "html", "", "write a self-contained web page of the run to this file: the graph, every tree, sampled routes, the stretch histogram")
	f.StringVar(&rf.cfg.Pcap, "pcap", "", "write every frame on the medium to this capture file (radiotap + 802.11; tools/wireshark/mycelium.lua dissects it)")
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
	p("mesh\t%s, %s (mean degree %.2f), %s, mode %d, seed %d", plural(r.Nodes, "node", "nodes"), plural(r.Edges, "link", "links"), r.MeanDegree, plural(r.Trees, "tree", "trees"), r.Mode, r.Seed)
	names := fmt.Sprintf("%d names not yet confirmed stored when routing began", r.NamesPending)
	if r.NamedS != nil {
		names = fmt.Sprintf("every name stored after %.1f s", *r.NamedS)
	}
	p("converged\t%.1f s of mesh time from a cold start (%.2f beacon periods); %s", r.ConvergedS, r.BeaconPeriods, names)
	p("routes\t%d/%d delivered (%.3f); stretch mean %.3f, p95 %.3f, max %.3f (%.2f hops against %.2f shortest)", r.Delivered, r.Pairs, r.DeliveryRatio, r.StretchMean, r.StretchP95, r.StretchMax, r.MeanHops, r.MeanShortest)
	p("control\t%.0f bytes per node per minute, steady (%.0f while forming); %.0f bytes on the air per node per minute, steady", r.ControlBytesPerNodeMin, r.ControlFormation, r.AirBytesPerNodeMin)
	p("deepest\t%s", plural(r.MaxDepth, "level", "levels"))
	if r.RootFailed && r.ReconvergedS == nil {
		p("root failure\tnot re-converged within the wait (%s of mesh time): the dead root may have cut the graph in two", meshsim.FormatDuration(meshsim.DefaultMaxConverge))
	}
	if r.ReconvergedS != nil {
		renamed := "names not all stored again within the wait"
		if r.RenamedS != nil {
			renamed = fmt.Sprintf("names stored again after %.1f s", *r.RenamedS)
		}
		p("root failure\tre-converged %.1f s of mesh time after (%.2f claim periods after the dead root's term ended); %s; %d/%d delivered after", *r.ReconvergedS, *r.ReconvergedAfterTerm, renamed, *r.AfterFailDelivered, *r.AfterFailPairs)
	}
	p("loops\t%d hops that did not bring a Package closer", r.Loops)
	for _, e := range r.Errors {
		p("failed\t%s", e)
	}
	p("time\t%.1f s of wall time, of which %.1f s building the mesh", r.WallTimeS, r.SetupWallS)
	return tw.Flush()
}

func benchRouteCmd() *cobra.Command {
	var (
		rf     routeFlags
		sizes  string
		modes  string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "route",
		Short: "The routing measurement over mesh sizes and both metrics, as a table",
		Long: `Runs the measurement of "mycelium sim route" for every size in --nodes
and every metric in --modes, and prints one row each: convergence, delivery,
stretch against the shortest paths, control traffic per node per minute
(steady and while forming), and wall time (setup_s of it building the mesh).
The control columns are the curve to watch as the mesh grows.

` + routeLimits + ` At most 20 sizes.`,
		Example: `  mycelium bench route --nodes 100,200 --modes 0 --pairs 200
  mycelium bench route --json > route.json`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := rf.config(cmd)
			if err != nil {
				return err
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
			// Every row checked before the first runs.
			type row struct {
				cfg  meshsim.RouteConfig
				n, m int
			}
			var rows []row
			for _, n := range ns {
				for _, m := range ms {
					c := cfg
					c.Nodes, c.Mode = n, m == 1
					if err := c.Validate(); err != nil {
						return settingError(err)
					}
					rows = append(rows, row{c, n, m})
				}
			}
			prog := newProgress(rf.progress, cmd.ErrOrStderr())
			defer prog.finish()
			var results []*meshsim.RouteResult
			for i, rw := range rows {
				if prog != nil {
					prog.prefix = fmt.Sprintf("row %d of %d (%s, mode %d): ", i+1, len(rows), plural(rw.n, "node", "nodes"), rw.m)
				}
				rw.cfg.Progress = prog.fn()
				r, err := meshsim.Route(rw.cfg)
				prog.finish()
				if err != nil {
					return fmt.Errorf("%s, mode %d: %w", plural(rw.n, "node", "nodes"), rw.m, settingError(err))
				}
				r.Positions, r.Graph, r.Parents = nil, nil, nil
				results = append(results, r)
				if !asJSON {
					// Rows as they come: a thousand nodes take a while.
					if len(results) == 1 {
						fmt.Fprintln(cmd.OutOrStdout(), "nodes  mode  converged_s  beacon_periods  delivery  stretch_mean  stretch_p95  control_B/node/min  forming_B/node/min  air_B/node/min  loops  setup_s  wall_s")
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%5d  %4d  %11.1f  %14.2f  %8.3f  %12.3f  %11.3f  %18.0f  %18.0f  %14.0f  %5d  %7.1f  %6.1f\n",
						r.Nodes, r.Mode, r.ConvergedS, r.BeaconPeriods, r.DeliveryRatio, r.StretchMean, r.StretchP95, r.ControlBytesPerNodeMin, r.ControlFormation, r.AirBytesPerNodeMin, r.Loops, r.SetupWallS, r.WallTimeS)
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), results)
			}
			return nil
		},
	}
	rf.add(c)
	f := c.Flags()
	f.StringVar(&sizes, "nodes", "100,200,500,1000", fmt.Sprintf("mesh sizes, comma separated, each %d..%s", meshsim.MinNodes, meshsim.Group(meshsim.MaxRouteNodes)))
	f.StringVar(&modes, "modes", "0,1", "metrics, comma separated: 0 tree distance, 1 common-prefix distance")
	f.BoolVar(&asJSON, "json", false, "print one JSON array instead of the table")
	return c
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
