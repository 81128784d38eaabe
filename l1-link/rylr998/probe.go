package rylr998

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.bug.st/serial"
)

// DataEnd is how a module finds the end of AT+SEND's data.
type DataEnd uint8

// How modules read AT+SEND's data.
const (
	// DataByLength: by the declared length; CR LF inside the data is data.
	DataByLength DataEnd = iota + 1
	// DataToCRLF: up to the first CR LF, as a line reader does; a datagram
	// holding that pair is cut (+ERR=5).
	DataToCRLF
)

// String says it in words.
func (d DataEnd) String() string {
	switch d {
	case DataByLength:
		return "read by its declared length"
	case DataToCRLF:
		return "ends at the first CR LF"
	}
	return "unknown"
}

// ProbeResult is what Probe found out about a module.
type ProbeResult struct {
	// To is the address the probes were sent to: the module's own (no
	// other module should have it), or 65535 when the module has 0.
	To      uint16
	DataEnd DataEnd
	// FramesCarried: the module took (+OK) a datagram holding what the
	// LF-free framing leaves in the data field: a lone CR, 0x00 and 0xFF.
	FramesCarried bool
	// CRLFAnswer and FrameAnswer are the module's lines to each probe.
	CRLFAnswer, FrameAnswer []string
}

// The probes' data: CR LF inside a 4-byte datagram, and the bytes the
// framing can still put in the data field.
var (
	probeCRLF  = []byte("M\r\nY")
	probeFrame = []byte("M\rY\x00\xffZ")
)

// probeQuiet is how long the line must stay quiet after an answer for
// Probe to take it as complete (a module that cut the data answers the
// rest as a second command at once).
const probeQuiet = 100 * time.Millisecond

// Probe finds out how a module reads AT+SEND's data. It sends "M\r\nY",
// which a module reading by length takes (+OK) and a module reading to
// the first CR LF refuses (+ERR=5, then +ERR=2 for "Y"); then a datagram
// holding a lone CR, 0x00 and 0xFF, which every module must take for the
// LF-free framing to work. Both go to the module's own address, so no
// other module should hear them, but they are two short frames on the air.
// Like Exec it waits on the wall clock: a tool for people and for the
// hardware rack, not for the driver.
func Probe(p serial.Port, timeout time.Duration) (ProbeResult, error) {
	var r ProbeResult
	if _, err := Exec(p, "AT", timeout); err != nil {
		// Bytes left in the module's buffer make a first AT fail.
		if _, err := Exec(p, "AT", timeout); err != nil {
			return r, err
		}
	}
	lines, err := Exec(p, "AT+ADDRESS?", timeout)
	if err != nil {
		return r, err
	}
	v, ok := strings.CutPrefix(lines[len(lines)-1], "+ADDRESS=")
	addr, aerr := strconv.Atoi(strings.TrimSpace(v))
	if !ok || aerr != nil || addr < 0 || addr > 65535 {
		return r, fmt.Errorf("%w: %q to AT+ADDRESS?", ErrUnexpected, lines)
	}
	r.To = uint16(addr)
	if addr == 0 {
		r.To = 65535 // 0 is broadcast
	}
	if r.CRLFAnswer, err = probeSend(p, r.To, probeCRLF, timeout); err != nil {
		return r, err
	}
	switch r.CRLFAnswer[0] {
	case "+OK":
		r.DataEnd = DataByLength
	case "+ERR=5":
		r.DataEnd = DataToCRLF
	default:
		return r, fmt.Errorf("%w: %q to a datagram holding CR LF", ErrUnexpected, r.CRLFAnswer)
	}
	if r.FrameAnswer, err = probeSend(p, r.To, probeFrame, timeout); err != nil {
		return r, err
	}
	r.FramesCarried = r.FrameAnswer[0] == "+OK"
	return r, nil
}

// probeSend sends one AT+SEND and returns the lines the module answers
// until the line has been quiet for probeQuiet. +ERR=17 (the radio still
// sends the last probe) is waited out.
func probeSend(p serial.Port, to uint16, data []byte, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := p.Write(AppendSend(nil, to, data)); err != nil {
			return nil, err
		}
		lines, err := readQuiet(p, deadline)
		if err != nil {
			return lines, err
		}
		if lines[0] == "+ERR=17" && time.Now().Before(deadline) {
			continue // readQuiet already waited probeQuiet
		}
		return lines, nil
	}
}

// readQuiet reads the module's lines (+RCV aside) until probeQuiet passes
// without one after the first, or the deadline.
func readQuiet(p serial.Port, deadline time.Time) ([]string, error) {
	var lines []string
	var last time.Time
	emit := func(r *Response) {
		if r.Kind != KindRCV {
			lines = append(lines, string(r.Line))
			last = time.Now()
		}
	}
	quiet := func() bool { return len(lines) > 0 && time.Since(last) >= probeQuiet }
	if err := readUntil(p, deadline, emit, quiet); err != nil {
		return lines, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: no answer to AT+SEND", ErrTimeout)
	}
	return lines, nil
}
