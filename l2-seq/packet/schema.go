package packet

// Field is one header field a schema may carry after the 4-byte header.
type Field uint8

// The fields, in the order they appear on the wire (PROTOCOL 3).
const (
	FieldPacketID Field = iota
	FieldSeqID
	FieldSeqSize
	FieldTTL
	FieldChecksum
	FieldTreeState
	FieldTo
	FieldFrom
	numFields
)

var fieldNames = [numFields]string{"packet_id", "seq_id", "seq_size", "ttl", "checksum", "tree_state", "to_addr", "from_addr"}

// String returns the field's wire-reference name (e.g. "packet_id").
func (f Field) String() string {
	if f < numFields {
		return fieldNames[f]
	}
	return "field?"
}

// Family is the link family a schema belongs to.
type Family uint8

// Schema families: ESP-NOW datagrams are at most 250 bytes, RYLR-998 at most
// 240; ESP-NOW v2 frames carry up to 1,470 [ours: the v2 family is ours,
// used only between our nodes that announce they take v2 frames].
const (
	FamilyESPNOW   Family = 1
	FamilyLoRa     Family = 2
	FamilyESPNOWV2 Family = 3
)

// String names the family.
func (f Family) String() string {
	switch f {
	case FamilyESPNOW:
		return "espnow"
	case FamilyLoRa:
		return "lora"
	case FamilyESPNOWV2:
		return "espnow-v2"
	}
	return "family?"
}

// Sizes of the fixed parts.
const (
	HeaderSize    = 4   // version, reserved, schema, flags
	AddrSize      = 16  // tree coordinates
	MaxESPNOW     = 250 // largest ESP-NOW datagram
	MaxLoRa       = 240 // largest RYLR-998 datagram
	MaxPacketSize = MaxESPNOW
	// MaxESPNOWV2 is the largest ESP-NOW v2 datagram [ours].
	MaxESPNOWV2 = 1470
)

// Schema describes one packet layout. Schemas are immutable data; Lookup
// returns a pointer into a static table, so comparing pointers is fine.
type Schema struct {
	ID     uint8
	Family Family

	// Field sizes in bytes; 0 means the schema lacks the field.
	PacketIDSize int // 1 or 2
	SeqIDSize    int // 0 or 1
	SeqSizeSize  int // 0, 1 or 2
	TTLSize      int // 0 or 1
	ChecksumSize int // 0 or 4
	RouteSize    int // 0 or 33 (tree_state, to_addr, from_addr)

	// HeaderSize is everything before the body, including the 4-byte header.
	HeaderSize int
	// MaxBody is the largest body; HeaderSize+MaxBody is the family's datagram limit.
	MaxBody int
	// MaxSeq is the largest number of packets in one sequence (1 if not sequenced).
	MaxSeq int

	// Byte offsets of each field in the packet (valid only where the size is non-zero).
	offPID, offSID, offSSZ, offTTL, offCK, offTS, offTo, offFrom int
}

// Sequenced reports whether the schema carries seq_id and seq_size.
func (s *Schema) Sequenced() bool { return s.SeqIDSize != 0 }

// Routed reports whether the schema carries ttl, tree_state and addresses.
func (s *Schema) Routed() bool { return s.RouteSize != 0 }

// HasChecksum reports whether the schema carries a CRC-32 of the body.
func (s *Schema) HasChecksum() bool { return s.ChecksumSize != 0 }

// Has reports whether the schema carries field f.
func (s *Schema) Has(f Field) bool {
	switch f {
	case FieldPacketID:
		return true
	case FieldSeqID:
		return s.SeqIDSize != 0
	case FieldSeqSize:
		return s.SeqSizeSize != 0
	case FieldTTL:
		return s.TTLSize != 0
	case FieldChecksum:
		return s.ChecksumSize != 0
	case FieldTreeState, FieldTo, FieldFrom:
		return s.RouteSize != 0
	}
	return false
}

// Fields lists the schema's fields in wire order (the body excluded).
func (s *Schema) Fields() []Field {
	out := make([]Field, 0, numFields)
	for f := Field(0); f < numFields; f++ {
		if s.Has(f) {
			out = append(out, f)
		}
	}
	return out
}

// FieldSize returns the size in bytes of field f in this schema (0 if absent).
func (s *Schema) FieldSize(f Field) int {
	switch f {
	case FieldPacketID:
		return s.PacketIDSize
	case FieldSeqID:
		return s.SeqIDSize
	case FieldSeqSize:
		return s.SeqSizeSize
	case FieldTTL:
		return s.TTLSize
	case FieldChecksum:
		return s.ChecksumSize
	case FieldTreeState:
		if s.RouteSize != 0 {
			return 1
		}
	case FieldTo, FieldFrom:
		if s.RouteSize != 0 {
			return AddrSize
		}
	}
	return 0
}

// MaxPacket is the family's datagram limit: HeaderSize + MaxBody.
func (s *Schema) MaxPacket() int { return s.HeaderSize + s.MaxBody }

// MaxPackage is the largest serialized Package a sender puts in this schema,
// the reference's limit: MaxSeq*MaxBody - 1 (PROTOCOL 3).
func (s *Schema) MaxPackage() int { return s.MaxSeq*s.MaxBody - 1 }

// MaxPackageRecv is the largest serialized Package a receiver accepts in this
// schema: one byte more than senders use, every packet full.
func (s *Schema) MaxPackageRecv() int { return s.MaxSeq * s.MaxBody }

// The schema table: ids 0–10 (ESP-NOW) and 20–30 (LoRa, same fields, bodies
// 10 bytes smaller), and ours, 40–50 (ESP-NOW v2, same fields, bodies up to
// a 1,470-byte datagram). Indexed by id; nil entries are invalid ids.
var table [256]*Schema

// layout of ids 0..10: pid, sid, ssz, ttl, ck, route sizes.
var layouts = [11][6]int{
	0:  {1, 0, 0, 0, 0, 0},
	1:  {1, 0, 0, 0, 4, 0},
	2:  {1, 1, 1, 0, 0, 0},
	3:  {1, 1, 1, 0, 4, 0},
	4:  {2, 1, 2, 0, 4, 0},
	5:  {1, 0, 0, 1, 0, 33},
	6:  {1, 0, 0, 1, 4, 33},
	7:  {1, 1, 1, 1, 0, 33},
	8:  {1, 1, 1, 1, 4, 33},
	9:  {2, 1, 2, 1, 0, 33},
	10: {2, 1, 2, 1, 4, 33},
}

var all []*Schema

func init() {
	for fam, base := range map[Family]int{FamilyESPNOW: 0, FamilyLoRa: 20, FamilyESPNOWV2: 40} {
		limit := MaxESPNOW
		switch fam {
		case FamilyLoRa:
			limit = MaxLoRa
		case FamilyESPNOWV2:
			limit = MaxESPNOWV2
		}
		for i, l := range layouts {
			s := &Schema{
				ID: uint8(base + i), Family: fam,
				PacketIDSize: l[0], SeqIDSize: l[1], SeqSizeSize: l[2],
				TTLSize: l[3], ChecksumSize: l[4], RouteSize: l[5],
			}
			off := HeaderSize
			s.offPID, off = off, off+s.PacketIDSize
			s.offSID, off = off, off+s.SeqIDSize
			s.offSSZ, off = off, off+s.SeqSizeSize
			s.offTTL, off = off, off+s.TTLSize
			s.offCK, off = off, off+s.ChecksumSize
			if s.RouteSize != 0 {
				s.offTS = off
				s.offTo = off + 1
				s.offFrom = off + 1 + AddrSize
				off += s.RouteSize
			}
			s.HeaderSize = off
			s.MaxBody = limit - off
			switch s.SeqSizeSize {
			case 0:
				s.MaxSeq = 1
			case 1:
				s.MaxSeq = 256
			case 2:
				s.MaxSeq = 65536
			}
			table[s.ID] = s
		}
	}
	for _, s := range table {
		if s != nil {
			all = append(all, s)
		}
	}
}

// Lookup returns the schema with the given id, or ErrUnknownSchema.
func Lookup(id uint8) (*Schema, error) {
	if s := table[id]; s != nil {
		return s, nil
	}
	return nil, &SchemaError{ID: id}
}

// MustLookup is Lookup for ids known valid at compile time; it panics otherwise.
func MustLookup(id uint8) *Schema {
	s, err := Lookup(id)
	if err != nil {
		panic(err)
	}
	return s
}

// Schemas returns every valid schema in id order. The slice is shared: do not modify it.
func Schemas() []*Schema { return all }

// Valid reports whether id names a schema.
func Valid(id uint8) bool { return table[id] != nil }
