package cert

import (
	"crypto/ed25519"
	"fmt"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

// Chain is a root's claim followed by one certificate per level from the
// root down to the holder, the node whose address the chain proves. With no
// certificates the holder is the root, at the zero address.
//
// Wire form: claim(113) ‖ count(1) ‖ count × cert(97), count ≤ MaxDepth
// (128 [ours]; 32 certificates number every address the wire holds).
// Note that a chain of depth d takes 114+97·d bytes: already two levels
// exceed one 250-byte ESP-NOW packet.
type Chain struct {
	Claim Claim
	Certs []Cert
}

// Depth is the holder's depth below the root: the number of certificates.
func (ch *Chain) Depth() int { return len(ch.Certs) }

// Holder is the public key the chain ends at: the last certificate's child,
// or the root. It aliases ch's storage (no allocation), so it changes if ch
// is modified or decoded into again.
func (ch *Chain) Holder() ed25519.PublicKey {
	if n := len(ch.Certs); n > 0 {
		return ch.Certs[n-1].Child[:]
	}
	return ch.Claim.Root[:]
}

// CheckHolder returns an error wrapping ErrNotHolder unless the chain ends
// at pk: a chain proves an address only for its holder, so a node offering
// one must be that holder.
func (ch *Chain) CheckHolder(pk ed25519.PublicKey) error {
	h := ch.Holder()
	if string(h) != string(pk) {
		return fmt.Errorf("%w: chain ends at %x, want %x", ErrNotHolder, h[:4], prefix(pk))
	}
	return nil
}

// Address is the holder's address: the certificates' indices from the root's
// zero address. Errors wrap ErrIndex (an index 0 or above 135) or ErrTooLong
// (more than MaxDepth certificates, or coordinates that overflow a Long's
// nibbles; those also wrap addr.ErrTooDeep). It checks no signature: see
// Verifier.
func (ch *Chain) Address() (addr.Long, error) {
	if len(ch.Certs) > MaxDepth {
		return addr.Long{}, fmt.Errorf("%w: %d certificates, at most %d", ErrTooLong, len(ch.Certs), MaxDepth)
	}
	var a addr.Long
	for i := range ch.Certs {
		var err error
		if a, err = childAddr(a, ch.Certs[i].Index, i); err != nil {
			return addr.Long{}, err
		}
	}
	return a, nil
}

// childAddr is parent.Child(index) for the certificate at level i, with
// this package's errors.
func childAddr(parent addr.Long, index uint8, i int) (addr.Long, error) {
	if err := checkIndex(index); err != nil {
		return addr.Long{}, fmt.Errorf("certificate %d: %w", i, err)
	}
	a, err := parent.Child(index)
	if err != nil {
		return addr.Long{}, fmt.Errorf("%w: certificate %d: %w", ErrTooLong, i, err)
	}
	return a, nil
}

// Extend returns a new chain for child at index under ch's holder, which
// parent must sign for (else an error wrapping ErrNotHolder):
// what a parent hands a child it assigns an address to. The new chain has
// its own copy of the certificates. Errors wrap ErrIndex, ErrTooLong (no
// room below ch's holder for this index) or ErrLength (a child key that is
// not 32 bytes). Extend does not verify ch.
func (ch *Chain) Extend(parent Signer, child ed25519.PublicKey, index uint8) (Chain, error) {
	if parent == nil || len(parent.Public()) != ed25519.PublicKeySize {
		return Chain{}, fmt.Errorf("%w: no parent key", ErrNotHolder)
	}
	if len(child) != ed25519.PublicKeySize {
		return Chain{}, fmt.Errorf("%w: child public key of %d bytes, want %d", ErrLength, len(child), ed25519.PublicKeySize)
	}
	if err := ch.CheckHolder(parent.Public()); err != nil {
		return Chain{}, err
	}
	n := len(ch.Certs)
	if n >= MaxDepth {
		return Chain{}, fmt.Errorf("%w: chain already has %d certificates", ErrTooLong, n)
	}
	pa, err := ch.Address()
	if err != nil {
		return Chain{}, err
	}
	ca, err := childAddr(pa, index, n)
	if err != nil {
		return Chain{}, err
	}
	certs := make([]Cert, n+1)
	copy(certs, ch.Certs)
	certs[n] = IssueCert(parent, ch.Claim.Term(), child, ca, index)
	return Chain{Claim: ch.Claim, Certs: certs}, nil
}

// Size is the length of the chain's encoding.
func (ch *Chain) Size() int {
	return ClaimSize + 1 + CertSize*len(ch.Certs)
}

// AppendTo appends the chain's encoding to b; it allocates nothing when b
// has room for Size() more bytes. It panics for a chain of more than
// MaxDepth certificates, which has no encoding and which neither decoding
// nor Extend produces; MarshalBinary returns an error instead.
func (ch *Chain) AppendTo(b []byte) []byte {
	if len(ch.Certs) > MaxDepth {
		panic(fmt.Sprintf("cert: Chain.AppendTo: %d certificates, at most %d", len(ch.Certs), MaxDepth))
	}
	b = ch.Claim.AppendTo(b)
	b = append(b, uint8(len(ch.Certs)))
	for i := range ch.Certs {
		b = ch.Certs[i].AppendTo(b)
	}
	return b
}

// MarshalBinary returns the chain's encoding, or an error wrapping
// ErrTooLong for a chain of more than MaxDepth certificates.
func (ch *Chain) MarshalBinary() ([]byte, error) {
	if len(ch.Certs) > MaxDepth {
		return nil, fmt.Errorf("%w: %d certificates, at most %d", ErrTooLong, len(ch.Certs), MaxDepth)
	}
	return ch.AppendTo(make([]byte, 0, ch.Size())), nil
}

// UnmarshalBinary decodes a chain that is exactly b, reusing ch.Certs'
// backing array when it has room (so a receiver that decodes into one Chain
// allocates once). It checks the structure, so that every chain it returns
// has an Address: errors wrap ErrTooShort, ErrLength (trailing bytes),
// ErrTooLong (count above MaxDepth, or coordinates that overflow the address)
// or ErrIndex. Signatures are a Verifier's job. Nothing of b is retained; on
// error ch is unchanged.
func (ch *Chain) UnmarshalBinary(b []byte) error {
	if len(b) < ClaimSize+1 {
		return fmt.Errorf("%w: chain of %d bytes, want at least %d", ErrTooShort, len(b), ClaimSize+1)
	}
	n := int(b[ClaimSize])
	if n > MaxDepth {
		return fmt.Errorf("%w: %d certificates, at most %d", ErrTooLong, n, MaxDepth)
	}
	if err := exactSize("chain", len(b), ClaimSize+1+n*CertSize); err != nil {
		return fmt.Errorf("%w (%d certificates)", err, n)
	}
	body := b[ClaimSize+1:]
	var a addr.Long
	for i := range n {
		var err error
		if a, err = childAddr(a, body[i*CertSize+ed25519.PublicKeySize], i); err != nil {
			return err
		}
	}
	ch.Claim.decode(b)
	certs := ch.Certs[:0]
	if cap(certs) < n {
		certs = make([]Cert, 0, n)
	}
	certs = certs[:n]
	for i := range certs {
		certs[i].decode(body[i*CertSize:])
	}
	ch.Certs = certs
	return nil
}
