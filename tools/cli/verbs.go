package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/tools/control"
)

func init() {
	for _, c := range []func() *cobra.Command{statusCmd, peersCmd, pingCmd, tracerouteCmd, lookupCmd, treeCmd, statsCmd} {
		register(c)
	}
}

// apiFlags are the flags every verb that talks to the daemon takes.
type apiFlags struct {
	socket string
	asJSON bool
}

func (f *apiFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.socket, "socket", "", "the node's control socket (default $"+control.EnvSocket+", else "+control.DefaultSocket+")")
	c.Flags().BoolVar(&f.asJSON, "json", false, "print JSON instead of a table")
}

func (f *apiFlags) client() *control.Client { return control.NewClient(control.SocketPath(f.socket)) }

// callTimeout bounds the quick queries.
const callTimeout = 10 * time.Second

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func short(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

func statusCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:     "status",
		Short:   "Show the node: its id and name, links, peers and place in the trees",
		Example: "  mycelium status --socket n1/mycelium.sock\n  mycelium status --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), callTimeout)
			defer cancel()
			s, err := f.client().Status(ctx)
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			if f.asJSON {
				return printJSON(w, s)
			}
			tw := table(w)
			fmt.Fprintf(tw, "node_id\t%s\n", s.NodeID)
			fmt.Fprintf(tw, "name\t%s\n", orDash(s.Name))
			if s.NameTaken != "" {
				fmt.Fprintf(tw, "name taken by\t%s\n", s.NameTaken)
			}
			fmt.Fprintf(tw, "version\t%s\n", s.Version)
			fmt.Fprintf(tw, "uptime\t%s\n", (time.Duration(s.UptimeS) * time.Second).String())
			fmt.Fprintf(tw, "peers\t%d\n", s.Peers)
			fmt.Fprintf(tw, "registered\t%v\n", s.Registered)
			if t := s.Timing; t != nil {
				fmt.Fprintf(tw, "timing\t%s: beacon every %v, trees %d, claims every %v, term %d claims, gossip hello every %v, services announced every %v%s\n", t.Profile,
					seconds(t.BeaconS), t.Trees, seconds(t.ClaimS), t.EpochPeriods, seconds(t.HelloS), seconds(t.RefreshS), explicitNote(t.Explicit))
			}
			tw.Flush()
			fmt.Fprintln(w)
			tw = table(w)
			fmt.Fprintln(tw, "LINK\tTYPE\tADDR\tTX\tRX\tDROPS")
			for _, l := range s.Links {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\n", l.Index, l.Type, l.Addr, l.TxFrames, l.RxFrames, l.Drops)
			}
			tw.Flush()
			fmt.Fprintln(w)
			return printTrees(w, s.Trees)
		},
	}
	f.add(c)
	return c
}

// explicitNote names the periods the configuration sets in place of the
// profile's.
func explicitNote(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	return " (set: " + strings.Join(keys, ", ") + ")"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printTrees(w io.Writer, ts []control.TreePos) error {
	tw := table(w)
	fmt.Fprintln(tw, "TREE\tROOT\tADDRESS\tDEPTH\tNEIGHBOURS")
	for _, t := range ts {
		addr := t.Address
		if t.IsRoot {
			addr = "(root)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\n", t.Tree, short(t.Root), addr, t.Depth, t.Neighbors)
	}
	if len(ts) == 0 {
		fmt.Fprintln(tw, "-\tno place in any tree yet\t\t\t")
	}
	return tw.Flush()
}

func peersCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:     "peers",
		Short:   "List the node's neighbours",
		Example: "  mycelium peers\n  mycelium peers --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), callTimeout)
			defer cancel()
			ps, err := f.client().Peers(ctx)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), ps)
			}
			tw := table(c.OutOrStdout())
			fmt.Fprintln(tw, "NODE_ID\tNAME\tLINK\tADDR\tLAST_HEARD\tREFERENCE\tSLEEPS")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1fs\t%v\t%v\n", short(p.NodeID), orDash(p.Name), p.Link, p.Addr, p.LastHeardS, p.Reference, p.Sleeps)
			}
			return tw.Flush()
		},
	}
	f.add(c)
	return c
}

func pingCmd() *cobra.Command {
	var (
		f        apiFlags
		count    int
		timeout  time.Duration
		interval time.Duration
	)
	c := &cobra.Command{
		Use:   "ping TARGET",
		Short: "Ping a node over the mesh (its end-to-end receipt is the echo)",
		Long: `Sends COUNT echo requests to TARGET (a name, a node_id, or a unique prefix of
a node_id this node knows) and prints the round-trip times. Exits 1 when
no reply came back.`,
		Example: "  mycelium ping pi-3\n  mycelium ping 3fa2 --count 10 --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if count < 1 || count > 1000 {
				return fmt.Errorf("--count %d: want 1..1000", count)
			}
			if timeout <= 0 || timeout > 10*time.Minute || interval < 0 || interval > 10*time.Minute {
				return fmt.Errorf("--timeout and --interval: want 1ms..10m")
			}
			ctx := c.Context()
			res, err := f.client().Ping(ctx, control.PingRequest{Target: args[0], Count: count, TimeoutMS: int(timeout.Milliseconds()), IntervalMS: max(int(interval.Milliseconds()), 1)})
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			if f.asJSON {
				if err := printJSON(w, res); err != nil {
					return err
				}
			} else {
				for _, rtt := range res.RTTms {
					fmt.Fprintf(w, "reply from %s: rtt %.2f ms\n", short(res.NodeID), rtt)
				}
				for _, e := range res.Errors {
					fmt.Fprintf(w, "no reply: %s\n", e)
				}
				fmt.Fprintf(w, "%d sent, %d received", res.Sent, res.Received)
				if len(res.RTTms) > 0 {
					lo, hi, sum := slices.Min(res.RTTms), slices.Max(res.RTTms), 0.0
					for _, r := range res.RTTms {
						sum += r
					}
					fmt.Fprintf(w, ", rtt min/avg/max %.2f/%.2f/%.2f ms", lo, sum/float64(len(res.RTTms)), hi)
				}
				fmt.Fprintln(w)
			}
			if res.Received == 0 {
				msg := "no reply from " + args[0]
				if len(res.Errors) > 0 {
					msg += ": " + res.Errors[len(res.Errors)-1]
				}
				return errors.New(msg)
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().IntVar(&count, "count", 3, "echo requests to send (1..1000)")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for each reply")
	c.Flags().DurationVar(&interval, "interval", time.Second, "time between requests")
	return c
}

func tracerouteCmd() *cobra.Command {
	var (
		f       apiFlags
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:     "traceroute TARGET",
		Short:   "Show the path to a node: every hop, its address and round trip",
		Long:    "Exits 1 when the target's own report did not come back (what came is still printed).",
		Example: "  mycelium traceroute pi-3\n  mycelium traceroute pi-3 --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if timeout <= 0 || timeout > 10*time.Minute {
				return fmt.Errorf("--timeout %v: want 1ms..10m", timeout)
			}
			res, err := f.client().Traceroute(c.Context(), control.TraceRequest{Target: args[0], TimeoutMS: int(timeout.Milliseconds())})
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			if f.asJSON {
				if err := printJSON(w, res); err != nil {
					return err
				}
			} else {
				tw := table(w)
				fmt.Fprintln(tw, "HOP\tNODE_ID\tNAME\tADDRESS\tRTT\tLINK")
				for _, h := range res.Hops {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.2f ms\t%s\n", h.Hop, short(h.NodeID), orDash(h.Name), orDash(h.Address), h.RTTms, orDash(h.Link))
				}
				tw.Flush()
			}
			if !res.Complete {
				return fmt.Errorf("traceroute to %s incomplete: the target's report did not come back", args[0])
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the reports")
	return c
}

func lookupCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:     "lookup TARGET",
		Short:   "Look a node up by name (or node_id): its node_id and addresses",
		Example: "  mycelium lookup pi-3 --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), 3*time.Minute)
			defer cancel()
			r, err := f.client().Lookup(ctx, args[0])
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), r)
			}
			tw := table(c.OutOrStdout())
			fmt.Fprintf(tw, "node_id\t%s\nname\t%s\n", r.NodeID, orDash(r.Name))
			for _, a := range r.Addrs {
				fmt.Fprintf(tw, "tree %d\t%s\n", a.Tree, orDash(a.Address))
			}
			return tw.Flush()
		},
	}
	f.add(c)
	return c
}

func treeCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:     "tree",
		Short:   "Show this node's place in every tree",
		Example: "  mycelium tree --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), callTimeout)
			defer cancel()
			ts, err := f.client().Tree(ctx)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), ts)
			}
			return printTrees(c.OutOrStdout(), ts)
		},
	}
	f.add(c)
	return c
}

func statsCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:     "stats",
		Short:   "Show the counters of every layer",
		Example: "  mycelium stats --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), callTimeout)
			defer cancel()
			s, err := f.client().Stats(ctx)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), s)
			}
			tw := table(c.OutOrStdout())
			for _, sec := range []struct {
				name string
				m    map[string]uint64
			}{{"node", s.Node}, {"drops", s.Drops}, {"route", s.Route}, {"trees", s.Trees}, {"stream", s.Stream}} {
				keys := make([]string, 0, len(sec.m))
				for k := range sec.m {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%s\t%d\n", sec.name, k, sec.m[k])
				}
			}
			for _, l := range s.Links {
				fmt.Fprintf(tw, "link %d (%s)\t%s\ttx %d rx %d drops %d\n", l.Index, l.Type, l.Addr, l.TxFrames, l.RxFrames, l.Drops)
			}
			return tw.Flush()
		},
	}
	f.add(c)
	return c
}

// seconds is a duration the control API gives in seconds.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
