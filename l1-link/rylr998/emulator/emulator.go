// Package emulator emulates RYLR-998 LoRa modules: each module speaks the
// module's AT protocol on a pseudo-terminal, so the driver (or a person
// with screen or picocom) opens it like the serial device of a real module,
// and its radio is a sim.Radio on a shared simulated medium.
//
// Timing follows the real module: bytes cross the serial line at the
// module's baud rate (10 bit times each, 8N1) in both directions, AT+SEND
// answers +OK at once and keeps the radio busy for the frame's airtime
// (another AT+SEND meanwhile gets +ERR=17), and +RCV comes when the medium
// delivers the frame, with the frame's RSSI and SNR. The emulator runs in
// real time: run the network's clock as a clock.Loop.
//
// # AT+SEND's data
//
// The guide does not say whether a module reads AT+SEND's data by its
// declared length or ends it at the first CR LF, as a module reading its
// commands line by line would; a module emulates either
// (Options.DataEndsAtCRLF), so that hosts are tested against both. Either
// way a command whose data is shorter than declared is answered +ERR=5
// as soon as the bytes show it, and what follows it is the next command
// (rylr998.CommandParser).
//
// # On the air
//
// The module adds 8 bytes to every payload (its guide says so, without
// their layout). The emulator's 8 bytes are its own: network id (1),
// destination address (2), source address (2) and a 3-byte digest of the
// band, SF, bandwidth, coding rate and password. Every frame goes to the
// medium as a broadcast, so it occupies the air (and collides) at every
// radio in range, and each receiving module filters as the real one does:
// other network ids, other addresses, and other parameters or passwords
// are not heard. So the medium's airtime for n bytes is the formula's for
// n+8, as on the real module.
//
// Limitation: the medium has one PHY. A module told AT+PARAMETER with
// settings other than the medium's answers +OK, stays busy for its own
// settings' airtime and is heard only by modules with the same settings,
// but its frames occupy the medium for the medium's airtime.
package emulator

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
)

// Factory settings of a RYLR-998 (AT+FACTORY).
const (
	FactoryBand      = 915000000
	FactoryBaud      = 115200
	FactoryNetworkID = 18
	FactoryPower     = 22
)

// Version is what AT+VER? answers.
const Version = "RYLR998_EMU_V1.0.0"

// Network is a set of emulated modules on one simulated LoRa medium.
type Network struct {
	clk    clock.Clock
	medium *sim.Medium
	params lora.Params
	seed   uint64

	mu      sync.Mutex
	loss    sim.Loss
	modules []*Module
	closed  bool
}

// NewNetwork returns a network whose medium carries LoRa with params
// (phys.LoRaOnAir) on clk, its random choices seeded with seed. The medium's
// frames are what the modules put on the air, each datagram with the 8
// bytes a module adds, so its MTU is 248.
func NewNetwork(clk clock.Clock, params lora.Params, seed uint64) *Network {
	phy := phys.LoRaOnAir(params)
	return &Network{clk: clk, medium: sim.NewMedium(clk, phy, seed), params: params, seed: seed}
}

// Medium returns the simulated medium, for loss models and topology.
func (n *Network) Medium() *sim.Medium { return n.medium }

// Params returns the medium's modulation.
func (n *Network) Params() lora.Params { return n.params }

// SetLoss sets the loss model for links to modules added from now on.
func (n *Network) SetLoss(l sim.Loss) {
	n.mu.Lock()
	n.loss = l
	n.mu.Unlock()
}

// Modules returns the modules in the order they were added.
func (n *Network) Modules() []*Module {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Module(nil), n.modules...)
}

// Close closes every module.
func (n *Network) Close() error {
	n.mu.Lock()
	ms := n.modules
	n.closed = true
	n.mu.Unlock()
	for _, m := range ms {
		m.Close()
	}
	return nil
}

// Options describe a module as it comes up.
type Options struct {
	// Address is the module's address (AT+ADDRESS); 0 means its 1-based
	// index on the network, so a fresh network's modules are 1, 2, 3...
	Address uint16
	// Baud is the UART rate (AT+IPR), default 115200.
	Baud int
	// Position places the radio; the zero value puts module i at 10·i m on
	// the x axis, so that the medium gives frames a signal.
	Position *sim.Position
	// BootTime is the time from a reset to +READY (default 20 ms).
	BootTime time.Duration
	// Isolated leaves the radio unconnected (connect it with Medium().Connect);
	// otherwise it hears, and is heard by, every module already added.
	Isolated bool
	// DataEndsAtCRLF makes the module end AT+SEND's data at the first CR
	// LF, as a module reading its commands line by line does, instead of
	// reading it by its declared length: a datagram holding CR LF is then
	// cut and answered +ERR=5.
	DataEndsAtCRLF bool
	// IdleGap is how long the line must be quiet for a command without
	// its CR LF to count as abandoned (default 50 ms). An AT+SEND whose
	// data is short of its length but holds a CR LF ended there, and is
	// answered after 20 byte times of quiet (at least 2 ms), as a UART's
	// idle-line detection sees it.
	IdleGap time.Duration
}

// Settings are a module's AT settings.
type Settings struct {
	Address   uint16
	NetworkID int
	Band      int
	Params    lora.Params
	Power     int    // dBm
	Password  string // upper-case hex; "" none
	Baud      int
	Mode      int // 0 transceiver, 1 sleep, 2 smart receive
	RxTime    int // mode 2, ms
	LowTime   int // mode 2, ms
}

// Stats count what a module did.
type Stats struct {
	Commands      uint64 // command lines handled
	Errors        uint64 // answered +ERR
	Busy          uint64 // AT+SEND refused with +ERR=17 (radio still sending)
	Sent          uint64 // frames put on the air
	Received      uint64 // +RCV lines written
	Filtered      uint64 // frames heard but for another network, address or parameters
	OutputDropped uint64 // lines lost: nobody read the terminal, or the buffer was full
}

// Heard is one frame a module reported with +RCV (ground truth for tests:
// the destination the module does not report).
type Heard struct {
	Src, Dst  uint16
	Data      []byte
	RSSI, SNR int
}

// Module is one emulated RYLR-998.
type Module struct {
	net      *Network
	index    int
	radio    *sim.Radio
	master   *os.File
	slave    *os.File
	path     string
	uid      string
	bootTime time.Duration
	crlfEnd  bool
	idleGap  time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	out    chan []byte

	muted     atomic.Bool
	failNext  atomic.Int32
	baud      atomic.Int64
	pendingIn atomic.Int64 // commands read and not yet handled
	pendingOu atomic.Int64 // lines queued and not yet written
	closed    atomic.Bool

	mu        sync.Mutex // the module's state, touched by loop callbacks and getters
	cur       Settings
	flash     Settings // what survives a reset
	txing     bool
	busyUntil time.Time
	booting   bool
	bootGen   uint64
	smartGen  uint64
	lastAddr  uint16
	lastData  []byte
	stats     Stats
	heard     []Heard
}

// heardCap bounds the Heard log.
const heardCap = 256

// AddModule adds a module to the network, on a new pseudo-terminal.
func (n *Network) AddModule(o Options) (*Module, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, errors.New("emulator: network closed")
	}
	index := len(n.modules) + 1
	loss := n.loss
	others := append([]*Module(nil), n.modules...)
	n.mu.Unlock()

	if o.Baud == 0 {
		o.Baud = FactoryBaud
	}
	if !validBaud(o.Baud) {
		return nil, fmt.Errorf("emulator: baud %d is not one the module takes", o.Baud)
	}
	if o.Address == 0 {
		o.Address = uint16(index)
	}
	if o.BootTime <= 0 {
		o.BootTime = 20 * time.Millisecond
	}
	if o.IdleGap <= 0 {
		o.IdleGap = defaultIdleGap
	}
	pos := sim.Position{X: 10 * float64(index)}
	if o.Position != nil {
		pos = *o.Position
	}
	master, slave, err := openPTY()
	if err != nil {
		return nil, err
	}
	var uid [12]byte
	binary.BigEndian.PutUint64(uid[:8], n.seed)
	binary.BigEndian.PutUint32(uid[8:], uint32(index))
	m := &Module{
		net: n, index: index, master: master, slave: slave, path: slave.Name(),
		uid: strings.ToUpper(hex.EncodeToString(uid[:])), bootTime: o.BootTime,
		crlfEnd: o.DataEndsAtCRLF, idleGap: o.IdleGap,
		out: make(chan []byte, 256),
		// It boots from the start: Idle is false until +READY is out.
		booting: true,
	}
	m.baud.Store(int64(o.Baud))
	s := factory()
	s.Address = o.Address
	s.Baud = o.Baud
	s.Params = n.params
	m.cur, m.flash = s, s
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.radio = n.medium.AddRadio(pos)
	m.radio.Attach(m)
	if !o.Isolated {
		for _, x := range others {
			n.medium.Connect(m.radio, x.radio, loss, loss)
		}
	}
	n.mu.Lock()
	n.modules = append(n.modules, m)
	n.mu.Unlock()
	m.wg.Add(2)
	go m.reader()
	go m.writer()
	// A module announces itself when it powers up.
	n.clk.AfterFunc(0, func() { m.reboot(false) })
	return m, nil
}

func factory() Settings {
	return Settings{NetworkID: FactoryNetworkID, Band: FactoryBand, Params: lora.Default, Power: FactoryPower, Baud: FactoryBaud}
}

func validBaud(b int) bool {
	for _, x := range rylr998.Bauds {
		if x == b {
			return true
		}
	}
	return false
}

// Path returns the terminal the module is on (/dev/pts/N).
func (m *Module) Path() string { return m.path }

// Radio returns the module's radio on the medium.
func (m *Module) Radio() *sim.Radio { return m.radio }

// Settings returns the module's current settings.
func (m *Module) Settings() Settings {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur
}

// Stats returns the module's counters.
func (m *Module) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Heard returns the frames the module reported with +RCV (the last 256).
func (m *Module) Heard() []Heard {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Heard(nil), m.heard...)
}

// Idle reports whether the module has nothing in progress: no frame on
// the air, no command read and not handled, no line waiting to be written.
func (m *Module) Idle() bool {
	m.mu.Lock()
	busy := m.txing || m.booting
	m.mu.Unlock()
	return !busy && m.pendingIn.Load() == 0 && m.pendingOu.Load() == 0
}

// Faults, for recovery tests.

// InjectGarbage writes b on the module's serial line, as noise would.
func (m *Module) InjectGarbage(b []byte) {
	b = append([]byte(nil), b...)
	m.net.clk.AfterFunc(0, func() {
		m.mu.Lock()
		m.emit(b)
		m.mu.Unlock()
	})
}

// Reset makes the module reset by itself (a brown-out, its watchdog): it
// forgets what it keeps only in RAM (a band set without ",M", the
// password, the mode), ignores the line while it boots and then says
// +READY.
func (m *Module) Reset() { m.net.clk.AfterFunc(0, func() { m.reboot(false) }) }

// FactoryReset is Reset after AT+FACTORY: every setting returns to the
// factory's (address 0, network 18, 915 MHz, SF9/125 kHz/4-5/12, no password).
func (m *Module) FactoryReset() { m.net.clk.AfterFunc(0, func() { m.reboot(true) }) }

// SetMute makes the module stop answering (a hung module): it reads and
// ignores the line and writes nothing, +RCV included.
func (m *Module) SetMute(on bool) { m.muted.Store(on) }

// FailNext makes the module answer its next command with +ERR=code.
func (m *Module) FailNext(code rylr998.ModuleError) { m.failNext.Store(int32(code)) }

// Close takes the module off the medium and closes its terminal.
func (m *Module) Close() error {
	if m.closed.Swap(true) {
		return os.ErrClosed
	}
	m.cancel()
	m.master.Close()
	m.wg.Wait()
	m.slave.Close()
	return m.radio.Close()
}

// Serial line.

func (m *Module) byteTime() time.Duration {
	return time.Duration(10 * int64(time.Second) / m.baud.Load())
}

// waitUntil waits for the clock to reach t.
func (m *Module) waitUntil(t time.Time) bool {
	d := t.Sub(m.net.clk.Now())
	if d <= 0 {
		return m.ctx.Err() == nil
	}
	ch := make(chan struct{})
	m.net.clk.AfterFunc(d, func() { close(ch) })
	select {
	case <-ch:
		return true
	case <-m.ctx.Done():
		return false
	}
}

type timedCmd struct {
	c   *rylr998.Command
	due time.Time
}

// defaultIdleGap is how long the line must be quiet for a half-received
// command to count as abandoned.
const defaultIdleGap = 50 * time.Millisecond

// shortSendGap is the quiet after which an AT+SEND short of its declared
// length, with a CR LF in its data, ended at that CR LF: 20 byte times,
// at least 2 ms.
func (m *Module) shortSendGap() time.Duration {
	return max(2*time.Millisecond, 20*m.byteTime())
}

// reader takes the host's bytes at the line's pace and hands each command
// to the clock's loop when its last byte has crossed.
func (m *Module) reader() {
	defer m.wg.Done()
	p := rylr998.CommandParser{DataEndsAtCRLF: m.crlfEnd}
	var lineFree time.Time
	buf := make([]byte, 512)
	var cmds []timedCmd
	canIdle := m.master.SetReadDeadline(time.Time{}) == nil
	for {
		if canIdle && p.Buffered() > 0 {
			gap := m.idleGap
			if p.ShortSend() {
				gap = min(gap, m.shortSendGap())
			}
			m.master.SetReadDeadline(time.Now().Add(gap))
		}
		n, err := m.master.Read(buf)
		if canIdle && p.Buffered() > 0 {
			m.master.SetReadDeadline(time.Time{})
		}
		if n > 0 && !m.muted.Load() {
			now := m.net.clk.Now()
			start := now
			if lineFree.After(start) {
				start = lineFree
			}
			bt := m.byteTime()
			lineFree = start.Add(time.Duration(n) * bt)
			cmds = cmds[:0]
			p.Feed(buf[:n], func(c *rylr998.Command) {
				cmds = append(cmds, timedCmd{copyCommand(c), start.Add(time.Duration(c.End) * bt)})
			})
			m.pendingIn.Add(int64(len(cmds)) + 1)
			// Any activity on the UART wakes a sleeping module.
			if !m.waitUntil(start) {
				return
			}
			m.net.clk.AfterFunc(0, func() { m.activity(); m.pendingIn.Add(-1) })
			for _, tc := range cmds {
				if !m.waitUntil(tc.due) {
					return
				}
				c := tc.c
				m.net.clk.AfterFunc(0, func() { m.handle(c); m.pendingIn.Add(-1) })
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				var late []*rylr998.Command
				p.Idle(func(c *rylr998.Command) { late = append(late, copyCommand(c)) })
				if !m.muted.Load() {
					for _, c := range late {
						m.pendingIn.Add(1)
						m.net.clk.AfterFunc(0, func() { m.handle(c); m.pendingIn.Add(-1) })
					}
				}
				continue
			}
			return
		}
	}
}

func copyCommand(c *rylr998.Command) *rylr998.Command {
	x := *c
	x.Name = append([]byte(nil), c.Name...)
	x.Args = append([]byte(nil), c.Args...)
	x.Data = append([]byte(nil), c.Data...)
	return &x
}

// writer writes the module's lines at the line's pace: a line reaches the
// host when its last byte would have crossed.
func (m *Module) writer() {
	defer m.wg.Done()
	var lineFree time.Time
	for {
		var b []byte
		select {
		case b = <-m.out:
		case <-m.ctx.Done():
			return
		}
		start := m.net.clk.Now()
		if lineFree.After(start) {
			start = lineFree
		}
		end := start.Add(time.Duration(len(b)) * m.byteTime())
		if !m.waitUntil(end) {
			return
		}
		lineFree = end
		if !m.muted.Load() {
			// A UART with nobody listening loses what it sends; the
			// terminal buffers a few kilobytes, then the write would block.
			m.master.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := m.master.Write(b); err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					m.pendingOu.Add(-1)
					return
				}
				m.count(func(s *Stats) { s.OutputDropped++ })
			}
		}
		m.pendingOu.Add(-1)
	}
}

func (m *Module) count(f func(*Stats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}

// emit queues a line for the host; it never blocks the loop.
func (m *Module) emit(b []byte) {
	if m.muted.Load() {
		return
	}
	m.pendingOu.Add(1)
	select {
	case m.out <- b:
	default:
		m.pendingOu.Add(-1)
		m.stats.OutputDropped++ // callers hold m.mu or run alone on the loop
	}
}

// The module, on the clock's loop.

// reboot restarts the module: RAM settings are lost (all of them when
// factory), it ignores the line for its boot time, then says +READY.
func (m *Module) reboot(factoryReset bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rebootLocked(factoryReset)
}

func (m *Module) rebootLocked(factoryReset bool) {
	if factoryReset {
		m.flash = factory()
		m.baud.Store(FactoryBaud)
	}
	m.cur = m.flash
	m.cur.Mode = 0
	m.smartGen++
	m.radio.SetAwake(true)
	m.booting = true
	m.bootGen++
	gen := m.bootGen
	m.net.clk.AfterFunc(m.bootTime, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.bootGen != gen {
			return
		}
		m.booting = false
		m.emit([]byte("+READY\r\n"))
	})
}

// activity: bytes arrived on the UART, which wakes a sleeping module.
func (m *Module) activity() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur.Mode != 0 && !m.booting {
		m.wakeUp()
	}
}

func (m *Module) wakeUp() {
	m.cur.Mode = 0
	m.smartGen++
	m.radio.SetAwake(true)
}

func (m *Module) fail(code rylr998.ModuleError) {
	m.stats.Errors++
	m.emit(rylr998.AppendErr(nil, code))
}

func (m *Module) ok() { m.emit(rylr998.AppendOK(nil)) }

func (m *Module) value(name, v string) { m.emit(rylr998.AppendValue(nil, name, v)) }

// handle answers one command.
func (m *Module) handle(c *rylr998.Command) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.booting || m.muted.Load() {
		return
	}
	m.stats.Commands++
	if code := m.failNext.Swap(0); code != 0 {
		m.fail(rylr998.ModuleError(code))
		return
	}
	switch c.Kind {
	case rylr998.CmdBad:
		m.fail(c.Err)
	case rylr998.CmdTest:
		m.ok()
	case rylr998.CmdSend:
		m.send(c.Addr, c.Data)
	case rylr998.CmdQuery:
		m.query(string(c.Name))
	case rylr998.CmdSet:
		m.set(string(c.Name), string(c.Args))
	case rylr998.CmdExec:
		switch string(c.Name) {
		case "RESET":
			m.emit([]byte("+RESET\r\n"))
			m.rebootLocked(false)
		case "FACTORY":
			m.flash = factory()
			m.cur = m.flash
			m.wakeUp()
			// The last message sent goes too (AT+SEND? answers as on a
			// fresh module).
			m.lastAddr, m.lastData = 0, nil
			m.emit([]byte("+FACTORY\r\n"))
			m.baud.Store(FactoryBaud)
		default:
			// A known command without "=" or "?" (AT+ADDRESS) too: the
			// RYLR998 guide has no other number for it (3, "no =", is the
			// RYLR896's).
			m.fail(rylr998.ErrUnknownCommand)
		}
	}
}

func (m *Module) busy() bool {
	return m.txing || m.net.clk.Now().Before(m.busyUntil)
}

func (m *Module) query(name string) {
	s := &m.cur
	switch name {
	case "MODE":
		if s.Mode == 2 {
			m.value("MODE", fmt.Sprintf("2,%d,%d", s.RxTime, s.LowTime))
		} else {
			m.value("MODE", strconv.Itoa(s.Mode))
		}
	case "IPR":
		m.value("IPR", strconv.Itoa(s.Baud))
	case "BAND":
		m.value("BAND", strconv.Itoa(s.Band))
	case "PARAMETER":
		m.value("PARAMETER", fmt.Sprintf("%d,%d,%d,%d", s.Params.SF, rylr998.BandwidthCode(s.Params.Bandwidth), s.Params.CR, s.Params.Preamble))
	case "ADDRESS":
		m.value("ADDRESS", strconv.Itoa(int(s.Address)))
	case "NETWORKID":
		m.value("NETWORKID", strconv.Itoa(s.NetworkID))
	case "CPIN":
		if s.Password == "" {
			m.value("CPIN", "No Password!")
		} else {
			m.value("CPIN", s.Password)
		}
	case "CRFOP":
		m.value("CRFOP", strconv.Itoa(s.Power))
	case "SEND":
		// The last message sent; a fresh module answers with an empty one
		// to address 0 ("+SEND=0,0,": what a module that has sent nothing
		// holds is not documented).
		b := append([]byte("+SEND="), strconv.Itoa(int(m.lastAddr))...)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(len(m.lastData)), 10)
		b = append(b, ',')
		b = append(b, m.lastData...)
		m.emit(append(b, '\r', '\n'))
	case "UID":
		m.value("UID", m.uid)
	case "VER":
		m.value("VER", Version)
	default:
		m.fail(rylr998.ErrUnknownCommand)
	}
}

// ints parses n comma-separated decimals.
func ints(s string, n int) ([]int, bool) {
	parts := strings.Split(s, ",")
	if len(parts) != n {
		return nil, false
	}
	out := make([]int, n)
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// memory splits "<value>[,M]".
func memory(args string) (string, bool, bool) {
	v, flag, found := strings.Cut(args, ",")
	if !found {
		return v, false, true
	}
	return v, true, flag == "M"
}

// set answers AT+NAME=args. Values out of range get +ERR=4 (the guide
// documents no number for them; 18 and 20 are the specific ones it has).
func (m *Module) set(name, args string) {
	s := &m.cur
	switch name {
	case "MODE":
		if m.busy() {
			m.fail(rylr998.ErrTxNotCompleted)
			return
		}
		switch args {
		case "0":
			m.wakeUp()
		case "1":
			s.Mode = 1
			m.smartGen++
			m.radio.SetAwake(false)
		default:
			v, ok := ints(args, 3)
			if !ok || v[0] != 2 {
				m.fail(rylr998.ErrUnknownCommand)
				return
			}
			if v[1] < 30 || v[1] > 60000 || v[2] < 30 || v[2] > 60000 {
				m.fail(rylr998.ErrSmartModeTiming)
				return
			}
			s.Mode, s.RxTime, s.LowTime = 2, v[1], v[2]
			m.smartGen++
			m.smartCycle(m.smartGen, true)
		}
		m.ok()
	case "IPR":
		v, err := strconv.Atoi(args)
		if err != nil || !validBaud(v) {
			m.fail(rylr998.ErrUnknownCommand)
			return
		}
		s.Baud, m.flash.Baud = v, v
		// The guide shows the new rate as the answer, sent at the old rate.
		m.value("IPR", strconv.Itoa(v))
		m.baud.Store(int64(v))
	case "BAND":
		v, mem, ok := memory(args)
		hz, err := strconv.Atoi(v)
		if !ok || err != nil || hz < 150000000 || hz > 960000000 {
			m.fail(rylr998.ErrUnknownCommand)
			return
		}
		if m.busy() {
			m.fail(rylr998.ErrTxNotCompleted)
			return
		}
		s.Band = hz
		if mem {
			m.flash.Band = hz
		}
		m.ok()
	case "PARAMETER":
		v, ok := ints(args, 4)
		if !ok || v[1] < 7 || v[1] > 9 || v[0] < 5 || v[0] > v[1]+2 || v[2] < 1 || v[2] > 4 {
			m.fail(rylr998.ErrUnknownCommand)
			return
		}
		if (s.NetworkID == 18 && (v[3] < 4 || v[3] > 24)) || (s.NetworkID != 18 && v[3] != 12) {
			m.fail(rylr998.ErrPreamble)
			return
		}
		if m.busy() {
			m.fail(rylr998.ErrTxNotCompleted)
			return
		}
		s.Params = lora.Params{SF: v[0], Bandwidth: lora.Bandwidths[v[1]], CR: v[2], Preamble: v[3]}
		m.flash.Params = s.Params
		m.ok()
	case "ADDRESS":
		v, err := strconv.Atoi(args)
		if err != nil || v < 0 || v > 65535 {
			m.fail(rylr998.ErrUnknownCommand)
			return
		}
		s.Address, m.flash.Address = uint16(v), uint16(v)
		m.ok()
	case "NETWORKID":
		v, err := strconv.Atoi(args)
		if err != nil || !rylr998.ValidNetworkID(v) {
			m.fail(rylr998.ErrUnknownCommand)
			return
		}
		s.NetworkID, m.flash.NetworkID = v, v
		m.ok()
	case "CPIN":
		// 8 hex digits (the RYLR998 guide), kept in RAM only: a reset
		// forgets it. Another length, ",M" included, is +ERR=5.
		if len(args) != 8 {
			m.fail(rylr998.ErrLengthMismatch)
			return
		}
		if !rylr998.ValidPassword(args) {
			m.fail(rylr998.ErrUnknownCommand)
			return
		}
		s.Password = strings.ToUpper(args)
		m.ok()
	case "CRFOP":
		v, err := strconv.Atoi(args)
		if err != nil || v < 0 || v > 22 {
			m.fail(rylr998.ErrUnknownCommand)
			return
		}
		s.Power, m.flash.Power = v, v
		m.ok()
	case "FCCT":
		if args != "0" && args != "1" && args != "2" {
			m.fail(rylr998.ErrUnknownCommand)
			return
		}
		m.ok()
	default:
		m.fail(rylr998.ErrUnknownCommand)
	}
}

// smartCycle alternates the receiver on for RxTime and off for LowTime
// while the module is in mode 2.
func (m *Module) smartCycle(gen uint64, on bool) {
	if m.smartGen != gen || m.cur.Mode != 2 {
		return
	}
	m.radio.SetAwake(on)
	d := m.cur.LowTime
	if on {
		d = m.cur.RxTime
	}
	m.net.clk.AfterFunc(time.Duration(d)*time.Millisecond, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.smartCycle(gen, !on)
	})
}

// Air frames: the emulator's stand-in for the module's 8 bytes.

func (m *Module) key(s *Settings) [3]byte {
	h := sha256.New()
	var b [24]byte
	binary.BigEndian.PutUint32(b[0:], uint32(s.Band))
	binary.BigEndian.PutUint32(b[4:], uint32(s.Params.SF))
	binary.BigEndian.PutUint32(b[8:], uint32(s.Params.Bandwidth))
	binary.BigEndian.PutUint32(b[12:], uint32(s.Params.CR))
	h.Write(b[:16])
	h.Write([]byte(s.Password))
	var k [3]byte
	copy(k[:], h.Sum(nil))
	return k
}

func (m *Module) send(addr uint16, data []byte) {
	if m.busy() {
		m.stats.Busy++
		m.fail(rylr998.ErrTxNotCompleted)
		return
	}
	s := &m.cur
	frame := make([]byte, rylr998.AirOverhead+len(data))
	frame[0] = byte(s.NetworkID)
	binary.BigEndian.PutUint16(frame[1:], addr)
	binary.BigEndian.PutUint16(frame[3:], s.Address)
	k := m.key(s)
	copy(frame[5:8], k[:])
	copy(frame[8:], data)
	if err := m.radio.Send(link.Broadcast, frame, 0); err != nil {
		m.fail(rylr998.ErrUnknownFailure)
		return
	}
	m.txing = true
	m.busyUntil = m.net.clk.Now().Add(s.Params.Airtime(len(frame)))
	m.lastAddr, m.lastData = addr, append(m.lastData[:0], data...)
	m.stats.Sent++
	m.ok()
}

// TxDone is the radio telling the module its frame has left (link.Dispatcher).
func (m *Module) TxDone(link.Tag, error) {
	m.mu.Lock()
	m.txing = false
	m.mu.Unlock()
}

// DeliverFrame is the radio handing up a frame (link.Dispatcher).
func (m *Module) DeliverFrame(f link.Frame) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.booting || len(f.Data) < rylr998.AirOverhead {
		return
	}
	s := &m.cur
	dst := binary.BigEndian.Uint16(f.Data[1:])
	src := binary.BigEndian.Uint16(f.Data[3:])
	k := m.key(s)
	if int(f.Data[0]) != s.NetworkID || [3]byte(f.Data[5:8]) != k || (dst != 0 && dst != s.Address) {
		m.stats.Filtered++
		return
	}
	if s.Mode == 2 {
		m.wakeUp() // a good frame ends smart receive mode
	}
	rssi, snr := -40, 10
	if f.HasSignal {
		rssi, snr = f.RSSI, f.SNR
	}
	data := f.Data[rylr998.AirOverhead:]
	if len(m.heard) == heardCap {
		copy(m.heard, m.heard[1:])
		m.heard = m.heard[:heardCap-1]
	}
	m.heard = append(m.heard, Heard{Src: src, Dst: dst, Data: append([]byte(nil), data...), RSSI: rssi, SNR: snr})
	if m.muted.Load() {
		return
	}
	m.stats.Received++
	m.emit(rylr998.AppendRCV(nil, src, data, rssi, snr))
}
