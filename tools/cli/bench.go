package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

func init() { register(benchCmd) }

func benchCmd() *cobra.Command {
	c := &cobra.Command{Use: "bench", Short: "Benchmarks on the simulated medium"}
	var (
		tc     meshsim.TransferConfig
		asJSON bool
		sf, bw int
	)
	tr := &cobra.Command{
		Use:   "transfer",
		Short: "Time one Package from a node to its neighbour and compare with the airtime bound",
		Long: `Sends one Package of --size bytes from one node to its neighbour over a
simulated link with independent loss on every frame (both directions), --runs
times, and reports the median time to the sender's confirmation against the
airtime-only lower bound: the data frames the loss forces, N/(1-loss), each
one airtime, nothing else. efficiency = bound_s / median_s.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tc.LoRa = lora.Params{SF: sf, Bandwidth: bw * 1000, CR: 1, Preamble: 12}
			r, err := meshsim.Transfer(tc)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "link\t%s (%s)\n", r.Link, r.PHY)
			fmt.Fprintf(tw, "package\t%d bytes in %d packets of schema %d\n", r.Size, r.Packets, r.Schema)
			fmt.Fprintf(tw, "loss\t%.2f each way\n", r.Loss)
			fmt.Fprintf(tw, "runs\t%d, %d completed\n", r.Runs, r.Completed)
			if r.Reference {
				fmt.Fprintf(tw, "receiver\ta reference board (MicroPython, modem sleep on)\n")
			}
			fmt.Fprintf(tw, "time\tmedian %.3f s (p10 %.3f, p90 %.3f); mean %.3f s, p95 %.3f\n", r.MedianS, r.P10S, r.P90S, r.MeanS, r.P95S)
			fmt.Fprintf(tw, "bound\t%.3f s (airtime of the data frames the loss forces)\n", r.BoundS)
			fmt.Fprintf(tw, "efficiency\t%.3f\n", r.Efficiency)
			fmt.Fprintf(tw, "frames\t%.1f on the air per run, %.1f retransmissions\n", r.FramesPerRun, r.RetransMean)
			for _, e := range r.Errors {
				fmt.Fprintf(tw, "failed\t%s\n", e)
			}
			return tw.Flush()
		},
	}
	f := tr.Flags()
	f.StringVar(&tc.Link, "link", "espnow", "espnow or lora")
	f.IntVar(&tc.Size, "size", 62207, "Package size in bytes (app_id, hash and blob)")
	f.Float64Var(&tc.Loss, "loss", 0, "independent loss on every frame, both directions")
	f.IntVar(&tc.Runs, "runs", 9, "number of runs (the median is reported)")
	f.Uint64Var(&tc.Seed, "seed", 1, "random seed")
	f.IntVar(&sf, "sf", 9, "LoRa spreading factor")
	f.IntVar(&bw, "bw", 125, "LoRa bandwidth, kHz")
	f.BoolVar(&tc.Reference, "reference", false, "the receiver is a reference board: MicroPython, modem sleep on (espnow only)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	c.AddCommand(tr, benchRouteCmd())
	return c
}
