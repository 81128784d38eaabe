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
	// the command, just past its last byte — past the LF of its CR LF when
	// that LF came in the same bytes — (-1 when Idle completed it): a
	// module emulator uses it to time when the command finished crossing
	// the serial line.
	End int
}

// CommandParser decodes the byte stream a host sends to a module. It never
// panics and holds at most MaxLine bytes. A command ends at CR (a CR LF
// pair counts once); a line ended by a lone LF is answered ErrNoCRLF, as the
// module requires CR LF. Empty lines are ignored. The zero value is ready,
// and reads AT+SEND's data by its declared length.
//
// AT+SEND's data, by length (the default): the data may hold any byte,
// CR LF included, when the command ends right after the declared length;
// a command whose data is shorter than declared ended at its first CR LF
// (ErrLengthMismatch), and what follows is read as the next command — when
// the bytes after the declared length show it, or when the line goes quiet
// (Idle) while ShortSend holds. With DataEndsAtCRLF the data ends at its
// first CR LF whatever the length says, as a module that reads its
// commands line by line does.
type CommandParser struct {
	// DataEndsAtCRLF ends AT+SEND's data at the first CR LF (a lone CR or
	// LF is data): a datagram holding that pair is cut, and answered
	// ErrLengthMismatch.
	DataEndsAtCRLF bool

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

// ShortSend reports whether the bytes held are an AT+SEND read by length
// whose data, still short of its declared length, already holds a CR LF:
// if the line goes quiet now, the command ended there. A module notices
// that within a few byte times, so the emulator calls Idle after a short
// quiet gap rather than the long one for a half-typed command.
func (p *CommandParser) ShortSend() bool {
	if p.DataEndsAtCRLF || p.discard || !bytes.HasPrefix(p.buf[:p.n], pfxSend) {
		return false
	}
	// The address and length fields hold no CR LF (one would have ended
	// the command already): a CR LF held is in the data.
	return bytes.Contains(p.buf[len(pfxSend):p.n], crlf)
}

var crlf = []byte("\r\n")

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
			if p.afterCR && off < p.n && p.buf[off] == '\n' {
				p.cmd.End++ // the LF of its CR LF is here too: it ends there
			}
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
		// The RYLR998 guide has no number for a malformed form (the
		// RYLR896's 3, "no =", is not in it): an unknown command.
		p.bad(ErrUnknownCommand, 0)
		c.Name = nil
	}
}

// parseSend reads AT+SEND=<addr>,<len>,<data>.
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
	if p.DataEndsAtCRLF {
		return p.sendToCRLF(s, i, n, addr, final)
	}
	return p.sendByLength(s, i, n, addr, final)
}

// sendToCRLF reads AT+SEND's data up to its first CR LF.
func (p *CommandParser) sendToCRLF(s []byte, i, n, addr int, final bool) (int, status) {
	j := bytes.Index(s[i:], crlf)
	if j < 0 {
		if !final {
			return 0, stMore
		}
		// The line went quiet with no CR LF: the command never ended.
		p.bad(ErrNoCRLF, 0)
		return len(s), stDone
	}
	if j != n {
		p.bad(ErrLengthMismatch, 0)
		return i + j + 2, stDone
	}
	p.cmd = Command{Kind: CmdSend, Name: s[3:7], Addr: uint16(addr), Data: s[i : i+n]}
	return i + n + 2, stDone
}

// sendByLength reads AT+SEND's data by its declared length n.
func (p *CommandParser) sendByLength(s []byte, i, n, addr int, final bool) (int, status) {
	// The first CR LF whose CR lies within the declared length: where the
	// command ended if its data turns out to be short.
	cut := -1
	for j := i; j < i+n && j+1 < len(s); j++ {
		if s[j] == '\r' && s[j+1] == '\n' {
			cut = j
			break
		}
	}
	if len(s) < i+n+1 {
		if !final {
			return 0, stMore
		}
		// The line went quiet before the declared length was reached.
		p.bad(ErrLengthMismatch, 0)
		if cut >= 0 {
			return cut + 2, stDone
		}
		if k := bytes.IndexByte(s[i:], '\r'); k >= 0 {
			// A terminal's Enter (a lone CR) ended it.
			p.afterCR = true
			return i + k + 1, stDone
		}
		return len(s), stDone
	}
	switch {
	case s[i+n] == '\r':
		p.afterCR = true
	case cut >= 0:
		// Shorter than declared: the command ended at its first CR LF, and
		// what follows is the next command.
		p.bad(ErrLengthMismatch, 0)
		return cut + 2, stDone
	case s[i+n] == '\n':
		p.bad(ErrNoCRLF, 0)
		return i + n + 1, stDone
	default:
		// More data than declared: the module answers +ERR=5.
		p.bad(ErrLengthMismatch, 0)
		p.discard = true
		return i + n, stDone
	}
	p.cmd = Command{Kind: CmdSend, Name: s[3:7], Addr: uint16(addr), Data: s[i : i+n]}
	return i + n + 1, stDone
}
