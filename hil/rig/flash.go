// Package rig flashes, provisions and drives the boards of a rack, and
// runs the cross-device suite on it.
package rig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"go.bug.st/serial"

	"github.com/mycelium-mesh/mycelium/hil/repl"
)

// FirmwareFiles are the files of boards/esp32 a board runs (the rest of
// the directory is tests and the virtual board's host).
var FirmwareFiles = []string{"mpkt.py", "mnode.py", "radio.py", "rylr.py", "agent.py", "main.py"}

// ErrNoEsptool: an image was asked for and esptool is not installed.
var ErrNoEsptool = errors.New("esptool is not on PATH: install it (pip install esptool, or apt-get install esptool) to write a MicroPython image, or flash the image by hand and run `mycelium hil flash` without --image to upload our files")

// Open opens a board's serial port.
func Open(port string, baud int) (*repl.Conn, error) {
	p, err := serial.Open(port, &serial.Mode{BaudRate: baud})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", port, err)
	}
	return repl.New(p), nil
}

// Esptool finds esptool (esptool, or esptool.py as older releases and
// Debian's package name it).
func Esptool() (string, error) {
	for _, n := range []string{"esptool", "esptool.py"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", ErrNoEsptool
}

// EsptoolArgs are the arguments that write a MicroPython image: the
// offset is 0x1000 on the ESP32 and ESP32-S2, 0 on the others
// (MicroPython's download page says the same).
func EsptoolArgs(chip, port string, baud int, image string) []string {
	off := "0"
	if chip == "esp32" || chip == "esp32s2" {
		off = "0x1000"
	}
	return []string{"--chip", chip, "--port", port, "--baud", fmt.Sprint(max(baud, 460800)),
		"write_flash", "-z", off, image}
}

// WriteImage erases the board and writes a MicroPython image with esptool.
func WriteImage(ctx context.Context, chip, port string, baud int, image string) error {
	tool, err := Esptool()
	if err != nil {
		return err
	}
	if _, err := os.Stat(image); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	for _, args := range [][]string{{"--chip", chip, "--port", port, "erase_flash"}, EsptoolArgs(chip, port, baud, image)} {
		cmd := exec.CommandContext(ctx, tool, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// Upload puts the firmware's files on the board through the raw REPL.
func Upload(ctx context.Context, c *repl.Conn, dir string) error {
	if err := c.EnterRaw(ctx); err != nil {
		return err
	}
	for _, n := range FirmwareFiles {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		if err := c.Put(ctx, n, b); err != nil {
			return err
		}
	}
	return nil
}

// Provisioning is a board's configuration file (mycelium.json), which
// agent.py reads at boot.
type Provisioning struct {
	NodeID   string   `json:"node_id"`
	Channel  int      `json:"channel"`
	BeaconMS int      `json:"beacon_ms"`
	GiveUpMS int      `json:"giveup_ms"`
	RxBudget int      `json:"rx_budget"`
	Sleep    bool     `json:"sleep"`
	Apps     []string `json:"apps,omitempty"`
	// LoRa, if set, runs the board's node on a RYLR-998 on its UART 1
	// instead of ESP-NOW.
	LoRa *LoRaProvisioning `json:"lora,omitempty"`
}

// LoRaProvisioning is a board's RYLR-998 settings (boards/esp32/rylr.py).
type LoRaProvisioning struct {
	Address   int    `json:"address"`    // 1..65535
	NetworkID int    `json:"network_id"` // 3..15 or 18
	Params    string `json:"params"`     // AT+PARAMETER's value: SF,BW code,CR,preamble
}

// Provision writes the board's configuration through the raw REPL, then
// soft-resets it so the firmware starts with it.
func Provision(ctx context.Context, c *repl.Conn, p Provisioning) error {
	if len(p.NodeID) != 64 {
		return fmt.Errorf("provision: node_id must be 64 hex digits, got %d", len(p.NodeID))
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := c.EnterRaw(ctx); err != nil {
		return err
	}
	if err := c.Put(ctx, "mycelium.json", b); err != nil {
		return err
	}
	return c.SoftReset(ctx)
}
