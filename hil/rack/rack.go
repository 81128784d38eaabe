// Package rack reads a rack file: the boards on a HIL rack (serial port,
// chip, board type, radios, MAC) and the Linux nodes next to them, in TOML,
// as Zephyr's twister reads a hardware map. Load validates everything it
// can before the rig touches a port, and says which entry is wrong and why.
package rack

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// keyless reports a hex node_id that is no Ed25519 point.
func keyless(h string) bool {
	var id identity.NodeID
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return false
	}
	_, err := identity.X25519Public(id)
	return err != nil
}

// Rack is a parsed rack file.
type Rack struct {
	// Name names the rack (in results and JUnit files).
	Name string `toml:"name"`
	// Virtual: the rig builds the rack itself (virtual boards, a network
	// namespace for the air, Go nodes it starts); else the boards are on
	// USB and the nodes already run.
	Virtual bool `toml:"virtual"`
	// Firmware is the directory of the board firmware (boards/esp32),
	// relative to the rack file.
	Firmware string `toml:"firmware"`
	// Image is a MicroPython firmware image for `hil flash --image` (real
	// racks; relative to the rack file), "" for none.
	Image string `toml:"image"`
	// Channel is the Wi-Fi channel of the ESP-NOW mesh (1..14).
	Channel int `toml:"channel"`
	// Timing of the suite.
	Suite Suite `toml:"suite"`
	// Boards and Nodes in the rack.
	Boards []Board `toml:"board"`
	Nodes  []Node  `toml:"node"`

	// Dir is the rack file's directory (paths in it are relative to it).
	Dir string `toml:"-"`
}

// Suite tunes the cross-device suite for the rack.
type Suite struct {
	// BeaconPeriod of the boards and nodes (short on a test rack).
	BeaconPeriod Duration `toml:"beacon_period"`
	// GiveUp is the boards' sequence give-up time (no progress).
	GiveUp Duration `toml:"give_up"`
	// TransferSize is the size of the suite's large transfers, bytes.
	TransferSize int `toml:"transfer_size"`
	// Timeout bounds each test.
	Timeout Duration `toml:"timeout"`
}

// Board is one ESP32 board.
type Board struct {
	Name string `toml:"name"`
	// Port is the serial port: a /dev/serial/by-id path on a real rack
	// (stable across replugging), "virtual" on a virtual one.
	Port string `toml:"port"`
	// Chip: esp32, esp32s2, esp32s3, esp32c3, esp32c6.
	Chip string `toml:"chip"`
	// Type is the board type (e.g. "esp32-devkitc-v4"), informational.
	Type string `toml:"type"`
	// Radios the board has: "espnow", and "lora" for a RYLR-998 on a UART.
	Radios []string `toml:"radios"`
	// MAC is the board's Wi-Fi station MAC (the ESP-NOW address).
	MAC string `toml:"mac"`
	// NodeID is the board's node_id (64 hex digits); "" lets provision
	// derive one from the MAC as the reference does.
	NodeID string `toml:"node_id"`
	// Baud of the USB serial port (115200 if 0).
	Baud int `toml:"baud"`
}

// Node is one Linux node running `mycelium node`.
type Node struct {
	Name string `toml:"name"`
	// Socket is its control socket (a real rack: the node already runs);
	// on a virtual rack the rig starts the node and chooses it.
	Socket string `toml:"socket"`
	// Links it has: "espnow", "lora", "udp".
	Links []string `toml:"links"`
	// MAC of its ESP-NOW link (virtual racks: the veth's address).
	MAC string `toml:"mac"`
}

// Duration is a time.Duration written as "2s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// ErrInvalid is what every validation error wraps (errors.Is).
var ErrInvalid = errors.New("invalid rack file")

var (
	chips     = []string{"esp32", "esp32s2", "esp32s3", "esp32c3", "esp32c6"}
	radios    = []string{"espnow", "lora"}
	nodeLinks = []string{"espnow", "lora", "udp"}
)

// Load reads and validates a rack file.
func Load(path string) (*Rack, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, filepath.Dir(abs), path)
}

// Parse validates a rack file's text; dir is where relative paths start,
// name what errors call the file.
func Parse(b []byte, dir, name string) (*Rack, error) {
	var r Rack
	md, err := toml.Decode(string(b), &r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrInvalid, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: %w: unknown keys %s", name, ErrInvalid, strings.Join(keys, ", "))
	}
	r.Dir = dir
	r.defaults()
	if errs := r.check(); len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w:\n  %s", name, ErrInvalid, strings.Join(errs, "\n  "))
	}
	return &r, nil
}

func (r *Rack) defaults() {
	if r.Channel == 0 {
		r.Channel = 14
	}
	if r.Firmware == "" {
		r.Firmware = "../../boards/esp32"
	}
	if r.Suite.BeaconPeriod.Duration == 0 {
		r.Suite.BeaconPeriod.Duration = 2 * time.Second
	}
	if r.Suite.GiveUp.Duration == 0 {
		r.Suite.GiveUp.Duration = 8 * time.Second
	}
	if r.Suite.TransferSize == 0 {
		r.Suite.TransferSize = 10240
	}
	if r.Suite.Timeout.Duration == 0 {
		r.Suite.Timeout.Duration = 60 * time.Second
	}
	for i := range r.Boards {
		if r.Boards[i].Baud == 0 {
			r.Boards[i].Baud = 115200
		}
	}
}

func (r *Rack) check() []string {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if r.Name == "" {
		bad("name: missing")
	}
	if r.Channel < 1 || r.Channel > 14 {
		bad("channel %d: want 1..14", r.Channel)
	}
	if r.Suite.BeaconPeriod.Duration < 100*time.Millisecond || r.Suite.BeaconPeriod.Duration > 10*time.Minute {
		bad("suite.beacon_period %v: want 100ms..10m", r.Suite.BeaconPeriod.Duration)
	}
	if r.Suite.GiveUp.Duration < time.Second || r.Suite.GiveUp.Duration > 10*time.Minute {
		bad("suite.give_up %v: want 1s..10m", r.Suite.GiveUp.Duration)
	}
	if r.Suite.TransferSize < 1 || r.Suite.TransferSize > 65536 {
		bad("suite.transfer_size %d: want 1..65536 (a board holds at most 64 KiB)", r.Suite.TransferSize)
	}
	if r.Suite.Timeout.Duration < time.Second || r.Suite.Timeout.Duration > time.Hour {
		bad("suite.timeout %v: want 1s..1h", r.Suite.Timeout.Duration)
	}
	if len(r.Boards) == 0 {
		bad("no [[board]]: a rack needs at least one board")
	}
	names := map[string]string{}
	macs := map[string]string{}
	ports := map[string]string{}
	uniq := func(what, v, owner string, seen map[string]string) {
		if prev, ok := seen[v]; ok {
			bad("%s: %s %q already used by %s", owner, what, v, prev)
			return
		}
		seen[v] = owner
	}
	for i, b := range r.Boards {
		who := fmt.Sprintf("board %d (%s)", i+1, b.Name)
		if b.Name == "" {
			bad("board %d: name missing", i+1)
		} else {
			uniq("name", b.Name, who, names)
		}
		switch {
		case b.Port == "":
			bad("%s: port missing (a /dev/serial/by-id/... path, or \"virtual\")", who)
		case b.Port == "virtual":
			if !r.Virtual {
				bad("%s: port \"virtual\" on a rack that is not virtual", who)
			}
		case r.Virtual:
			bad("%s: port %q on a virtual rack (want \"virtual\")", who, b.Port)
		case !strings.HasPrefix(b.Port, "/dev/"):
			bad("%s: port %q: want a device path (/dev/serial/by-id/...)", who, b.Port)
		default:
			uniq("port", b.Port, who, ports)
		}
		if !slices.Contains(chips, b.Chip) {
			bad("%s: chip %q: want one of %s", who, b.Chip, strings.Join(chips, ", "))
		}
		if len(b.Radios) == 0 {
			bad("%s: radios missing (espnow, lora)", who)
		}
		for _, x := range b.Radios {
			if !slices.Contains(radios, x) {
				bad("%s: radio %q: want espnow or lora", who, x)
			}
		}
		if m, err := net.ParseMAC(b.MAC); err != nil || len(m) != 6 {
			bad("%s: mac %q: want aa:bb:cc:dd:ee:ff", who, b.MAC)
		} else {
			uniq("mac", m.String(), who, macs)
		}
		if b.NodeID != "" && !isHex(b.NodeID, 64) {
			bad("%s: node_id: want 64 hex digits", who)
		} else if b.NodeID != "" && !keyless(b.NodeID) {
			// Our boards hold no key: a node with end-to-end sealing
			// speaks in clear only to a node_id no key can be behind.
			bad("%s: node_id is an Ed25519 point: a board's must be keyless (no point; rig.NodeIDFromMAC derives one)", who)
		}
		if b.Baud < 9600 || b.Baud > 3000000 {
			bad("%s: baud %d: want 9600..3000000", who, b.Baud)
		}
	}
	for i, n := range r.Nodes {
		who := fmt.Sprintf("node %d (%s)", i+1, n.Name)
		if n.Name == "" {
			bad("node %d: name missing", i+1)
		} else {
			uniq("name", n.Name, who, names)
		}
		if !r.Virtual && n.Socket == "" {
			bad("%s: socket missing (the node's control socket)", who)
		}
		if r.Virtual && n.Socket != "" {
			bad("%s: socket on a virtual rack (the rig starts the node and chooses it)", who)
		}
		if len(n.Links) == 0 {
			bad("%s: links missing (espnow, lora, udp)", who)
		}
		for _, x := range n.Links {
			if !slices.Contains(nodeLinks, x) {
				bad("%s: link %q: want espnow, lora or udp", who, x)
			}
		}
		if n.MAC != "" {
			if m, err := net.ParseMAC(n.MAC); err != nil || len(m) != 6 {
				bad("%s: mac %q: want aa:bb:cc:dd:ee:ff", who, n.MAC)
			} else {
				uniq("mac", m.String(), who, macs)
			}
		} else if r.Virtual && slices.Contains(n.Links, "espnow") {
			bad("%s: mac missing (a virtual node's ESP-NOW link needs one)", who)
		}
	}
	return errs
}

// Path resolves a path written in the rack file.
func (r *Rack) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.Dir, p)
}

// Board returns the board called name.
func (r *Rack) Board(name string) (*Board, bool) {
	for i := range r.Boards {
		if r.Boards[i].Name == name {
			return &r.Boards[i], true
		}
	}
	return nil, false
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
