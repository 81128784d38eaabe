package espnow

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// writePcap writes frames to a nanosecond pcap with pcapgo and checks that
// pcapgo reads back the same bytes and timestamps.
func writePcap(t *testing.T, lt layers.LinkType, frames [][]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "espnow.pcap")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriterNanos(fh)
	if err := w.WriteFileHeader(65536, lt); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	for i, b := range frames {
		ci := gopacket.CaptureInfo{Timestamp: base.Add(time.Duration(i) * 1001 * time.Nanosecond), CaptureLength: len(b), Length: len(b)}
		if err := w.WritePacket(ci, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	rf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	r, err := pcapgo.NewReader(rf)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != lt {
		t.Fatalf("link type %v", r.LinkType())
	}
	for i, want := range frames {
		got, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || !ci.Timestamp.Equal(base.Add(time.Duration(i)*1001*time.Nanosecond)) {
			t.Fatalf("frame %d read back as %x at %v", i, got, ci.Timestamp)
		}
	}
	return path
}

// TestTshark has Wireshark's dissector decode frames we build: the
// independent check that boards' stacks will see a vendor action frame
// with Espressif's OUI and the ESP-NOW element.
func TestTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not on PATH (CI installs it): cannot cross-check frames with Wireshark")
	}
	body := []byte{0x00, 0x00, 0x01, 0x00, 0x03, 0xaa, 0xbb, 0xcc}
	uni := mustBuild(t, &Frame{Dst: macB, Src: macA, Random: [4]byte{1, 2, 3, 4}, Seq: 42, Body: body}, TxOptions{})
	bc := mustBuild(t, &Frame{Dst: BroadcastMAC, Src: macA, Random: [4]byte{5, 6, 7, 8}, Body: body}, TxOptions{Rate: Rate24M, NoAck: true})
	rx := cat(rtMac80211, withFCS(dot11Of(uni)))
	path := writePcap(t, layers.LinkTypeIEEE80211Radio, [][]byte{uni, bc, rx})

	fields := []string{"wlan.fc.type_subtype", "wlan.fixed.category_code", "wlan.tag.oui", "wlan.sa", "wlan.da",
		"wlan.bssid", "wlan.seq", "wlan.duration", "data.data", "radiotap.datarate", "radiotap.txflags",
		"wlan.fcs.status", "wlan_radio.channel", "radiotap.dbm_antsignal"}
	args := []string{"-r", path, "-o", "wlan.check_checksum:TRUE", "-T", "fields", "-E", "separator=/t"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("tshark printed %q", out)
	}
	elem := "dd0d18fe340401" + hex.EncodeToString(body) // id, length 5+8, OUI, type 4, version 1, body
	want := []map[string]string{
		{"wlan.fc.type_subtype": "0x000d", "wlan.sa": macA.String(), "wlan.da": macB.String(), "wlan.seq": "42",
			"wlan.duration": "314", "data.data": "01020304" + elem, "radiotap.datarate": "1", "radiotap.txflags": "0x0010"},
		{"wlan.fc.type_subtype": "0x000d", "wlan.da": "ff:ff:ff:ff:ff:ff", "wlan.duration": "0",
			"data.data": "05060708" + elem, "radiotap.datarate": "24", "radiotap.txflags": "0x0018"},
		{"wlan.fc.type_subtype": "0x000d", "wlan.sa": macA.String(), "wlan.da": macB.String(),
			"data.data": "01020304" + elem, "wlan.fcs.status": "1", "wlan_radio.channel": "1", "radiotap.dbm_antsignal": "-57,-55"}, // combined, then the chain in the second namespace,
	}
	for i, line := range lines {
		got := map[string]string{}
		for j, v := range strings.Split(line, "\t") {
			got[fields[j]] = v
		}
		// Every frame: an action frame, category 127, Espressif's OUI
		// (0x18fe34 = 1637940), BSSID broadcast.
		for k, v := range map[string]string{"wlan.fixed.category_code": "127", "wlan.tag.oui": "1637940", "wlan.bssid": "ff:ff:ff:ff:ff:ff"} {
			if got[k] != v {
				t.Errorf("frame %d: %s = %q, want %q", i, k, got[k], v)
			}
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("frame %d: %s = %q, want %q", i, k, got[k], v)
			}
		}
	}
}
