package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
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
		rate     string
	)
	tr := &cobra.Command{
		Use:   "transfer",
		Short: "Time one transfer from a node to its neighbour and compare with the true lower bound",
		Long: fmt.Sprintf(`Sends one transfer of --size bytes from one node to its neighbour over a
simulated link with --loss on every frame (both directions; --bursty for
Gilbert–Elliott bursts with the same mean), --runs times, and reports the
time to the sender's confirmation, in mesh time (the simulated clock, not the
wall clock) — mean, p95 and worst — against each run's true lower bound:
the data frames the run's realised losses forced (a frame or its ACK lost),
each with the MAC's unavoidable cost (inter-frame space, a backoff from the
first window, SIFS and the ACK). efficiency = bound / time per run, never
above 1; goodput = the transfer's bits over the mean time. ESP-NOW runs on
the simulated 802.11 DCF at --rate Mbit/s. A transfer past one segment (23 KB)
goes as a stream of sequences. When no run completes, the table says "none
completed" and the JSON has null for these figures.

Limits: --runs 1..%s; --size from 32 bytes to 256 MiB (to a reference
board, 62,207).`, meshsim.Group(meshsim.MaxRuns)),
		Example: `  mycelium bench transfer
  mycelium bench transfer --loss 0.3 --runs 100 --json
  mycelium bench transfer --loss 0.1 --bursty --size 1048576
  mycelium bench transfer --rate 24
  mycelium bench transfer --rate 24 --v2 --size 1048576
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
			if err := onlyWith(cmd, tc.Link == "espnow", "to --link espnow (LoRa's rate is --sf and --bw)", "rate", "adapt", "v2"); err != nil {
				return err
			}
			if cmd.Flags().Changed("rate") {
				r, err := espnow.ParseRate(rate)
				if err != nil {
					return fmt.Errorf("--rate %q: want an 802.11b/g rate in Mbit/s: 1, 2, 5.5, 11, 6, 9, 12, 18, 24, 36, 48 or 54", rate)
				}
				tc.Rate = r
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
			fmt.Fprintf(tw, "transfer\t%s in %s of schema %d\n", plural(r.Size, "byte", "bytes"), plural(r.Packets, "data packet", "data packets"), r.Schema)
			kind := "independent"
			if r.Bursty {
				kind = "bursty"
			}
			fmt.Fprintf(tw, "loss\t%.2f each way, %s\n", r.Loss, kind)
			fmt.Fprintf(tw, "runs\t%d, %d completed\n", r.Runs, r.Completed)
			if r.Reference {
				fmt.Fprintf(tw, "receiver\ta reference board (MicroPython, modem sleep on)\n")
			}
			if r.Completed > 0 {
				fmt.Fprintf(tw, "time\tmean %.3f s, p95 %.3f s, worst %.3f s, in mesh time\n", *r.MeanS, *r.P95S, *r.WorstS)
				fmt.Fprintf(tw, "bound\t%.3f s on average (the data frames the realised losses forced, with the MAC's cost)\n", *r.BoundS)
				fmt.Fprintf(tw, "efficiency\tmean %.3f, p95 %.3f, worst %.3f (bound / time, per run)\n", *r.EfficiencyMean, *r.EfficiencyP95, *r.EfficiencyWorst)
				fmt.Fprintf(tw, "goodput\t%.1f kbit/s\n", *r.GoodputKbps)
			} else {
				fmt.Fprintf(tw, "time\tnone completed\n")
				fmt.Fprintf(tw, "efficiency\tnone completed\n")
			}
			fmt.Fprintf(tw, "frames\t%.1f on the air per run, %.1f retransmissions, %.1f MAC retries\n", r.FramesPerRun, r.RetransMean, r.MACRetriesMean)
			for _, e := range r.Errors {
				fmt.Fprintf(tw, "failed\t%s\n", e)
			}
			return tw.Flush()
		},
	}
	f := tr.Flags()
	f.StringVar(&tc.Link, "link", "espnow", "espnow or lora")
	f.IntVar(&tc.Size, "size", 62207, "transfer size in bytes (app_id, hash and data), 32 up to 256 MiB")
	f.Float64Var(&tc.Loss, "loss", 0, "mean loss on every frame, both directions: at least 0, below 1")
	f.BoolVar(&tc.Bursty, "bursty", false, "bursty (Gilbert–Elliott) loss with the same mean")
	f.StringVar(&rate, "rate", "1", "ESP-NOW PHY rate, Mbit/s: 1, 2, 5.5, 11, 6, 9, 12, 18, 24, 36, 48 or 54 (--link espnow only)")
	f.BoolVar(&tc.Adapt, "adapt", false, "ESP-NOW radios choose each frame's rate per peer (minstrel), starting from --rate")
	f.BoolVar(&tc.V2, "v2", false, "ESP-NOW v2 radios: frames up to 1,470 bytes between our nodes")
	f.BoolVar(&tc.E2E, "e2e", false, "seal the Package end to end (Noise IK session set up before the timed send; up to 1 MiB)")
	f.IntVar(&tc.Runs, "runs", 9, fmt.Sprintf("number of runs, 1..%s", meshsim.Group(meshsim.MaxRuns)))
	f.Uint64Var(&tc.Seed, "seed", 1, "random seed")
	lf.add(tr)
	f.BoolVar(&tc.Reference, "reference", false, "the receiver is a reference board: MicroPython, modem sleep on (--link espnow only)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.StringVar(&progMode, "progress", "auto", progressHelp)
	c.AddCommand(tr, benchRouteCmd())
	return c
}
