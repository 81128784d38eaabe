package rig

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/hil/vboard"
	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998/emulator"
	"go.bug.st/serial"
)

// frames is a link.Dispatcher that hands copies of what the Go driver
// receives to a channel.
type frames chan link.Frame

func (f frames) DeliverFrame(fr link.Frame) {
	fr.Data = bytes.Clone(fr.Data)
	f <- fr
}

func (f frames) TxDone(link.Tag, error) {}

// loraRig is a virtual board running the firmware's RYLR-998 link
// (boards/esp32/rylr.py, driven by tests/lora_agent.py) with its UART
// wired to an emulated module, and the Go driver on another module of the
// same simulated LoRa network.
type loraRig struct {
	t     *testing.T
	port  serial.Port
	lines chan string
	pi    *rylr998.Link
	rx    frames
}

func newLoraRig(t *testing.T) *loraRig {
	t.Helper()
	fw := firmware(t)
	host := filepath.Join(fw, "host")
	if err := vboard.EnsureRuntime(host); err != nil {
		t.Fatal(err)
	}
	loop := clock.NewLoop()
	ctx, cancel := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() { loop.Run(ctx); close(loopDone) }()
	t.Cleanup(func() { cancel(); <-loopDone })
	lnet := emulator.NewNetwork(loop, loraParams, 1)
	t.Cleanup(func() { lnet.Close() })
	// The board's module starts on another address: the firmware must
	// query it and set its own.
	mb, err := lnet.AddModule(emulator.Options{Address: 9})
	if err != nil {
		t.Fatal(err)
	}
	mp, err := lnet.AddModule(emulator.Options{Address: 2})
	if err != nil {
		t.Fatal(err)
	}
	uart, err := serial.Open(mb.Path(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}

	flash := t.TempDir()
	put := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(flash, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put(filepath.Join(fw, "rylr.py"), "rylr.py")
	put(filepath.Join(fw, "tests", "lora_agent.py"), "agent.py")
	if err := os.WriteFile(filepath.Join(flash, "main.py"), []byte("import agent\nagent.start()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var vb *vboard.Board
	ready := make(chan struct{})
	vb, err = vboard.Start(vboard.Config{Host: host, Flash: flash, MAC: [6]byte{2, 0xb0, 0xa4, 0, 0, 0x10}, Stderr: os.Stderr,
		OnFrame: func(kind byte, b []byte) {
			if kind == 'U' {
				uart.Write(b)
			}
		}})
	if err != nil {
		uart.Close()
		t.Fatal(err)
	}
	close(ready)
	uartDone := make(chan struct{})
	go func() {
		defer close(uartDone)
		<-ready
		buf := make([]byte, 512)
		for {
			n, err := uart.Read(buf)
			if n > 0 {
				vb.UART(buf[:n])
			}
			if err != nil || n == 0 {
				return
			}
		}
	}()
	port, err := serial.Open(vb.Port(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		vb.Close()
		uart.Close()
		t.Fatal(err)
	}
	r := &loraRig{t: t, port: port, lines: make(chan string, 256), rx: make(frames, 256)}
	portDone := make(chan struct{})
	go func() {
		defer close(portDone)
		sc := bufio.NewScanner(port)
		for sc.Scan() {
			r.lines <- strings.TrimRight(sc.Text(), "\r")
		}
	}()
	t.Cleanup(func() {
		port.Close()
		vb.Close()
		uart.Close()
		<-portDone
		<-uartDone
	})
	r.pi, err = rylr998.Open(rylr998.Config{Port: mp.Path(), Address: 2, Params: loraParams, Clock: loop})
	if err != nil {
		t.Fatal(err)
	}
	r.pi.Attach(r.rx)
	t.Cleanup(func() { r.pi.Close() })
	r.waitLine("LORA 1")
	// The board's link is configured when its final AT is answered.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(r.cmd("STATS", "STATS "), `"ready": true`) {
		if time.Now().After(deadline) {
			t.Fatal("the board's RYLR-998 link never came up")
		}
	}
	if a := mb.Settings().Address; a != 1 {
		t.Fatalf("the board's module has address %d, want 1", a)
	}
	return r
}

// waitLine waits for a line from the board that starts with prefix.
func (r *loraRig) waitLine(prefix string) string {
	r.t.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case l := <-r.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout.C:
			r.t.Fatalf("no %q line from the board", prefix)
		}
	}
}

func (r *loraRig) cmd(line, answer string) string {
	r.t.Helper()
	if _, err := r.port.Write([]byte(line + "\n")); err != nil {
		r.t.Fatal(err)
	}
	return r.waitLine(answer)
}

// frame waits for the next datagram the Go driver receives.
func (r *loraRig) frame() link.Frame {
	r.t.Helper()
	select {
	case f := <-r.rx:
		return f
	case <-time.After(20 * time.Second):
		r.t.Fatal("the Pi's module heard nothing")
		return link.Frame{}
	}
}

// loraPacket is a packet-shaped datagram (version byte 0) of n bytes
// holding the bytes the framing exists for: LF, CR LF, commas, 0x00, 0xFF.
func loraPacket(n, seed int) []byte {
	p := make([]byte, n)
	for i := 1; i < n; i++ {
		p[i] = byte(i*7 + seed*13)
	}
	for i, b := range []byte("\n\r\n,\x00\xff\n") {
		if 1+i+seed%5 < n {
			p[1+i+seed%5] = b
		}
	}
	return p
}

// The firmware's RYLR-998 link against the Go driver, through emulated
// modules on one simulated LoRa network: the board's packets reach the
// Pi byte for byte (board→Pi), and the Pi's packets reach the board, which
// echoes them (Pi→board→Pi), one at a time and as sequences that queue up
// in the board's link (the module answers +ERR=17 while it still sends).
func TestFirmwareLoRaLink(t *testing.T) {
	r := newLoraRig(t)
	boardSends := func(p []byte) {
		t.Helper()
		if l := r.cmd("SEND 0002 "+hex.EncodeToString(p), "QUEUED "); l != "QUEUED True" {
			t.Fatalf("board refused a packet: %s", l)
		}
	}
	expect := func(f link.Frame, want []byte, what string) {
		t.Helper()
		if f.Src != rylr998.Addr(1) || !bytes.Equal(f.Data, want) || !f.HasSignal {
			t.Fatalf("%s: the Pi got %x from %v (signal %v), want %x from 1", what, f.Data, f.Src, f.HasSignal, want)
		}
	}

	t.Run("single board to Pi", func(t *testing.T) {
		p := loraPacket(240, 1)
		boardSends(p)
		expect(r.frame(), p, "single")
	})
	t.Run("single Pi to board", func(t *testing.T) {
		p := loraPacket(57, 2)
		if err := r.pi.Send(rylr998.Addr(1), p, 1); err != nil {
			t.Fatal(err)
		}
		if l := r.waitLine("RX "); l != "RX 0002 "+hex.EncodeToString(p) {
			t.Fatalf("board heard %q", l)
		}
		expect(r.frame(), p, "echo")
	})
	t.Run("sequence board to Pi", func(t *testing.T) {
		var want [][]byte
		for i := range 8 { // the board's transmit queue holds 8
			p := loraPacket(1+i*34, i)
			want = append(want, p)
			boardSends(p)
		}
		for i, p := range want {
			expect(r.frame(), p, fmt.Sprintf("packet %d", i))
		}
	})
	t.Run("sequence Pi to board", func(t *testing.T) {
		for i := range 12 {
			p := loraPacket(2+i*19, i+3)
			// One in flight: the Pi's driver queues, the board echoes each.
			if err := r.pi.Send(rylr998.Addr(1), p, link.Tag(i)); err != nil {
				t.Fatal(err)
			}
			if l := r.waitLine("RX "); l != "RX 0002 "+hex.EncodeToString(p) {
				t.Fatalf("packet %d: board heard %q", i, l)
			}
			expect(r.frame(), p, fmt.Sprintf("echo %d", i))
		}
	})
	st := r.cmd("STATS", "STATS ")
	t.Logf("board link: %s", st)
	for _, bad := range []string{`"bad_frame": 0`, `"timeout": 0`, `"err": 0`, `"garbage": 0`} {
		if !strings.Contains(st, bad) {
			t.Errorf("board link counted a fault: %s", st)
		}
	}
}
