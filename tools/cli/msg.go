package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/tools/control"
)

func init() { register(msgCmd) }

func msgCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "msg",
		Short: "Store-and-forward messages: send, inbox, outbox",
		Long: `Texts to other nodes, sealed end to end to the target's key: when the
target is away, nodes that offer storage ([messages] store = true) keep
them and deliver them when it is back. The sender sees "delivered" only on
the target's signed receipt.`,
		Args: args(),
	}
	c.AddCommand(msgSendCmd(), msgInboxCmd(), msgOutboxCmd())
	return c
}

func msgSendCmd() *cobra.Command {
	var (
		f    apiFlags
		wait time.Duration
	)
	c := &cobra.Command{
		Use:   "send TARGET TEXT|-",
		Short: "Send a text to a node (a name, a node_id or a unique prefix)",
		Long: `Seals TEXT (at most 1,024 bytes; "-" reads standard input) to TARGET's key
and sends it. Waits up to --wait for the target's receipt and prints the
state: delivered (the target has it), stored (storage nodes hold it until
the target is back), waiting (no store took it: this node holds it), or
sending. Exit 0 in every case but an error; "mycelium msg outbox" follows
it afterwards. The target's key must be known: a node announces it within
seconds of starting and every services.refresh.`,
		Example: "  mycelium msg send bravo 'back at camp by six'\n  mycelium msg send bravo - < note.txt --json",
		Args:    args("TARGET", "TEXT"),
		RunE: func(c *cobra.Command, a []string) error {
			if wait < 0 || wait > time.Minute {
				return fmt.Errorf("--wait %v: 0s..1m", wait)
			}
			text, err := input(c, "TEXT", a[1])
			if err != nil {
				return err
			}
			if len(text) > 1024 {
				return fmt.Errorf("TEXT: %d bytes, at most 1,024", len(text))
			}
			ctx, cancel := context.WithTimeout(c.Context(), wait+callTimeout+15*time.Second)
			defer cancel()
			s, err := f.client().MsgSend(ctx, control.MsgSendRequest{Target: a[0], Text: text, WaitMS: int(wait.Milliseconds())})
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), s)
			}
			switch s.State {
			case "stored":
				fmt.Fprintf(c.OutOrStdout(), "stored: %d storage nodes hold message %s until %s is back\n", s.Stores, s.ID, a[0])
			default:
				fmt.Fprintf(c.OutOrStdout(), "%s: message %s\n", s.State, s.ID)
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().DurationVar(&wait, "wait", 10*time.Second, "how long to wait for the receipt, 0s..1m")
	return c
}

func msgInboxCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:     "inbox",
		Short:   "List the messages this node received",
		Example: "  mycelium msg inbox\n  mycelium msg inbox --json",
		Args:    args(),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), callTimeout)
			defer cancel()
			in, err := f.client().MsgInbox(ctx)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), in)
			}
			tw := table(c.OutOrStdout())
			fmt.Fprintln(tw, "RECEIVED\tFROM\tTEXT")
			for _, m := range in {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Received, short(m.From), m.Text)
			}
			return tw.Flush()
		},
	}
	f.add(c)
	return c
}

func msgOutboxCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:     "outbox",
		Short:   "List the messages this node sent, with their state",
		Example: "  mycelium msg outbox --json",
		Args:    args(),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), callTimeout)
			defer cancel()
			out, err := f.client().MsgOutbox(ctx)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), out)
			}
			tw := table(c.OutOrStdout())
			fmt.Fprintln(tw, "CREATED\tTO\tSTATE\tSTORES")
			for _, m := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", m.Created, short(m.To), m.State, m.Stores)
			}
			return tw.Flush()
		},
	}
	f.add(c)
	return c
}
