package cli

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/tools/control"
)

func init() {
	for _, c := range []func() *cobra.Command{publishCmd, subscribeCmd, servicesCmd} {
		register(c)
	}
}

// maxPublish is the most data a publish takes (the node refuses more).
const maxPublish = 4096 - 17

func publishCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:   "publish TOPIC DATA|-",
		Short: "Send DATA to every node that subscribes to TOPIC (gossip)",
		Long: `Publishes DATA (text, or standard input with "-") on a gossip topic: every
node of the mesh gets it once and hands it to its subscribers (mycelium
subscribe TOPIC). At most 4,079 bytes; up to 183 go in one packet per
relay, more go as a Notification each neighbour fetches. The same data on
the same topic within 30 minutes is the same Message and is refused.
Prints the Message's id.`,
		Example: "  mycelium publish weather 'rain at 14:00'\n  date | mycelium publish clock -",
		Args:    args("TOPIC", "DATA"),
		RunE: func(c *cobra.Command, a []string) error {
			data, err := input(c, "DATA", a[1])
			if err != nil {
				return err
			}
			if len(a[0]) == 0 || len(a[0]) > 255 {
				return fmt.Errorf("TOPIC: 1..255 bytes, got %d", len(a[0]))
			}
			if len(data) > maxPublish {
				return fmt.Errorf("DATA: %d bytes, at most %d", len(data), maxPublish)
			}
			ctx, cancel := context.WithTimeout(c.Context(), callTimeout)
			defer cancel()
			p, err := f.client().Publish(ctx, a[0], []byte(data))
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), p)
			}
			fmt.Fprintf(c.OutOrStdout(), "published %d bytes on %q: message %s\n", p.Bytes, p.Topic, p.MessageID)
			return nil
		},
	}
	f.add(c)
	return c
}

func subscribeCmd() *cobra.Command {
	var (
		f     apiFlags
		count int
	)
	c := &cobra.Command{
		Use:   "subscribe TOPIC [--count N] [--json]",
		Short: "Print every Message published on TOPIC, as it arrives",
		Long: `Prints each new gossip Message on TOPIC as it reaches the node, one a line:
the text when it is printable UTF-8, else hex; --json prints one JSON
object a line (data in base64). Runs until interrupted, or until --count
Messages came.`,
		Example: "  mycelium subscribe weather\n  mycelium subscribe weather --count 1 --json",
		Args:    args("TOPIC"),
		RunE: func(c *cobra.Command, a []string) error {
			if count < 0 {
				return fmt.Errorf("--count %d: want 0 (no end) or more", count)
			}
			got := 0
			ctx, cancel := context.WithCancel(c.Context())
			defer cancel()
			err := f.client().Subscribe(ctx, a[0], func(m control.GossipMessage) error {
				if f.asJSON {
					if err := printJSON(c.OutOrStdout(), m); err != nil {
						return err
					}
				} else {
					text := string(m.Data)
					if !utf8.Valid(m.Data) || strings.ContainsFunc(text, func(r rune) bool { return r < ' ' && r != '\t' }) {
						text = fmt.Sprintf("%x", m.Data)
					}
					fmt.Fprintf(c.OutOrStdout(), "%s\t%s\n", m.Time, text)
				}
				if got++; count > 0 && got >= count {
					cancel()
				}
				return nil
			})
			if count > 0 && got >= count {
				return nil
			}
			return err
		},
	}
	f.add(c)
	c.Flags().IntVar(&count, "count", 0, "stop after N Messages (0: run until interrupted)")
	return c
}

func servicesCmd() *cobra.Command {
	var (
		f   apiFlags
		app string
	)
	c := &cobra.Command{
		Use:   "services [--app NAME] [--json]",
		Short: "List the services the mesh's nodes announced (the node's directory)",
		Long: `Lists the node's service directory: the services every node announced
([[service]] in its configuration), carried by gossip and refreshed every
services.refresh (an entry expires after three of those), and the
applications neighbours list in their beacons (BEACON yes: no name or
metadata). --app keeps one application's. Answers from the local
directory, without asking the mesh.`,
		Example: "  mycelium services\n  mycelium services --app weather --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), callTimeout)
			defer cancel()
			list, err := f.client().Services(ctx, app)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), list)
			}
			tw := table(c.OutOrStdout())
			fmt.Fprintln(tw, "NODE_ID\tNAME\tAPP\tMETA\tAGE\tBEACON")
			for _, e := range list {
				b := ""
				if e.Beacon {
					b = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0fs\t%s\n", short(e.NodeID), orDash(e.Name), orDash(e.App), orDash(e.Meta), e.AgeS, b)
			}
			return tw.Flush()
		},
	}
	f.add(c)
	c.Flags().StringVar(&app, "app", "", "only this application's services")
	return c
}
