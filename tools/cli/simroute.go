package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

// routeFlags are the flags `sim route` and `bench route` share.
type routeFlags struct {
	cfg      meshsim.RouteConfig
	topo     string
	progress string
}

func (rf *routeFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.Float64Var(&rf.cfg.Degree, "degree", 8, "mean degree of a random topology")
	f.StringVar(&rf.topo, "topology", "random", "random (random geometric), grid or line")
	f.StringVar(&rf.cfg.Graph, "graph", "", `read the graph from a file instead: one edge "i j" a line, nodes numbered from 0, # comments`)
	f.IntVar(&rf.cfg.Pairs, "pairs", 1000, "random source-destination pairs to route between")
	f.Uint64Var(&rf.cfg.Seed, "seed", 1, "random seed: the same seed gives the same run")
	f.IntVar(&rf.cfg.Trees, "trees", 6, "parallel trees (each with its own root)")
	f.Float64Var(&rf.cfg.Loss, "loss", 0, "independent frame loss on every link, each direction")
	f.StringVar(&rf.progress, "progress", "auto", "stage names on stderr: auto (when a terminal), always, never")
}

// config checks the shared flags and returns the measurement's config.
func (rf *routeFlags) config(cmd *cobra.Command) (meshsim.RouteConfig, error) {
	c := rf.cfg
	t, err := meshsim.ParseTopology(rf.topo)
	if err != nil {
		return c, err
	}
	c.Topology = t
	if c.Loss < 0 || c.Loss >= 1 {
		return c, fmt.Errorf("--loss %v not in [0, 1)", c.Loss)
	}
	if c.Trees < 1 || c.Trees > 16 {
		return c, fmt.Errorf("--trees %d not in 1..16", c.Trees)
	}
	if c.Pairs < 1 {
		return c, fmt.Errorf("--pairs %d: at least one", c.Pairs)
	}
	if showProgress(rf.progress, cmd.ErrOrStderr()) {
		w := cmd.ErrOrStderr()
		c.Progress = func(stage string) { fmt.Fprintf(w, "%s...\n", stage) }
	}
	return c, nil
}

func simRouteCmd() *cobra.Command {
	var (
		rf     routeFlags
		mode   int
		asJSON bool
		svg    string
	)
	c := &cobra.Command{
		Use:   "route",
		Short: "Build a mesh, let its trees converge, and route between random pairs",
		Long: `Builds a topology (random geometric with a given mean degree, a grid, a
line, or a graph file) of nodes running the trees and the router on the
simulated ESP-NOW medium, lets the trees converge from a cold start in
virtual time, measures the steady control traffic, then routes a Package
between --pairs random pairs and compares each path with the shortest one
(breadth-first search on the same graph). With --fail-root the root of tree 0
is killed afterwards and the re-convergence is timed, with traffic flowing.
Every routing decision is checked against the invariant that makes loops
impossible (each hop strictly closer to the destination); "loops" counts
violations. The same seed gives the same run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := rf.config(cmd)
			if err != nil {
				return err
			}
			if mode != 0 && mode != 1 {
				return fmt.Errorf("--mode %d: 0 (tree distance) or 1 (common-prefix distance)", mode)
			}
			cfg.Mode = mode == 1
			r, err := meshsim.Route(cfg)
			if err != nil {
				return err
			}
			if svg != "" {
				if err := writeSVG(svg, r); err != nil {
					return err
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
	f.IntVar(&rf.cfg.Nodes, "nodes", 1000, "number of nodes (ignored with --graph)")
	f.IntVar(&mode, "mode", 0, "routing metric: 0 tree distance, 1 common-prefix distance")
	f.BoolVar(&rf.cfg.FailRoot, "fail-root", false, "kill the root of tree 0 after convergence and time the re-convergence")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of the table")
	f.StringVar(&svg, "svg", "", "write a picture of the graph, tree 0 and one sampled route to this file")
	return c
}

func writeSVG(path string, r *meshsim.RouteResult) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := meshsim.WriteRouteSVG(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func printRouteTable(w io.Writer, r *meshsim.RouteResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	p("mesh\t%d nodes, %d links (mean degree %.2f), %d trees, mode %d, seed %d", r.Nodes, r.Edges, r.MeanDegree, r.Trees, r.Mode, r.Seed)
	names := fmt.Sprintf("%d names not yet confirmed stored when routing began", r.NamesPending)
	if r.NamedS != nil {
		names = fmt.Sprintf("every name stored after %.1f s", *r.NamedS)
	}
	p("converged\t%.1f s of mesh time from a cold start (%.2f beacon periods); %s", r.ConvergedS, r.BeaconPeriods, names)
	p("routes\t%d/%d delivered (%.3f); stretch mean %.3f, p95 %.3f, max %.3f (%.2f hops against %.2f shortest)", r.Delivered, r.Pairs, r.DeliveryRatio, r.StretchMean, r.StretchP95, r.StretchMax, r.MeanHops, r.MeanShortest)
	p("control\t%.0f bytes per node per minute, steady (%.0f while forming); %.0f bytes on the air per node per minute, steady", r.ControlBytesPerNodeMin, r.ControlFormation, r.AirBytesPerNodeMin)
	p("deepest\t%d levels", r.MaxDepth)
	if r.ReconvergedS != nil {
		renamed := "names not all stored again within the wait"
		if r.RenamedS != nil {
			renamed = fmt.Sprintf("names stored again after %.1f s", *r.RenamedS)
		}
		p("root failure\tre-converged %.1f s after (%.2f claim periods after the dead root's term ended); %s; %d/%d delivered after", *r.ReconvergedS, *r.ReconvergedAfterTerm, renamed, *r.AfterFailDelivered, *r.AfterFailPairs)
	}
	p("loops\t%d hops that did not bring a Package closer", r.Loops)
	for _, e := range r.Errors {
		p("failed\t%s", e)
	}
	p("time\t%.1f s of wall time", r.WallTimeS)
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
(steady and while forming), and wall time. The control columns are the curve
to watch as the mesh grows.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := rf.config(cmd)
			if err != nil {
				return err
			}
			ns, err := intList(sizes, 2)
			if err != nil {
				return fmt.Errorf("--nodes: %w", err)
			}
			ms, err := intList(modes, 0)
			if err != nil {
				return fmt.Errorf("--modes: %w", err)
			}
			var rows []*meshsim.RouteResult
			for _, n := range ns {
				for _, m := range ms {
					if m != 0 && m != 1 {
						return fmt.Errorf("--modes: %d is not 0 or 1", m)
					}
					c := cfg
					c.Nodes, c.Mode = n, m == 1
					r, err := meshsim.Route(c)
					if err != nil {
						return fmt.Errorf("%d nodes, mode %d: %w", n, m, err)
					}
					r.Positions, r.Graph, r.Parents = nil, nil, nil
					rows = append(rows, r)
					if !asJSON {
						// Rows as they come: a thousand nodes take a while.
						if len(rows) == 1 {
							fmt.Fprintln(cmd.OutOrStdout(), "nodes  mode  converged_s  beacon_periods  delivery  stretch_mean  stretch_p95  control_B/node/min  forming_B/node/min  air_B/node/min  loops  wall_s")
						}
						fmt.Fprintf(cmd.OutOrStdout(), "%5d  %4d  %11.1f  %14.2f  %8.3f  %12.3f  %11.3f  %18.0f  %18.0f  %14.0f  %5d  %6.1f\n",
							r.Nodes, r.Mode, r.ConvergedS, r.BeaconPeriods, r.DeliveryRatio, r.StretchMean, r.StretchP95, r.ControlBytesPerNodeMin, r.ControlFormation, r.AirBytesPerNodeMin, r.Loops, r.WallTimeS)
					}
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			return nil
		},
	}
	rf.add(c)
	f := c.Flags()
	f.StringVar(&sizes, "nodes", "100,200,500,1000", "mesh sizes, comma separated")
	f.StringVar(&modes, "modes", "0,1", "metrics, comma separated: 0 tree distance, 1 common-prefix distance")
	f.BoolVar(&asJSON, "json", false, "print one JSON array instead of the table")
	return c
}

// intList parses "1,2,3", each at least lo.
func intList(s string, lo int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if v < lo {
			return nil, fmt.Errorf("%d is below %d", v, lo)
		}
		out = append(out, v)
	}
	return out, nil
}
