package rylr998

import (
	"bytes"
)

// CmdKind is the form of an AT command.
type CmdKind uint8

// The forms of AT commands.
const (
	CmdTest  CmdKind = iota + 1 // AT
	CmdExec                     // AT+NAME (AT+RESET, AT+FACTORY)
	CmdQuery                    // AT+NAME?
	CmdSet                      // AT+NAME=<args>
	CmdSend                     // AT+SEND=<addr>,<len>,<data>
	CmdBad                      // not a command: Err says what the module answers
)

// Command is one command from the host, as a module decodes it. Its slices
// point into the parser's buffer and are valid only during the callback.
type Command struct {
	Kind CmdKind
	Name []byte // "ADDRESS" for AT+ADDRESS=5
	Args []byte // CmdSet: what follows '='
	// CmdSend: destination and raw data.
	Addr uint16
	Data []byte
	// Err is the module's answer to a CmdBad line.
	Err ModuleError
	// End is the offset, in the bytes given to the Feed call that completed
	// the command, just past its last byte (-1 when Idle completed it): a
	// module emulator uses it to time when the command finished crossing
	// the serial line.
	End int
}

// CommandParser decodes the byte stream a host sends to a module. It never
// panics and holds at most MaxLine bytes. A command ends at CR (a CR LF
// pair counts once); a line ended by a lone LF is answered ErrNoCRLF, as the
// module requires CR LF. AT+SEND is read by its declared length, so its data
// may contain anything. Empty lines are ignored. The zero value is ready.
type CommandParser struct {
	buf     [MaxLine]byte
	n       int
	afterCR bool // the last line ended with CR: a LF right after belongs to it
	discard bool // skipping the rest of a bad line
	cmd     Command
	base    int // offset in the current Feed's input of buf[0]
}

// Feed consumes b, calling emit for every complete command (or bad line).
func (p *CommandParser) Feed(b []byte, emit func(*Command)) {
	consumed := 0
	for len(b) > 0 {
		c := copy(p.buf[p.n:], b)
		// buf[0] sits at offset consumed-p.n of the input (negative: it
		// arrived in an earlier Feed).
		p.base = consumed - p.n
		p.n += c
		b = b[c:]
		consumed += c
		p.drain(emit, false)
	}
}

// Idle tells the parser the line has gone quiet: an incomplete command
// will never complete; the module answers it as a real one does when the
// CR LF never comes.
func (p *CommandParser) Idle(emit func(*Command)) {
	if p.n > 0 {
		p.base = -p.n
		p.drain(emit, true)
	}
	p.discard = false
}

// Buffered returns the number of bytes held waiting for the rest of a
// command.
func (p *CommandParser) Buffered() int { return p.n }

var pfxSend = []byte("AT+SEND=")

func (p *CommandParser) drain(emit func(*Command), final bool) {
	off := 0
	for off < p.n {
		s := p.buf[off:p.n]
		if p.afterCR {
			p.afterCR = false
			if s[0] == '\n' {
				off++
				continue
			}
		}
		if p.discard {
			e := lineEnd(s)
			if e < 0 {
				break // all of it goes
			}
			p.discard = false
			p.afterCR = s[e] == '\r'
			off += e + 1
			continue
		}
		used, st := p.parse(s, final)
		if st == stMore {
			if off == 0 && p.n == len(p.buf) {
				// Longer than any command: the CR LF never came.
				p.bad(ErrNoCRLF, 0)
				p.cmd.End = p.base + p.n
				emit(&p.cmd)
				p.discard = true
				break
			}
			copy(p.buf[:], s)
			p.n = len(s)
			return
		}
		if used <= 0 { // cannot happen; never loop forever
			used = 1
		}
		off += used
		if p.cmd.Kind != 0 {
			p.cmd.End = p.base + off
			if final {
				p.cmd.End = -1
			}
			emit(&p.cmd)
		}
	}
	p.n = 0
}

func (p *CommandParser) bad(e ModuleError, end int) {
	p.cmd = Command{Kind: CmdBad, Err: e, End: end}
}

// parse decodes the command at the start of s. It sets p.cmd.Kind to 0 for
// a line that needs no answer (an empty line). final: no more bytes come.
func (p *CommandParser) parse(s []byte, final bool) (int, status) {
	p.cmd = Command{}
	if bytes.HasPrefix(s, pfxSend) {
		return p.parseSend(s, final)
	}
	e := lineEnd(s)
	if e < 0 {
		if !final {
			return 0, stMore
		}
		p.bad(ErrNoCRLF, 0)
		return len(s), stDone
	}
	line := s[:e]
	used := e + 1
	if s[e] == '\r' {
		p.afterCR = true
	} else if e > 0 {
		p.bad(ErrNoCRLF, 0)
		return used, stDone
	}
	if e == 0 {
		return used, stDone // empty line: nothing to answer
	}
	p.line(line)
	return used, stDone
}

// line decodes a complete non-SEND line.
func (p *CommandParser) line(line []byte) {
	c := &p.cmd
	switch {
	case !bytes.HasPrefix(line, []byte("AT")):
		p.bad(ErrNotAT, 0)
		return
	case len(line) == 2:
		c.Kind = CmdTest
		return
	case line[2] != '+':
		p.bad(ErrUnknownCommand, 0)
		return
	}
	rest := line[3:]
	i := 0
	for i < len(rest) && rest[i] >= 'A' && rest[i] <= 'Z' {
		i++
	}
	if i == 0 {
		p.bad(ErrUnknownCommand, 0)
		return
	}
	c.Name = rest[:i]
	switch {
	case i == len(rest):
		c.Kind = CmdExec
	case rest[i] == '?' && i+1 == len(rest):
		c.Kind = CmdQuery
	case rest[i] == '=':
		c.Kind, c.Args = CmdSet, rest[i+1:]
	default:
		p.bad(ErrNoEquals, 0)
		c.Name = nil
	}
}

// parseSend reads AT+SEND=<addr>,<len>,<data> by the declared length.
func (p *CommandParser) parseSend(s []byte, final bool) (int, status) {
	i := len(pfxSend)
	if e := lineEnd(s); e >= 0 && e < i+1 {
		// "AT+SEND=" then the line ends.
		p.bad(ErrUnknownCommand, 0)
		p.afterCR = s[e] == '\r'
		return e + 1, stDone
	}
	addr, i, st := number(s, i, false, 5)
	if st == stDone && addr > 65535 {
		st = stBad
	}
	if st == stDone {
		i, st = expect(s, i, ',')
	}
	var n int
	if st == stDone {
		n, i, st = number(s, i, false, 3)
	}
	if st == stDone {
		i, st = expect(s, i, ',')
	}
	if st == stMore && final {
		st = stBad
	}
	switch st {
	case stMore:
		return 0, stMore
	case stBad:
		// Malformed: answer once and skip the rest of the line.
		p.bad(ErrUnknownCommand, 0)
		p.discard = true
		return i, stDone
	}
	if n > MTU {
		p.bad(ErrTxTooLong, 0)
		p.discard = true
		return i, stDone
	}
	if len(s) < i+n+1 {
		if final {
			p.bad(ErrLengthMismatch, 0)
			return len(s), stDone
		}
		return 0, stMore
	}
	data := s[i : i+n]
	switch s[i+n] {
	case '\r':
		p.afterCR = true
	case '\n':
		p.bad(ErrNoCRLF, 0)
		return i + n + 1, stDone
	default:
		// More data than declared: the module answers +ERR=5.
		p.bad(ErrLengthMismatch, 0)
		p.discard = true
		return i + n, stDone
	}
	p.cmd = Command{Kind: CmdSend, Name: s[3:7], Addr: uint16(addr), Data: data}
	return i + n + 1, stDone
}
