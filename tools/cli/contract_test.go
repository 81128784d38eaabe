package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runIn executes the command with stdin and returns stdout, stderr and
// the status. A command that does not return within hangAfter fails the
// test instead of hanging the suite (the hangs of issue 17 were real).
func runIn(t *testing.T, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	const hangAfter = 2 * time.Minute
	type result struct {
		out, err string
		st       int
	}
	done := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		st := Run(args, stdin, &out, &errb)
		done <- result{out.String(), errb.String(), st}
	}()
	select {
	case r := <-done:
		return r.out, r.err, r.st
	case <-time.After(hangAfter):
		t.Fatalf("%q did not return within %v", args, hangAfter)
		return "", "", -1
	}
}

// goInternals are what a message must not show a user: the vocabulary of
// Go packages, not of the command.
var goInternals = regexp.MustCompile(`strconv\.|encoding/|json: |Go value|map\[|shorthand|\.go:\d|runtime error|invalid argument .* for .* flag|accepts \d+ arg`)

// A case of the command line's contract: exit status, and what stdout and
// stderr hold. An error case must print exactly one line on stderr and
// nothing on stdout; since --progress auto writes a line per stage when
// stderr is not a terminal (as here), one line also proves that no work
// began before the input was refused.
type contractCase struct {
	name   string
	args   []string
	stdin  string
	status int
	stderr string // for status 1: a substring of the one line
	stdout string // for status 0: a substring of stdout
}

func checkCase(t *testing.T, c contractCase) {
	t.Helper()
	out, stderr, st := runIn(t, strings.NewReader(c.stdin), c.args...)
	if st != c.status {
		t.Errorf("%s %q: status %d, want %d; stderr %q", c.name, c.args, st, c.status, stderr)
		return
	}
	if c.status == 1 {
		if out != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "mycelium: ") || !strings.HasSuffix(stderr, "\n") {
			t.Errorf("%s %q: not one error line: stdout %q, stderr %q", c.name, c.args, out, stderr)
		}
		if !strings.Contains(stderr, c.stderr) {
			t.Errorf("%s %q: stderr %q lacks %q", c.name, c.args, stderr, c.stderr)
		}
		if goInternals.MatchString(stderr) {
			t.Errorf("%s %q: Go internals in %q", c.name, c.args, stderr)
		}
		return
	}
	if !strings.Contains(out, c.stdout) {
		t.Errorf("%s %q: stdout %.300q lacks %q", c.name, c.args, out, c.stdout)
	}
}

// TestContract holds every case of issue 17 ("the command line keeps its
// promise") and more: bad input gets status 1 and one clear line, before
// any work; the rest works as described.
func TestContract(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pair := write("pair.txt", "0 1\n")
	tooBig := write("big.txt", "0 1\n1 12000\n")
	notAGraph := write("bad.txt", "0 1\n1 x\n")
	longLine := write("long.txt", strings.Repeat("1", 70000)+"\n")
	plainFile := write("plain", "x")
	zero16 := strings.Repeat("00", 16)
	ok := func(name string, stdout string, args ...string) contractCase {
		return contractCase{name: name, args: args, stdout: stdout}
	}
	bad := func(name, stderr string, args ...string) contractCase {
		return contractCase{name: name, args: args, status: 1, stderr: stderr}
	}
	cases := []contractCase{
		// Hangs.
		bad("hang: one node", "--nodes 1: want 2..10,000", "sim", "route", "--nodes", "1"),
		bad("hang: two nodes, root failed", "--fail-root needs at least 3 nodes", "sim", "route", "--nodes", "2", "--degree", "1", "--fail-root"),
		bad("hang: two-node graph, root failed", "2 nodes: --fail-root needs at least 3", "sim", "route", "--graph", pair, "--fail-root"),
		ok("two nodes route", "5/5 delivered", "sim", "route", "--nodes", "2", "--degree", "1", "--pairs", "5"),
		ok("two-node graph routes", "2 nodes, 1 link ", "sim", "route", "--graph", pair, "--pairs", "3"),

		// Unbounded.
		bad("unbounded: route nodes", "--nodes 100000: want 2..10,000", "sim", "route", "--nodes", "100000"),
		bad("unbounded: sim nodes", "--nodes 100000: want 2..10,000", "sim", "--nodes", "100000"),
		bad("unbounded: transfers", "--transfers 1e+09: want 0..60 per node per minute", "sim", "--transfers", "1e9"),
		bad("unbounded: duration", "--duration 1000000h: want 1s..24h of mesh time", "sim", "--duration", "1000000h"),
		bad("unbounded: runs", "--runs 1000000: want 1..10,000", "bench", "transfer", "--runs", "1000000"),
		bad("unbounded: offered traffic", "at most 5 GB", "sim", "--nodes", "10000", "--duration", "24h", "--transfers", "60"),
		bad("unbounded: transfer size", "--max-size 2000000: want 1..1,000,000", "sim", "--max-size", "2000000"),
		bad("unbounded: pairs", "--pairs 20000: want 1..10,000", "sim", "route", "--pairs", "20000"),
		bad("unbounded: bench route size", "--nodes 100000: want 2..10,000", "bench", "route", "--nodes", "100,100000"),
		bad("unbounded: bench route list", "21 entries, at most 20", "bench", "route", "--nodes", "2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22"),
		bad("unbounded: graph file", "line 2: node 12000: a graph has at most 10,000 nodes (0..9,999)", "sim", "route", "--graph", tooBig),
		bad("graph file: a bad edge", `line 2: bad edge "1 x"`, "sim", "route", "--graph", notAGraph),
		bad("graph file: a long line", "line 1: longer than", "sim", "route", "--graph", longLine),
		bad("graph file: missing", "no such file", "sim", "route", "--graph", filepath.Join(dir, "none.txt")),
		bad("degree above the limit", "--degree 60: want above 0 and at most 50", "sim", "route", "--degree", "60"),
		bad("degree above the node count", "--degree 8: want above 0 and at most 4 (5 nodes)", "sim", "route", "--nodes", "5"),

		// Silent defaults and clamping.
		bad("sim nodes 0", "--nodes 0: want 2..10,000", "sim", "--nodes", "0"),
		bad("sim nodes -1", "--nodes -1: want 2..10,000", "sim", "--nodes", "-1"),
		bad("route nodes 0", "--nodes 0: want 2..10,000", "sim", "route", "--nodes", "0"),
		bad("route nodes -1", "--nodes -1: want 2..10,000", "sim", "route", "--nodes", "-1"),
		bad("duration 0", "--duration 0s: want 1s..24h", "sim", "--duration", "0"),
		bad("duration -1s", "--duration -1s: want 1s..24h", "sim", "--duration", "-1s"),
		bad("runs 0", "--runs 0: want 1..10,000", "bench", "transfer", "--runs", "0"),
		bad("runs -3", "--runs -3: want 1..10,000", "bench", "transfer", "--runs", "-3"),
		bad("degree -3", "--degree -3: want above 0", "sim", "--topology", "random", "--degree", "-3"),
		bad("route degree -3", "--degree -3: want above 0", "sim", "route", "--degree", "-3"),
		bad("degree on a grid", "--degree applies only to --topology random", "sim", "--degree", "3"),
		bad("route degree on a line", "--degree applies only to --topology random, ring or hubs", "sim", "route", "--topology", "line", "--degree", "3"),
		bad("min above max", "--min-size 500: want 0..100 (--max-size)", "sim", "--min-size", "500", "--max-size", "100"),
		bad("gateways above nodes", "--gateways 30: want 1..25", "sim", "--link", "mixed", "--gateways", "30"),
		bad("gateways without mixed", "--gateways applies only to --link mixed", "sim", "--gateways", "3"),
		bad("transfers -1", "--transfers -1: want 0..60", "sim", "--transfers", "-1"),
		bad("min-size below a transfer's number", "--min-size 2: want 4..20,000", "sim", "--min-size", "2"),
		bad("reference nodes above nodes", "--reference-nodes 30: want 0..25", "sim", "--reference-nodes", "30"),
		bad("reference nodes negative", "--reference-nodes -1", "sim", "--reference-nodes", "-1"),
		bad("reference nodes on LoRa", "--reference-nodes 2: a LoRa mesh has none", "sim", "--link", "lora", "--reference-nodes", "2"),
		bad("reference nodes beyond a mixed mesh's ESP-NOW nodes", "--reference-nodes 20: want 0..17", "sim", "--link", "mixed", "--reference-nodes", "20"),
		bad("reference board on LoRa", "--reference applies only to --link espnow", "bench", "transfer", "--link", "lora", "--reference"),
		bad("reference board size", "--size 100000: larger than a reference board takes", "bench", "transfer", "--reference", "--size", "100000"),
		bad("progress bogus", `--progress "bogus": want auto, bar, lines, never`, "sim", "--progress", "bogus"),
		bad("route progress bogus", `--progress "bogus"`, "sim", "route", "--progress", "bogus"),
		bad("bench progress bogus", `--progress "x"`, "bench", "transfer", "--progress", "x"),
		bad("bench route progress bogus", `--progress "x"`, "bench", "route", "--progress", "x"),
		bad("sf on ESP-NOW", "--sf applies only to --link lora or mixed", "sim", "--sf", "7"),
		bad("bw on ESP-NOW bench", "--bw applies only to --link lora", "bench", "transfer", "--bw", "250"),
		bad("sf out of range", "--sf 99: want 5..12", "sim", "--link", "lora", "--sf", "99"),
		bad("bw not LoRa", "--bw 100: want 125, 250 or 500", "sim", "--link", "lora", "--bw", "100"),
		bad("pairs 0", "--pairs 0: want 1..10,000", "sim", "route", "--pairs", "0"),
		bad("trees 0", "--trees 0: want 1..16", "sim", "route", "--trees", "0"),
		bad("nodes with a graph", "--nodes and --graph", "sim", "route", "--graph", pair, "--nodes", "5"),
		bad("bench route one node", "--nodes 1: want 2..10,000", "bench", "route", "--nodes", "1"),
		bad("bench route repeated size", "--nodes: 100 is listed twice", "bench", "route", "--nodes", "100,100"),
		bad("route mode 2", "--mode 2: want 0 (tree distance) or 1", "sim", "route", "--mode", "2"),
		bad("unknown topology", `--topology "torus": want grid, line or random`, "sim", "--topology", "torus"),
		bad("unknown link", `--link "smoke": want espnow, lora or mixed`, "sim", "--link", "smoke"),
		bad("bench unknown link", `--link "ble": want espnow or lora`, "bench", "transfer", "--link", "ble"),
		bad("bench size", "--size 10: a Package is at least 32 bytes", "bench", "transfer", "--size", "10"),
		bad("bench size too large", "--size 300000000: the bench sends at most 268,435,456 bytes", "bench", "transfer", "--size", "300000000"),
		bad("bench size too large for a board", "--size 70000: larger than a reference board takes", "bench", "transfer", "--size", "70000", "--reference"),
		bad("bench rate", "--rate \"7\": want an 802.11b/g rate", "bench", "transfer", "--rate", "7"),
		bad("bench rate on LoRa", "--rate applies only to --link espnow", "bench", "transfer", "--link", "lora", "--rate", "1"),
		bad("lora emulate modules", "--modules 0: want 1..64", "lora", "emulate", "--modules", "0"),
		bad("lora listen count", "--count -1: want 0", "lora", "listen", "--port", "/dev/null", "--address", "1", "--count", "-1"),

		// NaN and the infinities.
		bad("NaN loss", "--loss NaN: want a probability", "sim", "--loss", "NaN"),
		bad("NaN loss, JSON", "--loss NaN: want a probability", "sim", "--loss", "NaN", "--json"),
		bad("NaN loss, route", "--loss NaN", "sim", "route", "--loss", "NaN"),
		bad("NaN loss, bench", "--loss NaN", "bench", "transfer", "--loss", "NaN"),
		bad("NaN loss, emulator", "--loss NaN", "lora", "emulate", "--loss", "NaN"),
		bad("NaN degree", "--degree NaN", "sim", "--topology", "random", "--degree", "NaN"),
		bad("NaN transfers", "--transfers NaN", "sim", "--transfers", "NaN"),
		bad("infinite loss", "--loss +Inf", "sim", "--loss", "Inf"),
		bad("loss 1", "--loss 1: want a probability at least 0 and below 1", "sim", "--loss", "1"),
		bad("negative loss", "--loss -0.1", "bench", "transfer", "--loss", "-0.1"),

		// Late validation: refused before the run, not after it.
		bad("svg in a missing directory", "--svg: cannot write", "sim", "route", "--svg", filepath.Join(dir, "nodir", "m.svg")),
		bad("svg onto a directory", "is a directory", "sim", "route", "--svg", dir),
		bad("cpu profile in a missing directory", "--cpuprofile: cannot write", "sim", "route", "--cpuprofile", filepath.Join(dir, "nodir", "cpu.pprof")),
		bad("bench route modes 0,2", "--modes: 2 is not 0", "bench", "route", "--modes", "0,2"),
		bad("bench route modes 0,2, small", "--modes: 2 is not 0", "bench", "route", "--nodes", "20", "--modes", "0,2"),
		bad("pcap directory under a file", "--pcap:", "sim", "--pcap", filepath.Join(plainFile, "caps")),

		// Unknown subcommands.
		bad("packet bogus", `unknown command "bogus" for "mycelium packet"`, "packet", "bogus"),
		bad("bench bogus", `unknown command "bogus" for "mycelium bench"`, "bench", "bogus"),
		bad("lora bogus", `unknown command "bogus" for "mycelium lora"`, "lora", "bogus"),
		bad("espnow foo", `unknown command "foo" for "mycelium espnow"`, "espnow", "foo"),
		bad("package bogus", `unknown command`, "package", "bogus"),
		bad("sequence bogus", `unknown command`, "sequence", "bogus"),
		bad("addr bogus", `unknown command`, "addr", "bogus"),
		bad("a near miss", `(did you mean "decode"?)`, "packet", "decod"),
		bad("top level", `unknown command "nosuch" for "mycelium"`, "nosuch"),
		bad("sim takes no argument", `sim takes no arguments, got "bogus"`, "sim", "bogus"),
		bad("bench transfer takes none", `bench transfer takes no arguments`, "bench", "transfer", "x"),
		ok("a group alone prints its help", "Available Commands:", "packet"),
		ok("help on a command", "Decodes one packet", "help", "packet", "decode"),
		bad("help on nothing", `no help topic "bogus" for "mycelium"`, "help", "bogus"),
		bad("help on a missing subcommand", `no help topic "bogus" for "mycelium packet"`, "help", "packet", "bogus"),
		ok("the root alone prints its help", "Available Commands:", ""),

		// Go internals and grammar in messages.
		bad("JSON array", "packet JSON: want one object {...}, got \"[]\"", "packet", "encode", "[]"),
		bad("JSON of the wrong type", "packet JSON: want one object", "packet", "encode", "3"),
		bad("JSON cut", "packet JSON: ends inside the object", "packet", "encode", `{"schema":0`),
		bad("JSON empty", "packet JSON: empty", "packet", "encode", ""),
		bad("JSON field type", "packet JSON: schema: not a number", "packet", "encode", `{"schema":"x"}`),
		bad("JSON trailing", "trailing data", "packet", "encode", `{"schema":0} {}`),
		bad("not an integer list", `--nodes: "abc" is not an integer`, "bench", "route", "--nodes", "abc"),
		bad("not an integer flag", `--nodes: "abc" is not an integer`, "sim", "--nodes", "abc"),
		bad("not a duration", `--duration: "x" is not a duration such as 90s`, "sim", "--duration", "x"),
		bad("not a number", `--loss: "lots" is not a number`, "sim", "--loss", "lots"),
		bad("not a uint8", `--schema: "300" is not an integer in 0..255`, "sequence", "split", "--schema", "300", "--app-id", zero16, "--blob", ""),
		bad("flag without value", "--loss needs a value", "sim", "--loss"),
		bad("unknown flag", "unknown flag --bogus", "sim", "--bogus"),
		bad("a negative number as coordinates", `unknown flag -1 (an argument that starts with - goes after --, as in "mycelium addr encode -- -1")`, "addr", "encode", "-1"),
		bad("a negative number after --", `"-1" is not a decimal number`, "addr", "encode", "--", "-1"),
		bad("Package error named as a Package", "package: too short: 31 bytes, want at least 32", "package", "decode", strings.Repeat("00", 31)),
		bad("one byte", "packet: too short: 1 byte, want at least 4", "packet", "decode", "00"),
		bad("one byte of app id", "--app-id: 1 byte, want 16", "package", "encode", "--app-id", "00", "--blob", ""),
		bad("hex: bad digit", `packet: not hex: 'z' at digit 1`, "packet", "decode", "zz"),
		bad("hex: odd", "package: not hex: an odd number of digits (1)", "package", "decode", "0"),
		bad("no argument", `packet decode needs HEX (or "-" for standard input)`, "packet", "decode"),
		bad("two arguments", `packet decode takes HEX (or "-" for standard input), got 2 arguments: "b"`, "packet", "decode", "a", "b"),
		bad("bad MAC", `--src "1": not a MAC address`, "espnow", "frame", "--src", "1", "--dst", "ff:ff:ff:ff:ff:ff", "00"),
		bad("payload too long", "payload: 251 bytes, ESP-NOW carries at most 250", "espnow", "frame", "--src", "24:0a:c4:00:00:01", "--dst", "ff:ff:ff:ff:ff:ff", strings.Repeat("00", 251)),
		bad("unknown schema", "--schema 60: no such schema", "sequence", "split", "--schema", "60", "--app-id", zero16, "--blob", ""),
		bad("required flag", `"app-id" not set`, "package", "encode", "--blob", "00"),

		// Input: "-" for standard input; 0x.
		{name: "packet decode from stdin", args: []string{"packet", "decode", "-"}, stdin: "00000100073610a686\n68656c6c6f\n", stdout: `"checksum_ok":true`},
		{name: "packet encode from stdin", args: []string{"packet", "encode", "-"}, stdin: `{"schema":1,"packet_id":7,"body":"68656c6c6f"}`, stdout: "00000100073610a68668656c6c6f"},
		{name: "package decode from stdin", args: []string{"package", "decode", "-"}, stdin: "366821dafdaf45e9bc5cfecb1c2a065c2cf24dba5fb0a30e26e83b2ac5b9e29e68656c6c6f", stdout: `"hash_ok":true`},
		{name: "addr decode from stdin", args: []string{"addr", "decode", "-"}, stdin: "0x31000000000000000000000000000000\n", stdout: "3,1\n"},
		{name: "espnow parse from stdin", args: []string{"espnow", "parse", "-"}, stdin: "zz", status: 1, stderr: "frame: not hex"},
		{name: "empty stdin", args: []string{"packet", "decode", "-"}, status: 1, stderr: "packet: too short: 0 bytes"},
		ok("addr decode 0x", "3,1\n", "addr", "decode", "0x31000000000000000000000000000000"),
		ok("addr distance 0x", "2\n", "addr", "distance", "0x31000000000000000000000000000000", "0X32000000000000000000000000000000"),
		ok("packet decode 0x", `"packet_id":7`, "packet", "decode", "0x0000000007366821dafdaf45e9bc5cfecb1c2a065c2cf24dba5fb0a30e26e83b2ac5b9e29e68656c6c6f"),

		// Help: examples, required flags, schemas, the JSON, --version.
		ok("version", "mycelium ", "--version"),
		ok("required flags marked", "application id, 32 hex digits (required)", "package", "encode", "--help"),
		ok("sequence split lists schemas", "     7  espnow  yes        yes     -         53,503 bytes", "sequence", "split", "--help"),
		ok("sequence split explains --seq-id", "A sequenced schema needs --seq-id", "sequence", "split", "--help"),
		ok("packet encode shows the JSON", `{"version":0,"reserved":0,"schema":1,"flags":0,"packet_id":7,"body":"68656c6c6f"}`, "packet", "encode", "--help"),
		ok("sim help states limits", "--nodes 2..10,000", "sim", "--help"),
		ok("route help states limits", "2..10,000 nodes", "sim", "route", "--help"),
		ok("bench help states limits", "--runs 1..10,000", "bench", "transfer", "--help"),
		ok("unsequenced schema without --seq-id", "\n", "sequence", "split", "--schema", "0", "--app-id", zero16, "--blob", "00"),
		bad("unsequenced schema with --seq-id", "--seq-id applies only to sequenced schemas, not schema 0", "sequence", "split", "--schema", "0", "--app-id", zero16, "--blob", "00", "--seq-id", "1"),
		bad("sequenced schema without --seq-id", "--seq-id is required: schema 2 is sequenced", "sequence", "split", "--schema", "2", "--app-id", zero16, "--blob", "00"),
		bad("--mode on a non-routed schema", "--mode applies only to routed schemas", "sequence", "split", "--schema", "2", "--app-id", zero16, "--blob", "00", "--seq-id", "1", "--mode"),
		bad("--ttl on a non-routed schema", "--ttl applies only to routed schemas", "sequence", "split", "--schema", "1", "--app-id", zero16, "--blob", "00", "--ttl", "3"),
		ok("--mode on a routed schema", "\n", "sequence", "split", "--schema", "7", "--app-id", zero16, "--blob", "00", "--seq-id", "1", "--mode"),
	}
	for _, c := range cases {
		if len(c.args) == 1 && c.args[0] == "" {
			c.args = nil
		}
		checkCase(t, c)
	}
}

// Standard input holds at most MaxInput bytes: more is refused, not read
// into memory without end.
func TestStdinBounded(t *testing.T) {
	out, stderr, st := runIn(t, io.LimitReader(zeros{}, MaxInput+10), "packet", "decode", "-")
	if st != 1 || out != "" || !strings.Contains(stderr, "standard input holds more than") {
		t.Fatalf("%d %q", st, stderr)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = '0'
	}
	return len(b), nil
}

// A Package too large for an argument (the kernel refuses one over 128 KiB)
// goes through standard input: 1 MB of blob, cut into the packets of
// schema 4.
func TestLargeBlobFromStdin(t *testing.T) {
	blob := bytes.Repeat([]byte{0xab}, 1000000)
	in := strings.NewReader(strings.Repeat("ab", len(blob)))
	out, stderr, st := runIn(t, in, "package", "encode", "--app-id", strings.Repeat("11", 16), "--blob", "-")
	if st != 0 || len(out) != 2*(len(blob)+32)+1 {
		t.Fatalf("package encode: %d, %d bytes out, %q", st, len(out), stderr)
	}
	in = strings.NewReader(strings.Repeat("ab", len(blob)))
	out, stderr, st = runIn(t, in, "sequence", "split", "--schema", "4", "--app-id", strings.Repeat("11", 16), "--blob", "-", "--seq-id", "3")
	if st != 0 {
		t.Fatalf("sequence split: %d %q", st, stderr)
	}
	if n := strings.Count(out, "\n"); n != (len(blob)+32+236)/237 {
		t.Fatalf("%d packets", n)
	}
}
