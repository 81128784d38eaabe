// Package link is the boundary between the radios and the mesh: one small
// interface every link driver implements (ESP-NOW over raw 802.11, RYLR-998
// LoRa over a serial port, UDP/IP, BLE, loopback, the simulated medium), so
// the layers above send and receive datagrams without knowing which radio is
// underneath.
//
// Threading: a link is created with a clock.Clock and calls its Dispatcher
// only on that clock's loop (the simulated links from the medium's event
// loop, the real ones by handing each event to the loop). Send, Info,
// Counters and Close may be called from any goroutine.
package link

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"
)

// Link is one network interface of a node.
type Link interface {
	// Info describes the link; it does not change while the link is open.
	Info() Info
	// Attach sets the receiver of frames and transmit completions (nil
	// detaches: frames are then dropped and counted as DropNoHandler).
	Attach(d Dispatcher)
	// Send queues one datagram for dst (an address of the link's own kind,
	// or Broadcast; see Dest for the rules every link keeps). It does not
	// block: a full transmit queue is ErrBusy, a datagram over the MTU
	// ErrTooBig, an exhausted duty-cycle budget ErrDutyCycle. Every accepted
	// datagram is later answered by exactly one Dispatcher.TxDone call
	// carrying the same tag, in whatever order the radio finishes them; a
	// refused one by none. The link copies data before Send returns.
	Send(dst Addr, data []byte, tag Tag) error
	// Counters returns a snapshot of the link's counters.
	Counters() Counters
	// Close stops the link; afterwards Send and Close return net.ErrClosed.
	Close() error
}

// Dispatcher receives what a link hands up. The link calls it on its
// clock's loop, never from inside Send.
type Dispatcher interface {
	// DeliverFrame hands up one received datagram. f.Data is valid only
	// during the call: copy what must be kept.
	DeliverFrame(f Frame)
	// TxDone reports that the datagram Send accepted with tag has left the
	// radio (or was lost trying): the transmit queue has room for one more.
	// err is nil when it left (and, where the radio reports it, a unicast
	// was acknowledged: ErrNoAck otherwise).
	TxDone(tag Tag, err error)
}

// Tag names one datagram handed to Send; it comes back in the TxDone that
// completes it. The sender chooses it (a counter, an index): links only
// carry it, so completions that come back out of order (a BLE link writes
// to each peer on its own) still name the right datagram.
type Tag uint64

// Frame is one received datagram.
type Frame struct {
	Src       Addr      // who sent it
	Broadcast bool      // it was sent to the broadcast address (false when the link cannot tell: CapNoRxDest)
	Data      []byte    // the datagram, valid only during DeliverFrame
	Time      time.Time // when it was received, on the link's clock
	HasSignal bool      // RSSI and SNR hold measurements
	RSSI      int       // dBm
	SNR       int       // dB
	Channel   int       // radio channel, 0 if unknown
	// Slot is the link's place for the receiver's note on this frame's
	// sender (nil: the link keeps none): the same Slot comes with every
	// frame from that sender to this receiver, and the link never reads
	// it. The layer above may keep there what it looked up for the
	// sender, to find it again without the look-up (l2-seq/node does).
	Slot *Slot
}

// Slot is a place a link keeps for its receiver per sender it tells apart
// (Frame.Slot). V is the receiver's; the link only hands it up. In the
// simulator it is one per edge of the medium: a large mesh's frames found
// their sender in the receiver's maps keyed by an interface (link.Addr),
// a hashed look-up in memory the cache no longer held, on every frame.
type Slot struct{ V any }

// Info describes a link.
type Info struct {
	Name    string  // driver name, part of the interface id: "espnow", "rylr998", "udp", ...
	Addr    Addr    // the link's own address
	MTU     int     // largest datagram Send accepts
	Bitrate int     // nominal bits per second, used to rank links (PROTOCOL 4.1)
	Schemas []uint8 // packet schema ids the link carries (its family)
	Caps    Caps
	TxQueue int // transmit queue capacity in datagrams
	// DutyCycle is the fraction of airtime the link may use per DutyWindow (0: no limit).
	DutyCycle  float64
	DutyWindow time.Duration
}

// ID is the link's interface id (PROTOCOL 1): local only, never on the wire.
func (i Info) ID() [4]byte { return InterfaceID(i.Name, uint32(i.Bitrate), i.Schemas) }

// Caps are a link's capabilities.
type Caps uint8

// Capabilities.
const (
	CapBroadcast  Caps = 1 << iota // can send to every neighbour at once
	CapUnicastAck                  // the radio acknowledges (and retries) unicast frames
	CapDutyCycle                   // airtime is limited by a duty-cycle budget
	CapSleep                       // the radio can sleep (modem sleep, PROTOCOL 5.3)
	// CapNoRxDest: received frames do not say whether they were sent to us
	// or to everyone (a RYLR-998's +RCV names only the sender), so
	// Frame.Broadcast is always false.
	CapNoRxDest
)

// Has reports whether every capability in c2 is in c.
func (c Caps) Has(c2 Caps) bool { return c&c2 == c2 }

// AirtimeEstimator is implemented by links that know how long a datagram of
// n bytes occupies the medium; protocol timers are measured in airtimes.
type AirtimeEstimator interface {
	Airtime(n int) time.Duration
}

// Airtime returns how long l needs to send n bytes: its own estimate when it
// has one, else n bytes at the nominal bitrate.
func Airtime(l Link, n int) time.Duration {
	if e, ok := l.(AirtimeEstimator); ok {
		return e.Airtime(n)
	}
	br := l.Info().Bitrate
	if br <= 0 {
		return 0
	}
	return time.Duration(int64(n) * 8 * int64(time.Second) / int64(br))
}

// Sleeper is implemented by links whose radio can sleep (modem sleep,
// PROTOCOL 5.3): a sleeping radio hears nothing — frames that arrive are
// counted as DropAsleep — but still transmits what it is given, as an ESP32
// in modem sleep wakes to send.
type Sleeper interface {
	// SetAwake switches the receiver on or off.
	SetAwake(on bool)
	// Awake reports whether the receiver is on.
	Awake() bool
}

// Errors a link returns; after Close, net.ErrClosed.
var (
	ErrTooBig    = errors.New("link: datagram larger than the link's MTU")
	ErrBusy      = errors.New("link: transmit queue full")
	ErrDutyCycle = errors.New("link: duty-cycle budget exhausted")
	ErrAddr      = errors.New("link: address of another kind of link")
	ErrAsleep    = errors.New("link: radio asleep")
	// ErrNoAck: the radio sent a unicast datagram and the receiver never
	// acknowledged it (ESP-NOW on a card that reports transmit status).
	ErrNoAck = errors.New("link: unicast not acknowledged")
)

// InterfaceID is the first 4 bytes of SHA-256(name ‖ u32(bitrate) ‖ one byte
// per supported schema id).
func InterfaceID(name string, bitrate uint32, schemas []uint8) [4]byte {
	h := sha256.New()
	h.Write([]byte(name))
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], bitrate)
	h.Write(b[:])
	h.Write(schemas)
	var sum [sha256.Size]byte
	var id [4]byte
	copy(id[:], h.Sum(sum[:0]))
	return id
}

// The schema families of PROTOCOL 4.1, as links declare them: the ESP-NOW
// family (packets up to 250 bytes), the LoRa family (240 bytes), and both
// for links that carry anything.
var (
	SchemasESPNOW = []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	// SchemasESPNOWV2 is an ESP-NOW link that carries v2 frames (1,470
	// bytes): the ESP-NOW family and ours for v2 [ours], 40–50.
	SchemasESPNOWV2 = []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50}
	SchemasLoRa     = []uint8{20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}
	SchemasAll      = []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}
)
