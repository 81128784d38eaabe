package revoke

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// Proxy revocations [ours]: an operator's signed statement that a proxy
// certificate no longer holds (the board moved to another proxy, or the
// proxy should no longer speak for it). It names the board, the proxy
// and the certificate's date (Until): that certificate is revoked, by
// whichever operator signed it; Until 0 revokes every certificate for
// that board and proxy, past and future (the pair is done with: to make
// the same node the board's proxy again it takes a new key). A node that
// trusts the operator refuses a record resting on a revoked certificate
// (at a home and in a lookup), drops what it holds of one, keeps the
// revocation in a private file and passes it on, as it does a key's. A
// proxy revocation is 177 bytes:
//
//	version (1) = 1 | operator (32) | board (32) | proxy (32) | until (8) | date (8) | signature (64)
//
// (until and date in Unix seconds, big-endian), the signature being the
// operator's over "mycelium proxy revocation v1\x00" followed by the first
// 113 bytes. A compromised proxy needs no proxy revocation: revoking its
// key (Revocation) refuses every record it signs.
type ProxyRevocation struct {
	Operator identity.NodeID
	Board    identity.NodeID
	Proxy    identity.NodeID
	Until    int64 // the revoked certificate's Until; 0: every certificate for Board and Proxy
	Date     int64 // Unix seconds, when the operator revoked it
	Sig      [ed25519.SignatureSize]byte
}

// ProxyRevocationSize is a proxy revocation's size on the wire and in
// the file.
const ProxyRevocationSize = 1 + 3*32 + 8 + 8 + ed25519.SignatureSize

// ProxyRevocationPEMType is the PEM block type a proxy revocation travels
// in between people (mycelium keys operator revoke-proxy writes it).
const ProxyRevocationPEMType = "MYCELIUM PROXY REVOCATION"

const proxyRevDomain = "mycelium proxy revocation v1\x00"

// CertRevocations tells whether a proxy certificate was revoked. The
// router takes it as this small interface (a Set answers it); it is asked
// on the node's loop and must not block.
type CertRevocations interface {
	CertRevoked(c *ProxyCert) bool
}

func (r *ProxyRevocation) signed() []byte {
	b := append([]byte(proxyRevDomain), Version)
	b = append(b, r.Operator[:]...)
	b = append(b, r.Board[:]...)
	b = append(b, r.Proxy[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Until))
	return binary.BigEndian.AppendUint64(b, uint64(r.Date))
}

// SignProxyRevocation makes op's revocation of board's certificates for
// proxy dated until (0: all of them), dated date.
func SignProxyRevocation(op identity.Signer, board, proxy identity.NodeID, until int64, date time.Time) ProxyRevocation {
	r := ProxyRevocation{Board: board, Proxy: proxy, Until: until, Date: date.Unix()}
	copy(r.Operator[:], op.Public())
	copy(r.Sig[:], op.Sign(r.signed()))
	return r
}

// Covers reports whether r revokes c (its signature aside: a Set holds
// only verified revocations).
func (r *ProxyRevocation) Covers(c *ProxyCert) bool {
	return r.Board == c.Board && r.Proxy == c.Proxy && (r.Until == 0 || r.Until == c.Until)
}

// Verify checks the operator's signature.
func (r *ProxyRevocation) Verify() error {
	if !ed25519.Verify(ed25519.PublicKey(r.Operator[:]), r.signed(), r.Sig[:]) {
		return fmt.Errorf("%w: proxy revocation", ErrForged)
	}
	return nil
}

// AppendBinary appends the revocation's 177 bytes to b.
func (r *ProxyRevocation) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, Version)
	b = append(b, r.Operator[:]...)
	b = append(b, r.Board[:]...)
	b = append(b, r.Proxy[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Until))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Date))
	return append(b, r.Sig[:]...), nil
}

// MarshalBinary returns the revocation's 177 bytes.
func (r *ProxyRevocation) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, ProxyRevocationSize))
}

// UnmarshalBinary reads exactly one proxy revocation (it does not verify
// it).
func (r *ProxyRevocation) UnmarshalBinary(b []byte) error {
	if len(b) != ProxyRevocationSize {
		return fmt.Errorf("%w: proxy revocation of %d bytes, want %d", ErrMalformed, len(b), ProxyRevocationSize)
	}
	if b[0] != Version {
		return fmt.Errorf("%w: proxy revocation version %d", ErrMalformed, b[0])
	}
	copy(r.Operator[:], b[1:33])
	copy(r.Board[:], b[33:65])
	copy(r.Proxy[:], b[65:97])
	r.Until = int64(binary.BigEndian.Uint64(b[97:105]))
	r.Date = int64(binary.BigEndian.Uint64(b[105:113]))
	copy(r.Sig[:], b[113:])
	return nil
}

// UntilText is Until for people: the certificate's date, or "every
// certificate".
func (r *ProxyRevocation) UntilText() string {
	if r.Until == 0 {
		return "every certificate"
	}
	return time.Unix(r.Until, 0).UTC().Format(time.RFC3339)
}

// PEM is the revocation as a PEM block, its fields in headers for people
// to read (the bytes are what is verified).
func (r *ProxyRevocation) PEM() []byte {
	b, _ := r.MarshalBinary()
	return pem.EncodeToMemory(&pem.Block{Type: ProxyRevocationPEMType, Bytes: b, Headers: map[string]string{
		"Board":       r.Board.String(),
		"Proxy":       r.Proxy.String(),
		"Certificate": r.UntilText(),
		"Operator":    r.Operator.String(),
		"Date":        time.Unix(r.Date, 0).UTC().Format(time.RFC3339),
	}})
}

// ParseProxyRevocationPEM reads the proxy revocation in a PEM block (it
// does not verify it).
func ParseProxyRevocationPEM(b []byte) (ProxyRevocation, error) {
	var r ProxyRevocation
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != ProxyRevocationPEMType {
		return r, fmt.Errorf("%w: not a %s PEM block", ErrMalformed, ProxyRevocationPEMType)
	}
	return r, r.UnmarshalBinary(blk.Bytes)
}

// proxyKey names a proxy revocation in a Set: one certificate (Until) or
// all of a board's for a proxy (Until 0).
type proxyKey struct {
	board, proxy identity.NodeID
	until        int64
}

func (r *ProxyRevocation) key() proxyKey { return proxyKey{r.Board, r.Proxy, r.Until} }

// CertRevoked reports whether a configured operator revoked c (that
// certificate, or every one for its board and proxy).
func (s *Set) CertRevoked(c *ProxyCert) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.certRevoked(c.Board, c.Proxy, c.Until)
}

// ProxyHeld reports whether s holds a revocation naming what r names (the
// same certificate, or the same pair's every one), not merely one that
// covers it. (Known is counted before the signature is checked: a
// caller that keeps state per revocation heard keeps it only for these.)
func (s *Set) ProxyHeld(r *ProxyRevocation) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.prevs[r.key()]
	return ok
}

// certRevoked: s.mu is held.
func (s *Set) certRevoked(board, proxy identity.NodeID, until int64) bool {
	if _, ok := s.prevs[proxyKey{board, proxy, 0}]; ok {
		return true
	}
	_, ok := s.prevs[proxyKey{board, proxy, until}]
	return ok
}

// AddProxy takes a proxy revocation in its binary form, as Add takes a
// key's: by a configured operator, verified, new (not covered by one held
// already), within Max (counted apart from the keys' revocations).
func (s *Set) AddProxy(b []byte) (r ProxyRevocation, added bool, err error) {
	if err := r.UnmarshalBinary(b); err != nil {
		s.count(&s.stats.Malformed)
		return r, false, err
	}
	return s.AddProxyRevocation(r)
}

// AddProxyRevocation is AddProxy for a decoded revocation.
func (s *Set) AddProxyRevocation(r ProxyRevocation) (ProxyRevocation, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ops[r.Operator] {
		s.stats.Untrusted++
		return r, false, fmt.Errorf("%w: %s", ErrUntrusted, r.Operator.Short())
	}
	if s.certRevoked(r.Board, r.Proxy, r.Until) {
		s.stats.Known++
		return r, false, nil
	}
	if err := r.Verify(); err != nil {
		s.stats.Forged++
		return r, false, err
	}
	if len(s.prevs) >= s.max {
		s.stats.Full++
		return r, false, fmt.Errorf("%w (%d proxy revocations)", ErrFull, s.max)
	}
	s.prevs[r.key()] = r
	s.porder = append(s.porder, r.key())
	s.stats.Accepted++
	// Honoured from now on, in memory, even if the file holds what it held.
	return r, true, s.saveProxy()
}

// saveProxy rewrites the proxy revocations' file; s.mu is held.
func (s *Set) saveProxy() error {
	if s.proxyPath == "" {
		return nil
	}
	b := make([]byte, 0, len(s.porder)*ProxyRevocationSize)
	for _, k := range s.porder {
		r := s.prevs[k]
		b, _ = r.AppendBinary(b)
	}
	return identity.WritePrivate(s.proxyPath, b)
}

// ListProxy returns the proxy revocations, in the order they were added.
func (s *Set) ListProxy() []ProxyRevocation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]ProxyRevocation, 0, len(s.porder))
	for _, k := range s.porder {
		out = append(out, s.prevs[k])
	}
	return out
}

// openProxy reads the proxy revocations' file into s, as Open reads the
// keys'.
func (s *Set) openProxy() error {
	b, err := readList(s.proxyPath, s.max, ProxyRevocationSize)
	if err != nil || b == nil {
		return err
	}
	for off := 0; off < len(b); off += ProxyRevocationSize {
		var r ProxyRevocation
		if err := r.UnmarshalBinary(b[off : off+ProxyRevocationSize]); err != nil {
			return fmt.Errorf("%s: %w", s.proxyPath, err)
		}
		if !s.ops[r.Operator] {
			continue
		}
		if err := r.Verify(); err != nil {
			return fmt.Errorf("%s: %w", s.proxyPath, err)
		}
		if !s.certRevoked(r.Board, r.Proxy, r.Until) {
			s.prevs[r.key()] = r
			s.porder = append(s.porder, r.key())
		}
	}
	return nil
}
