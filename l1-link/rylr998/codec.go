package rylr998

import (
	"bytes"
	"strconv"
)

// MTU is the largest datagram one AT+SEND carries.
const MTU = 240

// AirOverhead is what the module adds to every payload on the air: its
// guide says "the payload part will increase more 8 bytes than the actual
// data length", so a datagram of n bytes is n+8 bytes of LoRa payload.
const AirOverhead = 8

// MaxLine bounds what a parser holds. The longest line either side sends
// is an AT+SEND or +RCV of 240 bytes (under 280 bytes in all); anything
// longer without an end is garbage.
const MaxLine = 512

// Kind is the kind of a line the module sends.
type Kind uint8

// The lines a module sends.
const (
	KindOK      Kind = iota + 1 // +OK
	KindErr                     // +ERR=<n>
	KindReady                   // +READY (after a reset or power-up)
	KindReset                   // +RESET (AT+RESET accepted)
	KindFactory                 // +FACTORY (AT+FACTORY done)
	KindRCV                     // +RCV=<addr>,<len>,<data>,<rssi>,<snr>
	KindValue                   // +<NAME>=<value>: a query's answer, or +IPR=<rate>
)

var kindNames = [...]string{"", "OK", "ERR", "READY", "RESET", "FACTORY", "RCV", "VALUE"}

// String names the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "unknown"
}

// Response is one line from the module. Its slices point into the parser's
// buffer and are valid only during the callback that receives it.
type Response struct {
	Kind Kind
	Code ModuleError // KindErr
	// Name and Value of a KindValue line (+ADDRESS=5: "ADDRESS", "5").
	Name, Value []byte
	// KindRCV: the sender's address, the datagram and the signal.
	Src       uint16
	Data      []byte
	RSSI, SNR int
	// Line is the whole line without its end (for +RCV it holds raw data).
	Line []byte
}

// ParserStats counts what a parser has seen.
type ParserStats struct {
	Responses    uint64 // lines decoded
	Garbage      uint64 // runs of bytes skipped as not a module line
	GarbageBytes uint64 // bytes in those runs
}

// Parser decodes the byte stream from a module into Responses. It never
// panics and holds at most MaxLine bytes: bytes that do not form a line
// the module sends (noise, half a line, binary junk, an over-long line)
// are skipped and counted, and decoding resumes at the next '+', which
// starts every line the module sends. A +RCV (and the +SEND= that
// answers AT+SEND?) is read by its declared length, so its data may hold
// commas, CR, LF or text that looks like a response; the guide's spacing,
// one space after each comma, is taken too. The zero value is ready to
// use; not safe for concurrent use.
type Parser struct {
	buf   [MaxLine]byte
	n     int
	junk  bool // inside a run of skipped bytes
	stats ParserStats
	resp  Response
}

type status uint8

const (
	stDone status = iota
	stMore        // a valid prefix: wait for more bytes
	stBad         // not a module line
)

// Feed consumes b, calling emit for every complete line. emit must not
// call Feed or Idle.
func (p *Parser) Feed(b []byte, emit func(*Response)) {
	for len(b) > 0 {
		c := copy(p.buf[p.n:], b)
		p.n += c
		b = b[c:]
		p.drain(emit, false)
	}
}

// Idle tells the parser that the line has gone quiet: a line still
// incomplete will never complete (the module reset mid-line, say), so it is
// skipped as garbage and whatever follows it in the buffer is decoded.
func (p *Parser) Idle(emit func(*Response)) {
	if p.n > 0 {
		p.drain(emit, true)
	}
}

// Stats returns the counters.
func (p *Parser) Stats() ParserStats { return p.stats }

// Buffered returns the number of bytes held waiting for the rest of a line.
func (p *Parser) Buffered() int { return p.n }

// Reset drops buffered bytes.
func (p *Parser) Reset() { p.n = 0; p.junk = false }

func (p *Parser) skip(n int) {
	if !p.junk {
		p.junk = true
		p.stats.Garbage++
	}
	p.stats.GarbageBytes += uint64(n)
}

// drain decodes what the buffer holds; final treats an incomplete line as
// garbage.
func (p *Parser) drain(emit func(*Response), final bool) {
	off := 0
	for off < p.n {
		s := p.buf[off:p.n]
		switch s[0] {
		case '\r', '\n': // line ends and blank lines
			off++
			continue
		case '+':
			used, st := p.parse(s)
			if st == stMore && (final || (off == 0 && p.n == len(p.buf))) {
				st = stBad // never completes, or longer than any line
			}
			switch st {
			case stMore:
				copy(p.buf[:], s)
				p.n = len(s)
				return
			case stDone:
				p.junk = false
				p.stats.Responses++
				emit(&p.resp)
				off += used
				continue
			}
			k := 1 + nextStart(s[1:])
			p.skip(k)
			off += k
		default:
			k := nextStart(s)
			p.skip(k)
			off += k
		}
	}
	p.n = 0
}

// nextStart returns the index of the first byte in s that may start or
// end a line ('+', CR, LF), or len(s). Skipping stops there, so a skipped
// run is the same however the bytes were split.
func nextStart(s []byte) int {
	for i, c := range s {
		if c == '+' || c == '\r' || c == '\n' {
			return i
		}
	}
	return len(s)
}

var (
	pfxRCV  = []byte("+RCV=")
	pfxSEND = []byte("+SEND=")
	pfxERR  = []byte("+ERR=")
)

// parse decodes the line at the start of s (s[0] == '+') into p.resp.
func (p *Parser) parse(s []byte) (int, status) {
	for _, pfx := range [][]byte{pfxRCV, pfxSEND} {
		if len(s) < len(pfx) && bytes.HasPrefix(pfx, s) {
			return 0, stMore
		}
	}
	if bytes.HasPrefix(s, pfxRCV) {
		return p.parseRCV(s)
	}
	if bytes.HasPrefix(s, pfxSEND) {
		// +SEND=<addr>,<len>,<data> answers AT+SEND?: its data is read by
		// its length, as +RCV's. Only a line that does not start
		// "<addr>,<len>," is read as a plain value line, so that no plain
		// value could be read otherwise once written back.
		if _, _, _, st := dataHead(s, len(pfxSEND)); st != stBad {
			return p.parseSEND(s)
		}
	}
	return p.parsePlain(s)
}

// parsePlain decodes a line other than +RCV: +OK, +ERR=n, +NAME=value...
func (p *Parser) parsePlain(s []byte) (int, status) {
	end := lineEnd(s)
	if end < 0 && len(s) <= maxPlainLine {
		return 0, stMore
	}
	if end < 0 || end > maxPlainLine {
		return 0, stBad // decided the same however the bytes were split
	}
	line := s[:end]
	r := &p.resp
	*r = Response{Line: line}
	switch string(line) {
	case "+OK":
		r.Kind = KindOK
	case "+READY":
		r.Kind = KindReady
	case "+RESET":
		r.Kind = KindReset
	case "+FACTORY":
		r.Kind = KindFactory
	default:
		if bytes.HasPrefix(line, pfxERR) {
			code, ok := atoiStrict(line[len(pfxERR):], 3)
			if !ok {
				return 0, stBad
			}
			r.Kind, r.Code = KindErr, ModuleError(code)
			break
		}
		eq := bytes.IndexByte(line, '=')
		if eq < 2 || !isName(line[1:eq]) || !isPrintable(line[eq+1:]) {
			return 0, stBad
		}
		r.Kind, r.Name, r.Value = KindValue, line[1:eq], line[eq+1:]
	}
	return end + 1, stDone
}

// maxPlainLine bounds a line other than +RCV and +SEND (the longest is a
// +UID or +VER value).
const maxPlainLine = 300

// dataHead reads "<addr>,<len>," after a prefix: the address, the data's
// declared length and where the field after it starts.
func dataHead(s []byte, i int) (addr, n, at int, st status) {
	addr, i, st = number(s, i, false, 5)
	if st != stDone {
		return 0, 0, 0, st
	}
	if addr > 65535 {
		return 0, 0, 0, stBad
	}
	if i, st = expect(s, i, ','); st != stDone {
		return 0, 0, 0, st
	}
	n, i, st = number(s, i, false, 3)
	if st != stDone {
		return 0, 0, 0, st
	}
	if n > MTU {
		return 0, 0, 0, stBad
	}
	if i, st = expect(s, i, ','); st != stDone {
		return 0, 0, 0, st
	}
	return addr, n, i, stDone
}

// dataField finds the n bytes of data that start at s[at] or, after the
// one space the guide prints after each comma ("+RCV=50, 5, HELLO, -99,
// 40"), at s[at+1], and hands what follows them to tail. The declared
// length governs, and data may itself start with a space or hold commas:
// the reading without the space is taken whenever it is whole, the other
// only when the first cannot be. For +RCV at most one can be whole (the
// field after the data is a comma followed by a digit, a sign or a space,
// never by another comma), and either way the choice is made only once
// the first reading is decided, so it does not depend on how the bytes
// were split.
func dataField(s []byte, at, n int, tail func(s []byte, i int) (int, status)) (data []byte, used int, st status) {
	read := func(from int) (int, status) {
		if len(s) < from+n {
			return 0, stMore
		}
		return tail(s, from+n)
	}
	usedA, stA := read(at)
	if stA == stDone {
		return s[at : at+n], usedA, stDone
	}
	stB := stBad
	if len(s) <= at {
		stB = stMore
	} else if s[at] == ' ' {
		var usedB int
		if usedB, stB = read(at + 1); stB == stDone {
			return s[at+1 : at+1+n], usedB, stDone
		}
	}
	if stA == stMore || stB == stMore {
		return nil, 0, stMore
	}
	return nil, 0, stBad
}

// lineEndAt expects the end of a line at s[i].
func lineEndAt(s []byte, i int) (int, status) {
	if i >= len(s) {
		return 0, stMore
	}
	if s[i] != '\r' && s[i] != '\n' {
		return 0, stBad
	}
	return i + 1, stDone
}

func (p *Parser) parseSEND(s []byte) (int, status) {
	_, n, at, st := dataHead(s, len(pfxSEND))
	if st != stDone {
		return 0, st
	}
	_, used, st := dataField(s, at, n, lineEndAt)
	if st != stDone {
		return 0, st
	}
	p.resp = Response{Kind: KindValue, Name: s[1:5], Value: s[len(pfxSEND) : used-1], Line: s[:used-1]}
	return used, stDone
}

func (p *Parser) parseRCV(s []byte) (int, status) {
	src, n, at, st := dataHead(s, len(pfxRCV))
	if st != stDone {
		return 0, st
	}
	var rssi, snr int
	tail := func(s []byte, i int) (int, status) {
		var st status
		if i, st = expect(s, i, ','); st != stDone {
			return 0, st
		}
		if rssi, i, st = number(s, i, true, 4); st != stDone {
			return 0, st
		}
		if i, st = expect(s, i, ','); st != stDone {
			return 0, st
		}
		if snr, i, st = number(s, i, true, 4); st != stDone {
			return 0, st
		}
		return lineEndAt(s, i)
	}
	data, used, st := dataField(s, at, n, tail)
	if st != stDone {
		return 0, st
	}
	p.resp = Response{Kind: KindRCV, Src: uint16(src), Data: data, RSSI: rssi, SNR: snr, Line: s[:used-1]}
	return used, stDone
}

// number reads an optionally signed decimal of at most maxDigits digits at
// s[i:], after at most one space (the guide's examples show "-99, 40").
func number(s []byte, i int, signed bool, maxDigits int) (int, int, status) {
	if i < len(s) && s[i] == ' ' {
		i++
	}
	neg := false
	if signed && i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	v, digits := 0, 0
	for ; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			break
		}
		digits++
		if digits > maxDigits {
			return 0, i, stBad
		}
		v = v*10 + int(c-'0')
	}
	if i >= len(s) {
		return 0, i, stMore // more digits may follow
	}
	if digits == 0 {
		return 0, i, stBad
	}
	if neg {
		v = -v
	}
	return v, i, stDone
}

func expect(s []byte, i int, c byte) (int, status) {
	if i >= len(s) {
		return i, stMore
	}
	if s[i] != c {
		return i, stBad
	}
	return i + 1, stDone
}

// lineEnd returns the index of the first CR or LF in s, or -1.
func lineEnd(s []byte) int {
	for i, c := range s {
		if c == '\r' || c == '\n' {
			return i
		}
	}
	return -1
}

// atoiStrict parses 1..maxDigits decimal digits and nothing else.
func atoiStrict(s []byte, maxDigits int) (int, bool) {
	if len(s) == 0 || len(s) > maxDigits {
		return 0, false
	}
	v := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func isName(s []byte) bool {
	if len(s) == 0 || len(s) > 16 {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && c != '_' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isPrintable(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// Encoders. They append to b and return the extended slice, so a caller
// reusing a buffer allocates nothing.

// AppendSend appends AT+SEND=<addr>,<len>,<data> CR LF; data goes raw.
func AppendSend(b []byte, addr uint16, data []byte) []byte {
	b = append(b, "AT+SEND="...)
	b = strconv.AppendUint(b, uint64(addr), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(len(data)), 10)
	b = append(b, ',')
	b = append(b, data...)
	return append(b, '\r', '\n')
}

// AppendCommand appends cmd (such as "AT+ADDRESS=5") and CR LF.
func AppendCommand(b []byte, cmd string) []byte {
	b = append(b, cmd...)
	return append(b, '\r', '\n')
}

// AppendOK appends +OK CR LF.
func AppendOK(b []byte) []byte { return append(b, "+OK\r\n"...) }

// AppendErr appends +ERR=<code> CR LF.
func AppendErr(b []byte, code ModuleError) []byte {
	b = append(b, "+ERR="...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, '\r', '\n')
}

// AppendValue appends +<name>=<value> CR LF.
func AppendValue(b []byte, name, value string) []byte {
	b = append(b, '+')
	b = append(b, name...)
	b = append(b, '=')
	b = append(b, value...)
	return append(b, '\r', '\n')
}

// AppendRCV appends +RCV=<src>,<len>,<data>,<rssi>,<snr> CR LF.
func AppendRCV(b []byte, src uint16, data []byte, rssi, snr int) []byte {
	b = append(b, "+RCV="...)
	b = strconv.AppendUint(b, uint64(src), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(len(data)), 10)
	b = append(b, ',')
	b = append(b, data...)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(rssi), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(snr), 10)
	return append(b, '\r', '\n')
}
