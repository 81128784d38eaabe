// Package rylr998 is the link to a REYAX RYLR-998 LoRa module on a serial
// port: the AT command codec (both directions, so that the module emulator
// shares it) and a link.Link driver that configures the module, sends one
// datagram per AT+SEND and hands up every +RCV.
//
// # Framing
//
// A module may end AT+SEND's data at the first CR LF (its guide calls the
// data ASCII), so datagrams never go raw: Config.Framing picks how they go
// in the data field (frame.go). The default, FramePacket, is the mesh's
// rule for LoRa (docs/protocol.md): a packet's leading version byte (0) is
// left out and the rest LF-free encoded, which costs nothing, so a
// 240-byte packet fits; FrameBytes carries any bytes (at most 239);
// FrameNone puts them raw, as third-party clients do.
//
// # Threading
//
// One goroutine (the owner) writes to the port and holds the command
// state: one command is in flight at a time, each with a timeout. A reader
// goroutine feeds the port's bytes to a Parser; +RCV lines, which the
// module sends whenever a frame arrives, go straight to the clock's loop
// (copied), and every other line goes to the owner, so an unsolicited
// +RCV is never taken for a command's answer. Timeouts, airtime and the
// duty-cycle budget are measured on the injected clock, which must be
// running (a clock.Loop whose Run has started) before Open: Open waits for
// the configuration, whose timeouts are timers on that clock.
//
// # Recovery
//
// The module reports a reset with +READY. Whenever +READY comes when no
// AT+RESET asked for it, or any command times out, the driver marks the
// module unconfigured and re-runs the configuration (AT, then each
// setting: queried, and written only if it differs, to spare the module's
// flash). Datagrams wait in the queue meanwhile; if a configuration attempt
// fails, the queued datagrams are completed with its error and the next
// attempt comes after a back-off (the command timeout, doubling to 30 s).
// Garbage on the line is skipped by the parser and counted as
// DropMalformed.
package rylr998

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
)

// Defaults for a zero Config field.
const (
	DefaultBaud           = 115200
	DefaultNetworkID      = 18
	DefaultCommandTimeout = time.Second
	DefaultTxQueue        = 4
	// DefaultTxGuard is added to a datagram's airtime before the next
	// AT+SEND, for the module's own processing.
	DefaultTxGuard = 2 * time.Millisecond
)

// Bauds are the UART rates AT+IPR accepts.
var Bauds = []int{300, 1200, 4800, 9600, 19200, 28800, 38400, 57600, 115200}

// Config says which port the module is on and how to set it up.
type Config struct {
	// Port is the serial device (/dev/serial0, /dev/ttyUSB0...), opened
	// with Baud, 8N1. Ignored when Conn is set.
	Port string
	// Conn is an already-open connection to the module (a tty as an
	// *os.File, say); the link owns it and closes it on Close.
	Conn io.ReadWriteCloser
	// Baud is the port's rate (default 115200, the module's default). The
	// driver does not change the module's rate (AT+IPR is kept in flash).
	Baud int
	// Address is the module's address, 1..65535 (0 is broadcast, which a
	// link cannot have as its own).
	Address uint16
	// NetworkID is 3..15 or 18 (default 18); only modules on the same id
	// hear each other.
	NetworkID int
	// Band is the centre frequency in Hz (868100000...); 0 leaves the
	// module's.
	Band int
	// Params are the modulation settings (default lora.Default). The module
	// takes SF 5..11, bandwidths 125, 250 and 500 kHz (and at most SF9,
	// SF10, SF11 on them), CR 1..4, and a preamble of 4..24 on network 18
	// or exactly 12 on any other.
	Params lora.Params
	// Password is the domain password AT+CPIN sets: 8 hex digits,
	// 00000001..FFFFFFFF (the RYLR998 guide; the module answers +ERR=5 to
	// another length). The module keeps it in RAM only, so the driver sets
	// it again after every reset. Empty leaves the module's.
	Password string
	// TxPower is the output power in dBm, 1..22 (AT+CRFOP); 0 leaves the
	// module's (22 from the factory; the guide says below 14 for CE).
	TxPower int
	// Clock is the clock the link runs on (required, and running).
	Clock clock.Clock
	// CommandTimeout bounds each command (default 1 s).
	CommandTimeout time.Duration
	// TxQueue is the number of datagrams accepted and not yet done
	// (default 4).
	TxQueue int
	// TxGuard is the pause after a datagram's airtime before the next
	// AT+SEND (default DefaultTxGuard).
	TxGuard time.Duration
	// Framing is how datagrams go in AT+SEND's data field (default
	// FramePacket: mesh packets, up to 240 bytes, each starting with 0x00).
	// Every module on the network must use the same.
	Framing Framing
	// DutyCycle is the transmit budget (zero: none). EU868 sub-band g1
	// (868.0–868.6 MHz): Fraction 0.01, Window an hour; g3 (869.4–869.65):
	// 0.10.
	DutyCycle lora.DutyCycle
}

// Link is a RYLR-998 module as a link.Link. It also implements
// link.AirtimeEstimator and link.Sleeper.
type Link struct {
	link.Base
	lp     *link.Port
	cfg    Config
	clk    clock.Clock
	port   io.ReadWriteCloser
	info   link.Info
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	queue    []*outgoing
	inflight int // accepted and not yet TxDone
	dc       lora.DutyCycle
	reserved time.Duration // airtime of accepted datagrams not yet sent

	awakeWant atomic.Bool
	resets    atomic.Uint64 // unexpected +READY seen
	timeouts  atomic.Uint64
	configs   atomic.Uint64 // configurations completed
	strays    atomic.Uint64 // answers with no command waiting for them
	rcvLines  atomic.Uint64 // +RCV lines read
	badFrames atomic.Uint64 // +RCV lines whose data is not a frame
	lineResp  atomic.Uint64 // the parser's counters, copied after each read
	lineJunk  atomic.Uint64
	lineJunkB atomic.Uint64

	kick   chan struct{}
	wake   chan struct{}
	events chan event
	opened chan error

	ownerDone, readerDone chan struct{}

	// Owned by the owner goroutine.
	cur         *command
	curDeadline time.Time
	needConfig  bool
	script      []step
	openPending bool
	retryAt     time.Time
	stepAt      time.Time // a configuration step refused as busy waits until then
	backoff     time.Duration
	radioFree   time.Time
	awake       bool // what the module was last told
	portErr     error
	wbuf        []byte
}

type outgoing struct {
	tag     link.Tag
	to      uint16
	n       int    // the datagram's length
	frame   []byte // what goes in the data field
	air     time.Duration
	retries int
}

// event is a non-+RCV line (or a port failure) from the reader.
type event struct {
	kind  Kind
	code  ModuleError
	name  string
	value string
	err   error // the port failed
}

type expectKind uint8

const (
	expectOK    expectKind = iota // +OK
	expectValue                   // +<name>=<value>
)

type command struct {
	line   []byte
	label  string // for errors: the command without data
	expect expectKind
	name   string // expectValue: which +NAME=
	done   func(value string, err error)
}

// step is one command of the configuration. With query set it first asks
// the module and writes set only if want(value) is false.
type step struct {
	line     string
	query    string // AT+NAME?: ask first
	name     string
	want     func(value string) bool
	attempts int
	busy     int // times refused with +ERR=17
}

// Open opens the port, configures the module and returns the link once the
// module has taken every setting.
func Open(cfg Config) (*Link, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	port := cfg.Conn
	if port == nil {
		if cfg.Port == "" {
			return nil, fmt.Errorf("%w: neither Port nor Conn given", ErrConfig)
		}
		// Lines the module sent before anyone listened are stale: OpenPort
		// flushes them.
		p, err := OpenPort(cfg.Port, cfg.Baud)
		if err != nil {
			return nil, err
		}
		port = p
	}
	lp := link.NewPort(cfg.Clock, 0)
	l := &Link{
		Base: lp.Base(), lp: lp,
		cfg: cfg, clk: cfg.Clock, port: port,
		kick: make(chan struct{}, 1), wake: make(chan struct{}, 1),
		events: make(chan event, 16), opened: make(chan error, 1),
		ownerDone: make(chan struct{}), readerDone: make(chan struct{}),
		dc: cfg.DutyCycle, needConfig: true, openPending: true,
		backoff: cfg.CommandTimeout, awake: true,
	}
	l.awakeWant.Store(true)
	l.dc = lora.DutyCycle{Fraction: cfg.DutyCycle.Fraction, Window: cfg.DutyCycle.Window}
	caps := link.CapBroadcast | link.CapSleep | link.CapNoRxDest
	if l.dc.Enabled() {
		caps |= link.CapDutyCycle
	}
	l.info = link.Info{
		Name: "rylr998", Addr: Addr(cfg.Address), MTU: cfg.Framing.MaxDatagram(),
		Bitrate: Bitrate, Schemas: link.SchemasLoRa, Caps: caps,
		TxQueue: cfg.TxQueue, DutyCycle: l.dc.Fraction, DutyWindow: l.dc.Window,
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.reader()
	go l.owner()
	if err := <-l.opened; err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (c *Config) normalize() error {
	if c.Clock == nil {
		return fmt.Errorf("%w: no Clock", ErrConfig)
	}
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.Conn == nil && !validBaud(c.Baud) {
		return fmt.Errorf("%w: baud %d is not one the module takes", ErrConfig, c.Baud)
	}
	if c.Address == 0 {
		return fmt.Errorf("%w: address 0 is broadcast; give the module an address 1..65535", ErrConfig)
	}
	if c.NetworkID == 0 {
		c.NetworkID = DefaultNetworkID
	}
	if !ValidNetworkID(c.NetworkID) {
		return fmt.Errorf("%w: network id %d not in 3..15 or 18", ErrConfig, c.NetworkID)
	}
	if c.Band < 0 {
		return fmt.Errorf("%w: band %d Hz", ErrConfig, c.Band)
	}
	if c.Params == (lora.Params{}) {
		c.Params = lora.Default
	}
	if _, err := ParamsCode(c.Params, c.NetworkID); err != nil {
		return err
	}
	if c.Password != "" && !ValidPassword(c.Password) {
		return fmt.Errorf("%w: password %q is not 8 hex digits, 00000001..FFFFFFFF", ErrConfig, c.Password)
	}
	if !c.Framing.valid() {
		return fmt.Errorf("%w: framing %d", ErrConfig, int(c.Framing))
	}
	if c.TxPower < 0 || c.TxPower > 22 {
		return fmt.Errorf("%w: TX power %d dBm not in 0..22", ErrConfig, c.TxPower)
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.TxQueue <= 0 {
		c.TxQueue = DefaultTxQueue
	}
	if c.TxGuard == 0 {
		c.TxGuard = DefaultTxGuard
	}
	return nil
}

func validBaud(b int) bool {
	for _, x := range Bauds {
		if x == b {
			return true
		}
	}
	return false
}

// ValidNetworkID reports whether the module takes id (3..15 or 18).
func ValidNetworkID(id int) bool { return (id >= 3 && id <= 15) || id == 18 }

// ValidPassword reports whether s is a password AT+CPIN takes: 8 hex
// digits, not all zero (00000001..FFFFFFFF). The 32-digit passwords of
// older REYAX modules are refused: an RYLR998 answers them +ERR=5.
func ValidPassword(s string) bool {
	if len(s) != 8 {
		return false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return false
	}
	for _, c := range b {
		if c != 0 {
			return true
		}
	}
	return false
}

// BandwidthCode returns the AT+PARAMETER code of a bandwidth in Hz (7, 8,
// 9 for 125, 250, 500 kHz), or -1 if the module does not take it.
func BandwidthCode(hz int) int {
	for code := 7; code <= 9; code++ {
		if lora.Bandwidths[code] == hz {
			return code
		}
	}
	return -1
}

// ParamsCode checks p against what the module takes on network netID and
// returns the AT+PARAMETER arguments, "9,7,1,12".
func ParamsCode(p lora.Params, netID int) (string, error) {
	if err := p.Validate(); err != nil {
		return "", fmt.Errorf("%w: %v", ErrConfig, err)
	}
	bw := BandwidthCode(p.Bandwidth)
	if bw < 0 {
		return "", fmt.Errorf("%w: bandwidth %d Hz: the module takes 125, 250 or 500 kHz", ErrConfig, p.Bandwidth)
	}
	if maxSF := bw + 2; p.SF < 5 || p.SF > maxSF {
		return "", fmt.Errorf("%w: SF%d at %d kHz: the module takes SF5..SF%d there", ErrConfig, p.SF, p.Bandwidth/1000, maxSF)
	}
	if p.ImplicitHeader || p.NoCRC || p.LDRO != nil {
		return "", fmt.Errorf("%w: the module always uses an explicit header, a CRC and its own LDRO choice", ErrConfig)
	}
	if netID == 18 {
		if p.Preamble < 4 || p.Preamble > 24 {
			return "", fmt.Errorf("%w: preamble %d not in 4..24", ErrConfig, p.Preamble)
		}
	} else if p.Preamble != 12 {
		return "", fmt.Errorf("%w: preamble %d: on network ids other than 18 the module takes only 12", ErrConfig, p.Preamble)
	}
	return fmt.Sprintf("%d,%d,%d,%d", p.SF, bw, p.CR, p.Preamble), nil
}

// Info describes the link.
func (l *Link) Info() link.Info { return l.info }

// Params returns the modulation the module was set to.
func (l *Link) Params() lora.Params { return l.cfg.Params }

// Airtime is the time on air of a datagram of n bytes: the Semtech formula
// for the module's parameters, over its frame (n bytes, n+1 with
// FrameBytes) plus the module's 8 bytes.
func (l *Link) Airtime(n int) time.Duration {
	return l.cfg.Params.Airtime(l.cfg.Framing.FrameLen(n) + AirOverhead)
}

// DutyCycle returns the airtime spent or committed (accepted, not yet
// sent) in the current window, and the budget per window (0: no limit).
func (l *Link) DutyCycle() (used, budget time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.dc.Enabled() {
		return 0, 0
	}
	return l.dc.Used(l.clk.Now()) + l.reserved, l.dc.Budget()
}

// Health is what the driver has seen of the module.
type Health struct {
	Configs   uint64      // configurations completed (the first, then one per recovery)
	Resets    uint64      // +READY the driver did not ask for
	Timeouts  uint64      // commands the module did not answer
	Strays    uint64      // answers with no command waiting
	Frames    uint64      // +RCV lines read (each handed to the loop, or counted in BadFrames)
	BadFrames uint64      // +RCV lines whose data is not a frame of the link's framing (DropMalformed)
	Line      ParserStats // the serial line's parser
}

// Health returns the counters of the module's behaviour.
func (l *Link) Health() Health {
	return Health{
		Configs: l.configs.Load(), Resets: l.resets.Load(), Timeouts: l.timeouts.Load(),
		Strays: l.strays.Load(), Frames: l.rcvLines.Load(), BadFrames: l.badFrames.Load(),
		Line: ParserStats{Responses: l.lineResp.Load(), Garbage: l.lineJunk.Load(), GarbageBytes: l.lineJunkB.Load()},
	}
}

// SetAwake puts the module to sleep (AT+MODE=1) or wakes it (AT+MODE=0).
// A sleeping RYLR-998 hears nothing; by its guide any activity on its UART
// wakes it, so the driver wakes it to send and puts it back to sleep when
// the datagram has left.
func (l *Link) SetAwake(on bool) {
	l.awakeWant.Store(on)
	l.poke(l.kick)
}

// Awake reports whether the receiver is meant to be on.
func (l *Link) Awake() bool { return l.awakeWant.Load() }

// Send queues one datagram for dst (an Addr or link.Broadcast).
func (l *Link) Send(dst link.Addr, data []byte, tag link.Tag) error {
	a, _, err := link.Dest[Addr](dst)
	if err != nil {
		return err
	}
	to := uint16(a) // 0 for a broadcast
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return net.ErrClosed
	}
	if len(data) > l.info.MTU {
		l.lp.Drop(link.DropOversize)
		return link.ErrTooBig
	}
	frame, err := l.cfg.Framing.AppendFrame(nil, data)
	if err != nil {
		// FramePacket and a datagram that is not a packet.
		l.lp.Drop(link.DropTxError)
		return err
	}
	if l.inflight >= l.cfg.TxQueue {
		l.lp.Drop(link.DropQueueFull)
		return link.ErrBusy
	}
	air := l.Airtime(len(data))
	if l.dc.Enabled() && !l.dc.Allow(l.clk.Now(), l.reserved+air) {
		l.lp.Drop(link.DropDutyCycle)
		return link.ErrDutyCycle
	}
	l.inflight++
	l.reserved += air
	l.queue = append(l.queue, &outgoing{tag: tag, to: to, n: len(data), frame: frame, air: air})
	l.poke(l.kick)
	return nil
}

// Close stops the link and closes the port. Datagrams still queued are
// completed with net.ErrClosed.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return net.ErrClosed
	}
	l.closed = true
	l.lp.SetClosed()
	l.mu.Unlock()
	l.cancel()
	err := l.port.Close()
	<-l.ownerDone
	<-l.readerDone
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

func (l *Link) poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// after wakes the owner once d has passed on the clock.
func (l *Link) after(d time.Duration) {
	l.clk.AfterFunc(d, func() { l.poke(l.wake) })
}

// reader feeds the port to the parser.
func (l *Link) reader() {
	defer close(l.readerDone)
	var p Parser
	var lastGarbage uint64
	emit := func(r *Response) { l.onResponse(r) }
	// Where the port can time out a read, a quiet line flushes a line
	// that will never complete (the module reset in the middle of it).
	// Quiet means 20 byte times, at least 20 ms: the module writes a line
	// in one go. (A wall-clock timeout: it is the serial line's timing.)
	idle := max(20*time.Millisecond, time.Duration(200*int64(time.Second)/int64(l.cfg.Baud)))
	tp, canTimeout := l.port.(interface{ SetReadTimeout(time.Duration) error })
	if canTimeout && tp.SetReadTimeout(idle) != nil {
		canTimeout = false
	}
	buf := make([]byte, 512)
	for {
		n, err := l.port.Read(buf)
		if n > 0 {
			p.Feed(buf[:n], emit)
		} else if err == nil && canTimeout {
			p.Idle(emit)
		}
		st := p.Stats()
		for ; lastGarbage < st.Garbage; lastGarbage++ {
			l.lp.Drop(link.DropMalformed)
		}
		l.lineResp.Store(st.Responses)
		l.lineJunk.Store(st.Garbage)
		l.lineJunkB.Store(st.GarbageBytes)
		if err != nil {
			if l.ctx.Err() == nil {
				select {
				case l.events <- event{err: err}:
				case <-l.ctx.Done():
				}
			}
			return
		}
	}
}

// onResponse runs on the reader goroutine.
func (l *Link) onResponse(r *Response) {
	if r.Kind == KindRCV {
		data, err := l.cfg.Framing.DecodeFrame(nil, r.Data)
		if err != nil {
			l.lp.Drop(link.DropMalformed)
			l.badFrames.Add(1)
			l.rcvLines.Add(1)
			return
		}
		// The module does not say whether a frame was sent to its address
		// or to 0, so Frame.Broadcast is false (link.CapNoRxDest).
		l.lp.HandUp(link.Frame{
			Src: Addr(r.Src), Data: data,
			Time: l.clk.Now(), HasSignal: true, RSSI: r.RSSI, SNR: r.SNR,
		})
		l.rcvLines.Add(1) // after the hand-over: a count seen means it is queued (or dropped)
		return
	}
	ev := event{kind: r.Kind, code: r.Code}
	if r.Kind == KindValue {
		ev.name, ev.value = string(r.Name), string(r.Value)
	}
	select {
	case l.events <- ev:
	case <-l.ctx.Done():
	}
}

// txDone runs on the clock's loop.
func (l *Link) txDone(tag link.Tag, err error) {
	l.mu.Lock()
	l.inflight--
	l.mu.Unlock()
	l.lp.CompleteNow(tag, err)
}

// owner is the goroutine that writes to the port.
func (l *Link) owner() {
	defer close(l.ownerDone)
	defer l.shutdown()
	for {
		l.advance()
		select {
		case <-l.ctx.Done():
			return
		case ev := <-l.events:
			l.onEvent(ev)
		case <-l.kick:
		case <-l.wake:
		}
	}
}

func (l *Link) shutdown() {
	if c := l.cur; c != nil {
		l.cur = nil
		c.done("", net.ErrClosed)
	}
	l.failQueue(net.ErrClosed)
	if l.openPending {
		l.openPending = false
		l.opened <- net.ErrClosed
	}
}

// advance starts whatever can start now.
func (l *Link) advance() {
	now := l.clk.Now()
	if c := l.cur; c != nil {
		if now.Before(l.curDeadline) {
			return
		}
		l.cur = nil
		l.timeouts.Add(1)
		l.needConfig = true
		c.done("", &CommandError{Cmd: c.label, Err: ErrTimeout})
		if l.cur != nil {
			return
		}
	}
	if l.portErr != nil {
		l.failQueue(l.portErr)
		return
	}
	if l.script != nil {
		if now.Before(l.stepAt) {
			l.after(l.stepAt.Sub(now))
			return
		}
		l.nextStep()
		return
	}
	if l.needConfig {
		if now.Before(l.retryAt) {
			l.after(l.retryAt.Sub(now))
			return
		}
		l.startConfig()
		return
	}
	if now.Before(l.radioFree) {
		l.after(l.radioFree.Sub(now))
		return
	}
	if want := l.awakeWant.Load(); want != l.awake {
		l.setMode(want)
		return
	}
	l.mu.Lock()
	var dg *outgoing
	if len(l.queue) > 0 {
		dg = l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
	}
	l.mu.Unlock()
	if dg != nil {
		l.startSend(dg)
	}
}

// issue writes a command and waits for its answer.
func (l *Link) issue(c *command) {
	l.cur = c
	l.curDeadline = l.clk.Now().Add(l.cfg.CommandTimeout)
	l.after(l.cfg.CommandTimeout)
	if _, err := l.port.Write(c.line); err != nil {
		l.cur = nil
		l.portErr = err
		c.done("", &CommandError{Cmd: c.label, Err: err})
	}
}

func (l *Link) onEvent(ev event) {
	if ev.err != nil {
		l.portErr = ev.err
		if c := l.cur; c != nil {
			l.cur = nil
			c.done("", &CommandError{Cmd: c.label, Err: ev.err})
		}
		return
	}
	c := l.cur
	switch ev.kind {
	case KindReady:
		// A reset nobody asked for: whatever was set may be gone, so the
		// configuration starts again from the top, at once.
		l.resets.Add(1)
		l.needConfig = true
		l.script = nil
		l.retryAt = time.Time{}
		l.awake = true // a module starts in transceiver mode
		if c != nil {
			l.cur = nil
			c.done("", &CommandError{Cmd: c.label, Err: ErrReset})
		}
		return
	case KindOK:
		if c != nil && c.expect == expectOK {
			l.cur = nil
			c.done("", nil)
			return
		}
	case KindErr:
		if c != nil {
			l.cur = nil
			c.done("", &CommandError{Cmd: c.label, Err: ev.code})
			return
		}
	case KindValue:
		if c != nil && c.expect == expectValue && sameName(ev.name, c.name) {
			l.cur = nil
			c.done(ev.value, nil)
			return
		}
	}
	l.strays.Add(1)
}

// sameName matches a query's answer; the guide prints AT+NETWORKID? as
// +NETWORKID= in one place and +NETWORK= in another.
func sameName(got, want string) bool {
	return got == want || (want == "NETWORKID" && got == "NETWORK")
}

// Configuration.

func (l *Link) startConfig() {
	c := &l.cfg
	steps := []step{
		{line: "AT", attempts: 3},
		{line: "AT+MODE=0"},
		{query: "AT+ADDRESS?", name: "ADDRESS", line: "AT+ADDRESS=" + strconv.Itoa(int(c.Address)), want: intIs(int(c.Address))},
		{query: "AT+NETWORKID?", name: "NETWORKID", line: "AT+NETWORKID=" + strconv.Itoa(c.NetworkID), want: intIs(c.NetworkID)},
	}
	if c.Band != 0 {
		steps = append(steps, step{query: "AT+BAND?", name: "BAND", line: "AT+BAND=" + strconv.Itoa(c.Band), want: intIs(c.Band)})
	}
	pc, _ := ParamsCode(c.Params, c.NetworkID)
	steps = append(steps, step{query: "AT+PARAMETER?", name: "PARAMETER", line: "AT+PARAMETER=" + pc, want: intsAre(pc)})
	if c.TxPower > 0 {
		steps = append(steps, step{query: "AT+CRFOP?", name: "CRFOP", line: "AT+CRFOP=" + strconv.Itoa(c.TxPower), want: intIs(c.TxPower)})
	}
	if c.Password != "" {
		// The module keeps the password in RAM only and forgets it at a
		// reset: it is set at every configuration (no query first).
		steps = append(steps, step{line: "AT+CPIN=" + strings.ToUpper(c.Password)})
	}
	if !l.awakeWant.Load() {
		steps = append(steps, step{line: "AT+MODE=1"})
	}
	l.script = steps
	l.awake = true
	l.nextStep()
}

func intIs(want int) func(string) bool {
	return func(v string) bool {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		return err == nil && n == want
	}
}

// intsAre compares comma-separated integers, ignoring spaces.
func intsAre(want string) func(string) bool {
	return func(v string) bool {
		a, b := strings.Split(want, ","), strings.Split(v, ",")
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			x, err1 := strconv.Atoi(strings.TrimSpace(a[i]))
			y, err2 := strconv.Atoi(strings.TrimSpace(b[i]))
			if err1 != nil || err2 != nil || x != y {
				return false
			}
		}
		return true
	}
}

// nextStep issues the configuration's next command, or finishes it.
func (l *Link) nextStep() {
	if len(l.script) == 0 {
		l.script = nil
		l.needConfig = false
		l.backoff = l.cfg.CommandTimeout
		l.awake = l.awakeWant.Load()
		l.configs.Add(1)
		if l.openPending {
			l.openPending = false
			l.opened <- nil
		}
		l.poke(l.kick)
		return
	}
	s := &l.script[0]
	if s.query != "" {
		l.issue(&command{line: AppendCommand(nil, s.query), label: s.query, expect: expectValue, name: s.name, done: func(v string, err error) {
			if err != nil {
				l.configFailed(err)
				return
			}
			if s.want(v) {
				l.script = l.script[1:]
			} else {
				s.query = "" // write it
			}
			l.poke(l.kick)
		}})
		return
	}
	l.issue(&command{line: AppendCommand(nil, s.line), label: s.line, done: func(_ string, err error) {
		if err != nil {
			if errors.Is(err, ErrTxNotCompleted) && s.busy < maxBusyRetries {
				// The radio is still sending (a datagram whose +OK came
				// too late): the same step again shortly.
				s.busy++
				l.stepAt = l.clk.Now().Add(l.cfg.TxGuard + time.Millisecond)
				l.poke(l.kick)
				return
			}
			if s.attempts > 1 && !errors.Is(err, net.ErrClosed) && l.portErr == nil {
				s.attempts--
				l.poke(l.kick)
				return
			}
			l.configFailed(err)
			return
		}
		l.script = l.script[1:]
		l.poke(l.kick)
	}})
}

// configFailed ends a configuration attempt: queued datagrams fail with the
// error and the next attempt waits for the back-off.
func (l *Link) configFailed(err error) {
	if l.script == nil {
		return // a reset already restarted it
	}
	l.script = nil
	l.needConfig = true
	l.retryAt = l.clk.Now().Add(l.backoff)
	l.backoff = min(2*l.backoff, 30*time.Second)
	if l.openPending {
		l.openPending = false
		l.opened <- fmt.Errorf("rylr998: configuring the module: %w", err)
		return
	}
	l.failQueue(err)
}

// failQueue completes every queued datagram with err.
func (l *Link) failQueue(err error) {
	l.mu.Lock()
	q := l.queue
	l.queue = nil
	for _, dg := range q {
		l.reserved -= dg.air
	}
	l.mu.Unlock()
	for _, dg := range q {
		l.lp.Drop(link.DropTxError)
		l.clk.AfterFunc(0, func() { l.txDone(dg.tag, err) })
	}
}

func (l *Link) setMode(awake bool) {
	line := "AT+MODE=1"
	if awake {
		line = "AT+MODE=0"
	}
	l.issue(&command{line: AppendCommand(nil, line), label: line, done: func(_ string, err error) {
		if err == nil {
			l.awake = awake
			return
		}
		// Still transmitting (+ERR=17): try again shortly; anything else:
		// not before a command timeout.
		wait := l.cfg.CommandTimeout
		if errors.Is(err, ErrTxNotCompleted) {
			wait = l.cfg.TxGuard + time.Millisecond
		}
		l.radioFree = l.clk.Now().Add(wait)
	}})
}

// Sending.

const maxBusyRetries = 50

func (l *Link) startSend(dg *outgoing) {
	l.wbuf = AppendSend(l.wbuf[:0], dg.to, dg.frame)
	label := "AT+SEND=" + strconv.Itoa(int(dg.to)) + "," + strconv.Itoa(len(dg.frame))
	l.issue(&command{line: l.wbuf, label: label, done: func(_ string, err error) { l.sendDone(dg, err) }})
}

func (l *Link) sendDone(dg *outgoing, err error) {
	now := l.clk.Now()
	if err == nil {
		air := l.Airtime(dg.n)
		l.lp.Tx(dg.n, air)
		l.mu.Lock()
		l.reserved -= dg.air
		l.dc.Spend(now, air)
		l.mu.Unlock()
		l.radioFree = now.Add(air + l.cfg.TxGuard)
		// Any UART traffic wakes a sleeping module: after the datagram,
		// advance puts it back to sleep.
		l.awake = true
		l.clk.AfterFunc(air, func() { l.txDone(dg.tag, nil) })
		return
	}
	if errors.Is(err, ErrTxNotCompleted) && dg.retries < maxBusyRetries {
		// The radio is still busy with the last frame: send again soon.
		dg.retries++
		l.mu.Lock()
		l.queue = append([]*outgoing{dg}, l.queue...)
		l.mu.Unlock()
		l.radioFree = now.Add(l.cfg.TxGuard + time.Millisecond)
		return
	}
	l.mu.Lock()
	l.reserved -= dg.air
	l.mu.Unlock()
	l.lp.Drop(link.DropTxError)
	l.clk.AfterFunc(0, func() { l.txDone(dg.tag, err) })
}
