// Package cli implements the mycelium command's subcommands. Output formats
// here are a contract (scripts and checks parse them): change them only with
// the README.
//
// The contract on bad input: exit status 1 and one line on stderr, before
// any work is done, never a hang, a panic or a silent default.
package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Main runs the command with args, reading standard input from os.Stdin
// (for the "-" argument), and returns the exit status: 0 on success, 1 on
// any error (reported as one line on stderr).
func Main(args []string, stdout, stderr io.Writer) int {
	return Run(args, os.Stdin, stdout, stderr)
}

// Run is Main with standard input given.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) (status int) {
	defer func() {
		// A panic is a bug, but the contract is one line and status 1.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "mycelium: internal error: %v\n", r)
			status = 1
		}
	}()
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "mycelium: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "mycelium",
		Short: "Mycelium mesh stack: codecs, simulator and link tools",
		Long: `Mycelium mesh stack: codecs, simulator and link tools.

Every subcommand prints its result on stdout. On bad input it exits with
status 1 and one line on stderr, before doing any work. Arguments given as
HEX or JSON may be "-" to read them from standard input.`,
		Example: `  mycelium packet decode 0000000007366821dafdaf45e9bc5cfecb1c2a065c2cf24dba5fb0a30e26e83b2ac5b9e29e68656c6c6f
  mycelium sim --nodes 50 --duration 5m
  mycelium sim route --nodes 200 --svg mesh.svg`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(flagError)
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			// cobra's own prints the root's help with status 0 for a topic
			// that does not exist.
			cmd, rest, err := c.Root().Find(args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return fmt.Errorf("no help topic %q for %q; see %q", rest[0], cmd.CommandPath(), cmd.CommandPath()+" --help")
			}
			return cmd.Help()
		},
	})
	root.AddCommand(packetCmd(), packageCmd(), sequenceCmd(), addrCmd(), appidCmd())
	for _, c := range extra {
		root.AddCommand(c())
	}
	finish(root)
	return root
}

// extra holds the subcommands other files of this package register in their
// init functions, so that each tool lives in its own file.
var extra []func() *cobra.Command

// register adds a subcommand constructor to the root command.
func register(c func() *cobra.Command) { extra = append(extra, c) }

// finish applies the rules every command follows, so that no subcommand
// has to remember them: a group (a command with subcommands and nothing to
// run) refuses an unknown subcommand with status 1 (cobra would print its
// help and exit 0), and the help of a required flag says so.
func finish(c *cobra.Command) {
	if c.HasSubCommands() && c.RunE == nil && c.Run == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			hint := ""
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				hint = fmt.Sprintf(" (did you mean %q?)", s[0])
			}
			return fmt.Errorf("unknown command %q for %q%s; see %q", args[0], cmd.CommandPath(), hint, cmd.CommandPath()+" --help")
		}
	}
	c.LocalFlags().VisitAll(func(f *pflagFlag) {
		if _, ok := f.Annotations[cobra.BashCompOneRequiredFlag]; ok && !strings.HasSuffix(f.Usage, "(required)") {
			f.Usage += " (required)"
		}
	})
	for _, s := range c.Commands() {
		finish(s)
	}
}
