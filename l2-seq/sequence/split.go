// Package sequence cuts Packages into the packets of a schema and puts them
// back together (PROTOCOL 4).
package sequence

import (
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// Count returns how many packets a serialized Package of n bytes takes in
// schema s (at least one: an empty Package still takes a packet).
func Count(s *packet.Schema, n int) int {
	if n <= 0 {
		return 1
	}
	return (n + s.MaxBody - 1) / s.MaxBody
}

// Asks reports whether packet i of a sequence of count packets carries the
// ask flag: the first, the middle (count/2) and the last do.
func Asks(i, count int) bool { return i == 0 || i == count-1 || i == count/2 }

// CheckSize reports whether a sender may put a Package of n bytes in schema s
// (n ≤ MaxSeq×MaxBody − 1, the reference's limit).
func CheckSize(s *packet.Schema, n int) error {
	if n > s.MaxPackage() {
		return &packet.LengthError{Err: packet.ErrPackageSize, What: "package", Schema: int(s.ID), Got: n, Want: s.MaxPackage()}
	}
	return nil
}

// Cut fills p with packet i of the sequence that carries pkg in schema s. tmpl
// supplies the fields a sequence shares (seq_id, flags such as mode, and for
// routed schemas ttl, tree_state, to, from); Cut sets schema, packet_id,
// seq_size, the ask flag, the body (aliasing pkg) and the checksum. It does not
// check sizes: call CheckSize once per Package.
func Cut(s *packet.Schema, pkg []byte, i int, tmpl *packet.Packet, p *packet.Packet) {
	CutRoom(s, pkg, i, 0, tmpl, p)
}

// CountRoom is Count for a Package whose first packet keeps room bytes of
// its body free (for the hop trailer between our nodes, l2-seq/hop).
func CountRoom(s *packet.Schema, n, room int) int { return Count(s, n+room) }

// CutRoom is Cut with the first packet's body room bytes shorter than the
// schema's, the others full: the first packet, the one that carries the
// Package's app_id and hash, then has room for a hop trailer [ours].
// Receivers put chunks together whatever their lengths.
func CutRoom(s *packet.Schema, pkg []byte, i, room int, tmpl *packet.Packet, p *packet.Packet) {
	count := CountRoom(s, len(pkg), room)
	*p = *tmpl
	p.Schema = s.ID
	p.PacketID = uint16(i)
	if s.Sequenced() {
		p.SeqSize = uint16(count - 1)
	} else {
		p.SeqID, p.SeqSize = 0, 0
	}
	enc := packet.EncNone
	if s.Sequenced() && Asks(i, count) {
		enc = packet.EncAsk
	}
	p.Flags = p.Flags.WithEncoded(enc)
	lo := max(0, i*s.MaxBody-room)
	hi := min((i+1)*s.MaxBody-room, len(pkg))
	p.Body = pkg[lo:hi]
	if s.HasChecksum() {
		p.FillChecksum()
	}
}

// Split cuts a serialized Package into the encoded packets of schema s, in
// order, checksums filled (see Cut for tmpl).
func Split(s *packet.Schema, pkg []byte, tmpl *packet.Packet) ([][]byte, error) {
	if err := CheckSize(s, len(pkg)); err != nil {
		return nil, err
	}
	count := Count(s, len(pkg))
	out := make([][]byte, count)
	var p packet.Packet
	for i := range count {
		Cut(s, pkg, i, tmpl, &p)
		b, err := p.AppendTo(make([]byte, 0, p.Len()))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
