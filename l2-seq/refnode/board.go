// Package refnode models a reference node: the MicroPython Packager
// (k98kurz/micropycelium at its last published commit) on an ESP32 board
// with modem sleep on, as the boards' main.py runs it, written in Go and
// put on a link (a simulated radio), so that tests and the simulator can
// check our node against a board without one.
//
// It reproduces what a board does, as PROTOCOL 5 and 11 record it: its
// beacons and answers; its acks, one per packet that asks; its RNS and NIA;
// its retransmission requests 30 s after a sequence went quiet, which it
// never answers itself; its sleep, 90 ms off and at least 40 ms on, a
// packet sent or received earning one skipped sleep, at most ten. And its
// quirks, where they matter to a peer: reassembly keyed by seq_id alone; an
// ack, request, RNS or NIA on a sequence schema stored as an empty chunk; a
// buffer trimmed each time the last packet arrives (so a Package that fills
// its last packet, or a second copy of the last packet, is never delivered,
// silently); a peer counted awake only 800 ms after its last beacon or NIA,
// anything for it meanwhile queued (ten at most) behind an RNS; packets
// under 32 bytes outside a sequence dropped; only schemas 0 and 2.
//
// Its timing follows the board's loop: one pass of process() reads at most
// one datagram from the ESP-NOW driver's buffer (526 bytes, two full frames,
// MicroPython's default) and sends at most one, then the loop pauses 1 ms.
// What a pass costs on the chip is not measured; Timing holds assumptions
// (DefaultTiming) a caller may change.
package refnode

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// The reference's constants (PROTOCOL 5.3, and its Beacon application).
const (
	ModemSleep   = 90 * time.Millisecond
	ModemWake    = 40 * time.Millisecond
	Intersect    = 36 * time.Millisecond // MODEM_INTERSECT_INTERVAL = int(0.9 × 40 ms)
	RNSTries     = 4                     // MODEM_INTERSECT_RTX_TIMES = int(130/36) + 1
	CanTx        = 800 * time.Millisecond
	SyncDelay    = 30 * time.Second
	BeaconPeriod = 60 * time.Second
	maxSkips     = 10
	peerQueue    = 10
)

// Timing is what the board's loop costs.
type Timing struct {
	Loop   time.Duration // the work loop's pause after each pass (1 ms in the reference)
	Pass   time.Duration // a pass that handles no datagram
	Handle time.Duration // more for a pass that handles one
	RxBuf  int           // bytes the ESP-NOW driver buffers
}

// DefaultTiming: the reference's 1 ms pause; a pass and a datagram's
// handling assumed to cost 0.5 ms and 1 ms on an ESP32 at 240 MHz (a board
// then keeps up with a stream of full 1 Mbit/s frames, as boards were seen
// to); MicroPython's default driver buffer of 526 bytes.
var DefaultTiming = Timing{Loop: time.Millisecond, Pass: 500 * time.Microsecond, Handle: time.Millisecond, RxBuf: 526}

// rxOverhead is what the driver's buffer holds per datagram besides it (its
// header and the sender's address).
const rxOverhead = 12

// Config configures a board.
type Config struct {
	Clock clock.Clock
	// Link is the board's ESP-NOW interface. When it is a link.Sleeper its
	// receiver is switched off while the board sleeps; otherwise the board
	// drops what arrives then.
	Link   link.Link
	NodeID [32]byte
	Seed   uint64
	// Sleep turns modem sleep on (the boards' main.py does).
	Sleep bool
	// Phase is where in its 130 ms sleep cycle the board is when it starts
	// (0: at the start of a 40 ms awake window; 40 ms and more: asleep).
	Phase time.Duration
	// BeaconPeriod: 0 keeps the reference's 60 s, negative turns periodic
	// beacons off.
	BeaconPeriod time.Duration
	// Timing: zero fields take DefaultTiming's.
	Timing Timing
}

// Message is a Package the board delivered to an application.
type Message struct {
	App  packet.AppID
	Blob []byte
	From link.Addr
	Time time.Time
}

// Stats counts what a board did.
type Stats struct {
	Delivered      int // Packages handed to applications
	Undelivered    int // sequences completed whose Package failed its hash (or had no application)
	FramesSent     int
	AcksSent       int
	RNSSent        int
	NIASent        int
	RtxSent        int
	RxAsleep       int // datagrams that arrived while the board slept
	RxOverflow     int // datagrams the driver's buffer had no room for
	QueueDropped   int // datagrams dropped from a peer's queue of ten, or with it
	Sleeps         int
	StraySequences int // reassemblies started by an empty chunk (an ack, request, RNS or NIA filed as one)
	IgnoredPackets int // datagrams the reference fails on (schemas other than 0 and 2, bad bytes, short bodies)
}

// Board is one reference node.
type Board struct {
	cfg     Config
	clk     clock.Clock
	l       link.Link
	sleeper link.Sleeper
	addr    link.Addr
	rng     *rand.Rand
	tm      Timing
	stats   Stats

	// The Packager's state.
	packetID uint8
	seqID    uint8
	peers    []*peer // in the order added (the reference's dict order)
	inSeqs   map[uint8]*inSeq
	apps     map[packet.AppID]func(Message)
	appOrder []packet.AppID
	sched    map[string]*event
	added    []*event // new_events: scheduled at the next pass
	cancels  []string // cancel_events: applied at the next pass
	skips    int      // the sleepskip deque

	// The ESP-NOW interface.
	ring      []rxDatagram
	ringBytes int
	outbox    []txDatagram
	castbox   [][]byte

	// The loop.
	started, closed bool
	asleep          bool
	passDue         bool
	cycleStart      time.Time
	timers          []clock.Timer
}

type rxDatagram struct {
	src  link.Addr
	data []byte
}

type txDatagram struct {
	dst  link.Addr
	data []byte
}

type event struct {
	id string
	at time.Time
	fn func()
}

// New builds a board; Start sets it running.
func New(cfg Config) *Board {
	tm := cfg.Timing
	d := DefaultTiming
	if tm.Loop <= 0 {
		tm.Loop = d.Loop
	}
	if tm.Pass <= 0 {
		tm.Pass = d.Pass
	}
	if tm.Handle <= 0 {
		tm.Handle = d.Handle
	}
	if tm.RxBuf <= 0 {
		tm.RxBuf = d.RxBuf
	}
	if cfg.BeaconPeriod == 0 {
		cfg.BeaconPeriod = BeaconPeriod
	}
	b := &Board{
		cfg: cfg, clk: cfg.Clock, l: cfg.Link, addr: cfg.Link.Info().Addr, tm: tm,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x626f617264)),
		inSeqs: map[uint8]*inSeq{}, apps: map[packet.AppID]func(Message){}, sched: map[string]*event{},
	}
	b.sleeper, _ = cfg.Link.(link.Sleeper)
	b.Register(beacon.AppID, b.receiveBeacon)
	return b
}

// ID is the board's node_id.
func (b *Board) ID() [32]byte { return b.cfg.NodeID }

// Addr is the board's link address.
func (b *Board) Addr() link.Addr { return b.addr }

// Stats returns the board's counters.
func (b *Board) Stats() Stats { return b.stats }

// Asleep reports whether the board is in a sleep window.
func (b *Board) Asleep() bool { return b.asleep }

// Register adds an application (the Beacon application is always there).
func (b *Board) Register(app packet.AppID, h func(Message)) {
	if _, ok := b.apps[app]; !ok {
		b.appOrder = append(b.appOrder, app)
	}
	b.apps[app] = h
}

// Start attaches the board to its link, starts its loop, its sleep cycle
// and its beacons (the first burst at once, as main.py starts it).
func (b *Board) Start() {
	if b.started {
		return
	}
	b.started = true
	b.l.Attach(b)
	if b.cfg.BeaconPeriod > 0 {
		b.periodicBeacon(RNSTries)
	}
	if !b.cfg.Sleep {
		b.kick()
		return
	}
	cycle := ModemSleep + ModemWake
	ph := b.cfg.Phase % cycle
	if ph < ModemWake {
		b.cycleStart = b.clk.Now().Add(-ph)
		b.armCycle()
		b.kick()
		return
	}
	b.sleep(cycle - ph)
}

// Close stops the board and detaches it from its link.
func (b *Board) Close() {
	if b.closed {
		return
	}
	b.closed = true
	for _, t := range b.timers {
		t.Stop()
	}
	b.timers = nil
	b.l.Attach(nil)
}

// after runs f after d unless the board is closed by then.
func (b *Board) after(d time.Duration, f func()) {
	var t clock.Timer
	t = b.clk.AfterFunc(d, func() {
		if i := slices.Index(b.timers, t); i >= 0 {
			b.timers = slices.Delete(b.timers, i, i+1)
		}
		if !b.closed {
			f()
		}
	})
	b.timers = append(b.timers, t)
}

// DeliverFrame is the radio handing up a datagram: into the driver's
// buffer, if the board is awake and the buffer has room.
func (b *Board) DeliverFrame(f link.Frame) {
	if b.closed {
		return
	}
	if b.asleep {
		b.stats.RxAsleep++
		return
	}
	if b.ringBytes+len(f.Data)+rxOverhead > b.tm.RxBuf {
		b.stats.RxOverflow++
		return
	}
	b.ring = append(b.ring, rxDatagram{src: f.Src, data: slices.Clone(f.Data)})
	b.ringBytes += len(f.Data) + rxOverhead
	b.kick()
}

// TxDone: the board sends without waiting (ESPNow.send with sync off).
func (b *Board) TxDone(link.Tag, error) {}

// kick makes sure a pass of the loop comes: when the board idles, its loop
// is somewhere in its round of pass and pause.
func (b *Board) kick() {
	if b.passDue || b.asleep || b.closed || !b.started {
		return
	}
	b.passDue = true
	b.after(time.Duration(b.rng.Int64N(int64(b.tm.Loop+b.tm.Pass))), b.pass)
}

// pass is one call of Packager.process(). passDue stays set while it runs
// (what it queues is sent by the passes that follow, not by one more).
func (b *Board) pass() {
	if b.asleep {
		b.passDue = false
		return
	}
	now := b.clk.Now()
	for _, e := range b.added {
		b.sched[e.id] = e
	}
	b.added = b.added[:0]
	for _, id := range b.cancels {
		delete(b.sched, id)
	}
	b.cancels = b.cancels[:0]
	// The interface's process(): one datagram in, one out, one broadcast.
	var in *rxDatagram
	if len(b.ring) > 0 {
		d := b.ring[0]
		b.ring = b.ring[1:]
		b.ringBytes -= len(d.data) + rxOverhead
		in = &d
	}
	if len(b.outbox) > 0 {
		d := b.outbox[0]
		b.outbox = b.outbox[1:]
		b.transmit(d.dst, d.data)
	}
	if len(b.castbox) > 0 {
		d := b.castbox[0]
		b.castbox = b.castbox[1:]
		b.transmit(link.Broadcast, d)
	}
	if in != nil {
		b.receive(in.src, in.data)
	}
	// Scheduled events that are due, in time order.
	var due []*event
	for _, e := range b.sched {
		if !now.Before(e.at) {
			due = append(due, e)
		}
	}
	slices.SortFunc(due, func(x, y *event) int {
		if c := x.at.Compare(y.at); c != 0 {
			return c
		}
		if x.id < y.id {
			return -1
		}
		return 1
	})
	for _, e := range due {
		e.fn()
	}
	for _, e := range due {
		if b.sched[e.id] == e {
			delete(b.sched, e.id)
		}
	}
	// What waited for peers that can be sent to now.
	for _, p := range b.peers {
		if p.canTx(now) {
			b.outbox = append(b.outbox, p.queue...)
			p.queue = p.queue[:0]
		}
	}
	cost := b.tm.Pass
	if in != nil {
		cost += b.tm.Handle
	}
	if len(b.ring) > 0 || len(b.outbox) > 0 || len(b.castbox) > 0 || len(b.added) > 0 || len(b.cancels) > 0 {
		b.after(cost+b.tm.Loop, b.pass)
		return
	}
	b.passDue = false
}

func (b *Board) transmit(dst link.Addr, data []byte) {
	if err := b.l.Send(dst, data, 0); err == nil {
		b.stats.FramesSent++
	}
}

// queueEvent adds an event at the next pass (new_events), replacing any
// with the same id, and makes sure a pass comes when it is due.
func (b *Board) queueEvent(id string, at time.Time, fn func()) {
	b.added = append(b.added, &event{id: id, at: at, fn: fn})
	b.kick()
	if d := at.Sub(b.clk.Now()); d > 0 {
		b.after(d, b.kick)
	}
}

func (b *Board) pendingEvent(id string) bool {
	return slices.ContainsFunc(b.added, func(e *event) bool { return e.id == id })
}

func (b *Board) cancel(id string) { b.cancels = append(b.cancels, id) }

// skip is the sleepskip deque's append: one more 40 ms window awake.
func (b *Board) skip() {
	if b.skips < maxSkips {
		b.skips++
	}
}

// armCycle arranges the loop's check of its modem cycle: the first pass
// that ends more than 40 ms after the cycle began.
func (b *Board) armCycle() {
	d := b.cycleStart.Add(ModemWake).Sub(b.clk.Now()) + b.tm.Loop
	b.after(max(d, 0), b.cycleCheck)
}

func (b *Board) cycleCheck() {
	if b.asleep {
		return
	}
	if b.skips > 0 {
		b.skips--
		b.cycleStart = b.clk.Now()
		b.armCycle()
		return
	}
	b.sleep(ModemSleep)
}

// sleep is lightsleep(d): the radio off, the loop stopped.
func (b *Board) sleep(d time.Duration) {
	b.asleep = true
	b.stats.Sleeps++
	if b.sleeper != nil {
		b.sleeper.SetAwake(false)
	}
	b.after(d, func() {
		b.asleep = false
		if b.sleeper != nil {
			b.sleeper.SetAwake(true)
		}
		b.cycleStart = b.clk.Now()
		b.armCycle()
		b.kick()
	})
}
