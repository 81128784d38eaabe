package cli

import (
	"encoding/hex"
	"strings"
	"testing"
)

// oneErrorLine checks the contract for failures: status 1, nothing on
// stdout, one line on stderr.
func oneErrorLine(t *testing.T, what string, stdout, stderr string, status int) {
	t.Helper()
	if status != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "mycelium: ") {
		t.Errorf("%s: status %d, stdout %q, stderr %q", what, status, stdout, stderr)
	}
}

func TestESPNOWFrame(t *testing.T) {
	out, stderr, st := run("espnow", "frame", "--src", "24:0a:c4:00:00:01", "--dst", "ff:ff:ff:ff:ff:ff", "--random", "DEADBEEF", "00000107544b")
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	want := "00000c000480000002001000" + // radiotap: 1 Mbit/s, TX flags NOSEQ
		"d0000000" + "ffffffffffff" + "240ac4000001" + "ffffffffffff" + "0000" + // broadcast action, duration 0, seq 0
		"7f18fe34" + "deadbeef" + "dd0b18fe340401" + "00000107544b"
	if out != want+"\n" {
		t.Fatalf("frame\n got %s\nwant %s", out, want)
	}

	// Without --random the 4 random bytes change from frame to frame.
	frames := map[string]bool{}
	for range 3 {
		out, stderr, st := run("espnow", "frame", "--src", "240ac4000001", "--dst", "24:0a:c4:00:00:02", "aabb")
		if st != 0 {
			t.Fatalf("status %d: %s", st, stderr)
		}
		b, err := hex.DecodeString(strings.TrimSpace(out))
		if err != nil || len(b) != 12+24+15+2 {
			t.Fatalf("frame %q", out)
		}
		frames[hex.EncodeToString(b[12+28:12+32])] = true
	}
	if len(frames) != 3 {
		t.Fatalf("random bytes repeat: %v", frames)
	}

	for name, args := range map[string][]string{
		"bad src":         {"espnow", "frame", "--src", "24:0a:c4", "--dst", "ff:ff:ff:ff:ff:ff", "00"},
		"bad dst":         {"espnow", "frame", "--src", "24:0a:c4:00:00:01", "--dst", "nope", "00"},
		"missing src":     {"espnow", "frame", "--dst", "ff:ff:ff:ff:ff:ff", "00"},
		"bad payload hex": {"espnow", "frame", "--src", "24:0a:c4:00:00:01", "--dst", "ff:ff:ff:ff:ff:ff", "0g"},
		"payload too big": {"espnow", "frame", "--src", "24:0a:c4:00:00:01", "--dst", "ff:ff:ff:ff:ff:ff", strings.Repeat("00", 251)},
		"short random":    {"espnow", "frame", "--src", "24:0a:c4:00:00:01", "--dst", "ff:ff:ff:ff:ff:ff", "--random", "dead", "00"},
		"no payload":      {"espnow", "frame", "--src", "24:0a:c4:00:00:01", "--dst", "ff:ff:ff:ff:ff:ff"},
	} {
		out, stderr, st := run(args...)
		oneErrorLine(t, name, out, stderr, st)
	}
	// 250 bytes is fine.
	if _, stderr, st := run("espnow", "frame", "--src", "24:0a:c4:00:00:01", "--dst", "ff:ff:ff:ff:ff:ff", strings.Repeat("00", 250)); st != 0 {
		t.Fatalf("250-byte payload: %s", stderr)
	}
}

func TestESPNOWParse(t *testing.T) {
	frame, _, st := run("espnow", "frame", "--src", "24:0a:c4:00:00:01", "--dst", "24:0a:c4:00:00:02", "0000000107544b")
	if st != 0 {
		t.Fatal(st)
	}
	out, stderr, st := run("espnow", "parse", strings.TrimSpace(frame))
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	if want := `{"src":"24:0a:c4:00:00:01","dst":"24:0a:c4:00:00:02","body":"0000000107544b"}` + "\n"; out != want {
		t.Fatalf("parse: %s", out)
	}
	// What a monitor interface hands up: radiotap with flags (FCS),
	// channel 14 and signal, the frame with its FCS, upper-case hex.
	rx := "00000f002a0000001000b409a000d6" +
		"d0003a01240ac4000002240ac4000001ffffffffffff0000" +
		"7f18fe3401020304dd0818fe340401aabbcc" + "d52bb858"
	out, stderr, st = run("espnow", "parse", strings.ToUpper(rx))
	if st != 0 || out != `{"src":"24:0a:c4:00:00:01","dst":"24:0a:c4:00:00:02","body":"aabbcc"}`+"\n" {
		t.Fatalf("parse of a received frame: %d %q %q", st, out, stderr)
	}

	for name, arg := range map[string]string{
		"not hex":   "xyz",
		"empty":     "",
		"beacon":    "0000080000000000" + "8000000024",
		"truncated": strings.TrimSpace(frame)[:60],
		"bad FCS":   rx[:len(rx)-2] + "00",
	} {
		out, stderr, st := run("espnow", "parse", arg)
		oneErrorLine(t, name, out, stderr, st)
	}
}
