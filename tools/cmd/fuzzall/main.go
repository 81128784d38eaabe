// Command fuzzall runs every fuzz target of the workspace's modules for a
// while each (`make fuzz`), and tells a real crasher from the fuzz
// engine's shutdown race.
//
// Under load, `go test -fuzz` with a -fuzztime can end with "context
// deadline exceeded" and a failure status although no input failed: the
// deadline races the workers' shutdown inside the fuzzing coordinator
// (go.dev/issue/75804, fixed in Go 1.27). A real failure writes the input
// that caused it under testdata/fuzz/<target>/; this command counts a
// target as passed despite the status only when the output names that race
// and no new file appeared there.
//
//	fuzzall [-fuzztime 5s] [-go go] MODULE_DIR...
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

func main() {
	fuzztime := flag.String("fuzztime", "5s", "how long to fuzz each target (go test -fuzztime)")
	goCmd := flag.String("go", "go", "the go command")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "fuzzall: give the module directories")
		os.Exit(2)
	}
	os.Exit(run(*goCmd, *fuzztime, flag.Args(), os.Stdout))
}

// outcome is how one target's run ended.
type outcome int

const (
	passed  outcome = iota
	raced           // the shutdown race: failure status, no crasher
	crashed         // a new input under testdata/fuzz: a real failure
	failed          // any other failure (a build error, a timeout)
)

func (o outcome) String() string {
	return [...]string{"passed", "passed (the fuzz engine's shutdown race: no crasher written)", "FAILED: crasher written", "FAILED"}[o]
}

// raceMessage is what the fuzzing coordinator prints when its deadline
// wins the race against the workers' shutdown.
const raceMessage = "context deadline exceeded"

// classify decides a run's outcome from its exit status, its output and
// the inputs it added under testdata/fuzz/<target>/.
func classify(ok bool, output string, newInputs []string) outcome {
	switch {
	case len(newInputs) > 0:
		return crashed
	case ok:
		return passed
	case strings.Contains(output, raceMessage) && !strings.Contains(output, "Failing input written") && !strings.Contains(output, "panic:"):
		return raced
	}
	return failed
}

// target is one fuzz function in one package.
type target struct {
	module, pkg, dir, name string
}

func run(goCmd, fuzztime string, modules []string, out io.Writer) int {
	var targets []target
	for _, m := range modules {
		ts, err := findTargets(goCmd, m)
		if err != nil {
			fmt.Fprintf(out, "fuzzall: %s: %v\n", m, err)
			return 1
		}
		targets = append(targets, ts...)
	}
	count := map[outcome]int{}
	var bad []string
	for _, t := range targets {
		fmt.Fprintf(out, "== %s %s\n", t.pkg, t.name)
		o, err := fuzz(goCmd, fuzztime, t, out)
		if err != nil {
			fmt.Fprintf(out, "fuzzall: %v\n", err)
			o = failed
		}
		count[o]++
		if o != passed {
			fmt.Fprintf(out, "-- %s %s: %v\n", t.pkg, t.name, o)
		}
		if o == crashed || o == failed {
			bad = append(bad, t.pkg+" "+t.name)
		}
	}
	fmt.Fprintf(out, "fuzz: %d targets: %d passed, %d ended in the shutdown race without a crasher (passed), %d failed\n",
		len(targets), count[passed], count[raced], count[crashed]+count[failed])
	if len(bad) > 0 {
		fmt.Fprintf(out, "failed: %s\n", strings.Join(bad, "; "))
		return 1
	}
	return 0
}

var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz[A-Za-z0-9_]*)\(`)

// findTargets lists the fuzz functions of a module's packages.
func findTargets(goCmd, module string) ([]target, error) {
	cmd := exec.Command(goCmd, "list", "-f", "{{.ImportPath}} {{.Dir}}", "./...")
	cmd.Dir = module
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v", err)
	}
	var out []target
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		pkg, dir, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		sort.Strings(files)
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			for _, m := range fuzzFunc.FindAllSubmatch(src, -1) {
				out = append(out, target{module: module, pkg: pkg, dir: dir, name: string(m[1])})
			}
		}
	}
	return out, nil
}

// fuzz runs one target, its output copied to out, and classifies the end.
func fuzz(goCmd, fuzztime string, t target, out io.Writer) (outcome, error) {
	corpus := filepath.Join(t.dir, "testdata", "fuzz", t.name)
	before, err := inputs(corpus)
	if err != nil {
		return failed, err
	}
	var buf bytes.Buffer
	cmd := exec.Command(goCmd, "test", t.pkg, "-run=^$", "-fuzz=^"+t.name+"$", "-fuzztime="+fuzztime)
	cmd.Dir = t.module
	cmd.Stdout = io.MultiWriter(out, &buf)
	cmd.Stderr = cmd.Stdout
	runErr := cmd.Run()
	if runErr != nil {
		if _, exit := runErr.(*exec.ExitError); !exit {
			return failed, runErr
		}
	}
	after, err := inputs(corpus)
	if err != nil {
		return failed, err
	}
	var added []string
	for f := range after {
		if !before[f] {
			added = append(added, filepath.Join(corpus, f))
		}
	}
	sort.Strings(added)
	for _, f := range added {
		fmt.Fprintf(out, "new failing input: %s\n", f)
	}
	return classify(runErr == nil, buf.String(), added), nil
}

// inputs lists the files of a corpus directory (none if it is absent).
func inputs(dir string) (map[string]bool, error) {
	es, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, e := range es {
		if !e.IsDir() {
			m[e.Name()] = true
		}
	}
	return m, nil
}
