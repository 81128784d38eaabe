package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// packetJSON is the decode form of a packet (`mycelium packet decode`): field
// order as the contract lists it, fields the schema lacks left out.
type packetJSON struct {
	Version    uint8    `json:"version"`
	Reserved   uint8    `json:"reserved"`
	Schema     uint8    `json:"schema"`
	Flags      uint8    `json:"flags"`
	FlagNames  []string `json:"flag_names"`
	PacketID   uint16   `json:"packet_id"`
	SeqID      *uint8   `json:"seq_id,omitempty"`
	SeqSize    *uint16  `json:"seq_size,omitempty"`
	TTL        *uint8   `json:"ttl,omitempty"`
	Checksum   *string  `json:"checksum,omitempty"`
	TreeState  *uint8   `json:"tree_state,omitempty"`
	ToAddr     *string  `json:"to_addr,omitempty"`
	FromAddr   *string  `json:"from_addr,omitempty"`
	Body       string   `json:"body"`
	ChecksumOK *bool    `json:"checksum_ok,omitempty"`
}

func viewPacket(p *packet.Packet) packetJSON {
	s := p.SchemaOf()
	v := packetJSON{
		Version: p.Version, Reserved: p.Reserved, Schema: p.Schema, Flags: uint8(p.Flags),
		FlagNames: p.Flags.AppendNames([]string{}), PacketID: p.PacketID,
		Body: hex.EncodeToString(p.Body),
	}
	if s.Sequenced() {
		v.SeqID, v.SeqSize = &p.SeqID, &p.SeqSize
	}
	if s.Routed() {
		v.TTL, v.TreeState = &p.TTL, &p.TreeState
		to, from := hex.EncodeToString(p.To[:]), hex.EncodeToString(p.From[:])
		v.ToAddr, v.FromAddr = &to, &from
	}
	if s.HasChecksum() {
		ck := fmt.Sprintf("%08x", p.Checksum)
		ok := p.VerifyChecksum() == nil
		v.Checksum, v.ChecksumOK = &ck, &ok
	}
	return v
}

// decodePacketJSON parses the encode form: the decode form with flag_names
// and checksum_ok ignored. It reports whether a checksum was given.
func decodePacketJSON(in []byte) (packet.Packet, bool, error) {
	var p packet.Packet
	var raw map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(in))
	d.UseNumber()
	if err := d.Decode(&raw); err != nil {
		return p, false, jsonError(in, err)
	}
	if d.More() {
		return p, false, fmt.Errorf("packet JSON: trailing data after the object")
	}
	num := func(key string, max uint64) (uint64, bool, error) {
		r, ok := raw[key]
		if !ok {
			return 0, false, nil
		}
		var n json.Number
		if err := json.Unmarshal(r, &n); err != nil {
			return 0, true, fmt.Errorf("packet JSON: %s: not a number", key)
		}
		u, err := strconv.ParseUint(n.String(), 10, 64)
		if err != nil || u > max {
			return 0, true, fmt.Errorf("packet JSON: %s: %s is not an integer in 0..%d", key, n, max)
		}
		return u, true, nil
	}
	str := func(key string) (string, bool, error) {
		r, ok := raw[key]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return "", true, fmt.Errorf("packet JSON: %s: not a string", key)
		}
		return s, true, nil
	}
	known := map[string]bool{"flag_names": true, "checksum_ok": true}
	schema, ok, err := num("schema", 255)
	if err != nil {
		return p, false, err
	}
	if !ok {
		return p, false, fmt.Errorf("packet JSON: schema missing")
	}
	s, err := packet.Lookup(uint8(schema))
	if err != nil {
		return p, false, fmt.Errorf("packet JSON: schema %d: no such schema (0-10, 20-30, 40-50)", schema)
	}
	p.Schema = s.ID
	known["schema"] = true
	for _, f := range []struct {
		key string
		max uint64
		has bool
		set func(uint64)
	}{
		{"version", 255, true, func(u uint64) { p.Version = uint8(u) }},
		{"reserved", 255, true, func(u uint64) { p.Reserved = uint8(u) }},
		{"flags", 255, true, func(u uint64) { p.Flags = packet.Flags(u) }},
		{"packet_id", 1<<(8*s.PacketIDSize) - 1, true, func(u uint64) { p.PacketID = uint16(u) }},
		{"seq_id", 255, s.Sequenced(), func(u uint64) { p.SeqID = uint8(u) }},
		{"seq_size", 1<<(8*max(s.SeqSizeSize, 1)) - 1, s.Sequenced(), func(u uint64) { p.SeqSize = uint16(u) }},
		{"ttl", 255, s.Routed(), func(u uint64) { p.TTL = uint8(u) }},
		{"tree_state", 255, s.Routed(), func(u uint64) { p.TreeState = uint8(u) }},
	} {
		u, present, err := num(f.key, f.max)
		if err != nil {
			return p, false, err
		}
		if present && !f.has {
			return p, false, fmt.Errorf("packet JSON: schema %d has no %s", s.ID, f.key)
		}
		if present {
			f.set(u)
		}
		known[f.key] = true
	}
	for _, a := range []struct {
		key string
		dst *[16]byte
	}{{"to_addr", &p.To}, {"from_addr", &p.From}} {
		h, present, err := str(a.key)
		if err != nil {
			return p, false, err
		}
		known[a.key] = true
		if !present {
			continue
		}
		if !s.Routed() {
			return p, false, fmt.Errorf("packet JSON: schema %d has no %s", s.ID, a.key)
		}
		b, err := parseFixedHex("packet JSON: "+a.key, h, 16)
		if err != nil {
			return p, false, err
		}
		copy(a.dst[:], b)
	}
	ck, haveCK, err := str("checksum")
	if err != nil {
		return p, false, err
	}
	known["checksum"] = true
	if haveCK {
		if !s.HasChecksum() {
			return p, false, fmt.Errorf("packet JSON: schema %d has no checksum", s.ID)
		}
		b, err := parseFixedHex("packet JSON: checksum", ck, 4)
		if err != nil {
			return p, false, err
		}
		p.Checksum = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	body, present, err := str("body")
	if err != nil {
		return p, false, err
	}
	known["body"] = true
	if present {
		if p.Body, err = parseHex("packet JSON: body", body); err != nil {
			return p, false, err
		}
	}
	for k := range raw {
		if !known[k] {
			return p, false, fmt.Errorf("packet JSON: unknown field %q", k)
		}
	}
	return p, haveCK, nil
}

// jsonError says what is wrong with the packet JSON without the decoder's
// Go vocabulary ("cannot unmarshal array into Go value of type map...").
func jsonError(in []byte, err error) error {
	if t := bytes.TrimSpace(in); len(t) > 0 && t[0] != '{' {
		return fmt.Errorf("packet JSON: want one object {...}, got %q", shorten(string(t), 20))
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("packet JSON: not valid JSON at byte %d (%s)", syn.Offset, strings.TrimPrefix(syn.Error(), "invalid character "))
	case errors.As(err, &typ):
		return fmt.Errorf("packet JSON: want one object {...}, got %s", jsonKind(typ.Value))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		if len(bytes.TrimSpace(in)) == 0 {
			return errors.New("packet JSON: empty; want one object {...}")
		}
		return errors.New("packet JSON: ends inside the object")
	}
	return fmt.Errorf("packet JSON: %v", err)
}

// jsonKind names a JSON value kind as encoding/json reports it.
func jsonKind(v string) string {
	switch v {
	case "array":
		return "an array"
	case "number":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	}
	return v
}

// shorten cuts s to n runes for a message.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}
