package cli

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

type pflagFlag = pflag.Flag

// flagError turns the flag parser's messages, which quote Go internals
// ("strconv.ParseInt: parsing ..."), into ones that say what the flag wants.
func flagError(cmd *cobra.Command, err error) error {
	var inv *pflag.InvalidValueError
	var nx *pflag.NotExistError
	var req *pflag.ValueRequiredError
	var syn *pflag.InvalidSyntaxError
	switch {
	case errors.As(err, &inv):
		f := inv.GetFlag()
		return fmt.Errorf("--%s: %q is not %s", f.Name, inv.GetValue(), wants(f))
	case errors.As(err, &nx):
		name := nx.GetSpecifiedName()
		if sh := nx.GetSpecifiedShortnames(); sh != "" {
			name = sh
			if isNumber(sh) {
				// "addr encode -1": a value, not a flag.
				return fmt.Errorf("unknown flag -%s (an argument that starts with - goes after --, as in %q)", sh, cmd.CommandPath()+" -- -"+sh)
			}
			return fmt.Errorf("unknown flag -%s; see %q", name, cmd.CommandPath()+" --help")
		}
		return fmt.Errorf("unknown flag --%s; see %q", name, cmd.CommandPath()+" --help")
	case errors.As(err, &req):
		if f := req.GetFlag(); f != nil {
			return fmt.Errorf("--%s needs a value: %s", f.Name, wants(f))
		}
		return fmt.Errorf("--%s needs a value", req.GetSpecifiedName())
	case errors.As(err, &syn):
		return fmt.Errorf("bad flag syntax %q", syn.GetSpecifiedFlag())
	}
	return err
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// wants says what a flag of f's type takes, for messages.
func wants(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "int", "int64":
		return "an integer"
	case "uint8":
		return "an integer in 0..255"
	case "uint16":
		return "an integer in 0..65535"
	case "uint32":
		return "an integer in 0..4294967295"
	case "uint", "uint64":
		return "a non-negative integer"
	case "float64", "float32":
		return "a number"
	case "duration":
		return "a duration such as 90s, 10m or 2h"
	case "bool":
		return "true or false"
	}
	return "a valid " + f.Value.Type()
}

// between checks that a number flag lies in [lo, hi]; NaN never does.
func between(name string, v, lo, hi float64) error {
	if math.IsNaN(v) || v < lo || v > hi {
		return fmt.Errorf("--%s %v: want %s..%s", name, v, num(lo), num(hi))
	}
	return nil
}

// intBetween checks an integer flag.
func intBetween(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("--%s %d: want %s..%s", name, v, num(float64(lo)), num(float64(hi)))
	}
	return nil
}

// oneOf checks a word flag.
func oneOf(name, v string, ok ...string) error {
	for _, o := range ok {
		if v == o {
			return nil
		}
	}
	return fmt.Errorf("--%s %q: want %s", name, v, strings.Join(ok, ", "))
}

// onlyWith refuses flags given where they mean nothing (a silent no-op is
// a silent default): why names the condition under which they apply.
func onlyWith(cmd *cobra.Command, applies bool, why string, names ...string) error {
	if applies {
		return nil
	}
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			return fmt.Errorf("--%s applies only %s", n, why)
		}
	}
	return nil
}

// num formats a bound for messages and help: integers with thousands
// separators, others as they are.
func num(v float64) string {
	if v != math.Trunc(v) || math.Abs(v) >= 1e15 {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return meshsim.Group(int(v))
}

// plural says "1 byte", "2 bytes".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
