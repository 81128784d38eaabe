// Package cli implements the mycelium command's subcommands. Output formats
// here are a contract (scripts and checks parse them): change them only with
// the README.
package cli

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Main runs the command with args, writing to stdout and stderr, and returns
// the exit status: 0 on success, 1 on any error (reported as one line on
// stderr).
func Main(args []string, stdout, stderr io.Writer) (status int) {
	defer func() {
		// A panic is a bug, but the contract is one line and status 1.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "mycelium: internal error: %v\n", r)
			status = 1
		}
	}()
	root := newRoot()
	root.SetArgs(args)
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
		Use:           "mycelium",
		Short:         "Mycelium mesh stack: codecs, simulator and link tools",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(packetCmd(), packageCmd(), sequenceCmd(), addrCmd(), appidCmd())
	for _, c := range extra {
		root.AddCommand(c())
	}
	return root
}

// extra holds the subcommands other files of this package register in their
// init functions, so that each tool lives in its own file.
var extra []func() *cobra.Command

// register adds a subcommand constructor to the root command.
func register(c func() *cobra.Command) { extra = append(extra, c) }

// parseHex decodes a hex argument, tolerating surrounding space, an optional
// 0x prefix and upper case.
func parseHex(what, s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: not hex: %v", what, err)
	}
	return b, nil
}

// parseFixedHex decodes a hex argument of exactly n bytes.
func parseFixedHex(what, s string, n int) ([]byte, error) {
	b, err := parseHex(what, s)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("%s: %d bytes, want %d", what, len(b), n)
	}
	return b, nil
}
