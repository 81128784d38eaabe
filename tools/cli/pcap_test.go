package cli

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
)

var (
	pcapSrc = espnow.MAC{0x24, 0x0a, 0xc4, 0, 0, 1}
	pcapDst = espnow.MAC{0x24, 0x0a, 0xc4, 0, 0, 2}
)

func buildESPNOW(t *testing.T, dst espnow.MAC, bodyHex string) []byte {
	t.Helper()
	body, err := hex.DecodeString(bodyHex)
	if err != nil {
		t.Fatal(err)
	}
	b, err := espnow.AppendFrame(nil, &espnow.Frame{Src: pcapSrc, Dst: dst, Body: body}, espnow.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeCapture(t *testing.T, lt layers.LinkType, frames ...[]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.pcap")
	w, err := capture.Create(path, lt)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if err := w.Write(time.Unix(1700000000+int64(i), 0), f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// decodeLine parses one output line, checking the key order the contract gives.
func decodeLine(t *testing.T, line string, keys ...string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if len(m) != len(keys) {
		t.Fatalf("%q: keys %v, want %v", line, m, keys)
	}
	last := -1
	for _, k := range keys {
		i := strings.Index(line, `"`+k+`":`)
		if _, ok := m[k]; !ok || i < last {
			t.Fatalf("%q: key %q missing or out of order", line, k)
		}
		last = i
	}
	return m
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

func TestPcapRadiotap(t *testing.T) {
	const pkt1, pkt2 = "0000000107544b", "00000420123400123400000000"
	// A received frame: radiotap with flags (FCS), channel 14, -42 dBm.
	d := buildESPNOW(t, pcapDst, pkt2)[espnow.TxRadiotapLen:]
	rx := append(mustHexCLI("00000f002a0000001000b409a000d6"), d...)
	rx = binary.LittleEndian.AppendUint32(rx, crc32.ChecksumIEEE(d))
	beacon := append(mustHexCLI("0000080000000000"), 0x80, 0x00, 0x00, 0x00)
	path := writeCapture(t, capture.LinkTypeRadiotap,
		buildESPNOW(t, espnow.BroadcastMAC, pkt1),
		beacon,
		rx,
		[]byte("garbage"),
		buildESPNOW(t, pcapDst, "ff"), // not a mesh packet
	)
	out, stderr, st := run("pcap", path)
	if st != 0 {
		t.Fatalf("status %d: %s", st, stderr)
	}
	if stderr != "mycelium: skipped 2 frames that are not ESP-NOW or UDP on port 4242\n" {
		t.Fatalf("stderr %q", stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("output %q", out)
	}
	m := decodeLine(t, lines[0], "src", "dst", "packet")
	if string(m["src"]) != `"24:0a:c4:00:00:01"` || string(m["dst"]) != `"ff:ff:ff:ff:ff:ff"` {
		t.Fatalf("line 1: %s", lines[0])
	}
	want, _, _ := run("packet", "decode", pkt1)
	if !jsonEqual(t, m["packet"], []byte(want)) {
		t.Fatalf("packet %s, want %s", m["packet"], want)
	}
	m = decodeLine(t, lines[1], "src", "dst", "channel", "rssi", "packet")
	if string(m["dst"]) != `"24:0a:c4:00:00:02"` || string(m["channel"]) != "14" || string(m["rssi"]) != "-42" {
		t.Fatalf("line 2: %s", lines[1])
	}
	want, _, _ = run("packet", "decode", pkt2)
	if !jsonEqual(t, m["packet"], []byte(want)) {
		t.Fatalf("packet %s, want %s", m["packet"], want)
	}
	m = decodeLine(t, lines[2], "src", "dst", "error")
	if !strings.Contains(string(m["error"]), "packet") {
		t.Fatalf("line 3: %s", lines[2])
	}
}

func mustHexCLI(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestPcapOtherLinkTypes(t *testing.T) {
	// Bare 802.11 (105), with and without FCS.
	d := buildESPNOW(t, pcapDst, "0000000107544b")[espnow.TxRadiotapLen:]
	withFCS := binary.LittleEndian.AppendUint32(bytes.Clone(d), crc32.ChecksumIEEE(d))
	out, stderr, st := run("pcap", writeCapture(t, capture.LinkTypeDot11, d, withFCS))
	if st != 0 || stderr != "" || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"src":"24:0a:c4:00:00:01"`) {
		t.Fatalf("802.11 capture: %d %q %q", st, out, stderr)
	}
	// USER0 (a capture of another link): bare packets, no addresses.
	out, stderr, st = run("pcap", writeCapture(t, capture.LinkTypeUser0, mustHexCLI("0000000107544b"), []byte("x")))
	want, _, _ := run("packet", "decode", "0000000107544b")
	if st != 0 || stderr != "" || out != `{"packet":`+strings.TrimSuffix(want, "\n")+"}\n"+`{"error":"packet: too short: packet is 1 bytes, want at least 4"}`+"\n" {
		t.Fatalf("USER0 capture: %d %q %q", st, out, stderr)
	}
	// An empty capture: no output at all.
	out, stderr, st = run("pcap", writeCapture(t, capture.LinkTypeRadiotap))
	if st != 0 || out != "" || stderr != "" {
		t.Fatalf("empty capture: %d %q %q", st, out, stderr)
	}
}

func TestPcapBadFiles(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not a capture\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(writeCapture(t, capture.LinkTypeRadiotap, buildESPNOW(t, pcapDst, "0000000107544b")))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pcap")
	if err := os.WriteFile(cut, good[:len(good)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	ng := filepath.Join(dir, "x.pcapng")
	if err := os.WriteFile(ng, append([]byte{0x0a, 0x0d, 0x0d, 0x0a}, make([]byte, 60)...), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"text": text, "missing": filepath.Join(dir, "nope.pcap"), "pcapng": ng} {
		out, stderr, st := run("pcap", path)
		oneErrorLine(t, name, out, stderr, st)
	}
	// A file cut inside a frame: an error, after what could be read.
	out, stderr, st := run("pcap", cut)
	if st != 1 || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "frame 1") {
		t.Fatalf("cut file: %d %q %q", st, out, stderr)
	}
	out, stderr, st = run("pcap")
	oneErrorLine(t, "no file", out, stderr, st)
}

// TestPcapHopTrailer: a frame tagged between two proven neighbours shows
// its trailer (counter, tag) apart, and the packet decodes as the same
// packet untagged does.
func TestPcapHopTrailer(t *testing.T) {
	plain := mustHexCLI("0000000107544b")
	tagged := append(bytes.Clone(plain), 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8)
	tagged[1] = 0x01
	out, stderr, st := run("pcap", writeCapture(t, capture.LinkTypeUser0, tagged))
	if st != 0 || stderr != "" || !strings.Contains(out, `"hop":{"counter":9,"tag":"0102030405060708"}`) || !strings.Contains(out, `"packet":`) || strings.Contains(out, `"error"`) {
		t.Fatalf("tagged frame: %d %q %q", st, out, stderr)
	}
}
