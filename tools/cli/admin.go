package cli

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l4-apps/admin"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

func init() { register(adminCmd) }

func adminCmd() *cobra.Command {
	var (
		f       apiFlags
		command string
		keyPath string
	)
	c := &cobra.Command{
		Use:   "admin [TARGET] [-c COMMAND] [--key FILE]",
		Short: "Manage a node in sandboxed Starlark: a REPL, or one command with -c",
		Long: `Runs Starlark on a node: this one over the control socket, or TARGET (a
name, a node_id or a unique prefix) through the mesh, signed with an
operator key (--key: an Ed25519 key file, as mycelium init --key-only
writes; its public key must be in the target's admin.operators). The
builtins are the only way to the node: status(), peers(), trees(),
stats(), config_get(key), config_set(key, value), ping(target,
timeout=5), send(target, app, data), link_up(i), link_down(i),
log_level(level); no files, processes or loading of code. Each command
runs under a step limit, is audited on the node, and is rate-limited per
operator. Without -c, a REPL with line editing and history (one command a
line; a line ending in ":" continues until an empty line).`,
		Example: "  mycelium admin -c 'peers()'\n  mycelium admin bravo --key op/identity.pem -c '[p[\"name\"] for p in peers()]'\n  mycelium admin",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, a []string) error {
			target := ""
			if len(a) == 1 {
				target = a[0]
			}
			var key identity.Identity
			if target != "" {
				if keyPath == "" {
					return errors.New("admin TARGET needs --key FILE: the operator key the target lists in admin.operators")
				}
				var err error
				if key, err = identity.Load(keyPath); err != nil {
					return fmt.Errorf("--key %s: %v", keyPath, err)
				}
			} else if keyPath != "" {
				return errors.New("--key is for a remote TARGET; this node's own commands go over its control socket")
			}
			run := func(ctx context.Context, cmd string) (control.AdminResult, error) {
				cl := f.client()
				if target == "" {
					return cl.AdminExec(ctx, cmd)
				}
				n, err := cl.AdminNonce(ctx, target)
				if err != nil {
					return control.AdminResult{}, err
				}
				var node [32]byte
				var nonce [admin.NonceSize]byte
				nb, _ := hex.DecodeString(n.NodeID)
				xb, _ := hex.DecodeString(n.Nonce)
				copy(node[:], nb)
				copy(nonce[:], xb)
				sig := key.Sign(admin.SignedBytes(node, nonce, cmd))
				return cl.AdminRemote(ctx, control.AdminRemote{NodeID: n.NodeID, Operator: hex.EncodeToString(key.Public()),
					Nonce: n.Nonce, Signature: hex.EncodeToString(sig), Command: cmd})
			}
			if c.Flags().Changed("c") {
				ctx, cancel := context.WithTimeout(c.Context(), 2*time.Minute)
				defer cancel()
				res, err := run(ctx, command)
				if err != nil {
					return err
				}
				if f.asJSON {
					return printJSON(c.OutOrStdout(), res)
				}
				if res.Outcome != "ok" {
					return fmt.Errorf("%s: %s", res.Outcome, res.Result)
				}
				if res.Result != "" {
					fmt.Fprintln(c.OutOrStdout(), res.Result)
				}
				return nil
			}
			return adminREPL(c, target, run)
		},
	}
	f.add(c)
	c.Flags().StringVarP(&command, "c", "c", "", "run this one command and print its result")
	c.Flags().StringVar(&keyPath, "key", "", "the operator key file (for a remote TARGET)")
	return c
}

// adminREPL reads commands, a line each (a line ending in ":" opens a block
// that an empty line closes), with line editing and history on a terminal.
func adminREPL(c *cobra.Command, target string, run func(context.Context, string) (control.AdminResult, error)) error {
	prompt := "admin> "
	if target != "" {
		prompt = "admin " + target + "> "
	}
	var read func(p string) (string, error)
	out := c.OutOrStdout()
	if f, ok := c.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		old, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			return err
		}
		defer term.Restore(int(f.Fd()), old)
		t := term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{f, out}, prompt)
		out = t
		read = func(p string) (string, error) { t.SetPrompt(p); return t.ReadLine() }
	} else {
		sc := bufio.NewScanner(c.InOrStdin())
		read = func(string) (string, error) {
			if !sc.Scan() {
				if sc.Err() != nil {
					return "", sc.Err()
				}
				return "", io.EOF
			}
			return sc.Text(), nil
		}
	}
	for {
		line, err := read(prompt)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		cmd := line
		if strings.HasSuffix(strings.TrimSpace(line), ":") {
			for {
				more, err := read("...   ")
				if err != nil || strings.TrimSpace(more) == "" {
					break
				}
				cmd += "\n" + more
			}
		}
		if strings.TrimSpace(cmd) == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(c.Context(), 2*time.Minute)
		res, err := run(ctx, cmd)
		cancel()
		switch {
		case err != nil:
			fmt.Fprintf(out, "error: %v\r\n", err)
		case res.Outcome != "ok":
			fmt.Fprintf(out, "%s: %s\r\n", res.Outcome, res.Result)
		case res.Result != "":
			fmt.Fprintf(out, "%s\r\n", strings.ReplaceAll(res.Result, "\n", "\r\n"))
		}
	}
}
