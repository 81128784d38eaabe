package packet

import (
	"errors"
	"fmt"
)

// Kinds of bad input. Every error this package returns wraps exactly one of
// them, so callers test with errors.Is.
var (
	ErrTooShort      = errors.New("too short")
	ErrUnknownSchema = errors.New("unknown schema")
	ErrVersion       = errors.New("version too new")
	ErrBodyTooLong   = errors.New("body too long")
	ErrFieldRange    = errors.New("field out of range")
	ErrChecksum      = errors.New("bad checksum")
	ErrHash          = errors.New("bad hash")
	ErrPackageSize   = errors.New("package too large")
)

// SchemaError reports a schema id that names no schema.
type SchemaError struct {
	ID uint8
}

func (e *SchemaError) Error() string { return fmt.Sprintf("packet: unknown schema %d", e.ID) }

// Unwrap returns ErrUnknownSchema.
func (e *SchemaError) Unwrap() error { return ErrUnknownSchema }

// LengthError reports input of the wrong size: a packet shorter than its
// schema's header, a body over the schema's maximum, a Package that no
// schema can carry.
type LengthError struct {
	Err    error // ErrTooShort, ErrBodyTooLong or ErrPackageSize
	What   string
	Schema int // -1 when the schema is not known yet
	Got    int
	Want   int // the minimum (too short) or maximum (too long)
}

func (e *LengthError) Error() string {
	s := ""
	if e.Schema >= 0 {
		s = fmt.Sprintf(" (schema %d)", e.Schema)
	}
	bound := "at most"
	if e.Err == ErrTooShort {
		bound = "at least"
	}
	return fmt.Sprintf("packet: %s: %s is %d bytes, want %s %d%s", e.Err, e.What, e.Got, bound, e.Want, s)
}

// Unwrap returns the kind of the error.
func (e *LengthError) Unwrap() error { return e.Err }

// VersionError reports a packet of a protocol version newer than ours.
type VersionError struct {
	Version uint8
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("packet: version too new: %d, ours is %d", e.Version, Version)
}

// Unwrap returns ErrVersion.
func (e *VersionError) Unwrap() error { return ErrVersion }

// FieldError reports a value that does not fit its field in the schema (an
// encoder's error: a packet_id of 300 in a 1-byte field, say).
type FieldError struct {
	Schema uint8
	Field  Field
	Value  int
	Max    int
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("packet: field out of range: %s = %d, schema %d allows at most %d", e.Field, e.Value, e.Schema, e.Max)
}

// Unwrap returns ErrFieldRange.
func (e *FieldError) Unwrap() error { return ErrFieldRange }

// ChecksumError reports a body whose CRC-32 does not match the packet's.
type ChecksumError struct {
	Stored, Computed uint32
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("packet: bad checksum: stored %08x, body has %08x", e.Stored, e.Computed)
}

// Unwrap returns ErrChecksum.
func (e *ChecksumError) Unwrap() error { return ErrChecksum }

// HashError reports a Package whose blob does not match its half_sha256.
type HashError struct {
	Stored, Computed [HashSize]byte
}

func (e *HashError) Error() string {
	return fmt.Sprintf("packet: bad hash: stored %x, blob has %x", e.Stored, e.Computed)
}

// Unwrap returns ErrHash.
func (e *HashError) Unwrap() error { return ErrHash }
