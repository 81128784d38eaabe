package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

func init() { register(benchCmd) }

func benchCmd() *cobra.Command {
	c := &cobra.Command{Use: "bench", Short: "Benchmarks on the simulated medium"}
	var (
		tc       meshsim.TransferConfig
		asJSON   bool
		lf       loraFlags
		progMode string
	)
	tr := &cobra.Command{
		Use:   "transfer",
		Short: "Time one Package from a node to its neighbour and compare with the airtime bound",
		Long: fmt.Sprintf(`Sends one Package of --size bytes from one node to its neighbour over a
simulated link with independent loss on every frame (both directions), --runs
times, and reports the time to the sender's confirmation, in mesh time (the
simulated clock, not the wall clock): mean, p95 and median over the runs
that completed, against the airtime-only lower bound: the data frames the
loss forces, N/(1-loss), each one airtime, nothing else.
efficiency = bound_s / median_s. When no run completes, the table says
"none completed" and the JSON has null for these figures.

Limits: --runs 1..%s; --size from 32 bytes to the largest Package a schema
between neighbours carries.`, meshsim.Group(meshsim.MaxRuns)),
		Example: `  mycelium bench transfer
  mycelium bench transfer --loss 0.3 --runs 50 --json
  mycelium bench transfer --reference --size 10272 --loss 0.1 --runs 200
  mycelium bench transfer --link lora --sf 7 --size 4096`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := oneOf("progress", progMode, progressModes...); err != nil {
				return err
			}
			if err := onlyWith(cmd, tc.Link == "lora", "to --link lora", "sf", "bw"); err != nil {
				return err
			}
			if err := onlyWith(cmd, tc.Link == "espnow", "to --link espnow (the reference has no LoRa interface)", "reference"); err != nil {
				return err
			}
			if err := lf.check(); err != nil {
				return err
			}
			tc.LoRa = lf.params()
			if err := tc.Validate(); err != nil {
				return settingError(err)
			}
			prog := newProgress(progMode, cmd.ErrOrStderr())
			defer prog.finish()
			tc.Progress = prog.fn()
			r, err := meshsim.Transfer(tc)
			prog.finish()
			if err != nil {
				return settingError(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "link\t%s (%s)\n", r.Link, r.PHY)
			fmt.Fprintf(tw, "package\t%s in %s of schema %d\n", plural(r.Size, "byte", "bytes"), plural(r.Packets, "packet", "packets"), r.Schema)
			fmt.Fprintf(tw, "loss\t%.2f each way\n", r.Loss)
			fmt.Fprintf(tw, "runs\t%d, %d completed\n", r.Runs, r.Completed)
			if r.Reference {
				fmt.Fprintf(tw, "receiver\ta reference board (MicroPython, modem sleep on)\n")
			}
			if r.Completed > 0 {
				fmt.Fprintf(tw, "time\tmean %.3f s, p95 %.3f s, median %.3f s (p10 %.3f, p90 %.3f), in mesh time\n", *r.MeanS, *r.P95S, *r.MedianS, *r.P10S, *r.P90S)
			} else {
				fmt.Fprintf(tw, "time\tnone completed\n")
			}
			fmt.Fprintf(tw, "bound\t%.3f s (airtime of the data frames the loss forces)\n", r.BoundS)
			if r.Completed > 0 {
				fmt.Fprintf(tw, "efficiency\t%.3f (bound / median)\n", *r.Efficiency)
			} else {
				fmt.Fprintf(tw, "efficiency\tnone completed\n")
			}
			fmt.Fprintf(tw, "frames\t%.1f on the air per run, %.1f retransmissions\n", r.FramesPerRun, r.RetransMean)
			for _, e := range r.Errors {
				fmt.Fprintf(tw, "failed\t%s\n", e)
			}
			return tw.Flush()
		},
	}
	f := tr.Flags()
	f.StringVar(&tc.Link, "link", "espnow", "espnow or lora")
	f.IntVar(&tc.Size, "size", 62207, "Package size in bytes (app_id, hash and blob), 32 up to what the link's schemas carry")
	f.Float64Var(&tc.Loss, "loss", 0, "independent loss on every frame, both directions: at least 0, below 1")
	f.IntVar(&tc.Runs, "runs", 9, fmt.Sprintf("number of runs, 1..%s", meshsim.Group(meshsim.MaxRuns)))
	f.Uint64Var(&tc.Seed, "seed", 1, "random seed")
	lf.add(tr)
	f.BoolVar(&tc.Reference, "reference", false, "the receiver is a reference board: MicroPython, modem sleep on (--link espnow only)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.StringVar(&progMode, "progress", "auto", progressHelp)
	c.AddCommand(tr, benchRouteCmd())
	return c
}
