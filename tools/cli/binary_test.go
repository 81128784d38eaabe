package cli

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/google/gopacket/layers"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binaryPath builds the mycelium command once for the tests that run it as
// a real process: exit statuses, pipes and terminals as a shell sees them.
func binaryPath(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mycelium-cli-test")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "mycelium")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/mycelium-mesh/mycelium/tools/cmd/mycelium").CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v", binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// runBinary runs the built command with stdin and returns stdout, stderr
// and the exit status.
func runBinary(t *testing.T, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binaryPath(t), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("%v: %v", args, err)
	return "", "", -1
}

// The contract as a shell sees it, from a real process.
func TestBinaryContract(t *testing.T) {
	for _, c := range []struct {
		args   []string
		stdin  string
		status int
		want   string // in stdout (status 0) or stderr (status 1)
	}{
		{[]string{"packet", "bogus"}, "", 1, `unknown command "bogus" for "mycelium packet"`},
		{[]string{"lora", "bogus"}, "", 1, `unknown command "bogus"`},
		{[]string{"sim", "route", "--nodes", "1"}, "", 1, "--nodes 1: want 2..10,000"},
		{[]string{"sim", "--loss", "NaN", "--json"}, "", 1, "--loss NaN"},
		{[]string{"bench", "route", "--modes", "0,2"}, "", 1, "--modes: 2 is not 0"},
		{[]string{"addr", "encode", "-1"}, "", 1, "goes after --"},
		{[]string{"--version"}, "", 0, "mycelium "},
		{[]string{"packet", "decode", "-"}, "0000000007366821dafdaf45e9bc5cfecb1c2a065c\n2cf24dba5fb0a30e26e83b2ac5b9e29e68656c6c6f\n", 0, `"packet_id":7`},
		{[]string{"addr", "decode", "0x31000000000000000000000000000000"}, "", 0, "3,1\n"},
	} {
		out, stderr, st := runBinary(t, []byte(c.stdin), c.args...)
		if st != c.status {
			t.Errorf("%q: status %d, want %d (%q)", c.args, st, c.status, stderr)
			continue
		}
		if c.status == 1 {
			if out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.want) {
				t.Errorf("%q: stdout %q, stderr %q", c.args, out, stderr)
			}
		} else if !strings.Contains(out, c.want) {
			t.Errorf("%q: stdout %q", c.args, out)
		}
	}
}

// A pcapng capture (what tshark writes by default) piped into `pcap -`.
func TestBinaryPcapngFromAPipe(t *testing.T) {
	frame := buildESPNOW(t, espnow.BroadcastMAC, "0000000107544b")
	ng := pcapngOf(capture.LinkTypeRadiotap, frame, []byte("not ESP-NOW"))
	out, stderr, st := runBinary(t, ng, "pcap", "-")
	if st != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"src":"24:0a:c4:00:00:01"`) || stderr != "mycelium: skipped 1 frame that is not ESP-NOW or UDP on port 4242\n" {
		t.Fatalf("%d %q %q", st, out, stderr)
	}
	// The same from a file.
	path := filepath.Join(t.TempDir(), "c.pcapng")
	if err := os.WriteFile(path, ng, 0o644); err != nil {
		t.Fatal(err)
	}
	if out2, _, st := runBinary(t, nil, "pcap", path); st != 0 || out2 != out {
		t.Fatalf("from a file: %d %q", st, out2)
	}
}

// pcapngOf writes a little-endian pcapng capture of one interface, as
// tshark does: a section header, an interface description, an enhanced
// packet block per frame.
func pcapngOf(lt layers.LinkType, frames ...[]byte) []byte {
	le := binary.LittleEndian
	var b []byte
	block := func(typ uint32, body []byte) {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		b = le.AppendUint32(b, typ)
		b = le.AppendUint32(b, uint32(12+len(body)))
		b = append(b, body...)
		b = le.AppendUint32(b, uint32(12+len(body)))
	}
	shb := le.AppendUint32(nil, 0x1a2b3c4d)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = le.AppendUint64(shb, ^uint64(0))
	block(0x0a0d0d0a, shb)
	idb := le.AppendUint16(nil, uint16(lt))
	idb = le.AppendUint16(idb, 0)
	idb = le.AppendUint32(idb, 262144)
	block(1, idb)
	for i, f := range frames {
		epb := le.AppendUint32(nil, 0)
		epb = le.AppendUint32(epb, 0)
		epb = le.AppendUint32(epb, uint32(1000000*(i+1)))
		epb = le.AppendUint32(epb, uint32(len(f)))
		epb = le.AppendUint32(epb, uint32(len(f)))
		block(6, append(epb, f...))
	}
	return b
}

// On a terminal (a real pty), the progress is one redrawn line; piped, a
// line per stage.
func TestBinaryProgressOnATerminal(t *testing.T) {
	cmd := exec.Command(binaryPath(t), "sim", "route", "--nodes", "20", "--degree", "5", "--pairs", "5", "--json")
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var term bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&term, ptmx); close(copied) }()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, term.String())
	}
	select {
	case <-copied: // the pty reports EIO once the child is gone
	case <-time.After(10 * time.Second):
		t.Fatal("pty not closed")
	}
	s := term.String()
	if !strings.Contains(s, "\r\x1b[Kconverging") || !strings.Contains(s, "%") || !strings.HasSuffix(s, "\r\x1b[K") || strings.Contains(s, "converging\n") {
		t.Errorf("terminal got %q", s)
	}
	if !strings.HasPrefix(out.String(), `{"nodes":20`) {
		t.Errorf("stdout %q", out.String())
	}
	_, stderr, st := runBinary(t, nil, "sim", "route", "--nodes", "20", "--degree", "5", "--pairs", "5", "--json")
	if st != 0 || !strings.HasPrefix(stderr, "building nodes\nconverging\n") || strings.Contains(stderr, "\r") {
		t.Errorf("piped: %d %q", st, stderr)
	}
}
