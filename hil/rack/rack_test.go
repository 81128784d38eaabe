package rack

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const good = `
name = "lab"
channel = 1
[suite]
beacon_period = "5s"
[[board]]
name = "b1"
port = "/dev/serial/by-id/usb-Silicon_Labs_CP2102-if00-port0"
chip = "esp32"
type = "esp32-devkitc-v4"
radios = ["espnow", "lora"]
mac = "24:0a:c4:00:00:01"
[[node]]
name = "pi1"
socket = "/run/mycelium/mycelium.sock"
links = ["espnow", "lora"]
`

func TestParseGood(t *testing.T) {
	r, err := Parse([]byte(good), "/racks", "good.toml")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "lab" || r.Channel != 1 || len(r.Boards) != 1 || r.Boards[0].Baud != 115200 ||
		r.Suite.BeaconPeriod.Duration != 5*time.Second || r.Suite.TransferSize != 10240 {
		t.Fatalf("parsed %+v", r)
	}
	// A keyless node_id (rig.NodeIDFromMAC of 02:b0:a4:00:00:02) is taken.
	kl := strings.Replace(good, `mac = "24:0a:c4:00:00:01"`, "mac = \"24:0a:c4:00:00:01\"\nnode_id = \"65681ceb6d49b6e9f1fa574785aca21f71884ea3058ec0d4e5faebfc9e796e95\"", 1)
	if r, err := Parse([]byte(kl), "/racks", "good.toml"); err != nil || r.Boards[0].NodeID == "" {
		t.Fatalf("a keyless node_id: %v", err)
	}
	if got := r.Path("fw"); got != "/racks/fw" {
		t.Fatalf("Path = %q", got)
	}
}

func TestParseBad(t *testing.T) {
	cases := []struct{ from, to, want string }{
		{`name = "lab"`, ``, "name: missing"},
		{`channel = 1`, `channel = 15`, "channel 15"},
		{`chip = "esp32"`, `chip = "esp8266"`, `chip "esp8266"`},
		{`mac = "24:0a:c4:00:00:01"`, `mac = "24:0a:c4"`, `mac "24:0a:c4"`},
		{`radios = ["espnow", "lora"]`, `radios = ["wifi"]`, `radio "wifi"`},
		{`port = "/dev/serial/by-id/usb-Silicon_Labs_CP2102-if00-port0"`, `port = "COM3"`, "want a device path"},
		{`port = "/dev/serial/by-id/usb-Silicon_Labs_CP2102-if00-port0"`, `port = "virtual"`, "not virtual"},
		{`socket = "/run/mycelium/mycelium.sock"`, ``, "socket missing"},
		{`links = ["espnow", "lora"]`, `links = ["ble"]`, `link "ble"`},
		{`[suite]`, "[suite]\ntransfer_size = 100000", "transfer_size 100000"},
		{`[suite]`, "[suite]\nbogus = 1", "unknown keys suite.bogus"},
		{`beacon_period = "5s"`, `beacon_period = "soon"`, "soon"},
		{`name = "pi1"`, `name = "b1"`, `name "b1" already used`},
		// The Ed25519 base point: a node_id a key can be behind.
		{`mac = "24:0a:c4:00:00:01"`, "mac = \"24:0a:c4:00:00:01\"\nnode_id = \"5866666666666666666666666666666666666666666666666666666666666666\"", "Ed25519 point"},
	}
	for _, c := range cases {
		src := strings.Replace(good, c.from, c.to, 1)
		_, err := Parse([]byte(src), "/", "bad.toml")
		if err == nil {
			t.Errorf("%s -> %s: accepted", c.from, c.to)
			continue
		}
		if !errors.Is(err, ErrInvalid) && !strings.Contains(err.Error(), "soon") {
			t.Errorf("%s -> %s: %v does not wrap ErrInvalid", c.from, c.to, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s -> %s: error %q does not say %q", c.from, c.to, err, c.want)
		}
	}
}

func TestVirtualRackFile(t *testing.T) {
	r, err := Load("../racks/virtual.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Virtual || len(r.Boards) < 3 || len(r.Nodes) < 2 {
		t.Fatalf("virtual rack has %d boards, %d nodes", len(r.Boards), len(r.Nodes))
	}
}

// FuzzParse: any bytes give a rack or an error wrapping ErrInvalid, never
// a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("name = 1\n[[board]]\n"))
	f.Add([]byte("[suite]\ntimeout = \"-1s\""))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b, "/", "fuzz.toml")
		if err == nil && (r.Name == "" || len(r.Boards) == 0) {
			t.Fatalf("accepted a rack without a name or boards: %q", b)
		}
	})
}
