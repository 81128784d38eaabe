// Package repl talks to a MicroPython board over its serial port: the raw
// REPL (what mpremote and ampy use to run code and upload files) and the
// line-based agent the firmware runs (boards/esp32/agent.py). One reader
// goroutine owns the port's input; callers wait on it with a context.
package repl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Errors, test with errors.Is.
var (
	// ErrNoPrompt: the board never showed the prompt it should have.
	ErrNoPrompt = errors.New("repl: no raw REPL prompt (is it a MicroPython board? is another program using the port?)")
	// ErrClosed: the port closed (the board went away).
	ErrClosed = errors.New("repl: port closed")
	// ErrVerify: a file read back differs from what was written.
	ErrVerify = errors.New("repl: file on the board differs from what was sent")
)

// RemoteError is Python's traceback from code run on the board.
type RemoteError struct{ Traceback string }

func (e *RemoteError) Error() string {
	return "repl: the board raised: " + strings.TrimSpace(e.Traceback)
}

// maxBuffered bounds what the reader keeps unread (a board printing
// without end must not grow memory without bound): past it the oldest
// bytes go.
const maxBuffered = 1 << 20

// Conn is a board's serial port.
type Conn struct {
	port io.ReadWriteCloser

	mu     sync.Mutex
	buf    []byte
	err    error
	notify chan struct{}
	done   chan struct{}
}

// New starts reading port. Close closes it and joins the reader.
func New(port io.ReadWriteCloser) *Conn {
	c := &Conn{port: port, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	return c
}

func (c *Conn) read() {
	defer close(c.done)
	b := make([]byte, 4096)
	for {
		n, err := c.port.Read(b)
		c.mu.Lock()
		if n > 0 {
			c.buf = append(c.buf, b[:n]...)
			if len(c.buf) > maxBuffered {
				c.buf = append(c.buf[:0], c.buf[len(c.buf)-maxBuffered:]...)
			}
		}
		// go.bug.st/serial returns 0, nil on a read timeout: keep reading.
		if err != nil {
			c.err = err
		}
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// Close closes the port and waits for the reader.
func (c *Conn) Close() error {
	err := c.port.Close()
	<-c.done
	return err
}

// Write sends bytes to the board.
func (c *Conn) Write(b []byte) error {
	_, err := c.port.Write(b)
	return err
}

// Drain drops what was read so far.
func (c *Conn) Drain() {
	c.mu.Lock()
	c.buf = c.buf[:0]
	c.mu.Unlock()
}

// Until waits for delim and returns what came before it (consuming both).
func (c *Conn) Until(ctx context.Context, delim []byte) ([]byte, error) {
	for {
		c.mu.Lock()
		if i := bytes.Index(c.buf, delim); i >= 0 {
			out := append([]byte(nil), c.buf[:i]...)
			c.buf = append(c.buf[:0], c.buf[i+len(delim):]...)
			c.mu.Unlock()
			return out, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrClosed, err)
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// writeSlowly writes in small pieces: a board's USB-UART and MicroPython's
// input buffer take a raw-REPL command best in chunks (mpremote does the
// same).
func (c *Conn) writeSlowly(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), 256)
		if err := c.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// EnterRaw interrupts whatever runs (Ctrl-C twice) and enters the raw REPL
// (Ctrl-A).
func (c *Conn) EnterRaw(ctx context.Context) error {
	// Ctrl-B first leaves a raw REPL left open by an earlier session.
	if err := c.Write([]byte("\r\x03\x03\x02")); err != nil {
		return err
	}
	// The interrupt's traceback and the friendly prompt may come; then
	// Ctrl-A and the raw REPL's banner.
	if _, err := c.Until(ctx, []byte(">>> ")); err != nil {
		return fmt.Errorf("%w: %v", ErrNoPrompt, err)
	}
	c.Drain()
	if err := c.Write([]byte("\x01")); err != nil {
		return err
	}
	if _, err := c.Until(ctx, []byte("raw REPL; CTRL-B to exit\r\n>")); err != nil {
		return fmt.Errorf("%w: %v", ErrNoPrompt, err)
	}
	return nil
}

// Exec runs code in the raw REPL (EnterRaw first) and returns its output;
// a Python exception comes back as *RemoteError.
func (c *Conn) Exec(ctx context.Context, code string) (string, error) {
	if err := c.writeSlowly([]byte(code)); err != nil {
		return "", err
	}
	if err := c.Write([]byte("\x04")); err != nil {
		return "", err
	}
	if _, err := c.Until(ctx, []byte("OK")); err != nil {
		return "", fmt.Errorf("repl: no OK after the code: %w", err)
	}
	out, err := c.Until(ctx, []byte("\x04"))
	if err != nil {
		return "", err
	}
	tb, err := c.Until(ctx, []byte("\x04>"))
	if err != nil {
		return "", err
	}
	if len(tb) > 0 {
		return string(out), &RemoteError{Traceback: string(tb)}
	}
	return string(out), nil
}

// ExitRaw goes back to the friendly REPL (Ctrl-B).
func (c *Conn) ExitRaw() error { return c.Write([]byte("\x02")) }

// SoftReset leaves the raw REPL and soft-resets the board (Ctrl-D at the
// friendly prompt), which runs main.py again.
func (c *Conn) SoftReset(ctx context.Context) error {
	if err := c.ExitRaw(); err != nil {
		return err
	}
	if _, err := c.Until(ctx, []byte(">>> ")); err != nil {
		return fmt.Errorf("%w: %v", ErrNoPrompt, err)
	}
	c.Drain()
	return c.Write([]byte("\x04"))
}

// Put writes a file on the board (in the raw REPL), in base64 pieces,
// then reads back its size and SHA-256 and compares.
func (c *Conn) Put(ctx context.Context, name string, data []byte) error {
	q := strconv.Quote(name)
	if _, err := c.Exec(ctx, "import hashlib\nf=open("+q+",'wb')\nw=f.write"); err != nil {
		return fmt.Errorf("repl: open %s: %w", name, err)
	}
	// Each piece goes as a bytes literal (as mpremote does): decoding
	// base64 in Python is slow where binascii is not built in (the wasm
	// port's is Python).
	const piece = 512
	for off := 0; off < len(data); off += piece {
		chunk := data[off:min(off+piece, len(data))]
		if _, err := c.Exec(ctx, "w("+bytesLiteral(chunk)+")"); err != nil {
			return fmt.Errorf("repl: write %s at %d: %w", name, off, err)
		}
	}
	if _, err := c.Exec(ctx, "f.close()"); err != nil {
		return fmt.Errorf("repl: close %s: %w", name, err)
	}
	out, err := c.Exec(ctx, "f=open("+q+",'rb')\nh=hashlib.sha256(f.read())\nf.close()\nprint(h.digest().hex())")
	if err != nil {
		return fmt.Errorf("repl: verify %s: %w", name, err)
	}
	if got, want := strings.TrimSpace(out), sha256Hex(data); got != want {
		return fmt.Errorf("%w: %s: sha256 %s, sent %s", ErrVerify, name, got, want)
	}
	return nil
}

// Get reads a file from the board (in the raw REPL).
func (c *Conn) Get(ctx context.Context, name string) ([]byte, error) {
	out, err := c.Exec(ctx, "f=open("+strconv.Quote(name)+",'rb')\nprint(f.read().hex())\nf.close()")
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(strings.TrimSpace(out))
}

// bytesLiteral writes b as a Python bytes literal.
func bytesLiteral(b []byte) string {
	var sb strings.Builder
	sb.WriteString("b'")
	for _, c := range b {
		switch {
		case c == '\\' || c == '\'':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, "\\x%02x", c)
		}
	}
	sb.WriteString("'")
	return sb.String()
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
