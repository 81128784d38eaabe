package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const raceOutput = `fuzz: elapsed: 3s, execs: 40304 (13431/sec), new interesting: 104 (total: 108)
fuzz: elapsed: 3s, execs: 40304 (0/sec), new interesting: 104 (total: 108)
--- FAIL: FuzzDecode (3.20s)
    context deadline exceeded
FAIL
exit status 1
`

const crashOutput = `--- FAIL: FuzzDecode (0.41s)
    --- FAIL: FuzzDecode (0.00s)
        testing.go:1591: panic: runtime error: index out of range [3] with length 3

    Failing input written to testdata/fuzz/FuzzDecode/582528ddfad69eb5
    To re-run:
    go test -run=FuzzDecode/582528ddfad69eb5
FAIL
`

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name  string
		ok    bool
		out   string
		added []string
		want  outcome
	}{
		{"clean", true, "PASS\n", nil, passed},
		{"race, no crasher", false, raceOutput, nil, raced},
		{"race, but a crasher appeared", false, raceOutput, []string{"testdata/fuzz/FuzzDecode/1"}, crashed},
		{"crasher", false, crashOutput, []string{"testdata/fuzz/FuzzDecode/582528ddfad69eb5"}, crashed},
		{"says it wrote a crasher, none found", false, crashOutput + raceOutput, nil, failed},
		{"build error", false, "./x.go:3:1: syntax error\nFAIL\n", nil, failed},
		{"test timeout", false, "panic: test timed out after 10m0s\n" + raceMessage, nil, failed},
	} {
		if got := classify(c.ok, c.out, c.added); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// The whole run over a module, with a stand-in for the go command that
// lists one package with three fuzz targets and fails each a different
// way: the race, a real crasher (a file written), a build error.
func TestRunTellsRaceFromCrasher(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "codec")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "package codec\n\nimport \"testing\"\n\nfunc FuzzRace(f *testing.F) {}\nfunc FuzzCrash(f *testing.F) {}\nfunc FuzzClean(f *testing.F) {}\n"
	if err := os.WriteFile(filepath.Join(pkg, "codec_test.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// A committed seed input that must not count as new.
	seed := filepath.Join(pkg, "testdata", "fuzz", "FuzzRace")
	if err := os.MkdirAll(seed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "seed1"), []byte("go test fuzz v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "fakego")
	script := `#!/bin/sh
if [ "$1" = list ]; then echo "example.com/codec ` + pkg + `"; exit 0; fi
case "$4" in
-fuzz=^FuzzRace\$) printf '%s' "` + strings.ReplaceAll(raceOutput, "\n", `\n`) + `"; exit 1;;
-fuzz=^FuzzCrash\$) mkdir -p ` + pkg + `/testdata/fuzz/FuzzCrash && echo x > ` + pkg + `/testdata/fuzz/FuzzCrash/582528ddfad69eb5; printf 'Failing input written\n'; exit 1;;
-fuzz=^FuzzClean\$) echo PASS; exit 0;;
esac
echo "unexpected $*"; exit 3
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	st := run(fake, "1s", []string{dir}, &out)
	log := out.String()
	if st != 1 {
		t.Fatalf("status %d:\n%s", st, log)
	}
	for _, want := range []string{
		"-- example.com/codec FuzzRace: passed (the fuzz engine's shutdown race: no crasher written)",
		"new failing input: " + filepath.Join(pkg, "testdata", "fuzz", "FuzzCrash", "582528ddfad69eb5"),
		"-- example.com/codec FuzzCrash: FAILED: crasher written",
		"fuzz: 3 targets: 1 passed, 1 ended in the shutdown race without a crasher (passed), 1 failed",
		"failed: example.com/codec FuzzCrash\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("output lacks %q:\n%s", want, log)
		}
	}

	// Without the crasher, the race alone passes.
	if err := os.WriteFile(filepath.Join(pkg, "codec_test.go"), []byte("package codec\n\nfunc FuzzRace(f *testing.F) {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if st := run(fake, "1s", []string{dir}, &out); st != 0 {
		t.Fatalf("race only: status %d:\n%s", st, out.String())
	}
}
