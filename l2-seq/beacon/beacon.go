// Package beacon is the wire format of the Beacon application (PROTOCOL
// 5.2): op ‖ node_id ‖ up to ten app_ids. A node broadcasts beacons to be
// found, answers them to be known, and says goodbye before its radios go off.
package beacon

import (
	"errors"
	"fmt"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// AppID is the Beacon application's id: ("Beacon", "Dev Beacon App", 0).
var AppID = packet.NewAppID("Beacon", "Dev Beacon App", 0)

// CapabilitiesID is the app_id our nodes list in their beacons to say they
// speak the whole protocol (PROTOCOL 11): ("Mycelium", "capabilities", 1).
// A peer without it is treated as a reference node.
var CapabilitiesID = packet.NewAppID("Mycelium", "capabilities", 1)

// SleepsID is the app_id our nodes list when they use modem sleep, so peers
// know to wake them (RNS) before sending: ("Mycelium", "modem sleep", 1).
var SleepsID = packet.NewAppID("Mycelium", "modem sleep", 1)

// ESPNOWV2ID is the app_id our nodes list in the beacons they send on an
// ESP-NOW link that takes v2 frames (up to 1,470 bytes) [ours]: a peer that
// hears it there may send them the v2 schemas, 40–50, on that link;
// ("Mycelium", "espnow v2", 1).
var ESPNOWV2ID = packet.NewAppID("Mycelium", "espnow v2", 1)

// BusyID is the app_id our nodes list in their beacons while they miss
// much of what their neighbours send [ours]: a neighbour that hears it
// slows its deferrable control traffic, since the busy node hears all of
// it (l2-seq/node, busy.go); ("Mycelium", "busy", 1). Boards take it for
// one more application they do not run.
var BusyID = packet.NewAppID("Mycelium", "busy", 1)

// Op is the message type.
type Op uint8

// Message types.
const (
	OpBeacon     Op = 0x00 // "here I am": answer with a response
	OpResponse   Op = 0x01 // answer to a beacon
	OpDisconnect Op = 0xff // leaving: forget me (node_id only)
)

// Sizes.
const (
	NodeIDSize = 32
	MaxApps    = 10
	HeaderSize = 1 + NodeIDSize
	MaxSize    = HeaderSize + MaxApps*packet.AppIDSize
)

// Errors.
var (
	ErrTooShort = errors.New("beacon: too short")
	ErrTooMany  = errors.New("beacon: more than ten app_ids")
)

// Message is one beacon message.
type Message struct {
	Op     Op
	NodeID [NodeIDSize]byte
	Apps   []packet.AppID
}

// AppendTo appends the message to b.
func (m *Message) AppendTo(b []byte) ([]byte, error) {
	if len(m.Apps) > MaxApps {
		return b, fmt.Errorf("%w: %d", ErrTooMany, len(m.Apps))
	}
	b = append(b, byte(m.Op))
	b = append(b, m.NodeID[:]...)
	for i := range m.Apps {
		b = append(b, m.Apps[i][:]...)
	}
	return b, nil
}

// UnmarshalBinary decodes a message. A message shorter than op ‖ node_id is
// an error; trailing bytes that do not make a whole app_id are ignored, as
// the reference does; more than ten app_ids are accepted (a receiver keeps
// what it is told). m.Apps reuses its backing array.
func (m *Message) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("%w: %d bytes, want at least %d", ErrTooShort, len(b), HeaderSize)
	}
	m.Op = Op(b[0])
	copy(m.NodeID[:], b[1:HeaderSize])
	m.Apps = m.Apps[:0]
	for rest := b[HeaderSize:]; len(rest) >= packet.AppIDSize; rest = rest[packet.AppIDSize:] {
		var id packet.AppID
		copy(id[:], rest)
		m.Apps = append(m.Apps, id)
	}
	return nil
}

// Messages splits a node's app list into as many messages as ten app_ids
// per message need (at least one, even with no apps).
func Messages(op Op, node [NodeIDSize]byte, apps []packet.AppID) []Message {
	var out []Message
	for {
		n := min(len(apps), MaxApps)
		out = append(out, Message{Op: op, NodeID: node, Apps: apps[:n:n]})
		apps = apps[n:]
		if len(apps) == 0 {
			return out
		}
	}
}
