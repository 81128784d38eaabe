package packet

import (
	"encoding/binary"
	"hash/crc32"
)

// Version is the protocol version this stack speaks; packets with a higher
// version are refused.
const Version = 0

// Packet is one decoded packet. Fields the schema lacks are zero and ignored
// by the encoder. After Decode, Body aliases the decoded buffer: copy it if the
// buffer is reused.
type Packet struct {
	Version   uint8
	Reserved  uint8
	Schema    uint8
	Flags     Flags
	PacketID  uint16
	SeqID     uint8
	SeqSize   uint16 // number of packets in the sequence minus one
	TTL       uint8
	Checksum  uint32
	TreeState uint8
	To, From  [AddrSize]byte
	Body      []byte
}

// Len returns the encoded size of p, or 0 if its schema is unknown.
func (p *Packet) Len() int {
	s := table[p.Schema]
	if s == nil {
		return 0
	}
	return s.HeaderSize + len(p.Body)
}

// Check validates p against its schema without encoding it: a known schema,
// every field value in range, the body within the maximum.
func (p *Packet) Check() (*Schema, error) {
	s := table[p.Schema]
	if s == nil {
		return nil, &SchemaError{ID: p.Schema}
	}
	if p.Version > Version {
		return nil, &VersionError{Version: p.Version}
	}
	if s.PacketIDSize == 1 && p.PacketID > 0xff {
		return nil, &FieldError{Schema: s.ID, Field: FieldPacketID, Value: int(p.PacketID), Max: 0xff}
	}
	if s.SeqSizeSize == 1 && p.SeqSize > 0xff {
		return nil, &FieldError{Schema: s.ID, Field: FieldSeqSize, Value: int(p.SeqSize), Max: 0xff}
	}
	if len(p.Body) > s.MaxBody {
		return nil, &LengthError{Err: ErrBodyTooLong, What: "body", Schema: int(s.ID), Got: len(p.Body), Want: s.MaxBody}
	}
	return s, nil
}

// AppendTo appends the encoded packet to b and returns the extended slice. It
// writes the Checksum field as given; call FillChecksum first (or use
// AppendSealed) to compute it. It never allocates when b has room.
func (p *Packet) AppendTo(b []byte) ([]byte, error) {
	s, err := p.Check()
	if err != nil {
		return b, err
	}
	return p.appendTo(b, s), nil
}

// AppendSealed is AppendTo with the checksum computed from the body when the
// schema has one (and p.Checksum updated).
func (p *Packet) AppendSealed(b []byte) ([]byte, error) {
	s, err := p.Check()
	if err != nil {
		return b, err
	}
	if s.ChecksumSize != 0 {
		p.Checksum = crc32.ChecksumIEEE(p.Body)
	}
	return p.appendTo(b, s), nil
}

func (p *Packet) appendTo(b []byte, s *Schema) []byte {
	n := len(b)
	total := s.HeaderSize + len(p.Body)
	if cap(b)-n < total {
		nb := make([]byte, n, n+total)
		copy(nb, b)
		b = nb
	}
	b = b[:n+total]
	h := b[n:]
	h[0], h[1], h[2], h[3] = p.Version, p.Reserved, s.ID, byte(p.Flags)
	if s.PacketIDSize == 1 {
		h[s.offPID] = byte(p.PacketID)
	} else {
		binary.BigEndian.PutUint16(h[s.offPID:], p.PacketID)
	}
	if s.SeqIDSize != 0 {
		h[s.offSID] = p.SeqID
		if s.SeqSizeSize == 1 {
			h[s.offSSZ] = byte(p.SeqSize)
		} else {
			binary.BigEndian.PutUint16(h[s.offSSZ:], p.SeqSize)
		}
	}
	if s.TTLSize != 0 {
		h[s.offTTL] = p.TTL
	}
	if s.ChecksumSize != 0 {
		binary.BigEndian.PutUint32(h[s.offCK:], p.Checksum)
	}
	if s.RouteSize != 0 {
		h[s.offTS] = p.TreeState
		copy(h[s.offTo:], p.To[:])
		copy(h[s.offFrom:], p.From[:])
	}
	copy(h[s.HeaderSize:], p.Body)
	return b
}

// MarshalBinary encodes p into a new slice (encoding.BinaryMarshaler).
func (p *Packet) MarshalBinary() ([]byte, error) {
	if table[p.Schema] == nil {
		return nil, &SchemaError{ID: p.Schema}
	}
	return p.AppendTo(make([]byte, 0, p.Len()))
}

// UnmarshalBinary decodes b into p (encoding.BinaryUnmarshaler). p.Body
// aliases b. It does not verify the checksum: that is the receiver's step
// (see VerifyChecksum). On error p is left in an unspecified state.
func (p *Packet) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderSize {
		return &LengthError{Err: ErrTooShort, What: "packet", Schema: -1, Got: len(b), Want: HeaderSize}
	}
	if b[0] > Version {
		return &VersionError{Version: b[0]}
	}
	s := table[b[2]]
	if s == nil {
		return &SchemaError{ID: b[2]}
	}
	if len(b) < s.HeaderSize {
		return &LengthError{Err: ErrTooShort, What: "packet", Schema: int(s.ID), Got: len(b), Want: s.HeaderSize}
	}
	if len(b) > s.HeaderSize+s.MaxBody {
		return &LengthError{Err: ErrBodyTooLong, What: "body", Schema: int(s.ID), Got: len(b) - s.HeaderSize, Want: s.MaxBody}
	}
	*p = Packet{Version: b[0], Reserved: b[1], Schema: b[2], Flags: Flags(b[3])}
	if s.PacketIDSize == 1 {
		p.PacketID = uint16(b[s.offPID])
	} else {
		p.PacketID = binary.BigEndian.Uint16(b[s.offPID:])
	}
	if s.SeqIDSize != 0 {
		p.SeqID = b[s.offSID]
		if s.SeqSizeSize == 1 {
			p.SeqSize = uint16(b[s.offSSZ])
		} else {
			p.SeqSize = binary.BigEndian.Uint16(b[s.offSSZ:])
		}
	}
	if s.TTLSize != 0 {
		p.TTL = b[s.offTTL]
	}
	if s.ChecksumSize != 0 {
		p.Checksum = binary.BigEndian.Uint32(b[s.offCK:])
	}
	if s.RouteSize != 0 {
		p.TreeState = b[s.offTS]
		copy(p.To[:], b[s.offTo:])
		copy(p.From[:], b[s.offFrom:])
	}
	p.Body = b[s.HeaderSize:len(b):len(b)]
	return nil
}

// Decode is UnmarshalBinary into a caller-owned Packet.
func Decode(b []byte, p *Packet) error { return p.UnmarshalBinary(b) }

// SchemaOf returns p's schema (nil if the id is unknown).
func (p *Packet) SchemaOf() *Schema { return table[p.Schema] }

// FillChecksum sets p.Checksum to the CRC-32 of the body.
func (p *Packet) FillChecksum() { p.Checksum = crc32.ChecksumIEEE(p.Body) }

// VerifyChecksum checks the stored checksum against the body. A schema
// without a checksum always verifies.
func (p *Packet) VerifyChecksum() error {
	s := table[p.Schema]
	if s == nil {
		return &SchemaError{ID: p.Schema}
	}
	if s.ChecksumSize == 0 {
		return nil
	}
	if c := crc32.ChecksumIEEE(p.Body); c != p.Checksum {
		return &ChecksumError{Stored: p.Checksum, Computed: c}
	}
	return nil
}

// AckFor fills a with the ack that answers p (PROTOCOL 4): the same schema,
// flags with the encoded field replaced by ack, the same packet_id (and
// seq_id, seq_size), an empty body; on routed schemas to and from swapped and
// tree_state and ttl copied.
func AckFor(p *Packet, a *Packet) {
	*a = Packet{
		Schema: p.Schema, Flags: p.Flags.AckReply(),
		PacketID: p.PacketID, SeqID: p.SeqID, SeqSize: p.SeqSize,
		TTL: p.TTL, TreeState: p.TreeState, To: p.From, From: p.To,
	}
	a.Body = a.Body[:0]
	if s := table[p.Schema]; s != nil && s.ChecksumSize != 0 {
		a.FillChecksum()
	}
}
