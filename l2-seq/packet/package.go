package packet

import (
	"crypto/sha256"
	"encoding/binary"
)

// Sizes of the Package header (PROTOCOL 1).
const (
	AppIDSize       = 16
	HashSize        = 16
	PackageOverhead = AppIDSize + HashSize
)

// AppID names an application: half_sha256(name ‖ description ‖ u32(version)).
type AppID [AppIDSize]byte

// NewAppID derives an application's id from its name, description and version.
func NewAppID(name, description string, version uint32) AppID {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte(description))
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], version)
	h.Write(v[:])
	var sum [sha256.Size]byte
	var id AppID
	copy(id[:], h.Sum(sum[:0]))
	return id
}

// HalfSHA256 returns the first 16 bytes of SHA-256(b).
func HalfSHA256(b []byte) [HashSize]byte {
	sum := sha256.Sum256(b)
	var h [HashSize]byte
	copy(h[:], sum[:HashSize])
	return h
}

// Package is an application message as it travels: app_id ‖ half_sha256(blob)
// ‖ blob. After UnmarshalBinary, Blob aliases the decoded buffer.
type Package struct {
	AppID AppID
	Hash  [HashSize]byte
	Blob  []byte
}

// NewPackage wraps blob for app, computing its hash.
func NewPackage(app AppID, blob []byte) Package {
	return Package{AppID: app, Hash: HalfSHA256(blob), Blob: blob}
}

// Len is the serialized size.
func (p Package) Len() int { return PackageOverhead + len(p.Blob) }

// AppendTo appends the serialized Package to b.
func (p Package) AppendTo(b []byte) []byte {
	b = append(b, p.AppID[:]...)
	b = append(b, p.Hash[:]...)
	return append(b, p.Blob...)
}

// MarshalBinary serializes p into a new slice.
func (p Package) MarshalBinary() ([]byte, error) {
	return p.AppendTo(make([]byte, 0, p.Len())), nil
}

// UnmarshalBinary splits b into its parts without checking the hash (see
// Verify). Blob aliases b.
func (p *Package) UnmarshalBinary(b []byte) error {
	if len(b) < PackageOverhead {
		return &LengthError{Err: ErrTooShort, What: "package", Schema: -1, Got: len(b), Want: PackageOverhead}
	}
	copy(p.AppID[:], b[:AppIDSize])
	copy(p.Hash[:], b[AppIDSize:PackageOverhead])
	p.Blob = b[PackageOverhead:len(b):len(b)]
	return nil
}

// Verify checks that the blob matches its hash.
func (p Package) Verify() error {
	if h := HalfSHA256(p.Blob); h != p.Hash {
		return &HashError{Stored: p.Hash, Computed: h}
	}
	return nil
}

// MaxPackage is the largest serialized Package any schema in schemas can
// carry (the senders' limit), or 0 when schemas is empty.
func MaxPackage(schemas []*Schema) int {
	m := 0
	for _, s := range schemas {
		if n := s.MaxPackage(); n > m {
			m = n
		}
	}
	return m
}
