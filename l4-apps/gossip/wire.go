package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// Frame types: the first byte of a gossip Package's blob. Message,
// Notification and Request are PROTOCOL 10's; Hello is ours.
const (
	TypeMessage      = 0xf0 // type ‖ topic_id (16) ‖ data
	TypeNotification = 0x0f // type ‖ message_id (16)
	TypeRequest      = 0x00 // type ‖ message_id (16)
	// TypeHello [ours]: type ‖ sender short id (4) ‖ round (2) ‖ count (1)
	// ‖ count neighbour short ids (4 each) ‖ relays (1) ‖ relays short ids
	// (4 each) ‖ bloom (the rest: nothing, or MinBloom bytes or more). A
	// short id is the first four bytes of a node_id; the relays are the
	// neighbours the sender chose to carry its broadcasts on (its
	// multipoint relays); the bloom filter holds the message ids its sender
	// has seen lately, four bits each, salted by the round.
	TypeHello = 0x01
)

// Sizes.
const (
	IDSize      = packet.HashSize
	MessageHead = 1 + IDSize // type ‖ topic_id
	idFrameLen  = 1 + IDSize
	helloHead   = 1 + 4 + 2 + 1
	// MaxHelloNeighbours bounds the neighbours a hello lists: with the
	// bloom it stays one ESP-NOW packet. A node with more lists the first
	// ones; its neighbours then think fewer of theirs covered and relay a
	// little more, never less.
	MaxHelloNeighbours = 20
	// MaxHello is the size of a hello: one ESP-NOW or LoRa packet. The
	// bloom filter takes what the lists leave: about 150 bytes with 8
	// neighbours and 3 relays; holding 120 ids (four hello periods of
	// Messages at one every two seconds), 1,200 bits answer "seen" wrongly
	// for 1.5 % of the ids a node lacks. Rounds salt the filter
	// differently, so a hole hidden once shows next round.
	MaxHello = 200
	// MinBloom is the smallest bloom filter a hello carries.
	MinBloom = 8
	bloomK   = 4
)

// Errors.
var (
	ErrTooShort    = errors.New("gossip: frame too short")
	ErrUnknownType = errors.New("gossip: unknown frame type")
	ErrBadHello    = errors.New("gossip: malformed hello")
	ErrTooLarge    = errors.New("gossip: message too large")
)

// TopicID names a topic: half_sha256 of its name (PROTOCOL 10).
type TopicID [IDSize]byte

// MessageID names a Message: half_sha256 of the serialized Message.
type MessageID [IDSize]byte

// Topic returns the topic id of name.
func Topic(name string) TopicID { return packet.HalfSHA256([]byte(name)) }

// IDOf returns the id of a serialized Message.
func IDOf(msg []byte) MessageID { return packet.HalfSHA256(msg) }

// AppendMessage appends a Message of data on topic.
func AppendMessage(b []byte, topic TopicID, data []byte) []byte {
	b = append(b, TypeMessage)
	b = append(b, topic[:]...)
	return append(b, data...)
}

// AppendNotification appends a Notification of id.
func AppendNotification(b []byte, id MessageID) []byte {
	return append(append(b, TypeNotification), id[:]...)
}

// AppendRequest appends a Request for id.
func AppendRequest(b []byte, id MessageID) []byte {
	return append(append(b, TypeRequest), id[:]...)
}

// Hello is a node's neighbourhood as it tells its neighbours.
type Hello struct {
	Self       uint32
	Round      uint16
	Neighbours []uint32
	Relays     []uint32 // a subset of Neighbours
	Bloom      []byte   // nil, or at least MinBloom bytes
}

// AppendTo appends the hello (at most MaxHelloNeighbours are written).
func (h *Hello) AppendTo(b []byte) []byte {
	nb := h.Neighbours[:min(len(h.Neighbours), MaxHelloNeighbours)]
	b = append(b, TypeHello)
	b = binary.BigEndian.AppendUint32(b, h.Self)
	b = binary.BigEndian.AppendUint16(b, h.Round)
	b = append(b, byte(len(nb)))
	for _, n := range nb {
		b = binary.BigEndian.AppendUint32(b, n)
	}
	rl := h.Relays[:min(len(h.Relays), MaxHelloNeighbours)]
	b = append(b, byte(len(rl)))
	for _, n := range rl {
		b = binary.BigEndian.AppendUint32(b, n)
	}
	if len(h.Bloom) >= MinBloom {
		b = append(b, h.Bloom...)
	}
	return b
}

// Frame is one decoded gossip frame; its slices alias the input.
type Frame struct {
	Type  byte
	Topic TopicID   // Message
	Data  []byte    // Message
	ID    MessageID // Notification, Request
	Hello Hello
}

// Decode decodes one frame. The Hello's neighbour list reuses
// f.Hello.Neighbours' backing array.
func Decode(b []byte, f *Frame) error {
	if len(b) == 0 {
		return ErrTooShort
	}
	f.Type = b[0]
	switch f.Type {
	case TypeMessage:
		if len(b) < MessageHead {
			return fmt.Errorf("%w: message of %d bytes", ErrTooShort, len(b))
		}
		copy(f.Topic[:], b[1:MessageHead])
		f.Data = b[MessageHead:]
	case TypeNotification, TypeRequest:
		if len(b) != idFrameLen {
			return fmt.Errorf("%w: id frame of %d bytes", ErrTooShort, len(b))
		}
		copy(f.ID[:], b[1:])
	case TypeHello:
		if len(b) < helloHead {
			return fmt.Errorf("%w: hello of %d bytes", ErrTooShort, len(b))
		}
		h := &f.Hello
		h.Self = binary.BigEndian.Uint32(b[1:])
		h.Round = binary.BigEndian.Uint16(b[5:])
		n := int(b[7])
		rest := b[helloHead:]
		if n > MaxHelloNeighbours || len(rest) < 4*n {
			return fmt.Errorf("%w: %d neighbours in %d bytes", ErrBadHello, n, len(rest))
		}
		h.Neighbours = h.Neighbours[:0]
		for i := range n {
			h.Neighbours = append(h.Neighbours, binary.BigEndian.Uint32(rest[4*i:]))
		}
		rest = rest[4*n:]
		if len(rest) < 1 {
			return fmt.Errorf("%w: no relay count", ErrBadHello)
		}
		r := int(rest[0])
		rest = rest[1:]
		if r > MaxHelloNeighbours || len(rest) < 4*r {
			return fmt.Errorf("%w: %d relays in %d bytes", ErrBadHello, r, len(rest))
		}
		h.Relays = h.Relays[:0]
		for i := range r {
			h.Relays = append(h.Relays, binary.BigEndian.Uint32(rest[4*i:]))
		}
		rest = rest[4*r:]
		switch {
		case len(rest) == 0:
			h.Bloom = nil
		case len(rest) >= MinBloom && len(rest) <= MaxHello:
			h.Bloom = rest
		default:
			return fmt.Errorf("%w: bloom of %d bytes", ErrBadHello, len(rest))
		}
	default:
		return fmt.Errorf("%w: 0x%02x", ErrUnknownType, f.Type)
	}
	return nil
}

// bloomAdd sets id's bits in bloom, salted by round.
func bloomAdd(bloom []byte, id *MessageID, round uint16) {
	for i := range bloomK {
		p := bloomPos(id, round, i, len(bloom))
		bloom[p/8] |= 1 << (p % 8)
	}
}

// bloomHas reports whether bloom may hold id.
func bloomHas(bloom []byte, id *MessageID, round uint16) bool {
	for i := range bloomK {
		p := bloomPos(id, round, i, len(bloom))
		if bloom[p/8]&(1<<(p%8)) == 0 {
			return false
		}
	}
	return true
}

// bloomPos: the id is a hash already; the round's salt makes a false
// positive of one round unlikely to repeat in the next.
func bloomPos(id *MessageID, round uint16, i, size int) uint32 {
	x := binary.BigEndian.Uint32(id[4*i:]) ^ uint32(round)*0x9e3779b9
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	return x % uint32(size*8)
}
