package emulator

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal pair: the master end, pollable (so
// reads and writes take deadlines and Close interrupts them), and the
// slave end in raw mode, which the emulator keeps open so that the
// terminal lives while no host has it open.
func openPTY() (master, slave *os.File, err error) {
	ptm, pts, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: open pty: %w", err)
	}
	defer func() {
		if err != nil {
			ptm.Close()
			pts.Close()
		}
	}()
	// Raw, as a UART is: no echo (the module's output would come back as
	// input), no CR/LF translation, no signals.
	t, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: pty termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(int(pts.Fd()), unix.TCSETS, t); err != nil {
		return nil, nil, fmt.Errorf("emulator: pty raw mode: %w", err)
	}
	// pty.Open left the master in blocking mode; a non-blocking duplicate
	// goes through the runtime's poller.
	fd, err := unix.Dup(int(ptm.Fd()))
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: dup pty: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("emulator: pty non-blocking: %w", err)
	}
	name := ptm.Name()
	ptm.Close()
	return os.NewFile(uintptr(fd), name), pts, nil
}
