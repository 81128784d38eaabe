package ble

import (
	"errors"
	"fmt"
)

// UUID is a 128-bit Bluetooth UUID, most significant byte first (the order
// it is written in).
type UUID [16]byte

// String formats the UUID as 8-4-4-4-12 lowercase hex digits.
func (u UUID) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// The mesh's GATT service and its two characteristics. These are random
// (version 4) UUIDs drawn for this project; nothing else uses them, so a
// scan that finds ServiceUUID has found a mesh node.
//
// Both characteristics carry one mesh packet per write (write without
// response, central to peripheral) or per notification (peripheral to
// central). There are two only so that the receiver knows how a packet was
// addressed without a byte being added to it: PacketUUID carries packets
// sent to this one peer, BroadcastUUID packets the sender wrote to every
// peer it is connected to (Frame.Broadcast).
var (
	ServiceUUID   = UUID{0xc2, 0x7b, 0xf1, 0x4d, 0x59, 0x59, 0x40, 0x3d, 0xa4, 0xf6, 0x70, 0x5d, 0xfa, 0x66, 0x1b, 0x70}
	PacketUUID    = UUID{0x36, 0x0e, 0x3c, 0x63, 0x15, 0x14, 0x42, 0xcb, 0xa8, 0x99, 0x48, 0xf4, 0xe5, 0x1e, 0x79, 0x0f}
	BroadcastUUID = UUID{0xb9, 0x52, 0x70, 0x71, 0xa5, 0x43, 0x40, 0xde, 0xb6, 0x06, 0x65, 0xef, 0xcb, 0x70, 0xd5, 0x0f}
)

// ATT protocol sizes.
const (
	// ATTHeader is what each write command or notification spends of the
	// ATT MTU on opcode and handle: the payload is MTU − 3.
	ATTHeader = 3
	// MinATTMTU is the ATT MTU every connection starts with (23: 20 bytes
	// of payload) until the two sides exchange a larger one.
	MinATTMTU = 23
	// MaxATTMTU is the largest ATT MTU a connection can negotiate.
	MaxATTMTU = 517
	// MaxPayload is the largest attribute value the ATT protocol allows; no
	// write or notification carries more.
	MaxPayload = 512
)

// Payload returns how many bytes one write or notification carries on a
// connection with the given ATT MTU.
func Payload(attMTU int) int { return min(attMTU-ATTHeader, MaxPayload) }

// Transport is the Bluetooth stack under a Link: the tinygo/BlueZ backend on
// Linux (NewBlueZ), or the in-memory air of package bletest in tests. The
// link holds the policy (which connections to keep, when to redial, what
// fits); a Transport does the radio work.
//
// No method blocks: work that takes time (a connection attempt, a write
// over D-Bus) is started and its outcome reported later through the
// Handler. Handler methods may be called from any goroutine, concurrently
// (tinygo delivers each characteristic's notifications on a goroutine of
// its own); Connected(c) comes before every other event for c, and the
// packets of one characteristic arrive in order.
type Transport interface {
	// Addr is the local adapter's address.
	Addr() Addr
	// Start begins the roles the transport was built for — scanning for
	// the mesh service (central), advertising it and accepting centrals
	// (peripheral) — and reports events to h until Close.
	Start(h Handler) error
	// Dial starts connecting, as central, to a peer seen advertising the
	// mesh service: service and characteristics discovered, notifications
	// enabled. The outcome is h.Connected or h.DialFailed.
	Dial(addr Addr)
	// Close disconnects everything and stops the roles.
	Close() error
}

// Conn is one connection to a peer, in either role.
type Conn interface {
	// Peer is the other side's address.
	Peer() Addr
	// Central reports whether we are the central (we dialed; we write and
	// the peer notifies); false when the peer dialed us.
	Central() bool
	// MTU is the connection's negotiated ATT MTU.
	MTU() int
	// Send queues one packet for the peer: a write without response as
	// central, a notification as peripheral, on BroadcastUUID when bcast is
	// set, else on PacketUUID. It does not block; done is called exactly
	// once, from any goroutine (possibly before Send returns), when the
	// packet has left or could not be sent. Packets leave in order.
	Send(p []byte, bcast bool, done func(error))
	// Close disconnects; Handler.Disconnected follows.
	Close()
}

// Handler receives a Transport's events.
type Handler interface {
	// Found reports a peer advertising the mesh service (repeatedly, while
	// it advertises).
	Found(addr Addr)
	// Connected reports a new connection: one we dialed or one a central
	// made to us. It comes before any Received or Disconnected for c.
	Connected(c Conn)
	// DialFailed reports that a Dial did not produce a connection.
	DialFailed(addr Addr, err error)
	// Received hands up one packet the peer wrote (or notified); p is valid
	// only during the call. bcast tells which characteristic it came on.
	Received(c Conn, p []byte, bcast bool)
	// Disconnected reports that c is gone, for whatever reason.
	Disconnected(c Conn, err error)
}

// Errors a Transport or Link reports.
var (
	// ErrNotConnected: no connection to the destination (a unicast to a
	// peer that left, or a write on a connection that dropped).
	ErrNotConnected = errors.New("ble: not connected to that peer")
	// ErrMTUTooSmall: a connection negotiated an MTU below the link's
	// minimum, so the link refused it.
	ErrMTUTooSmall = errors.New("ble: connection MTU below the link's minimum")
	// ErrConfig: Open cannot use the configuration.
	ErrConfig = errors.New("ble: bad configuration")
)
