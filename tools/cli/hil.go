package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/hil/rack"
	"github.com/mycelium-mesh/mycelium/hil/repl"
	"github.com/mycelium-mesh/mycelium/hil/rig"
)

func init() { register(hilCmd) }

func hilCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "hil",
		Short: "The hardware-in-the-loop rig: check a rack file, flash and provision boards, run the cross-device suite (docs/hil.md)",
	}
	c.AddCommand(hilCheckCmd(), hilFlashCmd(), hilProvisionCmd(), hilRunCmd())
	return c
}

func hilCheckCmd() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:     "check --rack FILE",
		Short:   "Validate a rack file",
		Example: `  mycelium hil check --rack hil/racks/virtual.toml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rack.Load(file)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: rack %q, %d boards, %d nodes, virtual %v\n", file, r.Name, len(r.Boards), len(r.Nodes), r.Virtual)
			return nil
		},
	}
	c.Flags().StringVar(&file, "rack", "", "the rack file (TOML)")
	c.MarkFlagRequired("rack")
	return c
}

// hilBoards are the rack's boards named by --board (all if none).
func hilBoards(r *rack.Rack, names []string) ([]rack.Board, error) {
	if len(names) == 0 {
		return r.Boards, nil
	}
	var out []rack.Board
	for _, n := range names {
		b, ok := r.Board(n)
		if !ok {
			return nil, fmt.Errorf("no board %q in rack %s", n, r.Name)
		}
		out = append(out, *b)
	}
	return out, nil
}

func hilFlashCmd() *cobra.Command {
	var file, image string
	var names []string
	c := &cobra.Command{
		Use:   "flash --rack FILE [--board NAME]... [--image FILE]",
		Short: "Write MicroPython (with esptool, when --image or the rack's image is given) and upload the firmware's files through the raw REPL",
		Example: `  mycelium hil flash --rack lab.toml
  mycelium hil flash --rack lab.toml --board b1 --image ESP32_GENERIC-v1.27.0.bin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rack.Load(file)
			if err != nil {
				return err
			}
			if r.Virtual {
				return errors.New("hil flash: a virtual rack's boards are flashed by `hil run` itself (they exist only while it runs)")
			}
			bs, err := hilBoards(r, names)
			if err != nil {
				return err
			}
			if image == "" {
				image = r.Path(r.Image)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			for _, b := range bs {
				if image != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: writing %s with esptool\n", b.Name, image)
					if err := rig.WriteImage(ctx, b.Chip, b.Port, b.Baud, image); err != nil {
						return fmt.Errorf("%s: %w", b.Name, err)
					}
				}
				if err := hilOnBoard(ctx, b, func(ctx context.Context, c *rigConn) error {
					return rig.Upload(ctx, c, r.Path(r.Firmware))
				}); err != nil {
					return fmt.Errorf("%s: %w", b.Name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: firmware uploaded (%s)\n", b.Name, strings.Join(rig.FirmwareFiles, ", "))
			}
			return nil
		},
	}
	c.Flags().StringVar(&file, "rack", "", "the rack file (TOML)")
	c.Flags().StringSliceVar(&names, "board", nil, "only these boards (default all)")
	c.Flags().StringVar(&image, "image", "", "a MicroPython image to write first with esptool (default: the rack's image, if any)")
	c.MarkFlagRequired("rack")
	return c
}

func hilProvisionCmd() *cobra.Command {
	var file string
	var names []string
	var sleep bool
	c := &cobra.Command{
		Use:   "provision --rack FILE [--board NAME]...",
		Short: "Write each board's identity and configuration (node_id, channel, timing) and restart it",
		Example: `  mycelium hil provision --rack lab.toml
  mycelium hil provision --rack lab.toml --board b2 --sleep`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rack.Load(file)
			if err != nil {
				return err
			}
			if r.Virtual {
				return errors.New("hil provision: a virtual rack's boards are provisioned by `hil run` itself")
			}
			bs, err := hilBoards(r, names)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			for _, b := range bs {
				p := hilProvisioning(r, b)
				p.Sleep = sleep
				if err := hilOnBoard(ctx, b, func(ctx context.Context, c *rigConn) error { return rig.Provision(ctx, c, p) }); err != nil {
					return fmt.Errorf("%s: %w", b.Name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: node_id %s, channel %d\n", b.Name, p.NodeID, p.Channel)
			}
			return nil
		},
	}
	c.Flags().StringVar(&file, "rack", "", "the rack file (TOML)")
	c.Flags().StringSliceVar(&names, "board", nil, "only these boards (default all)")
	c.Flags().BoolVar(&sleep, "sleep", false, "boot the boards in modem sleep")
	c.MarkFlagRequired("rack")
	return c
}

func hilProvisioning(r *rack.Rack, b rack.Board) rig.Provisioning {
	nid := b.NodeID
	if nid == "" {
		mac, _ := parseMAC(b.MAC)
		nid = rig.NodeIDFromMAC(mac)
	}
	return rig.Provisioning{NodeID: strings.ToLower(nid), Channel: r.Channel, BeaconMS: int(r.Suite.BeaconPeriod.Milliseconds()),
		GiveUpMS: int(r.Suite.GiveUp.Milliseconds()), RxBudget: 16384}
}

func hilRunCmd() *cobra.Command {
	var file, junit, filter, work string
	var asJSON bool
	c := &cobra.Command{
		Use:   "run --rack FILE [--json] [--junit FILE] [--run FILTER]",
		Short: "Run the cross-device suite on a rack (a virtual one: builds it first, needs root, node and npm)",
		Example: `  sudo mycelium hil run --rack hil/racks/virtual.toml
  mycelium hil run --rack lab.toml --json --junit hil.xml
  mycelium hil run --rack lab.toml --run sequence/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rack.Load(file)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			if work == "" {
				if work, err = os.MkdirTemp("", "mycelium-hil-"); err != nil {
					return err
				}
				defer os.RemoveAll(work)
			}
			log := cmd.ErrOrStderr()
			t0 := time.Now()
			sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			env, err := rig.Setup(sctx, r, bin, work, log)
			cancel()
			if err != nil {
				return fmt.Errorf("hil run: setting up rack %s: %w", r.Name, err)
			}
			defer env.Close()
			fmt.Fprintf(log, "rack %s ready in %.1f s: %d boards, %d nodes on ESP-NOW; %d boards, %d nodes on LoRa\n", r.Name, time.Since(t0).Seconds(), len(env.Boards), len(env.Nodes), len(env.LoRaBoards), len(env.LoRaNodes))
			rep := rig.Run(ctx, env, rig.Suite(), filter, log)
			if junit != "" {
				if err := rep.WriteJUnit(junit); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				for _, t := range rep.Tests {
					st := "ok  "
					switch {
					case t.Skipped:
						st = "skip"
					case !t.OK:
						st = "FAIL"
					}
					fmt.Fprintf(out, "%s %-28s %6.1f s  %s\n", st, t.Name, t.Seconds, t.Error)
				}
				for name, m := range rep.Memory {
					fmt.Fprintf(out, "memory %s: gc.mem_alloc idle %d B, peak %d B\n", name, m.Idle, m.Peak)
				}
				fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", rep.Passed, rep.Failed, rep.Skipped)
			}
			if rep.Failed > 0 {
				return fmt.Errorf("hil run: %d of %d tests failed", rep.Failed, len(rep.Tests))
			}
			return nil
		},
	}
	c.Flags().StringVar(&file, "rack", "", "the rack file (TOML)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	c.Flags().StringVar(&junit, "junit", "", "also write the results as a JUnit XML file")
	c.Flags().StringVar(&filter, "run", "", "only the tests whose names contain this")
	c.Flags().StringVar(&work, "work", "", "directory for the virtual rack's nodes and flash (default a temporary one, removed after)")
	c.MarkFlagRequired("rack")
	return c
}

type rigConn = repl.Conn

// hilOnBoard opens a board's port, runs fn, and closes it.
func hilOnBoard(ctx context.Context, b rack.Board, fn func(ctx context.Context, c *rigConn) error) error {
	c, err := rig.Open(b.Port, b.Baud)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return fn(ctx, c)
}

func parseMAC(s string) ([]byte, error) { return net.ParseMAC(s) }
