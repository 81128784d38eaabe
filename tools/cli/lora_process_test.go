package cli

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoraHelperProcess is not a test: it is the mycelium command when the
// test binary is started as one (see mycelium below).
func TestLoraHelperProcess(t *testing.T) {
	if os.Getenv("MYCELIUM_CLI_HELPER") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(Main(args, os.Stdout, os.Stderr))
}

// mycelium returns the command line "mycelium args..." as a process of its
// own: this test binary, running TestLoraHelperProcess.
func mycelium(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestLoraHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "MYCELIUM_CLI_HELPER=1")
	return cmd
}

// lines delivers what r prints, line by line.
func lines(r io.Reader) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		s := bufio.NewScanner(r)
		for s.Scan() {
			ch <- s.Text()
		}
	}()
	return ch
}

// nextLine waits for a line matching re.
func nextLine(t *testing.T, ch <-chan string, re *regexp.Regexp, what string) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("%s: output ended", what)
			}
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("%s: no line matching %v", what, re)
		}
	}
}

// bytesOf builds test datagrams.
func bytesOf(n int, f func(i int) byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = f(i)
	}
	return b
}

// Real processes on real pseudo-terminals: "lora emulate" (both ways of
// reading AT+SEND's data), a "lora listen" for each framing and one "lora
// send" per datagram. Every byte value, CR LF, LF runs and datagrams at
// the link's stated maximum (239 bytes framed as bytes, 240-byte packets)
// arrive byte-exact. Through --data-ends-at-crlf, a datagram holding CR LF
// sent raw (--framing none) is refused with +ERR=5: the emulator does cut
// it. "lora probe" tells the two emulations apart.
func TestLoraProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a few dozen processes")
	}
	anyBytes := [][]byte{
		{0x0d, 0x0a}, {0x00}, {0xff},
		bytesOf(239, func(i int) byte { return []byte{byte(i), '\r', '\n'}[max(i%16-13, 0)] }), // most byte values, CR LF every 16
		bytesOf(239, func(i int) byte { return 0x0a }),
		bytesOf(239, func(i int) byte { return "\r\n"[i%2] }),
	}
	packets := [][]byte{
		bytesOf(240, func(i int) byte { return byte(i) }),
		append([]byte{0}, bytesOf(239, func(i int) byte { return 0x0a })...),
	}
	radio := []string{"--sf", "7", "--bw", "500", "--timeout", "3s"}
	for _, strict := range []bool{false, true} {
		name := "by-length"
		if strict {
			name = "ends-at-crlf"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"lora", "emulate", "--modules", "3", "--sf", "7", "--bw", "500"}
			if strict {
				args = append(args, "--data-ends-at-crlf")
			}
			emu := mycelium(args...)
			out, err := emu.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var emuErr bytes.Buffer
			emu.Stderr = &emuErr
			if err := emu.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				emu.Process.Signal(syscall.SIGINT)
				if err := emu.Wait(); err != nil {
					t.Errorf("emulate: %v: %s", err, emuErr.String())
				}
			}()
			ptyRE := regexp.MustCompile(`^(/dev/pts/\d+) address (\d+)$`)
			emuLines := lines(out)
			var ports []string
			for i := range 3 {
				ports = append(ports, nextLine(t, emuLines, ptyRE, fmt.Sprintf("emulate, module %d", i+1))[1])
			}

			// Module 2 listens to bytes, module 3 to packets.
			type listener struct {
				cmd    *exec.Cmd
				out    bytes.Buffer
				errb   *syncBuffer
				framed [][]byte
			}
			var ls []*listener
			for i, f := range []struct {
				framing string
				want    [][]byte
			}{{"bytes", anyBytes}, {"packet", packets}} {
				l := &listener{errb: &syncBuffer{}, framed: f.want}
				l.cmd = mycelium(append([]string{"lora", "listen", "--port", ports[i+1], "--address", fmt.Sprint(i + 2),
					"--framing", f.framing, "--count", fmt.Sprint(len(f.want))}, radio...)...)
				l.cmd.Stdout, l.cmd.Stderr = &l.out, l.errb
				if err := l.cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer l.cmd.Process.Kill()
				ls = append(ls, l)
			}
			for _, l := range ls {
				if !waitFor(func() bool { return strings.Contains(l.errb.String(), "listening") }) {
					t.Fatalf("listen: %q", l.errb.String())
				}
			}
			send := func(framing string, to int, d []byte) (string, error) {
				cmd := mycelium(append([]string{"lora", "send", "--port", ports[0], "--address", "1", "--to", fmt.Sprint(to),
					"--framing", framing, hex.EncodeToString(d)}, radio...)...)
				b, err := cmd.CombinedOutput()
				return string(b), err
			}
			for _, d := range anyBytes {
				if o, err := send("bytes", 2, d); err != nil || !strings.HasPrefix(o, "sent "+plural(len(d), "byte", "bytes")+" to 2") {
					t.Fatalf("send %x: %v: %s", d, err, o)
				}
			}
			for _, d := range packets {
				if o, err := send("packet", 3, d); err != nil || !strings.HasPrefix(o, "sent "+plural(len(d), "byte", "bytes")+" to 3") {
					t.Fatalf("send packet %x: %v: %s", d, err, o)
				}
			}
			// Over the stated maximum: refused before anything is sent.
			if o, err := send("bytes", 2, make([]byte, 240)); err == nil || !strings.Contains(o, "at most 239") {
				t.Fatalf("240 bytes framed as bytes: %v: %s", err, o)
			}
			if strict {
				o, err := send("none", 2, []byte("A\r\nB"))
				if err == nil || !strings.Contains(o, "+ERR=5") {
					t.Fatalf("raw CR LF through a module that ends the data there: %v: %s", err, o)
				}
			}
			for _, l := range ls {
				done := make(chan error, 1)
				go func() { done <- l.cmd.Wait() }()
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("listen: %v: %s", err, l.errb.String())
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("listen did not get its %d datagrams: %s", len(l.framed), l.out.String())
				}
				got := strings.Split(strings.TrimSpace(l.out.String()), "\n")
				if len(got) != len(l.framed) {
					t.Fatalf("listen printed %d lines for %d datagrams", len(got), len(l.framed))
				}
				for i, line := range got {
					var r received
					if err := json.Unmarshal([]byte(line), &r); err != nil {
						t.Fatal(err)
					}
					if want := hex.EncodeToString(l.framed[i]); r.Data != want || r.Src != 1 {
						t.Fatalf("datagram %d: from %d %s, sent %s", i, r.Src, r.Data, want)
					}
				}
			}
			// The probe sees which module this is.
			o, e, err := func() (string, string, error) {
				var o, e bytes.Buffer
				cmd := mycelium("lora", "probe", "--port", ports[0])
				cmd.Stdout, cmd.Stderr = &o, &e
				err := cmd.Run()
				return o.String(), e.String(), err
			}()
			want := "read by its declared length"
			if strict {
				want = "ends at the first CR LF"
			}
			if err != nil || !strings.Contains(o, "AT+SEND data: "+want) || !strings.Contains(o, "framed data (lone CR, 0x00, 0xFF): carried") {
				t.Fatalf("probe: %v: %q %q", err, o, e)
			}
		})
	}
}

// The new flags are checked: an unknown framing, a datagram over the
// framing's limit, a probe without a port.
func TestLoraFramingArguments(t *testing.T) {
	for _, args := range [][]string{
		{"lora", "send", "--port", "/dev/null", "--address", "1", "--to", "2", "--framing", "cobs", "00"},
		{"lora", "listen", "--port", "/dev/null", "--address", "1", "--framing", "cobs"},
		{"lora", "send", "--port", "/dev/null", "--address", "1", "--to", "2", strings.Repeat("00", 240)},
		{"lora", "send", "--port", "/dev/null", "--address", "1", "--to", "2", "--framing", "packet", strings.Repeat("00", 241)},
		{"lora", "probe"},
	} {
		_, e, st := run(args...)
		if st != 1 || strings.Count(e, "\n") != 1 {
			t.Errorf("%v: status %d, stderr %q", args, st, e)
		}
	}
}
