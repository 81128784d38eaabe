// Package vectors decodes the wire test vectors (kept once, in l1-link's
// package vectors) for this module's tests.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/vectors"
)

// Load decodes vector file name (e.g. "packets.json") into v, failing t on error.
func Load(t testing.TB, name string, v any) {
	t.Helper()
	b, err := vectors.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("vectors: %s: %v", name, err)
	}
}

// Hex is a byte string written as lowercase hex in the vectors.
type Hex []byte

// UnmarshalJSON decodes a hex string.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

// Packet is one entry of packets.json.
type Packet struct {
	Schema       int            `json:"schema"`
	Flags        int            `json:"flags"`
	FlagNames    []string       `json:"flag_names"`
	Fields       map[string]any `json:"fields"`
	ChecksumMode *string        `json:"checksum_mode"`
	Packet       Hex            `json:"packet"`
	PacketLen    int            `json:"packet_len"`
	Decoded      map[string]any `json:"decoded"`
}

// Schema is one entry of schemas.json.
type Schema struct {
	Schema     int     `json:"schema"`
	Defined    *bool   `json:"defined"`
	Fields     [][]any `json:"fields"`
	HeaderSize int     `json:"header_size"`
	MaxBody    int     `json:"max_body"`
	MaxPacket  int     `json:"max_packet"`
	MaxSeq     int     `json:"max_seq"`
	MaxBlob    int     `json:"max_blob"`
	Sequence   bool    `json:"sequence"`
	Routing    bool    `json:"routing"`
	Checksum   bool    `json:"checksum"`
}

// Flag is one entry of flags.json.
type Flag struct {
	State         int              `json:"state"`
	Names         []string         `json:"names"`
	Encoded       int              `json:"encoded"`
	Error         bool             `json:"error"`
	Throttle      bool             `json:"throttle"`
	Ask           bool             `json:"ask"`
	Ack           bool             `json:"ack"`
	Rtx           bool             `json:"rtx"`
	RNS           bool             `json:"rns"`
	NIA           bool             `json:"nia"`
	Mode          bool             `json:"mode"`
	Reserved1     bool             `json:"reserved1"`
	Reserved2     bool             `json:"reserved2"`
	AckReplyFlags int              `json:"ack_reply_flags"`
	SetTrueFalse  map[string][]int `json:"set_true_false"`
}

// Package is one entry of packages.json.
type Package struct {
	AppID      Hex `json:"app_id"`
	Blob       Hex `json:"blob"`
	HalfSHA256 Hex `json:"half_sha256"`
	Package    Hex `json:"package"`
	Unpacked   struct {
		AppID      Hex `json:"app_id"`
		HalfSHA256 Hex `json:"half_sha256"`
		Blob       Hex `json:"blob"`
	} `json:"unpacked"`
	Verify bool `json:"verify"`
}

// Identifier is one entry of identifiers.json (fields by kind).
type Identifier struct {
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Version     int64  `json:"version"`
	Outcome     struct {
		OK     bool   `json:"ok"`
		Result string `json:"result"`
	} `json:"outcome"`
	Bitrate          uint32  `json:"bitrate"`
	SupportedSchemas []uint8 `json:"supported_schemas"`
	ID               string  `json:"id"`
}

// Sequence is one entry of sequences.json.
type Sequence struct {
	Schema  int `json:"schema"`
	AppID   Hex `json:"app_id"`
	BlobGen struct {
		Len int `json:"len"`
		Mul int `json:"mul"`
		Add int `json:"add"`
	} `json:"blob_gen"`
	BlobSHA256   Hex            `json:"blob_sha256"`
	PackageLen   int            `json:"package_len"`
	SeqID        int            `json:"seq_id"`
	ExtraFields  map[string]any `json:"extra_fields"`
	Count        int            `json:"count"`
	AskPacketIDs []int          `json:"ask_packet_ids"`
	Packets      []Hex          `json:"packets"`
}

// Blob generates the vector's blob: byte i = (i*mul + add) mod 256.
func (s *Sequence) Blob() []byte {
	b := make([]byte, s.BlobGen.Len)
	for i := range b {
		b[i] = byte(i*s.BlobGen.Mul + s.BlobGen.Add)
	}
	return b
}

// File is the common envelope of a vector file.
type File[T any] struct {
	Source  string `json:"source"`
	Vectors []T    `json:"vectors"`
}
