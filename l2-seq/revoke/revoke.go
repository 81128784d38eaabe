// Package revoke is the revocation of a compromised node's key [ours]: an
// operator, whose Ed25519 key is kept offline and listed in the nodes'
// configuration, signs "node_id X is revoked as of date D"; a node that
// trusts the operator refuses X from then on (as a proven neighbour, a
// record's signer, an end-to-end peer: identity.Revocations), keeps the
// revocation in a private file, and passes it on.
//
// A revocation is 137 bytes:
//
//	version (1) = 1 | operator (32) | node_id (32) | date (8, Unix seconds, big-endian) | signature (64)
//
// the signature being the operator's over "mycelium revocation v1\x00"
// followed by the first 73 bytes. It does not expire, and nothing undoes
// it: a node whose key was revoked takes a new key (a new node_id).
//
// The package also holds operators' proxy certificates (proxy.go) and
// their revocations (proxyrevoke.go), which a Set keeps beside the keys'.
package revoke

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// Size is a revocation's size on the wire and in the file.
const Size = 1 + 32 + 32 + 8 + ed25519.SignatureSize

// Version is the format's version byte.
const Version = 1

const domain = "mycelium revocation v1\x00"

// PEMType is the PEM block type a revocation travels in between people
// (mycelium keys operator revoke writes it, the control API takes it).
const PEMType = "MYCELIUM REVOCATION"

// Errors, wrapped with detail.
var (
	ErrMalformed = errors.New("revoke: malformed revocation")
	ErrUntrusted = errors.New("revoke: signed by an operator not configured here")
	ErrForged    = errors.New("revoke: signature does not verify")
	ErrFull      = errors.New("revoke: the revocation list is full")
)

// Revocation is an operator's signed statement that a node_id's key is
// compromised.
type Revocation struct {
	Operator identity.NodeID
	Node     identity.NodeID
	Date     int64 // Unix seconds, when the operator revoked it
	Sig      [ed25519.SignatureSize]byte
}

// signed is the message the operator signs.
func (r *Revocation) signed() []byte {
	b := append([]byte(domain), Version)
	b = append(b, r.Operator[:]...)
	b = append(b, r.Node[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(r.Date))
}

// Sign makes the revocation of node by op, dated date.
func Sign(op identity.Signer, node identity.NodeID, date time.Time) Revocation {
	r := Revocation{Node: node, Date: date.Unix()}
	copy(r.Operator[:], op.Public())
	copy(r.Sig[:], op.Sign(r.signed()))
	return r
}

// Verify checks the operator's signature.
func (r *Revocation) Verify() error {
	if !ed25519.Verify(ed25519.PublicKey(r.Operator[:]), r.signed(), r.Sig[:]) {
		return ErrForged
	}
	return nil
}

// AppendBinary appends the revocation's 137 bytes to b.
func (r *Revocation) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, Version)
	b = append(b, r.Operator[:]...)
	b = append(b, r.Node[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Date))
	return append(b, r.Sig[:]...), nil
}

// MarshalBinary returns the revocation's 137 bytes.
func (r *Revocation) MarshalBinary() ([]byte, error) { return r.AppendBinary(make([]byte, 0, Size)) }

// UnmarshalBinary reads exactly one revocation (it does not verify it).
func (r *Revocation) UnmarshalBinary(b []byte) error {
	if len(b) != Size {
		return fmt.Errorf("%w: %d bytes, want %d", ErrMalformed, len(b), Size)
	}
	if b[0] != Version {
		return fmt.Errorf("%w: version %d", ErrMalformed, b[0])
	}
	copy(r.Operator[:], b[1:33])
	copy(r.Node[:], b[33:65])
	r.Date = int64(binary.BigEndian.Uint64(b[65:73]))
	copy(r.Sig[:], b[73:])
	return nil
}

// PEM is the revocation as a PEM block, its fields in headers for people
// to read (the headers are not what is verified: the bytes are).
func (r *Revocation) PEM() []byte {
	b, _ := r.MarshalBinary()
	return pem.EncodeToMemory(&pem.Block{Type: PEMType, Bytes: b, Headers: map[string]string{
		"Node-Id":  r.Node.String(),
		"Operator": r.Operator.String(),
		"Date":     time.Unix(r.Date, 0).UTC().Format(time.RFC3339),
	}})
}

// ParsePEM reads the revocation in a PEM block (it does not verify it).
func ParsePEM(b []byte) (Revocation, error) {
	var r Revocation
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != PEMType {
		return r, fmt.Errorf("%w: not a %s PEM block", ErrMalformed, PEMType)
	}
	return r, r.UnmarshalBinary(blk.Bytes)
}

// Config configures a Set.
type Config struct {
	// Operators are the keys whose revocations count; a Set without any
	// takes none.
	Operators []identity.NodeID
	// Max bounds the revocations kept (default 1024: 140 KB of file).
	Max int
	// Path is the file they are kept in (mode 0600, rewritten atomically
	// on every addition); "" keeps them in memory only.
	Path string
	// ProxyPath is the file proxy revocations are kept in, as Path (Max
	// bounds them apart: 177 KB of file by default).
	ProxyPath string
}

// DefaultMax is Config.Max's default.
const DefaultMax = 1024

// Stats counts the revocations a Set was handed and what became of them
// (keys' and proxy certificates' together).
type Stats struct {
	Accepted  uint64 // new, verified, kept
	Known     uint64 // a node (or certificate) revoked already
	Malformed uint64 // not a revocation
	Untrusted uint64 // by an operator not configured here
	Forged    uint64 // by a configured operator's key, but the signature fails
	Full      uint64 // refused: Max reached
}

// Set is the revocations a node honours. It is safe for concurrent use
// (the node's loop asks Revoked; the control API adds).
type Set struct {
	mu    sync.RWMutex
	ops   map[identity.NodeID]bool
	revs  map[identity.NodeID]Revocation
	order []identity.NodeID // as added: the file's order
	// prevs are the proxy revocations (proxyrevoke.go), porder their
	// file's order.
	prevs     map[proxyKey]ProxyRevocation
	porder    []proxyKey
	max       int
	path      string
	proxyPath string
	stats     Stats
}

// Open returns the Set for cfg, with the revocations in cfg.Path (a file
// that must be ours and private; a missing one is an empty list). A
// revocation in the file whose operator is no longer configured is left
// out (and out of the file at the next write); one that fails its
// signature, or a file that is not whole revocations, is an error.
func Open(cfg Config) (*Set, error) {
	s := &Set{ops: map[identity.NodeID]bool{}, revs: map[identity.NodeID]Revocation{}, prevs: map[proxyKey]ProxyRevocation{},
		max: cfg.Max, path: cfg.Path, proxyPath: cfg.ProxyPath}
	if s.max <= 0 {
		s.max = DefaultMax
	}
	for _, op := range cfg.Operators {
		s.ops[op] = true
	}
	b, err := readList(s.path, s.max, Size)
	if err != nil {
		return nil, err
	}
	for off := 0; off < len(b); off += Size {
		var r Revocation
		if err := r.UnmarshalBinary(b[off : off+Size]); err != nil {
			return nil, fmt.Errorf("%s: %w", s.path, err)
		}
		if !s.ops[r.Operator] {
			continue
		}
		if err := r.Verify(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.path, err)
		}
		if _, ok := s.revs[r.Node]; !ok {
			s.revs[r.Node] = r
			s.order = append(s.order, r.Node)
		}
	}
	if err := s.openProxy(); err != nil {
		return nil, err
	}
	return s, nil
}

// readList reads a file of up to max entries of size bytes (ours and
// private); nil for no path or no file.
func readList(path string, max, size int) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := identity.ReadPrivate(path, int64(max+1)*int64(size))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	if len(b)%size != 0 || len(b) > max*size {
		return nil, fmt.Errorf("%w: %s holds %d bytes (not up to %d entries of %d)", ErrMalformed, path, len(b), max, size)
	}
	return b, nil
}

// Revoked reports whether id was revoked by a configured operator.
func (s *Set) Revoked(id identity.NodeID) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.revs[id]
	return ok
}

// Operators reports how many operator keys the Set trusts.
func (s *Set) Operators() int { return len(s.ops) }

// Add takes a revocation in its binary form: it must be by a configured
// operator and verify. added reports a node not revoked before (then the
// file was rewritten, and the caller passes the revocation on). Every
// refusal is counted and returns a typed error.
func (s *Set) Add(b []byte) (r Revocation, added bool, err error) {
	if err := r.UnmarshalBinary(b); err != nil {
		s.count(&s.stats.Malformed)
		return r, false, err
	}
	return s.AddRevocation(r)
}

// AddRevocation is Add for a decoded revocation.
func (s *Set) AddRevocation(r Revocation) (Revocation, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Cheap checks first: a flood of strangers' revocations costs a map
	// lookup each, not a signature check.
	if !s.ops[r.Operator] {
		s.stats.Untrusted++
		return r, false, fmt.Errorf("%w: %s", ErrUntrusted, r.Operator.Short())
	}
	if _, ok := s.revs[r.Node]; ok {
		s.stats.Known++
		return r, false, nil
	}
	if err := r.Verify(); err != nil {
		s.stats.Forged++
		return r, false, err
	}
	if len(s.revs) >= s.max {
		s.stats.Full++
		return r, false, fmt.Errorf("%w (%d)", ErrFull, s.max)
	}
	s.revs[r.Node] = r
	s.order = append(s.order, r.Node)
	if err := s.save(); err != nil {
		// Honoured from now on, in memory; the file holds what it held.
		s.stats.Accepted++
		return r, true, err
	}
	s.stats.Accepted++
	return r, true, nil
}

// save rewrites the file; s.mu is held.
func (s *Set) save() error {
	if s.path == "" {
		return nil
	}
	b := make([]byte, 0, len(s.order)*Size)
	for _, id := range s.order {
		r := s.revs[id]
		b, _ = r.AppendBinary(b)
	}
	return identity.WritePrivate(s.path, b)
}

func (s *Set) count(c *uint64) {
	s.mu.Lock()
	*c++
	s.mu.Unlock()
}

// List returns the revocations, in the order they were added.
func (s *Set) List() []Revocation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Revocation, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.revs[id])
	}
	return out
}

// Stats returns the counters.
func (s *Set) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stats
}

// ParseOperator reads an operator key as the configuration lists it: the
// node_id in hex (what `mycelium keys show` prints as node_id).
func ParseOperator(s string) (identity.NodeID, error) {
	var id identity.NodeID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("revoke: operator key %q: want 64 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}
