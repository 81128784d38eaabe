package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

func init() { register(simCmd) }

// settingError names the flag behind a simulator setting out of range.
func settingError(err error) error {
	var se *meshsim.SettingError
	if errors.As(err, &se) {
		return fmt.Errorf("--%s %s: %s", se.Name, se.Value, se.Want)
	}
	return err
}

// loraFlags are --sf and --bw, shared by the simulators.
type loraFlags struct{ sf, bw int }

func (l *loraFlags) add(c *cobra.Command) {
	c.Flags().IntVar(&l.sf, "sf", 9, "LoRa spreading factor, 5..12 (LoRa links only)")
	c.Flags().IntVar(&l.bw, "bw", 125, "LoRa bandwidth in kHz: 125, 250 or 500 (LoRa links only)")
}

// check refuses what no LoRa radio does, in the flags' words.
func (l *loraFlags) check() error {
	if err := intBetween("sf", l.sf, 5, 12); err != nil {
		return err
	}
	switch l.bw {
	case 125, 250, 500:
		return nil
	}
	return fmt.Errorf("--bw %d: want 125, 250 or 500 (kHz)", l.bw)
}

func (l *loraFlags) params() lora.Params {
	return lora.Params{SF: l.sf, Bandwidth: l.bw * 1000, CR: 1, Preamble: 12}
}

func simCmd() *cobra.Command {
	var (
		cfg      meshsim.Config
		topo     string
		asJSON   bool
		progMode string
		lf       loraFlags
	)
	c := &cobra.Command{
		Use:   "sim",
		Short: "Run a whole mesh on the simulated medium, in mesh time, and print what happened",
		Long: fmt.Sprintf(`Runs N nodes on a simulated radio medium in virtual (mesh) time: beacons,
peer discovery and application transfers between neighbours, with loss,
collisions and half-duplex radios. With no flags: 25 ESP-NOW nodes on a
grid, 5 %% loss, 10 minutes of mesh time, a transfer per node per minute.
The same seed gives the same run.

Limits (checked before anything runs): --nodes %s..%s, --degree up to %d,
--duration 1s..%s of mesh time, --transfers 0..%d per node per minute,
--max-size up to %s bytes, and the traffic offered (nodes × transfers per
minute × minutes × mean size) at most %g GB. The simulator handles 7 to
40 MB of it per second of wall time, by the machine's load: a 5 GB run
takes 2 to 13 minutes.`,
			meshsim.Group(meshsim.MinNodes), meshsim.Group(meshsim.MaxNodes), meshsim.MaxDegree, meshsim.FormatDuration(meshsim.MaxDuration),
			meshsim.MaxTransfersPerMin, meshsim.Group(meshsim.MaxTransferSize), meshsim.MaxOfferedBytes/1e9),
		Example: `  mycelium sim
  mycelium sim --nodes 100 --topology random --degree 6 --duration 30m --json
  mycelium sim --link mixed --nodes 60 --gateways 6 --pcap captures/
  mycelium sim --link lora --sf 7 --bw 250 --transfers 0.5 --max-size 1000`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := meshsim.ParseTopology(topo)
			if err != nil {
				return fmt.Errorf("--topology %q: want grid, line or random", topo)
			}
			cfg.Topology = t
			if err := oneOf("progress", progMode, progressModes...); err != nil {
				return err
			}
			if err := onlyWith(cmd, t == meshsim.Random, "to --topology random", "degree"); err != nil {
				return err
			}
			if err := onlyWith(cmd, cfg.Link == "mixed", "to --link mixed", "gateways"); err != nil {
				return err
			}
			if err := onlyWith(cmd, cfg.Link != "espnow", "to --link lora or mixed", "sf", "bw"); err != nil {
				return err
			}
			if err := lf.check(); err != nil {
				return err
			}
			cfg.LoRa = lf.params()
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
			if err := cfg.Validate(); err != nil {
				return settingError(err)
			}
			// A transfer's blob starts with its 4-byte number (the
			// simulator would send a smaller one as 4 bytes).
			if cfg.MinSize < 4 {
				return fmt.Errorf("--min-size %d: want 4..%s (a transfer's blob carries its 4-byte number)", cfg.MinSize, meshsim.Group(cfg.MaxSize))
			}
			if cfg.PcapDir != "" {
				if err := os.MkdirAll(cfg.PcapDir, 0o755); err != nil {
					return fmt.Errorf("--pcap: cannot make the directory %s: %v", cfg.PcapDir, unwrapPath(err))
				}
			}
			prog := newProgress(progMode, cmd.ErrOrStderr())
			defer prog.finish()
			cfg.Progress = prog.fn()
			m, err := meshsim.Build(cfg)
			if err != nil {
				return settingError(err)
			}
			res := m.Run()
			prog.finish()
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return printSimTable(cmd.OutOrStdout(), res)
		},
	}
	f := c.Flags()
	f.IntVar(&cfg.Nodes, "nodes", 25, fmt.Sprintf("number of nodes, %d..%s", meshsim.MinNodes, meshsim.Group(meshsim.MaxNodes)))
	f.StringVar(&topo, "topology", "grid", "grid, line or random (random geometric)")
	f.Float64Var(&cfg.Degree, "degree", 6, fmt.Sprintf("mean degree of a random topology, above 0 and at most %d (and below --nodes)", meshsim.MaxDegree))
	f.StringVar(&cfg.Link, "link", "espnow", "espnow, lora, or mixed (ESP-NOW and LoRa nodes with gateways carrying both)")
	f.IntVar(&cfg.Gateways, "gateways", 0, "mixed: nodes with both radios, 1..--nodes (default a tenth, at least 2)")
	f.IntVar(&cfg.ReferenceNodes, "reference-nodes", 0, "how many of the nodes are reference boards (the MicroPython implementation, modem sleep on), 0..--nodes; ESP-NOW nodes only")
	f.Float64Var(&cfg.Loss, "loss", 0.05, "frame loss on every link, each direction: at least 0, below 1")
	f.BoolVar(&cfg.Bursty, "bursty", false, "bursty (Gilbert–Elliott) loss with the same mean")
	f.Uint64Var(&cfg.Seed, "seed", 1, "random seed: the same seed gives the same run")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Minute, fmt.Sprintf("mesh time to simulate, 1s..%s", meshsim.FormatDuration(meshsim.MaxDuration)))
	f.Float64Var(&cfg.Transfers, "transfers", 1, fmt.Sprintf("application transfers each node starts per minute, to a random neighbour, 0..%d (lora and mixed links: 0.2 unless given)", meshsim.MaxTransfersPerMin))
	f.IntVar(&cfg.MinSize, "min-size", 100, "smallest transfer, bytes of blob, 4 up to --max-size")
	f.IntVar(&cfg.MaxSize, "max-size", 20000, fmt.Sprintf("largest transfer, bytes of blob, up to %s (lora and mixed links: 2000 unless given)", meshsim.Group(meshsim.MaxTransferSize)))
	lf.add(c)
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of the table")
	f.StringVar(&cfg.PcapDir, "pcap", "", "write a capture per medium into this directory (espnow.pcap, lora.pcap)")
	f.StringVar(&progMode, "progress", "auto", progressHelp)
	c.AddCommand(simRouteCmd())
	c.AddCommand(simGossipCmd())
	return c
}

func printSimTable(w io.Writer, r *meshsim.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	p("mesh\t%s, %s, %s links, loss %.2f, seed %d", plural(r.Nodes, "node", "nodes"), r.Topology, r.Link, r.Loss, r.Seed)
	edges := []string{}
	for _, k := range sortedKeys(r.Edges) {
		edges = append(edges, fmt.Sprintf("%s %d", k, r.Edges[k]))
	}
	p("graph\t%s edges; %.1f peers per node discovered", strings.Join(edges, ", "), r.MeanPeers)
	p("time\t%s of mesh time in %.2f s of wall time (%d events), after %.2f s building the mesh", meshsim.FormatDuration(time.Duration(r.MeshTimeS*float64(time.Second))), r.WallTimeS, r.Events, r.SetupWallS)
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
	if t.MeanLatencyS != nil {
		p("latency\t%.3f s of mesh time on average, send to confirmation", *t.MeanLatencyS)
	} else {
		p("latency\tnone confirmed")
	}
	for _, k := range sortedKeys(r.Airtime) {
		a := r.Airtime[k]
		p("airtime %s\t%.1f s on air in %d frames (%.1f%% of a neighbourhood's time); per receiver: %d receptions lost to collisions, %d to loss", k, a.AirtimeS, a.Transmissions, 100*a.Utilisation, a.Collisions, a.Losses)
	}
	p("goodput\t%.0f bit/s of application data delivered, in mesh time (%d bytes)", r.GoodputBps, t.BytesDelivered)
	drops := []string{}
	for _, k := range sortedKeys(r.Drops) {
		drops = append(drops, fmt.Sprintf("%s %d", k, r.Drops[k]))
	}
	if len(drops) == 0 {
		drops = append(drops, "none")
	}
	p("node drops\t%s", strings.Join(drops, ", "))
	p("memory\t%d bytes of heap per node; largest on one node: reassembly buffers %d bytes, send cache %d bytes", r.Memory.HeapPerNodeBytes, r.Memory.PeakRxBytes, r.Memory.PeakCacheBytes)
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
