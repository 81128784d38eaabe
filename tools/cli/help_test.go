package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

// leaves returns every command that runs something.
func leaves(c *cobra.Command) []*cobra.Command {
	if !c.HasSubCommands() {
		return []*cobra.Command{c}
	}
	var out []*cobra.Command
	if c.Parent() != nil && c.HasAvailableFlags() && c.Flags().Lookup("json") != nil {
		out = append(out, c) // a runnable command with subcommands (sim)
	}
	for _, s := range c.Commands() {
		out = append(out, leaves(s)...)
	}
	return out
}

// Every command has examples, and every example of a command that needs
// no radio, file or minutes of simulation runs as written.
func TestHelpExamples(t *testing.T) {
	cheap := regexp.MustCompile(`^mycelium (packet|package|sequence split --schema [02] |addr|appid|espnow frame)`)
	ran := 0
	for _, c := range leaves(newRoot()) {
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s: no examples in --help", c.CommandPath())
			continue
		}
		for _, line := range strings.Split(c.Example, "\n") {
			line = strings.TrimSpace(line)
			if !cheap.MatchString(line) || strings.ContainsAny(line, `|<>\'`) || strings.Contains(line, " - ") || strings.HasSuffix(line, " -") {
				continue
			}
			args := splitArgs(line)[1:]
			out, stderr, st := runIn(t, strings.NewReader(""), args...)
			if st != 0 || out == "" {
				t.Errorf("example %q: status %d, %q", line, st, stderr)
			}
			ran++
		}
	}
	if ran < 10 {
		t.Fatalf("only %d examples ran", ran)
	}
}

// splitArgs splits an example line at spaces, honouring double quotes.
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, have = !quoted, true
		case r == ' ' && !quoted:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// The README's table of commands and --help agree: every command is in the
// table, every flag the table names exists on its command, and the limits
// the README states are the ones the simulators enforce.
func TestReadmeAgreesWithHelp(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	root := newRoot()
	rows := map[string]string{} // first cell's command path -> its rows (the commands' table, the limits')
	cell := regexp.MustCompile("^\\| `mycelium ([^`]*)`")
	for _, line := range strings.Split(readme, "\n") {
		m := cell.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var words []string
		for _, w := range strings.Fields(m[1]) {
			if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "[") || strings.ToUpper(w) == w || strings.ContainsAny(w, ",") {
				break
			}
			words = append(words, w)
		}
		// "lora emulate\|at\|send\|listen": one row for several commands.
		last := words[len(words)-1]
		for _, alt := range strings.Split(last, `\|`) {
			rows[strings.Join(append(words[:len(words)-1:len(words)-1], alt), " ")] += line + "\n"
		}
	}
	flagRef := regexp.MustCompile("`--([a-z][a-z0-9-]*)")
	for _, c := range leaves(root) {
		path := strings.TrimPrefix(c.CommandPath(), "mycelium ")
		row, ok := rows[path]
		if !ok {
			t.Errorf("README's table lacks %q", path)
			continue
		}
		if strings.HasPrefix(path, "lora ") {
			continue // one row for four commands, flags in their --help
		}
		for _, m := range flagRef.FindAllStringSubmatch(row, -1) {
			if m[1] != "help" && c.Flags().Lookup(m[1]) == nil {
				t.Errorf("README names --%s for %q, which has no such flag", m[1], path)
			}
		}
	}
	for path := range rows {
		if c, _, err := root.Find(strings.Fields(path)); err != nil || strings.TrimPrefix(c.CommandPath(), "mycelium ") != path {
			t.Errorf("README's table names %q, which is not a command", path)
		}
	}
	for _, want := range []string{
		fmt.Sprintf("`--nodes %d..%s`", meshsim.MinNodes, meshsim.Group(meshsim.MaxNodes)),
		fmt.Sprintf("`%d..%s` nodes", meshsim.MinNodes, meshsim.Group(meshsim.MaxRouteNodes)),
		fmt.Sprintf("`--duration 1s..%s`", meshsim.FormatDuration(meshsim.MaxDuration)),
		fmt.Sprintf("`--transfers 0..%d`", meshsim.MaxTransfersPerMin),
		fmt.Sprintf("`--runs 1..%s`", meshsim.Group(meshsim.MaxRuns)),
		fmt.Sprintf("`--pairs 1..%s`", meshsim.Group(meshsim.MaxPairs)),
		fmt.Sprintf("`--trees 1..%d`", meshsim.MaxTrees),
		fmt.Sprintf("up to %d", meshsim.MaxDegree),
		fmt.Sprintf("up to %s bytes", meshsim.Group(meshsim.MaxTransferSize)),
		fmt.Sprintf("at most %g GB", meshsim.MaxOfferedBytes/1e9),
		fmt.Sprintf("%s edges", meshsim.Group(meshsim.MaxGraphEdges)),
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README does not state the limit %s", want)
		}
	}
}

// A flag the simulators bound says its range in --help.
func TestHelpStatesLimits(t *testing.T) {
	for _, c := range []struct {
		cmd  []string
		flag string
		want string
	}{
		{[]string{"sim"}, "nodes", "2..10,000"},
		{[]string{"sim"}, "duration", "1s..24h"},
		{[]string{"sim"}, "transfers", "0..60"},
		{[]string{"sim"}, "max-size", "1,000,000"},
		{[]string{"sim"}, "degree", "at most 50"},
		{[]string{"sim", "route"}, "nodes", "2..10,000"},
		{[]string{"sim", "route"}, "pairs", "1..10,000"},
		{[]string{"sim", "route"}, "trees", "1..16"},
		{[]string{"bench", "route"}, "nodes", "2..10,000"},
		{[]string{"bench", "transfer"}, "runs", "1..10,000"},
	} {
		cmd, _, err := newRoot().Find(c.cmd)
		if err != nil {
			t.Fatal(err)
		}
		f := cmd.Flags().Lookup(c.flag)
		if f == nil || !strings.Contains(f.Usage, c.want) {
			t.Errorf("%v --%s: help %q lacks %q", c.cmd, c.flag, usage(f), c.want)
		}
	}
}

func usage(f *pflag.Flag) string {
	if f == nil {
		return "(no such flag)"
	}
	return f.Usage
}
