// Package vboard runs virtual ESP32 boards: MicroPython's WebAssembly port
// under node (boards/esp32/host/vboard.mjs) with the board's REPL on a
// pseudo-terminal, so the rig opens /dev/pts/N with go.bug.st/serial as it
// opens a USB board's port, and its radio on a socket the rig's air reads
// and writes. A board can be power-cycled or held off; its flash (a
// directory) survives, its RAM does not.
package vboard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Package is the npm package of MicroPython's WebAssembly port the host
// script loads (pinned in boards/esp32/host/package.json).
const Package = "@micropython/micropython-webassembly-pyscript"

// ErrNoRuntime: node or the npm package is missing.
var ErrNoRuntime = errors.New("vboard: no runtime for virtual boards")

// EnsureRuntime checks for node and installs the npm package into host
// (npm ci, from its package-lock.json) when it is not there yet.
func EnsureRuntime(host string) error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("%w: node is not on PATH (apt-get install nodejs npm)", ErrNoRuntime)
	}
	if _, err := os.Stat(filepath.Join(host, "node_modules", Package, "micropython.mjs")); err == nil {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("%w: %s is not installed in %s and npm is not on PATH", ErrNoRuntime, Package, host)
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = host
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: npm ci in %s: %v\n%s", ErrNoRuntime, host, err, out)
	}
	return nil
}

// Config describes a virtual board.
type Config struct {
	// Host is boards/esp32/host (vboard.mjs and its node_modules).
	Host string
	// Flash is the directory holding the board's files.
	Flash string
	// MAC is the board's ESP-NOW address.
	MAC [6]byte
	// Heap is MicroPython's heap in bytes (0: 1 MiB; the firmware's own use
	// is reported by gc.mem_alloc, whatever the heap).
	Heap int
	// OnFrame gets what the board's radio transmits (on the board's
	// reader goroutine): kind 'T' dst(6)+data, 'O' with 0/1 (radio
	// off/on), or 'U' with the bytes its UART (machine.UART) wrote.
	OnFrame func(kind byte, b []byte)
	// Stderr, if set, gets node's own error output.
	Stderr io.Writer
}

// Board is a virtual board.
type Board struct {
	cfg  Config
	ptmx *os.File
	tty  *os.File

	mu  sync.Mutex
	cur *proc
	// done closes when the pty reader ends (Close).
	done chan struct{}
}

type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	radio *os.File
	wmu   sync.Mutex
	exit  chan struct{}
}

// Start powers a board on.
func Start(cfg Config) (*Board, error) {
	if cfg.Heap == 0 {
		cfg.Heap = 1 << 20
	}
	if err := os.MkdirAll(cfg.Flash, 0o755); err != nil {
		return nil, err
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("vboard: pty: %w", err)
	}
	// Raw: Ctrl-C and Ctrl-D must reach MicroPython as bytes, not become
	// signals or end-of-file in the line discipline.
	if _, err := term.MakeRaw(int(tty.Fd())); err != nil {
		ptmx.Close()
		tty.Close()
		return nil, fmt.Errorf("vboard: raw pty: %w", err)
	}
	// pty.Open's Fd calls left the master blocking, and a blocking Read is
	// not woken by Close: a non-blocking copy goes through the runtime's
	// poller instead.
	fd, err := unix.Dup(int(ptmx.Fd()))
	ptmx.Close()
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		tty.Close()
		return nil, fmt.Errorf("vboard: pty master: %w", err)
	}
	ptmx = os.NewFile(uintptr(fd), "ptmx")
	b := &Board{cfg: cfg, ptmx: ptmx, tty: tty, done: make(chan struct{})}
	if err := b.PowerOn(); err != nil {
		ptmx.Close()
		tty.Close()
		return nil, err
	}
	go b.fromPort()
	return b, nil
}

// Port is the board's serial port, a pty the rig opens like a USB port.
func (b *Board) Port() string { return b.tty.Name() }

// MAC is the board's address.
func (b *Board) MAC() [6]byte { return b.cfg.MAC }

// fromPort carries what the rig writes on the port to the running board
// (a board that is off hears nothing: the bytes go).
func (b *Board) fromPort() {
	defer close(b.done)
	buf := make([]byte, 4096)
	for {
		n, err := b.ptmx.Read(buf)
		if n > 0 {
			b.mu.Lock()
			p := b.cur
			b.mu.Unlock()
			if p != nil {
				p.stdin.Write(buf[:n])
			}
		}
		if err != nil {
			return
		}
	}
}

// Running reports whether the board is powered.
func (b *Board) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur != nil
}

// PowerOn starts the board (no-op if it runs).
func (b *Board) PowerOn() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		return nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("vboard: socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "radio"), os.NewFile(uintptr(fds[1]), "radio-board")
	cmd := exec.Command("node", filepath.Join(b.cfg.Host, "vboard.mjs"), "board",
		"--flash", b.cfg.Flash, "--mac", fmt.Sprintf("%x", b.cfg.MAC[:]), "--heap", strconv.Itoa(b.cfg.Heap))
	cmd.ExtraFiles = []*os.File{theirs} // fd 3
	cmd.Stderr = b.cfg.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		ours.Close()
		theirs.Close()
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		ours.Close()
		theirs.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		ours.Close()
		theirs.Close()
		return fmt.Errorf("vboard: node: %w", err)
	}
	theirs.Close()
	p := &proc{cmd: cmd, stdin: stdin, radio: ours, exit: make(chan struct{})}
	b.cur = p
	go b.radioIn(p)
	copied := make(chan struct{})
	go func() {
		// What the board prints goes to the port (the USB-UART bridge).
		io.Copy(b.ptmx, stdout)
		close(copied)
	}()
	go func() {
		<-copied
		cmd.Wait()
		ours.Close()
		close(p.exit)
	}()
	return nil
}

// PowerOff cuts the board's power: the process dies at once (no goodbye,
// RAM lost), as when the rig drops a USB hub port.
func (b *Board) PowerOff() {
	b.mu.Lock()
	p := b.cur
	b.cur = nil
	b.mu.Unlock()
	if p == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.exit
}

// PowerCycle is PowerOff then PowerOn.
func (b *Board) PowerCycle() error {
	b.PowerOff()
	return b.PowerOn()
}

// Hear hands the board a frame its radio received from src.
func (b *Board) Hear(src [6]byte, data []byte) {
	b.mu.Lock()
	p := b.cur
	b.mu.Unlock()
	if p == nil || len(data) > 2000 {
		return
	}
	m := make([]byte, 0, 2+1+6+len(data))
	m = binary.BigEndian.AppendUint16(m, uint16(1+6+len(data)))
	m = append(m, 'F')
	m = append(m, src[:]...)
	m = append(m, data...)
	p.wmu.Lock()
	p.radio.Write(m)
	p.wmu.Unlock()
}

// UART puts bytes on the RX line of the board's UART (machine.UART): what
// a module wired to it (an RYLR-998) answers. The board's driver buffers
// at most 1 KiB, as an ESP32's RX buffer does; the rest is lost.
func (b *Board) UART(data []byte) {
	b.mu.Lock()
	p := b.cur
	b.mu.Unlock()
	for p != nil && len(data) > 0 {
		n := min(len(data), 2000)
		m := make([]byte, 0, 2+1+n)
		m = binary.BigEndian.AppendUint16(m, uint16(1+n))
		m = append(m, 'u')
		m = append(m, data[:n]...)
		p.wmu.Lock()
		p.radio.Write(m)
		p.wmu.Unlock()
		data = data[n:]
	}
}

// radioIn reads what the board's radio sends, until the process ends.
func (b *Board) radioIn(p *proc) {
	var hdr [2]byte
	buf := make([]byte, 4096)
	for {
		if _, err := io.ReadFull(p.radio, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n == 0 || n > len(buf) {
			p.cmd.Process.Kill() // a board speaking garbage on its radio pipe: a broken host
			return
		}
		if _, err := io.ReadFull(p.radio, buf[:n]); err != nil {
			return
		}
		if b.cfg.OnFrame != nil {
			b.cfg.OnFrame(buf[0], buf[1:n])
		}
	}
}

// Close powers the board off and releases its pty.
func (b *Board) Close() error {
	b.PowerOff()
	b.tty.Close()
	err := b.ptmx.Close()
	<-b.done
	return err
}
