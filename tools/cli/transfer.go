package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mycelium-mesh/mycelium/tools/control"
)

func init() { register(sendCmd); register(listenCmd) }

// progressMin is the size from which send draws a progress bar (on a
// terminal): smaller sends are over before one would show.
const progressMin = 64 << 10

func sendCmd() *cobra.Command {
	var (
		f   apiFlags
		app string
	)
	c := &cobra.Command{
		Use:   "send TARGET --app NAME|HEX [FILE|-]",
		Short: "Send a file (or standard input) to an application on a node",
		Long: `Sends the bytes of FILE (or standard input, "-" or no FILE) as one Package
to the application on TARGET (a name, a node_id, or a unique prefix). A
Package larger than one chunk travels as a stream of chunks. Exits 0 only
when the destination confirmed the whole Package (its SHA-256 checked);
otherwise prints the typed error and exits 1. Draws a progress bar on a
terminal for large files. --app NAME is the app_id of (NAME, "", 1).`,
		Example: "  mycelium send pi-3 --app files photo.jpg\n  echo hello | mycelium send pi-3 --app chat --json",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			if _, err := control.ParseApp(app); err != nil {
				return fmt.Errorf("--app: %v", err)
			}
			var data []byte
			var err error
			if len(args) == 1 || args[1] == "-" {
				data, err = io.ReadAll(c.InOrStdin())
			} else {
				data, err = os.ReadFile(args[1])
			}
			if err != nil {
				return err
			}
			if len(data) == 0 {
				return errors.New("nothing to send: the input is empty")
			}
			var bar *progressbar.ProgressBar
			if f, ok := c.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) && len(data) >= progressMin {
				bar = progressbar.NewOptions(len(data), progressbar.OptionSetWriter(f), progressbar.OptionShowBytes(true),
					progressbar.OptionSetDescription("confirmed"), progressbar.OptionClearOnFinish())
			}
			res, err := f.client().Send(c.Context(), args[0], app, bytes.NewReader(data), int64(len(data)), func(p control.SendProgress) {
				if bar != nil {
					bar.Set(p.Confirmed)
				}
			})
			if bar != nil {
				bar.Finish()
			}
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), res)
			}
			fmt.Fprintf(c.OutOrStdout(), "confirmed: %d bytes to %s in %.2f s (%.1f kbit/s), sha256 %s\n",
				res.Bytes, short(res.NodeID), res.Seconds, res.GoodputBps/1000, res.SHA256)
			return nil
		},
	}
	f.add(c)
	c.Flags().StringVar(&app, "app", "", "the destination application: a name or an app_id (32 hex digits)")
	return c
}

func listenCmd() *cobra.Command {
	var (
		f   apiFlags
		app string
		out string
	)
	c := &cobra.Command{
		Use:   "listen --app NAME|HEX [--json] [--out DIR]",
		Short: "Print (or save) every Package the node receives for an application",
		Long: `Listens for Packages to the application and prints one line per Package
(the sender, size, SHA-256 and the data if it is short printable text; with
--json the whole Package as JSON, data in base64), or with --out writes each
to its own file in DIR and prints its path. While anyone listens, the node
accepts Packages for the application; senders to an application nobody
listens to get "no such application". Runs until interrupted.`,
		Example: "  mycelium listen --app files --out received/\n  mycelium listen --app chat --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if _, err := control.ParseApp(app); err != nil {
				return fmt.Errorf("--app: %v", err)
			}
			if out != "" {
				if st, err := os.Stat(out); err != nil || !st.IsDir() {
					return fmt.Errorf("--out %s: not a directory", out)
				}
			}
			ctx, stop := interrupted(c)
			defer stop()
			w := c.OutOrStdout()
			err := f.client().Listen(ctx, app, func(r control.Received) error {
				if out != "" {
					t, _ := time.Parse(time.RFC3339Nano, r.Time)
					name := fmt.Sprintf("%s-%s", t.UTC().Format("20060102T150405.000000000Z"), r.SHA256[:16])
					path := filepath.Join(out, name)
					if err := os.WriteFile(path, r.Data, 0o644); err != nil {
						return err
					}
					_, err := fmt.Fprintf(w, "%s\t%s\t%d\n", path, orDash(r.From), r.Size)
					return err
				}
				if f.asJSON {
					return printJSON(w, r)
				}
				from := orDash(short(r.From))
				if r.FromName != "" {
					from = r.FromName
				}
				text := ""
				if len(r.Data) <= 200 && printable(r.Data) {
					text = " " + strings.TrimRight(string(r.Data), "\n")
				}
				_, err := fmt.Fprintf(w, "%s from %s: %d bytes sha256 %s%s\n", r.Time, from, r.Size, r.SHA256[:16], text)
				return err
			})
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	f.add(c)
	c.Flags().StringVar(&app, "app", "", "the application: a name or an app_id (32 hex digits)")
	c.Flags().StringVar(&out, "out", "", "write each Package to a file in this directory")
	return c
}

func printable(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\n' && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}
