package rig

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/hil/repl"
	"github.com/mycelium-mesh/mycelium/hil/vboard"
)

// firmware is boards/esp32 in this tree.
func firmware(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("../../boards/esp32")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// virtualBoard starts a virtual board (MicroPython wasm under node) with an
// empty flash and opens its pty as a serial port.
func virtualBoard(t *testing.T, mac byte) (*vboard.Board, *repl.Conn) {
	t.Helper()
	host := filepath.Join(firmware(t), "host")
	if err := vboard.EnsureRuntime(host); err != nil {
		t.Fatal(err)
	}
	b, err := vboard.Start(vboard.Config{Host: host, Flash: t.TempDir(), MAC: [6]byte{2, 0xb0, 0xa4, 0, 0, mac}, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(b.Port(), 115200)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		b.Close()
	})
	return b, c
}

// TestFlashAndProvision uploads the firmware through the raw REPL of a
// board on a pty, provisions it, and checks the board boots into the
// agent with that identity; then a power cycle keeps the flash.
func TestFlashAndProvision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, c := virtualBoard(t, 1)
	if err := Upload(ctx, c, firmware(t)); err != nil {
		t.Fatal(err)
	}
	// What was written reads back the same, and an exception on the board
	// comes back as one.
	want, _ := os.ReadFile(filepath.Join(firmware(t), "mnode.py"))
	got, err := c.Get(ctx, "mnode.py")
	if err != nil || string(got) != string(want) {
		t.Fatalf("mnode.py read back: %d bytes, %v (sent %d)", len(got), err, len(want))
	}
	// Every byte value survives the upload.
	all := make([]byte, 1300)
	for i := range all {
		all[i] = byte(i * 7)
	}
	if err := c.Put(ctx, "all.bin", all); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "all.bin"); err != nil || string(got) != string(all) {
		t.Fatalf("all.bin read back: %v", err)
	}
	_, err = c.Exec(ctx, "1/0")
	var re *repl.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Traceback, "ZeroDivisionError") {
		t.Fatalf("1/0 on the board: %v", err)
	}
	nid := strings.Repeat("ab", 32)
	if err := Provision(ctx, c, Provisioning{NodeID: nid, Channel: 14, BeaconMS: 2000, GiveUpMS: 5000}); err != nil {
		t.Fatal(err)
	}
	a := NewAgent(c)
	if _, err := a.Wait(ctx, Event("boot", 0)); err != nil {
		t.Fatal(err)
	}
	info, err := a.Do(ctx, map[string]any{"cmd": "info"})
	if err != nil {
		t.Fatal(err)
	}
	if info["node_id"] != nid || info["mac"] != "02:b0:a4:00:00:01" || info["platform"] != "webassembly" {
		t.Fatalf("info = %v", info)
	}
	if _, err := a.Do(ctx, map[string]any{"cmd": "nonsense"}); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("unknown command: %v", err)
	}
	// Power-cycled, it boots from its flash with the same identity.
	if err := b.PowerCycle(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Wait(ctx, Event("boot", 0)); err != nil {
		t.Fatal(err)
	}
	info, err = a.Do(ctx, map[string]any{"cmd": "info"})
	if err != nil || info["node_id"] != nid {
		t.Fatalf("after power cycle: %v %v", info, err)
	}
}

func TestNoEsptool(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := WriteImage(context.Background(), "esp32", "/dev/null", 115200, "x.bin")
	if !errors.Is(err, ErrNoEsptool) || !strings.Contains(err.Error(), "install it") {
		t.Fatalf("WriteImage without esptool: %v", err)
	}
	if got := strings.Join(EsptoolArgs("esp32", "/dev/ttyUSB0", 115200, "mp.bin"), " "); got != "--chip esp32 --port /dev/ttyUSB0 --baud 460800 write_flash -z 0x1000 mp.bin" {
		t.Fatalf("esptool args %q", got)
	}
}
