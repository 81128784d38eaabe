package wireshark

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/udp"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/tools/cli"
)

// EnvRequire names the variable that makes a missing tshark a failure, not
// a skip: .ci/run sets it, since CI installs tshark.
const EnvRequire = "MYCELIUM_REQUIRE_TSHARK"

func tshark(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv(EnvRequire) != "" {
			t.Fatalf("tshark is not on PATH but %s is set (CI installs tshark): the dissector cannot be checked", EnvRequire)
		}
		t.Skipf("tshark not on PATH: the dissector is NOT checked (apt-get install tshark; CI sets %s and fails instead)", EnvRequire)
	}
	return path
}

func script(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("mycelium.lua")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mycelium runs the command line in this process.
func mycelium(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if st := cli.Run(args, strings.NewReader(""), &out, &errb); st != 0 {
		t.Fatalf("mycelium %s: status %d: %s", strings.Join(args, " "), st, errb.String())
	}
	return out.String()
}

// fields are what the test reads from tshark, in order, and the JSON keys
// of `mycelium pcap` they must equal.
var fields = []struct{ ts, js string }{
	{"frame.number", ""},
	{"frame.protocols", ""},
	{"mycelium.version", "version"},
	{"mycelium.reserved", "reserved"},
	{"mycelium.schema", "schema"},
	{"mycelium.flags", "flags"},
	{"mycelium.flag_names", "flag_names"},
	{"mycelium.packet_id", "packet_id"},
	{"mycelium.seq_id", "seq_id"},
	{"mycelium.seq_size", "seq_size"},
	{"mycelium.ttl", "ttl"},
	{"mycelium.checksum", "checksum"},
	{"mycelium.checksum_ok", "checksum_ok"},
	{"mycelium.tree_state", "tree_state"},
	{"mycelium.to_addr", "to_addr"},
	{"mycelium.from_addr", "from_addr"},
	{"mycelium.body", "body"},
	{"mycelium.package.app_id", ""},
	{"mycelium.package.hash_ok", ""},
	{"mycelium.package.app_name", ""},
	{"wlan.sa", ""},
	{"wlan.da", ""},
	{"ip.src", ""},
	{"udp.srcport", ""},
	{"ip.dst", ""},
	{"udp.dstport", ""},
}

// dissect runs tshark with the dissector over path and returns one map of
// field values per frame; it fails the test on any Lua error or
// malformed-packet report anywhere in the full dissection.
func dissect(t *testing.T, ts, path string) []map[string]string {
	t.Helper()
	lua := "lua_script:" + script(t)
	verbose, err := exec.Command(ts, "-n", "-X", lua, "-r", path, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -V %s: %v\n%s", path, err, verbose)
	}
	for _, bad := range []string{"Lua Error", "Malformed Packet", "Dissector bug"} {
		if i := bytes.Index(verbose, []byte(bad)); i >= 0 {
			t.Fatalf("%s: tshark reports %q: ...%s", filepath.Base(path), bad, verbose[max(0, i-2000):min(len(verbose), i+300)])
		}
	}
	args := []string{"-n", "-X", lua, "-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"}
	for _, f := range fields {
		args = append(args, "-e", f.ts)
	}
	out, err := exec.Command(ts, args...).Output()
	if err != nil {
		t.Fatalf("tshark -T fields %s: %v", path, err)
	}
	var rows []map[string]string
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		vals := strings.Split(line, "\t")
		if len(vals) != len(fields) {
			t.Fatalf("tshark printed %d fields, want %d: %q", len(vals), len(fields), line)
		}
		row := map[string]string{}
		for i, f := range fields {
			row[f.ts] = vals[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// count returns how many frames of path match a display filter.
func count(t *testing.T, ts, path, filter string) int {
	t.Helper()
	out, err := exec.Command(ts, "-n", "-X", "lua_script:"+script(t), "-r", path, "-Y", filter, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatalf("tshark -Y %q: %v", filter, err)
	}
	return strings.Count(string(out), "\n")
}

// pcapLines is `mycelium pcap` on path, one decoded object per frame.
func pcapLines(t *testing.T, path string) []map[string]json.RawMessage {
	t.Helper()
	var out []map[string]json.RawMessage
	for _, line := range strings.Split(strings.TrimSuffix(mycelium(t, "pcap", path), "\n"), "\n") {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("mycelium pcap printed %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// tsBool reads a tshark boolean (4.0 prints 1/0, later versions True/False).
func tsBool(s string) string {
	switch s {
	case "1", "True", "true":
		return "true"
	case "0", "False", "false":
		return "false"
	}
	return s
}

// compare checks every frame tshark dissected against `mycelium pcap`'s
// line for it, field by field, and the Package (app_id, hash verdict)
// against the Go codec for single packets. It returns the frames.
func compare(t *testing.T, ts, path string) []map[string]string {
	t.Helper()
	rows := dissect(t, ts, path)
	lines := pcapLines(t, path)
	if len(rows) != len(lines) || len(rows) == 0 {
		t.Fatalf("%s: tshark read %d frames, mycelium pcap %d", filepath.Base(path), len(rows), len(lines))
	}
	name := filepath.Base(path)
	for i, row := range rows {
		fail := func(format string, a ...any) {
			t.Fatalf("%s frame %d: %s\ntshark: %v\nmycelium pcap: %s", name, i+1, fmt.Sprintf(format, a...), row, mustJSON(lines[i]))
		}
		// (frame.protocols does not list a dissector that 802.11's vendor
		// table calls: the fields are the proof.)
		if row["mycelium.version"] == "" || row["mycelium.schema"] == "" {
			fail("not dissected as Mycelium (protocols %s)", row["frame.protocols"])
		}
		var pk map[string]json.RawMessage
		if err := json.Unmarshal(lines[i]["packet"], &pk); err != nil {
			fail("mycelium pcap has no packet: %v", err)
		}
		for _, f := range fields {
			if f.js == "" {
				continue
			}
			got, raw := row[f.ts], pk[f.js]
			var want string
			switch {
			case raw == nil:
				want = "" // the schema lacks the field, and so must the dissection
			case f.js == "flag_names":
				var names []string
				_ = json.Unmarshal(raw, &names)
				want = strings.Join(names, ",")
			case f.js == "checksum_ok":
				want, got = string(raw), tsBool(got)
			case raw[0] == '"':
				_ = json.Unmarshal(raw, &want)
			default:
				want = string(raw)
			}
			if f.js == "flags" || f.js == "checksum" {
				// tshark shows them in hex (0x..); JSON has a number and a hex string.
				if got != "" {
					u, err := strconv.ParseUint(got, 0, 64)
					if err != nil {
						fail("%s = %q", f.ts, got)
					}
					if f.js == "flags" {
						got = strconv.FormatUint(u, 10)
					} else {
						got = fmt.Sprintf("%08x", u)
					}
				}
			}
			if got != want {
				fail("%s = %q, mycelium pcap says %s = %q", f.ts, got, f.js, want)
			}
		}
		// Addresses: the MACs of ESP-NOW frames, ip:port of UDP ones.
		var src, dst string
		_ = json.Unmarshal(lines[i]["src"], &src)
		_ = json.Unmarshal(lines[i]["dst"], &dst)
		tsSrc, tsDst := row["wlan.sa"], row["wlan.da"]
		if row["ip.src"] != "" {
			tsSrc = net.JoinHostPort(row["ip.src"], row["udp.srcport"])
			tsDst = net.JoinHostPort(row["ip.dst"], row["udp.dstport"])
		}
		if tsSrc != src || tsDst != dst {
			fail("addresses %s -> %s, mycelium pcap says %s -> %s", tsSrc, tsDst, src, dst)
		}
		// A single packet's body is a whole Package: the dissector's
		// app_id and hash verdict must be the Go codec's.
		var body string
		_ = json.Unmarshal(pk["body"], &body)
		if pk["seq_id"] == nil && row["mycelium.package.app_id"] != "" {
			b, _ := hex.DecodeString(body)
			var pkg packet.Package
			if err := pkg.UnmarshalBinary(b); err != nil {
				fail("the dissector found a Package where Go finds none: %v", err)
			}
			if row["mycelium.package.app_id"] != hex.EncodeToString(pkg.AppID[:]) {
				fail("app_id %s, Go %x", row["mycelium.package.app_id"], pkg.AppID)
			}
			if want := strconv.FormatBool(pkg.Verify() == nil); tsBool(row["mycelium.package.hash_ok"]) != want {
				fail("hash_ok %s, Go %s", row["mycelium.package.hash_ok"], want)
			}
		}
	}
	return rows
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var (
	capOnce sync.Once
	capDir  string
	capErr  error
)

// TestMain removes the simulator's captures the tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	if capDir != "" {
		os.RemoveAll(capDir)
	}
	os.Exit(code)
}

// simCaptures writes, once for the package's tests, the captures of
// `mycelium sim --pcap` (espnow.pcap, lora.pcap: 8 nodes, ESP-NOW and LoRa
// with gateways, transfers) and `mycelium sim route --pcap` (route.pcap:
// 10 nodes, two trees, from a cold start to routed probes).
func simCaptures(t *testing.T) string {
	t.Helper()
	capOnce.Do(func() {
		if capDir, capErr = os.MkdirTemp("", "mycelium-wireshark-"); capErr != nil {
			return
		}
		for _, args := range [][]string{
			{"sim", "--nodes", "8", "--link", "mixed", "--gateways", "3", "--duration", "3m", "--transfers", "2", "--max-size", "3000", "--pcap", capDir, "--progress", "never"},
			{"sim", "route", "--nodes", "10", "--trees", "2", "--pairs", "10", "--pcap", filepath.Join(capDir, "route.pcap"), "--progress", "never"},
		} {
			var out, errb bytes.Buffer
			if st := cli.Run(args, strings.NewReader(""), &out, &errb); st != 0 {
				capErr = fmt.Errorf("mycelium %s: status %d: %s", strings.Join(args, " "), st, errb.String())
				return
			}
		}
	})
	if capErr != nil {
		t.Fatal(capErr)
	}
	return capDir
}

// TestDissectorOnSimulatorCaptures runs the dissector over what `mycelium
// sim --pcap` (ESP-NOW radiotap frames and LoRa USER0 frames) and `mycelium
// sim route --pcap` (trees and routing) write.
func TestDissectorOnSimulatorCaptures(t *testing.T) {
	ts := tshark(t)
	dir := simCaptures(t)

	frames := map[string]int{}
	for _, name := range []string{"espnow.pcap", "lora.pcap", "route.pcap"} {
		path := filepath.Join(dir, name)
		rows := compare(t, ts, path)
		frames[name] = len(rows)
		bad := "mycelium.checksum.bad || mycelium.package.hash.bad || mycelium_espnow.bad || mycelium.message.malformed || mycelium.short || mycelium.long || mycelium.schema.unknown"
		if n := count(t, ts, path, bad); n != 0 {
			t.Errorf("%s: %d frames flagged by expert info (%s)", name, n, bad)
		}
	}
	t.Logf("frames dissected and compared: %v", frames)
	// Sequences were reassembled and their Packages checked; beacons,
	// the trees' and the router's messages decoded by type.
	want := map[string][]string{
		"espnow.pcap": {"reassembled ok", "app mycelium-sim simulated traffic", "beacon 0x00", "beacon 0x01"},
		"route.pcap": {"tree 0x00 root", "tree 0x0f", "tree 0x0d depth", "tree 0xf0 key", "tree 0xff status 0", "tree 0xff status 6",
			"route 0x05 hash", "route 0x10 node_id", "route 0x13", "app mycelium-sim route probe", "app Mycelium path", "path", "routed"},
	}
	for name, wantFacts := range want {
		have := facts(t, ts, filepath.Join(dir, name))
		for _, f := range wantFacts {
			if !have[f] {
				t.Errorf("%s: nothing shows %q (the capture shows %v)", name, f, keys(have))
			}
		}
	}
}

// facts reads what kinds of messages the dissector decoded in a capture.
func facts(t *testing.T, ts, path string) map[string]bool {
	t.Helper()
	fs := []string{"mycelium.seq_id", "mycelium.package.hash_ok", "mycelium.package.app_name", "mycelium.beacon.op",
		"mycelium.tree.type", "mycelium.tree.root", "mycelium.tree.depth", "mycelium.tree.key", "mycelium.tree.status",
		"mycelium.route.type", "mycelium.route.hash", "mycelium.route.node_id", "mycelium.to_coords"}
	args := []string{"-n", "-X", "lua_script:" + script(t), "-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"}
	for _, f := range fs {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(ts, args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		v := strings.Split(line, "\t")
		if len(v) != len(fs) {
			continue
		}
		if v[0] != "" && tsBool(v[1]) == "true" {
			have["reassembled ok"] = true
		}
		if v[2] != "" {
			have["app "+v[2]] = true
		}
		if v[3] != "" {
			have["beacon "+v[3]] = true
		}
		if v[4] != "" {
			have["tree "+v[4]] = true
			for i, what := range []string{"root", "depth", "key"} {
				if v[5+i] != "" {
					have["tree "+v[4]+" "+what] = true
				}
			}
			if v[8] != "" {
				have["tree "+v[4]+" status "+v[8]] = true
			}
		}
		if v[9] != "" {
			have["route "+v[9]] = true
			if v[10] != "" {
				have["route "+v[9]+" hash"] = true
			}
			if v[11] != "" {
				have["route "+v[9]+" node_id"] = true
			}
		}
		if v[12] != "" {
			have["routed"] = true
		}
	}
	// A path header's Package is inside another: read every application
	// a frame names, not only the first.
	out, err = exec.Command(ts, "-n", "-X", "lua_script:"+script(t), "-r", path, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|",
		"-e", "mycelium.package.app_name", "-e", "mycelium.path.flag_names", "-e", "mycelium.path.dst").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		v := strings.Split(line, "\t")
		if len(v) != 3 {
			continue
		}
		for _, name := range strings.Split(v[0], "|") {
			if name != "" {
				have["app "+name] = true
			}
		}
		if v[2] != "" {
			have["path"] = true
			if strings.Contains(v[1], "origin") {
				have["path origin"] = true
			}
		}
	}
	return have
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestDissectorEverySchema dissects a packet of each of the 33 schemas in
// each of the three encapsulations (ESP-NOW v1 and v2 frames, UDP, USER0),
// and packets with a bad checksum and a bad hash, which must be flagged.
func TestDissectorEverySchema(t *testing.T) {
	ts := tshark(t)
	dir := t.TempDir()
	app := packet.NewAppID("Mycelium", "ping", 1)
	mk := func(id uint8, badCK, badHash bool) []byte {
		s := packet.MustLookup(id)
		blob := []byte(fmt.Sprintf("schema %d", id))
		pkg := packet.NewPackage(app, blob)
		if badHash {
			pkg.Hash[0] ^= 1
		}
		body, _ := pkg.MarshalBinary()
		p := packet.Packet{Schema: id, Flags: packet.Flags(0x08 | 0x40), PacketID: uint16(id), Body: body}
		if s.Sequenced() {
			p.PacketID, p.SeqID = 0, id // a sequence of one packet
		}
		if s.Routed() {
			p.TTL, p.TreeState, p.Flags = 9, 0x5a, p.Flags|packet.FlagMode
			p.To = [16]byte{0x31}
			p.From = [16]byte{0x80, 0x30}
		}
		b, err := p.AppendSealed(nil)
		if err != nil {
			t.Fatal(err)
		}
		if badCK {
			b[len(b)-1] ^= 0xff
		}
		return b
	}
	var esp, user0, eth [][]byte
	src := espnow.MAC{0x24, 0x0a, 0xc4, 0, 0, 1}
	for _, base := range []uint8{0, 20, 40} {
		for i := uint8(0); i <= 10; i++ {
			pk := mk(base+i, false, false)
			if base != 20 {
				f := &espnow.Frame{Src: src, Dst: espnow.BroadcastMAC, Random: [4]byte{1, 2, 3, 4}, Body: pk}
				b, err := espnow.AppendFrame(nil, f, espnow.TxOptions{})
				if err != nil {
					t.Fatal(err)
				}
				esp = append(esp, b)
			}
			user0 = append(user0, pk)
			eth = append(eth, udpFrame(t, pk))
		}
	}
	// A long v2 body over several vendor elements.
	big := packet.Packet{Schema: 40, Body: bytes.Repeat([]byte{0xab}, 1000)}
	bigB, _ := big.AppendSealed(nil)
	bf, err := espnow.AppendFrame(nil, &espnow.Frame{Src: src, Dst: espnow.BroadcastMAC, Body: bigB}, espnow.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	esp = append(esp, bf)
	// Damaged: a bad checksum (schema 1) and a bad hash (schema 0).
	user0 = append(user0, mk(1, true, false), mk(0, false, true))

	write := func(name string, lt layers.LinkType, frames [][]byte) string {
		path := filepath.Join(dir, name)
		w, err := capture.Create(path, lt)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		for i, f := range frames {
			if err := w.Write(at.Add(time.Duration(i)*time.Millisecond), f); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	espPath := write("espnow.pcap", capture.LinkTypeRadiotap, esp)
	userPath := write("user0.pcap", capture.LinkTypeUser0, user0)
	ethPath := write("udp.pcap", layers.LinkTypeEthernet, eth)

	seen := map[string]bool{}
	for _, path := range []string{espPath, userPath, ethPath} {
		for _, row := range compare(t, ts, path) {
			seen[row["mycelium.schema"]] = true
		}
	}
	for _, base := range []int{0, 20, 40} {
		for i := range 11 {
			if !seen[strconv.Itoa(base+i)] {
				t.Errorf("schema %d never dissected", base+i)
			}
		}
	}
	if n := count(t, ts, userPath, "mycelium.checksum.bad"); n != 1 {
		t.Errorf("%d frames flagged with a bad checksum, want 1", n)
	}
	if n := count(t, ts, userPath, "mycelium.package.hash.bad"); n != 1 {
		t.Errorf("%d frames flagged with a bad hash, want 1", n)
	}
	if n := count(t, ts, espPath, fmt.Sprintf("mycelium_espnow.elements == %d && mycelium.body_len == 1000", (len(bigB)+espnow.MaxBody-1)/espnow.MaxBody)); n != 1 {
		t.Errorf("the 1,000-byte v2 frame: %d matches", n)
	}
	if n := count(t, ts, ethPath, `mycelium.package.app_name == "Mycelium ping" && mycelium.package.hash_ok == 1`); n != 33 {
		t.Errorf("UDP: %d Packages of the ping app with a good hash, want 33", n)
	}
	if n := count(t, ts, espPath, `mycelium.to_coords == "3,1" && mycelium.from_coords == "8,3"`); n != 12 {
		t.Errorf("ESP-NOW: %d routed packets with coordinates (3,1) and (8,3), want 12", n)
	}
}

// TestDissectorKnowsTheApps checks the dissector's table of application
// names against the Go code's app_ids.
func TestDissectorKnowsTheApps(t *testing.T) {
	for id, name := range map[packet.AppID]string{
		beacon.AppID: "Beacon", beacon.CapabilitiesID: "Mycelium capabilities", beacon.SleepsID: "Mycelium modem sleep",
		beacon.ESPNOWV2ID: "Mycelium espnow v2", packet.NewAppID("Mycelium", "route", 1): "Mycelium route",
		packet.NewAppID("Mycelium", "tree", 1): "Mycelium tree", packet.NewAppID("Mycelium", "stream", 1): "Mycelium stream",
		packet.NewAppID("Mycelium", "segment", 1): "Mycelium segment", packet.NewAppID("Mycelium", "ping", 1): "Mycelium ping",
		route.PathApp: "Mycelium path",
	} {
		line := fmt.Sprintf("[%q] = %q", hex.EncodeToString(id[:]), name)
		if !bytes.Contains(Source, []byte(line)) {
			t.Errorf("mycelium.lua lacks %s", line)
		}
	}
}

// udpFrame wraps a mesh packet in Ethernet, IPv4 and UDP to the mesh port.
func udpFrame(t *testing.T, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(10, 0, 0, 1), DstIP: net.IPv4(10, 0, 0, 2)}
	u := &layers.UDP{SrcPort: 40000, DstPort: udp.DefaultPort}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, u, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDissectorBadInput feeds the dissector what a radio also brings:
// every prefix of valid packets, random bytes, and valid headers carrying
// random Packages of every application it decodes, in USER0 and in ESP-NOW
// frames. Each must end in a dissection (with expert info where it is
// bad), never a Lua error.
func TestDissectorBadInput(t *testing.T) {
	ts := tshark(t)
	rng := rand.New(rand.NewPCG(13, 1))
	apps := []packet.AppID{beacon.AppID, packet.NewAppID("Mycelium", "tree", 1), packet.NewAppID("Mycelium", "route", 1),
		packet.NewAppID("Mycelium", "stream", 1), packet.NewAppID("Mycelium", "segment", 1), route.PathApp}
	var frames [][]byte
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, id := range []uint8{0, 1, 2, 4, 5, 8, 10, 22, 30, 40, 44} {
		s := packet.MustLookup(id)
		for _, app := range apps {
			for _, size := range []int{0, 1, 2, 5, 17, 34, 40, 60, 113, 114, 150, s.MaxBody - packet.PackageOverhead} {
				if size > s.MaxBody-packet.PackageOverhead {
					continue
				}
				blob := random(size)
				if size > 0 {
					blob[0] = []byte{0x00, 0x01, 0x02, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x12, 0x14, 0x17, 0x21, 0x31, 0xf0, 0xff}[rng.IntN(15)]
				}
				body, _ := packet.NewPackage(app, blob).MarshalBinary()
				p := packet.Packet{Schema: id, Body: body, Flags: packet.Flags(rng.IntN(256)) &^ 0x38}
				b, err := p.AppendSealed(nil)
				if err != nil {
					t.Fatal(err)
				}
				frames = append(frames, b)
			}
		}
		// Every prefix of one packet of the schema, and its answers.
		full, _ := (&packet.Packet{Schema: id, Flags: packet.Flags(0x10), Body: random(12)}).AppendSealed(nil)
		for n := range len(full) {
			frames = append(frames, full[:n])
		}
	}
	for range 300 {
		frames = append(frames, random(rng.IntN(300)))
	}
	write := func(name string, lt layers.LinkType, fs [][]byte) string {
		path := filepath.Join(t.TempDir(), name)
		w, err := capture.Create(path, lt)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range fs {
			if err := w.Write(time.Unix(int64(i), 0), f); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var esp [][]byte
	src := espnow.MAC{2, 0, 0, 0, 0, 1}
	for i, f := range frames {
		if len(f) > espnow.MaxBodyV2 {
			continue
		}
		b, err := espnow.AppendFrame(nil, &espnow.Frame{Src: src, Dst: espnow.BroadcastMAC, Body: f, Seq: uint16(i)}, espnow.TxOptions{})
		if err != nil {
			t.Fatal(err)
		}
		esp = append(esp, b)
		// And a vendor element chain cut short or lying about its length.
		if i%7 == 0 && len(b) > espnow.TxRadiotapLen+espnow.HeaderLen+12 {
			cut := bytes.Clone(b[:len(b)-1-rng.IntN(len(f)+1)])
			esp = append(esp, cut)
		}
	}
	for _, path := range []string{write("user0.pcap", capture.LinkTypeUser0, frames), write("espnow.pcap", capture.LinkTypeRadiotap, esp)} {
		out, err := exec.Command(ts, "-n", "-X", "lua_script:"+script(t), "-r", path, "-V").CombinedOutput()
		if err != nil {
			t.Fatalf("tshark: %v", err)
		}
		for _, bad := range []string{"Lua Error", "Dissector bug"} {
			if i := bytes.Index(out, []byte(bad)); i >= 0 {
				t.Fatalf("%s: %s: ...%s", filepath.Base(path), bad, out[max(0, i-3000):min(len(out), i+300)])
			}
		}
		if n := bytes.Count(out, []byte("\nMycelium mesh\n")) + bytes.Count(out, []byte("\n        Mycelium mesh\n")); n == 0 {
			t.Fatalf("%s: nothing dissected", filepath.Base(path))
		}
	}
	t.Logf("%d packets, %d ESP-NOW frames", len(frames), len(esp))
}

// TestDissectorPathHeader dissects path headers built byte by byte as
// route/path.go writes them (docs/protocol.md, "Path headers"): both
// address lists, a Long deeper than a wire address, the nonce and the
// destination tag, the carried Package named and hash-checked, and a
// damaged one flagged.
func TestDissectorPathHeader(t *testing.T) {
	ts := tshark(t)
	deep := make([]uint8, 40)
	for i := range deep {
		deep[i] = uint8(i%135 + 1)
	}
	type treeAddr struct {
		ts   uint8
		addr addr.Long
	}
	dstAddrs := []treeAddr{{0x21, addr.MustEncodeLong(3, 1)}, {0x10, addr.MustEncodeLong(deep...)}, {0x02, addr.Long{}}}
	srcAddrs := []treeAddr{{0x05, addr.MustEncodeLong(8, 135, 2)}}
	ping := packet.NewAppID("Mycelium", "ping", 1)
	tag := []byte{0xd5, 1, 2, 3, 4, 5, 6, 7}
	build := func(flags byte, badInner bool) []byte {
		withSrc := flags&0x01 != 0
		b := []byte{flags, 1}
		b = append(b, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78)
		b = append(b, byte(len(dstAddrs)))
		for _, a := range dstAddrs {
			b = append(b, a.ts)
			b = a.addr.AppendCompact(b)
		}
		if withSrc {
			b = append(b, byte(len(srcAddrs)))
			for _, a := range srcAddrs {
				b = append(b, a.ts)
				b = a.addr.AppendCompact(b)
			}
		}
		if flags&0x02 != 0 {
			b = append(b, 0, 0, 0, 0, 0, 0, 0x01, 0x02) // the nonce
		}
		if flags&0x04 != 0 {
			b = append(b, tag...)
		}
		inner := packet.NewPackage(ping, []byte("carried"))
		if badInner {
			inner.Hash[0] ^= 1
		}
		b = inner.AppendTo(b)
		body, err := packet.NewPackage(route.PathApp, b).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		pk, err := (&packet.Packet{Schema: 40, Body: body}).AppendSealed(nil)
		if err != nil {
			t.Fatal(err)
		}
		return pk
	}
	path := filepath.Join(t.TempDir(), "path.pcap")
	w, err := capture.Create(path, capture.LinkTypeUser0)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range [][]byte{build(0x01, false), build(0, false), build(0x01, true), build(0x07, false)} {
		if err := w.Write(time.Unix(int64(i), 0), f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	compare(t, ts, path)
	out, err := exec.Command(ts, "-n", "-X", "lua_script:"+script(t), "-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|",
		"-e", "mycelium.path.flag_names", "-e", "mycelium.path.phase", "-e", "mycelium.path.bound", "-e", "mycelium.path.dst", "-e", "mycelium.path.src",
		"-e", "mycelium.package.app_name", "-e", "mycelium.package.hash_ok").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var want []string
	for _, a := range dstAddrs {
		want = append(want, fmt.Sprintf("%d:%s", a.ts, a.addr))
	}
	dst := strings.Join(want, " ")
	src := fmt.Sprintf("%d:%s", srcAddrs[0].ts, srcAddrs[0].addr)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	wantLines := []string{
		strings.Join([]string{"origin", "1", "305419896", dst, src, "Mycelium path|Mycelium ping", "True|True"}, "\t"),
		strings.Join([]string{"", "1", "305419896", dst, "", "Mycelium path|Mycelium ping", "True|True"}, "\t"),
		strings.Join([]string{"origin", "1", "305419896", dst, src, "Mycelium path|Mycelium ping", "True|False"}, "\t"),
		strings.Join([]string{"origin,nonce,dst_tag", "1", "305419896", dst, src, "Mycelium path|Mycelium ping", "True|True"}, "\t"),
	}
	if len(lines) != len(wantLines) {
		t.Fatalf("tshark printed %d frames, want %d:\n%s", len(lines), len(wantLines), out)
	}
	for i, l := range lines {
		// tshark 4.0 prints booleans as 1/0.
		l = strings.NewReplacer("\t1|1", "\tTrue|True", "\t1|0", "\tTrue|False").Replace(l)
		if l != wantLines[i] {
			t.Errorf("frame %d:\n got %q\nwant %q", i+1, l, wantLines[i])
		}
	}
	if n := count(t, ts, path, "mycelium.package.hash.bad"); n != 1 {
		t.Errorf("%d frames with a bad carried hash flagged, want 1", n)
	}
	if n := count(t, ts, path, "mycelium.message.malformed"); n != 0 {
		t.Errorf("%d well-formed path headers flagged malformed", n)
	}
	if n := count(t, ts, path, "mycelium.path.dst_tag == "+hex.EncodeToString(tag)+" && mycelium.path.nonce == 0x102"); n != 1 {
		t.Errorf("%d frames with the destination tag and nonce read, want 1", n)
	}
}
