package repl

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/creack/pty"
)

// A device that answers garbage (not MicroPython) is refused with
// ErrNoPrompt when the context ends, and the reader's memory stays bounded
// however much it sends.
func TestGarbageDevice(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	c := New(tty)
	defer c.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		junk := make([]byte, 64<<10)
		for i := range junk {
			junk[i] = byte(i*31 + 7)
			if junk[i] == '>' {
				junk[i] = '?'
			}
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := ptmx.Write(junk); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.EnterRaw(ctx); !errors.Is(err, ErrNoPrompt) {
		t.Fatalf("EnterRaw on garbage: %v", err)
	}
	c.mu.Lock()
	n := len(c.buf)
	c.mu.Unlock()
	if n > maxBuffered {
		t.Fatalf("reader holds %d bytes, bound %d", n, maxBuffered)
	}
}

// bytesLiteral writes every byte value so Python reads it back.
func TestBytesLiteral(t *testing.T) {
	got := bytesLiteral([]byte{0, '\'', '\\', 'a', 0x7f, 0xff, '\n'})
	if want := `b'\x00\'\\a\x7f\xff\x0a'`; got != want {
		t.Fatalf("bytesLiteral = %s, want %s", got, want)
	}
}
