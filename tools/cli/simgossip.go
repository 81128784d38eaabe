package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

func simGossipCmd() *cobra.Command {
	var (
		cfg      meshsim.GossipConfig
		topo     string
		progress string
		asJSON   bool
		hello    time.Duration
	)
	c := &cobra.Command{
		Use:   "gossip",
		Short: "Spread Messages through a mesh with gossip and count what it cost",
		Long: `Builds a topology (random geometric with a given mean degree, a grid or a
line) of nodes running gossip (l4-apps/gossip) on the simulated ESP-NOW
medium, in virtual time: the 802.11 DCF, where neighbours' broadcasts
collide and are never retried, and independent loss on every frame. After
two hellos, --messages Messages of --size bytes are published at random
nodes, --rate a second; the run goes on until every node has every Message
(or five hello periods have passed). "reach" is the mean over Messages of
the fraction of nodes that got it (reach_min the worst); tx_per_node_per_msg
counts every frame gossip put on the air from the first Message on —
relays, hellos, repairs, Requests, node acks, MAC retries — divided by nodes
and Messages (802.11 ACKs apart); latency is from publish to delivery over
every (node, Message). The same seed gives the same run.`,
		Example: `  mycelium sim gossip --nodes 1000 --degree 8 --loss 0.1 --messages 100 --json`,
		Args:    args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := meshsim.ParseTopology(topo)
			if err != nil {
				return fmt.Errorf("--topology %q: want random, grid or line", topo)
			}
			cfg.Topology = t
			if err := oneOf("progress", progress, progressModes...); err != nil {
				return err
			}
			if hello < time.Second || hello > time.Hour {
				return fmt.Errorf("--hello %v: want 1s..1h", hello)
			}
			cfg.HelloPeriod = hello
			if err := cfg.Validate(); err != nil {
				return settingError(err)
			}
			prog := newProgress(progress, cmd.ErrOrStderr())
			defer prog.finish()
			cfg.Progress = prog.fn()
			r, err := meshsim.Gossip(cfg)
			prog.finish()
			if err != nil {
				return settingError(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			return printGossipTable(cmd.OutOrStdout(), r)
		},
	}
	f := c.Flags()
	f.IntVar(&cfg.Nodes, "nodes", 1000, fmt.Sprintf("number of nodes, %d..%s", meshsim.MinNodes, meshsim.Group(meshsim.MaxNodes)))
	f.Float64Var(&cfg.Degree, "degree", 8, fmt.Sprintf("mean degree of a random topology, above 0 and at most %d", meshsim.MaxDegree))
	f.StringVar(&topo, "topology", "random", "random (random geometric), grid or line")
	f.Float64Var(&cfg.Loss, "loss", 0, "independent frame loss on every link, each direction: at least 0, below 1")
	f.IntVar(&cfg.Messages, "messages", 100, fmt.Sprintf("Messages to publish, 1..%s", meshsim.Group(meshsim.MaxGossipMessages)))
	f.Float64Var(&cfg.Rate, "rate", 1, "Messages published a second, mesh-wide (0, 100]")
	f.IntVar(&cfg.Size, "size", 64, "data bytes of each Message, 8..4000 (above 183 a Message goes as a Notification)")
	f.DurationVar(&hello, "hello", 60*time.Second, "the nodes' hello period, 1s..1h")
	f.Uint64Var(&cfg.Seed, "seed", 1, "random seed: the same seed gives the same run")
	f.BoolVar(&cfg.Signed, "signed", false, "sign every broadcast (l2-seq/bsig, as the daemon does by default)")
	f.StringVar(&progress, "progress", "auto", progressHelp)
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of the table")
	return c
}

func printGossipTable(w io.Writer, r *meshsim.GossipResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	p("mesh\t%s nodes, %s links (mean degree %.2f), loss %.3g, seed %d", meshsim.Group(r.Nodes), meshsim.Group(r.Edges), r.MeanDegree, r.Loss, r.Seed)
	p("messages\t%d, %d reached every node", r.Messages, r.Complete)
	p("reach\t%.4f mean, %.4f worst message", r.Reach, r.ReachMin)
	p("tx per node per message\t%.3f (relays %.3f, hellos %.3f, repairs and acks %.3f; 802.11 ACKs %.3f)", r.TxPerNodePerMs, r.RelayFraction, r.HelloPerNodeMs, r.RepairPerNode, r.MACAcks)
	p("latency\tp50 %.3f s, p95 %.3f s, max %.1f s (%.2f %% of deliveries after 5 s: by repair)", r.LatencyP50, r.LatencyP95, r.LatencyMax, 100*r.Late)
	p("bytes on the air per node per message\t%.0f (signed broadcasts: %v, %.4f of deliveries verified)", r.BytesPerNodeMs, r.Signed, r.SignedShare)
	p("time\t%.0f s of mesh time, %.1f s of wall time", r.MeshTimeS, r.WallTimeS)
	return tw.Flush()
}
