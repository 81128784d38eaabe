// Package cert holds the signed statements that make tree addresses
// verifiable (PROTOCOL.md 6.1): a root's claim to a tree, the certificate a
// parent issues for the address it assigns to a child, and the chain of them
// from a root down to an address holder, with their wire encodings and a
// Verifier that remembers what it already checked.
//
// Why chains: any node can state any address, so a relay that routes by
// address must be able to check that the root of a tree really gave it, level
// by level. Why caching: an Ed25519 check costs tens of microseconds, a chain
// of depth d needs d+1 of them, and the same certificates (those of a node's
// ancestors) arrive over and over; a Verifier pays for each certificate once
// per tree epoch, not once per packet.
//
// Public keys inside Claim and Cert are [32]byte arrays, not
// ed25519.PublicKey slices, so that decoding allocates nothing, the structs
// are comparable, and a key can be used as a map key; k[:] is the
// ed25519.PublicKey.
package cert

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

// ProtocolName is the protocol name hashed into scores and tree states
// (PROTOCOL.md 6.1) and the prefix of the signature domains.
const ProtocolName = "mycelium"

// Sizes of the wire encodings and the chain limit.
const (
	// ClaimSize is the encoded size of a Claim:
	// tree(1) ‖ root(32) ‖ termStart(8) ‖ time(8) ‖ sig(64).
	ClaimSize = 1 + ed25519.PublicKeySize + 8 + 8 + ed25519.SignatureSize
	// CertSize is the encoded size of a Cert: child(32) ‖ index(1) ‖ sig(64).
	CertSize = ed25519.PublicKeySize + 1 + ed25519.SignatureSize
	// MaxDepth is the largest number of certificates in a chain: a Long
	// address holds at most addr.LongNibbles coordinates, one per level
	// [ours: the wire's 16 bytes hold 32; positions deeper than that are
	// Longs, see addr.Long].
	MaxDepth = addr.LongNibbles
	// MaxChainSize is the encoded size of the longest chain.
	MaxChainSize = ClaimSize + 1 + MaxDepth*CertSize
)

// Signature domains: each signed message starts with one, so a signature
// made for one kind of statement can never be taken for another (neither is
// a prefix of the other).
const (
	claimDomain = ProtocolName + "/claim/v1"
	certDomain  = ProtocolName + "/cert/v1"
	// certLongDomain signs a certificate for an address the wire cannot
	// hold, over the whole Long.
	certLongDomain = ProtocolName + "/cert/v2"

	claimMsgSize = len(claimDomain) + 1 + ed25519.PublicKeySize + 8 + 8
	certMsgSize  = len(certLongDomain) + 1 + 1 + ed25519.PublicKeySize + 8 + ed25519.PublicKeySize + addr.LongSize
)

// Errors. Every error of this package wraps one of these (and some wrap an
// addr error as well), so callers test with errors.Is and still get a
// message with the detail.
var (
	// ErrTooShort is an encoding shorter than its format needs.
	ErrTooShort = errors.New("cert: too short")
	// ErrLength is an encoding of the wrong size (trailing bytes) or a key of
	// the wrong size.
	ErrLength = errors.New("cert: wrong length")
	// ErrTooLong is a chain of more than MaxDepth certificates, or whose
	// coordinates do not fit in an address.
	ErrTooLong = errors.New("cert: chain too long")
	// ErrSignature is a signature that does not verify.
	ErrSignature = errors.New("cert: bad signature")
	// ErrIndex is a child index outside 1..addr.MaxCoord.
	ErrIndex = errors.New("cert: index out of range 1..135")
	// ErrStale is a claim whose time is not within the allowed age of now.
	ErrStale = errors.New("cert: claim not fresh")
	// ErrNotHolder is a chain that does not end at the expected key.
	ErrNotHolder = errors.New("cert: chain holder is not the expected key")
	// ErrTerm is a claim of another tree, root or term than the caller expects.
	ErrTerm = errors.New("cert: claim of another tree or term")
)

// Salt returns SHA-256(ProtocolName ‖ tree): the per-tree value hashed into
// scores and tree states, so that each of the K trees elects its own root.
func Salt(tree uint8) [32]byte { return salts()[tree] }

// salts holds Salt of every tree byte, hashed once: every claim a node
// hears needs its tree state, and a SHA-256 per claim was a tenth of that
// path's cost.
var salts = sync.OnceValue(func() *[256][32]byte {
	var t [256][32]byte
	var b [len(ProtocolName) + 1]byte
	copy(b[:], ProtocolName)
	for i := range t {
		b[len(ProtocolName)] = byte(i)
		t[i] = sha256.Sum256(b[:])
	}
	return &t
})

// Score is SHA-256(pk) XOR Salt(tree), compared as a big-endian number; the
// lowest score wins the election of tree's root (PROTOCOL.md 6.1).
func Score(pk ed25519.PublicKey, tree uint8) [32]byte {
	s := sha256.Sum256(pk)
	salt := Salt(tree)
	for i := range s {
		s[i] ^= salt[i]
	}
	return s
}

// Less reports whether score a is better (lower) than b.
func Less(a, b [32]byte) bool {
	return bytes.Compare(a[:], b[:]) < 0
}

// TreeState is the tree_state byte (epoch id, PROTOCOL.md 6.1) of root's term
// starting at termStart in tree: the first byte of
// crc32(root ‖ Salt(tree) ‖ termStart), with the IEEE CRC-32 written
// big-endian (so its most significant byte) and termStart as 8 big-endian
// bytes. It depends on the term start, not on a claim's Time, so that the
// periodic re-claims of one term keep the epoch.
func TreeState(root ed25519.PublicKey, tree uint8, termStart int64) uint8 {
	salt := &salts()[tree]
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(termStart))
	crc := crcUpdate(0, root)
	crc = crcUpdate(crc, salt[:])
	crc = crcUpdate(crc, ts[:])
	return uint8(crc >> 24)
}

// crcUpdate is crc32.Update(crc, crc32.IEEETable, p) done here, eight
// bytes a step (slicing-by-8, as hash/crc32 does without SSE 4.2): the
// package's own goes through a function variable, which makes every
// buffer passed to it escape, and Verify computes a tree state per chain
// on a path that must not allocate. Byte by byte, the 72 bytes of a tree
// state cost ~100 ns, and every claim and chain heard needs one.
func crcUpdate(crc uint32, p []byte) uint32 {
	t := crcSlicing()
	crc = ^crc
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint32(p)
		crc = t[0][p[7]] ^ t[1][p[6]] ^ t[2][p[5]] ^ t[3][p[4]] ^
			t[4][crc>>24] ^ t[5][crc>>16&0xff] ^ t[6][crc>>8&0xff] ^ t[7][crc&0xff]
		p = p[8:]
	}
	for _, v := range p {
		crc = t[0][byte(crc)^v] ^ crc>>8
	}
	return ^crc
}

// crcSlicing is the IEEE CRC-32's slicing-by-8 tables: table k gives a
// byte's contribution k bytes further on.
var crcSlicing = sync.OnceValue(func() *[8][256]uint32 {
	var t [8][256]uint32
	t[0] = *crc32.IEEETable
	for i := range 256 {
		c := t[0][i]
		for k := 1; k < 8; k++ {
			c = t[0][c&0xff] ^ c>>8
			t[k][i] = c
		}
	}
	return &t
})

// Claim is a root's statement that it is the root of Tree for the term that
// started at TermStart, re-issued with a fresh Time while the term lasts.
// Times are Unix nanoseconds.
type Claim struct {
	Tree      uint8
	Root      [ed25519.PublicKeySize]byte
	TermStart int64
	Time      int64
	Sig       [ed25519.SignatureSize]byte
}

// Signer signs with an Ed25519 key it does not hand out: a node's
// identity.Identity is one, and Key makes one of a bare private key.
type Signer interface {
	Public() ed25519.PublicKey
	Sign(msg []byte) []byte
}

// Key is a bare Ed25519 private key as a Signer (tests, tools).
type Key ed25519.PrivateKey

// Public returns the key's public half (nil for a key of the wrong size).
func (k Key) Public() ed25519.PublicKey {
	if len(k) != ed25519.PrivateKeySize {
		return nil
	}
	return ed25519.PrivateKey(k).Public().(ed25519.PublicKey)
}

// Sign signs msg (nil for a key of the wrong size: no signature verifies).
func (k Key) Sign(msg []byte) []byte {
	if len(k) != ed25519.PrivateKeySize {
		return nil
	}
	return ed25519.Sign(ed25519.PrivateKey(k), msg)
}

// NewClaim returns the claim of s's key to tree, for the term started at
// termStart, issued at now.
func NewClaim(s Signer, tree uint8, termStart, now int64) Claim {
	c := Claim{Tree: tree, TermStart: termStart, Time: now}
	copy(c.Root[:], s.Public())
	var buf [claimMsgSize]byte
	copy(c.Sig[:], s.Sign(c.SignedBytes(buf[:0])))
	return c
}

// SignedBytes appends the message the root signs to dst and returns it:
// "mycelium/claim/v1" ‖ tree ‖ root ‖ termStart(8) ‖ time(8), big-endian.
func (c *Claim) SignedBytes(dst []byte) []byte {
	dst = append(dst, claimDomain...)
	dst = append(dst, c.Tree)
	dst = append(dst, c.Root[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.TermStart))
	return binary.BigEndian.AppendUint64(dst, uint64(c.Time))
}

// TreeState is the tree_state of the claim's term (see the function TreeState).
func (c *Claim) TreeState() uint8 {
	return TreeState(c.Root[:], c.Tree, c.TermStart)
}

// Score is the claim's root's score in the claim's tree.
func (c *Claim) Score() [32]byte {
	return Score(c.Root[:], c.Tree)
}

// CheckFresh returns an error wrapping ErrStale unless the claim's Time is
// within maxAge of now (nanoseconds) either way: an old claim means the root
// may be gone, and one from the future would stay "fresh" after its root is
// gone. It checks nothing else; verify the signature with a Verifier.
func (c *Claim) CheckFresh(now, maxAge int64) error {
	if c.Time < now-maxAge || c.Time > now+maxAge {
		return fmt.Errorf("%w: claim time %d is %d ns from now %d, allowed %d",
			ErrStale, c.Time, c.Time-now, now, maxAge)
	}
	return nil
}

// CheckTerm returns an error wrapping ErrTerm unless the claim is root's
// claim to tree for the term that started at termStart: what a node checks
// when a chain must belong to the epoch it is routing in.
func (c *Claim) CheckTerm(tree uint8, root ed25519.PublicKey, termStart int64) error {
	if c.Tree != tree || !bytes.Equal(c.Root[:], root) || c.TermStart != termStart {
		return fmt.Errorf("%w: claim of tree %d by %x term %d, want tree %d by %x term %d",
			ErrTerm, c.Tree, c.Root[:4], c.TermStart, tree, prefix(root), termStart)
	}
	return nil
}

// AppendTo appends the claim's ClaimSize-byte encoding to b.
func (c *Claim) AppendTo(b []byte) []byte {
	b = append(b, c.Tree)
	b = append(b, c.Root[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.TermStart))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time))
	return append(b, c.Sig[:]...)
}

// MarshalBinary returns the claim's encoding.
func (c *Claim) MarshalBinary() ([]byte, error) {
	return c.AppendTo(make([]byte, 0, ClaimSize)), nil
}

// UnmarshalBinary decodes exactly ClaimSize bytes; every field value is
// accepted (the signature is checked by a Verifier). On error c is unchanged.
func (c *Claim) UnmarshalBinary(b []byte) error {
	if err := exactSize("claim", len(b), ClaimSize); err != nil {
		return err
	}
	c.decode(b)
	return nil
}

// decode reads a claim from b, which holds at least ClaimSize bytes.
func (c *Claim) decode(b []byte) {
	b = b[:ClaimSize]
	c.Tree = b[0]
	copy(c.Root[:], b[1:33])
	c.TermStart = int64(binary.BigEndian.Uint64(b[33:41]))
	c.Time = int64(binary.BigEndian.Uint64(b[41:49]))
	copy(c.Sig[:], b[49:])
}

// Cert is a parent's certificate for the address of Child: the parent's
// address followed by Index. It names neither the parent nor the address:
// the chain it sits in gives both, and the signature covers the address.
type Cert struct {
	Child [ed25519.PublicKeySize]byte
	Index uint8
	Sig   [ed25519.SignatureSize]byte
}

// Term names an epoch fully: a tree_state is one byte, and two terms (of
// different roots) may share it, so certificates bind the root and its term
// start as well.
type Term struct {
	Tree      uint8
	TreeState uint8
	Root      [ed25519.PublicKeySize]byte
	Start     int64
}

// Term returns the epoch the claim opens.
func (c *Claim) Term() Term {
	return Term{Tree: c.Tree, TreeState: c.TreeState(), Root: c.Root, Start: c.TermStart}
}

// IssueCert is the certificate parent signs for child's address childAddr,
// which must be the parent's address .Child(index), in the epoch term. The
// signed message is "mycelium/cert/v1" ‖ tree ‖ treeState ‖ root ‖
// termStart ‖ child ‖ childAddr (16 bytes, the wire form), so the
// certificate is worthless in another tree, another epoch (even one whose
// tree_state byte is the same) or at another position; for an address the
// wire cannot hold, "mycelium/cert/v2" ‖ the same ‖ the 64-byte Long. It
// panics if child is not 32 bytes long, as ed25519.Sign does for a bad
// private key: keys come from fixed-size fields.
func IssueCert(parent Signer, term Term, child ed25519.PublicKey, childAddr addr.Long, index uint8) Cert {
	if len(child) != ed25519.PublicKeySize {
		panic(fmt.Sprintf("cert: IssueCert: child public key of %d bytes", len(child)))
	}
	c := Cert{Index: index}
	copy(c.Child[:], child)
	var buf [certMsgSize]byte
	copy(c.Sig[:], parent.Sign(appendCertMsg(buf[:0], &term, &c.Child, &childAddr)))
	return c
}

// appendCertMsg appends the message a parent signs for a certificate.
func appendCertMsg(dst []byte, term *Term, child *[ed25519.PublicKeySize]byte, a *addr.Long) []byte {
	w, fits := a.Wire()
	if fits {
		dst = append(dst, certDomain...)
	} else {
		dst = append(dst, certLongDomain...)
	}
	dst = append(dst, term.Tree, term.TreeState)
	dst = append(dst, term.Root[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(term.Start))
	dst = append(dst, child[:]...)
	if fits {
		return append(dst, w[:]...)
	}
	return append(dst, a[:]...)
}

// AppendTo appends the certificate's CertSize-byte encoding to b.
func (c *Cert) AppendTo(b []byte) []byte {
	b = append(b, c.Child[:]...)
	b = append(b, c.Index)
	return append(b, c.Sig[:]...)
}

// MarshalBinary returns the certificate's encoding.
func (c *Cert) MarshalBinary() ([]byte, error) {
	return c.AppendTo(make([]byte, 0, CertSize)), nil
}

// UnmarshalBinary decodes exactly CertSize bytes. An index outside
// 1..addr.MaxCoord gives an error wrapping ErrIndex: no address has it. On
// error c is unchanged.
func (c *Cert) UnmarshalBinary(b []byte) error {
	if err := exactSize("certificate", len(b), CertSize); err != nil {
		return err
	}
	if err := checkIndex(b[ed25519.PublicKeySize]); err != nil {
		return err
	}
	c.decode(b)
	return nil
}

// decode reads a certificate from b, which holds at least CertSize bytes.
func (c *Cert) decode(b []byte) {
	b = b[:CertSize]
	copy(c.Child[:], b[:32])
	c.Index = b[32]
	copy(c.Sig[:], b[33:])
}

func checkIndex(i uint8) error {
	if i == 0 || i > addr.MaxCoord {
		return fmt.Errorf("%w: index %d", ErrIndex, i)
	}
	return nil
}

func exactSize(what string, got, want int) error {
	switch {
	case got < want:
		return fmt.Errorf("%w: %s of %d bytes, want %d", ErrTooShort, what, got, want)
	case got > want:
		return fmt.Errorf("%w: %s of %d bytes, want %d", ErrLength, what, got, want)
	}
	return nil
}

// prefix is the first bytes of a key for messages, tolerating short keys.
func prefix(k []byte) []byte {
	return k[:min(len(k), 4)]
}
