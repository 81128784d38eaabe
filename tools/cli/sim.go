package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

func init() { register(simCmd) }

func simCmd() *cobra.Command {
	var (
		cfg      meshsim.Config
		topo     string
		asJSON   bool
		progress string
		sf, bw   int
	)
	c := &cobra.Command{
		Use:   "sim",
		Short: "Run a whole mesh on the simulated medium, in mesh time, and print what happened",
		Long: `Runs N nodes on a simulated radio medium in virtual time: beacons, peer
discovery and application transfers between neighbours, with loss,
collisions and half-duplex radios. With no flags: 25 ESP-NOW nodes on a
grid, 5 % loss, 10 minutes of mesh time, a transfer per node per minute.
The same seed gives the same run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := meshsim.ParseTopology(topo)
			if err != nil {
				return err
			}
			cfg.Topology = t
			if cfg.Loss < 0 || cfg.Loss >= 1 {
				return fmt.Errorf("--loss %v not in [0, 1)", cfg.Loss)
			}
			cfg.LoRa = lora.Params{SF: sf, Bandwidth: bw * 1000, CR: 1, Preamble: 12}
			// LoRa carries about 1.7 kbit/s shared by a whole neighbourhood:
			// unless told otherwise, its nodes send smaller, rarer transfers.
			if cfg.Link != "espnow" {
				if !cmd.Flags().Changed("transfers") {
					cfg.Transfers = 0.2
				}
				if !cmd.Flags().Changed("max-size") {
					cfg.MaxSize = 2000
				}
			}
			if cfg.Link != "espnow" {
				if err := cfg.LoRa.Validate(); err != nil {
					return err
				}
			}
			var bar *progressbar.ProgressBar
			if showProgress(progress, cmd.ErrOrStderr()) {
				bar = progressbar.NewOptions64(int64(cfg.Duration/time.Second),
					progressbar.OptionSetWriter(cmd.ErrOrStderr()),
					progressbar.OptionSetDescription("mesh time"),
					progressbar.OptionShowCount(),
					progressbar.OptionSetItsString("s"),
					progressbar.OptionShowIts(),
					progressbar.OptionClearOnFinish(),
					progressbar.OptionThrottle(100*time.Millisecond))
				cfg.Progress = func(done, total time.Duration) { _ = bar.Set64(int64(done / time.Second)) }
			}
			m, err := meshsim.Build(cfg)
			if err != nil {
				return err
			}
			res := m.Run()
			if bar != nil {
				_ = bar.Finish()
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return printSimTable(cmd.OutOrStdout(), res)
		},
	}
	f := c.Flags()
	f.IntVar(&cfg.Nodes, "nodes", 25, "number of nodes")
	f.StringVar(&topo, "topology", "grid", "grid, line or random (random geometric)")
	f.Float64Var(&cfg.Degree, "degree", 6, "mean degree of a random topology")
	f.StringVar(&cfg.Link, "link", "espnow", "espnow, lora, or mixed (ESP-NOW and LoRa nodes with gateways carrying both)")
	f.IntVar(&cfg.Gateways, "gateways", 0, "mixed: nodes with both radios (default a tenth)")
	f.IntVar(&cfg.ReferenceNodes, "reference-nodes", 0, "how many of the nodes are reference boards (the MicroPython implementation, modem sleep on; ESP-NOW only)")
	f.Float64Var(&cfg.Loss, "loss", 0.05, "frame loss on every link, each direction")
	f.BoolVar(&cfg.Bursty, "bursty", false, "bursty (Gilbert–Elliott) loss with the same mean")
	f.Uint64Var(&cfg.Seed, "seed", 1, "random seed: the same seed gives the same run")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "mesh time to simulate")
	f.Float64Var(&cfg.Transfers, "transfers", 1, "application transfers each node starts per minute, to a random neighbour (lora, mixed: 0.2)")
	f.IntVar(&cfg.MinSize, "min-size", 100, "smallest transfer, bytes")
	f.IntVar(&cfg.MaxSize, "max-size", 20000, "largest transfer, bytes (lora, mixed: 2000)")
	f.IntVar(&sf, "sf", 9, "LoRa spreading factor")
	f.IntVar(&bw, "bw", 125, "LoRa bandwidth, kHz")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of the table")
	f.StringVar(&cfg.PcapDir, "pcap", "", "write a capture per medium into this directory (espnow.pcap, lora.pcap)")
	f.StringVar(&progress, "progress", "auto", "progress bar on stderr: auto (when a terminal), always, never")
	c.AddCommand(simRouteCmd())
	return c
}

// showProgress decides whether to draw a progress bar.
func showProgress(mode string, w io.Writer) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	if f, ok := w.(*os.File); ok {
		return term.IsTerminal(int(f.Fd()))
	}
	return false
}

func printSimTable(w io.Writer, r *meshsim.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	p("mesh\t%d nodes, %s, %s links, loss %.2f, seed %d", r.Nodes, r.Topology, r.Link, r.Loss, r.Seed)
	edges := []string{}
	for _, k := range sortedKeys(r.Edges) {
		edges = append(edges, fmt.Sprintf("%s %d", k, r.Edges[k]))
	}
	p("graph\t%s edges; %.1f peers per node discovered", strings.Join(edges, ", "), r.MeanPeers)
	p("time\t%s of mesh time in %.2f s of wall time (%d events)", time.Duration(r.MeshTimeS*float64(time.Second)), r.WallTimeS, r.Events)
	p("packets\t%d sent, %d received", r.Packets.Sent, r.Packets.Received)
	p("bytes\t%d sent, %d received", r.Bytes.Sent, r.Bytes.Received)
	t := r.Transfers
	p("transfers\t%d started, %d delivered, %d confirmed to the sender, %d in flight at the end", t.Started, t.Delivered, t.Confirmed, t.InFlight)
	p("unreported\t%d confirmed but never delivered (must be 0); %d delivered more than once", t.Unreported, t.Duplicates)
	fails := []string{}
	for _, k := range sortedKeys(t.Failed) {
		fails = append(fails, fmt.Sprintf("%s %d", k, t.Failed[k]))
	}
	if len(fails) == 0 {
		fails = append(fails, "none")
	}
	p("failed\t%s", strings.Join(fails, ", "))
	if b := t.Boards; b != nil {
		p("reference boards\t%d; our sends to them %d: %d confirmed, %d failed; they sent %d, %d delivered", b.Nodes, b.SentTo, b.ConfirmedTo, b.FailedTo, b.SentBy, b.DeliveredBy)
	}
	if t.MeanLatencyS > 0 {
		p("latency\t%.3f s mean, send to confirmation", t.MeanLatencyS)
	}
	for _, k := range sortedKeys(r.Airtime) {
		a := r.Airtime[k]
		p("airtime %s\t%.1f s on air in %d frames (%.1f%% of a neighbourhood's time), %d collisions, %d lost", k, a.AirtimeS, a.Transmissions, 100*a.Utilisation, a.Collisions, a.Losses)
	}
	p("goodput\t%.0f bit/s of application data delivered (%d bytes)", r.GoodputBps, t.BytesDelivered)
	drops := []string{}
	for _, k := range sortedKeys(r.Drops) {
		drops = append(drops, fmt.Sprintf("%s %d", k, r.Drops[k]))
	}
	if len(drops) == 0 {
		drops = append(drops, "none")
	}
	p("node drops\t%s", strings.Join(drops, ", "))
	p("memory\t%d bytes of heap per node; peaks: reassembly %d, send cache %d", r.Memory.HeapPerNodeBytes, r.Memory.PeakRxBytes, r.Memory.PeakCacheBytes)
	return tw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
