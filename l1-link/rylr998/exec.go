package rylr998

import (
	"fmt"
	"strings"
	"time"

	"go.bug.st/serial"
)

// OpenPort opens a serial device as the module needs it: baud, 8N1, raw,
// with whatever arrived before flushed.
func OpenPort(path string, baud int) (serial.Port, error) {
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("rylr998: open %s: %w", path, err)
	}
	_ = p.ResetInputBuffer()
	return p, nil
}

// Exec sends one raw AT command (without its CR LF) and returns the lines
// the module answers, up to the final one: +OK, +ERR, a query's value,
// +FACTORY, or +READY after AT+RESET. +RCV lines that arrive meanwhile
// are left out. A +ERR answer is returned with its ModuleError. This is a
// tool for people (the CLI), not for the driver: it waits on the wall
// clock, as a person at a terminal does.
func Exec(p serial.Port, cmd string, timeout time.Duration) ([]string, error) {
	if _, err := p.Write(AppendCommand(nil, cmd)); err != nil {
		return nil, err
	}
	var lines []string
	var final bool
	var merr error
	emit := func(r *Response) {
		if final {
			return // a line after the answer: not ours
		}
		switch r.Kind {
		case KindRCV:
			return
		case KindReset:
			lines = append(lines, string(r.Line))
			return
		case KindErr:
			merr = r.Code
		}
		lines = append(lines, string(r.Line))
		final = true
	}
	if err := readUntil(p, time.Now().Add(timeout), emit, func() bool { return final }); err != nil {
		return lines, err
	}
	if !final {
		return lines, fmt.Errorf("%w: no answer to %s within %v", ErrTimeout, strings.TrimSpace(cmd), timeout)
	}
	if merr != nil {
		return lines, &CommandError{Cmd: cmd, Err: merr}
	}
	return lines, nil
}

// readUntil feeds what the port reads to a Parser, which calls emit, until
// done reports true or the deadline passes. A read that finds the line
// quiet for 20 ms lets the parser drop a line that will never complete.
func readUntil(p serial.Port, deadline time.Time, emit func(*Response), done func() bool) error {
	if err := p.SetReadTimeout(20 * time.Millisecond); err != nil {
		return err
	}
	var ps Parser
	buf := make([]byte, 512)
	for !done() && time.Now().Before(deadline) {
		n, err := p.Read(buf)
		if n > 0 {
			ps.Feed(buf[:n], emit)
		} else if err == nil {
			ps.Idle(emit)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
