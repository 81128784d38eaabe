package messages

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// Frame types: the first byte of a messages Package's blob.
const (
	typeEnvelope = 0x01 // to the target: type ‖ envelope
	typeDeposit  = 0x02 // to a store: keep it and forward it: type ‖ envelope
	typeReceipt  = 0x03 // to the sender: type ‖ id ‖ target ‖ sender ‖ signature
)

// Sizes.
const (
	IDSize       = 16
	MaxText      = 1024 // a message's text, bytes
	envHead      = IDSize + 2*identity.NodeIDSize + 8 + 8 + 2
	receiptBody  = IDSize + 2*identity.NodeIDSize
	keyAnnLen    = 1 + identity.NodeIDSize + 32 + 8 + 1 + ed25519.SignatureSize
	keyAnnDomain = "mycelium messages key v1"
)

// Errors.
var (
	ErrMalformed = errors.New("messages: malformed")
	ErrSignature = errors.New("messages: bad signature")
	ErrNoKey     = errors.New("messages: no key known for the target (it has not announced one yet)")
	ErrTooLong   = errors.New("messages: text too long")
	ErrFull      = errors.New("messages: store full")
)

// The HPKE suite [ours]: DHKEM(X25519, HKDF-SHA256) (the keys' own: an
// X25519 key makes a DHKEM(X25519) key), HKDF-SHA256, ChaCha20-Poly1305
// (RFC 9180 base mode).
var (
	kdf  = hpke.HKDFSHA256()
	aead = hpke.ChaCha20Poly1305()
)

// ID names a message.
type ID [IDSize]byte

// envelope is a sealed message as it travels and is stored: the sender
// signs it whole, so a store can check who it holds it for, and only the
// target can open the text.
type envelope struct {
	ID               ID
	From, To         identity.NodeID
	Created, Expires time.Time
	Sealed           []byte // HPKE: enc ‖ ciphertext
	Sig              []byte
	raw              []byte // the encoded envelope (signature included)
}

// info binds the ciphertext to its envelope.
func info(id ID, from, to identity.NodeID) []byte {
	b := []byte("mycelium messages v1")
	b = append(b, id[:]...)
	b = append(b, from[:]...)
	return append(b, to[:]...)
}

func (e *envelope) body() []byte {
	b := make([]byte, 0, envHead+len(e.Sealed))
	b = append(b, e.ID[:]...)
	b = append(b, e.From[:]...)
	b = append(b, e.To[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Created.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Expires.Unix()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Sealed)))
	return append(b, e.Sealed...)
}

// seal builds and signs an envelope of text to a target whose X25519 key
// is pub.
func seal(id ID, s identity.Signer, to identity.NodeID, pub *ecdh.PublicKey, text []byte, now time.Time, ttl time.Duration) (*envelope, error) {
	if len(text) > MaxText {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLong, len(text), MaxText)
	}
	pk, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, err
	}
	e := &envelope{ID: id, To: to, Created: now.Truncate(time.Second), Expires: now.Add(ttl).Truncate(time.Second)}
	copy(e.From[:], s.Public())
	if e.Sealed, err = hpke.Seal(pk, kdf, aead, info(id, e.From, to), text); err != nil {
		return nil, err
	}
	body := e.body()
	e.Sig = s.Sign(body)
	e.raw = append(body, e.Sig...)
	return e, nil
}

// open decrypts an envelope addressed to us.
func (e *envelope) open(k *ecdh.PrivateKey) ([]byte, error) {
	sk, err := hpke.NewDHKEMPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return hpke.Open(sk, kdf, aead, info(e.ID, e.From, e.To), e.Sealed)
}

// decodeEnvelope checks an envelope's layout and the sender's signature.
func decodeEnvelope(b []byte) (*envelope, error) {
	if len(b) < envHead+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: envelope of %d bytes", ErrMalformed, len(b))
	}
	e := &envelope{raw: b}
	copy(e.ID[:], b)
	copy(e.From[:], b[IDSize:])
	copy(e.To[:], b[IDSize+32:])
	e.Created = time.Unix(int64(binary.BigEndian.Uint64(b[IDSize+64:])), 0)
	e.Expires = time.Unix(int64(binary.BigEndian.Uint64(b[IDSize+72:])), 0)
	n := int(binary.BigEndian.Uint16(b[IDSize+80:]))
	if len(b) != envHead+n+ed25519.SignatureSize || n > MaxText+128 {
		return nil, fmt.Errorf("%w: envelope of %d bytes says %d sealed", ErrMalformed, len(b), n)
	}
	e.Sealed = b[envHead : envHead+n]
	e.Sig = b[envHead+n:]
	if !ed25519.Verify(ed25519.PublicKey(e.From[:]), b[:envHead+n], e.Sig) {
		return nil, ErrSignature
	}
	return e, nil
}

// receipt is the target's signed word that it has the message.
func appendReceipt(b []byte, id ID, target identity.Signer, sender identity.NodeID) []byte {
	body := make([]byte, 0, receiptBody)
	body = append(body, id[:]...)
	body = append(body, target.Public()...)
	body = append(body, sender[:]...)
	b = append(b, typeReceipt)
	b = append(b, body...)
	return append(b, target.Sign(append([]byte("mycelium messages receipt v1"), body...))...)
}

func decodeReceipt(b []byte) (id ID, target, sender identity.NodeID, err error) {
	if len(b) != receiptBody+ed25519.SignatureSize {
		return id, target, sender, fmt.Errorf("%w: receipt of %d bytes", ErrMalformed, len(b))
	}
	copy(id[:], b)
	copy(target[:], b[IDSize:])
	copy(sender[:], b[IDSize+32:])
	if !ed25519.Verify(ed25519.PublicKey(target[:]), append([]byte("mycelium messages receipt v1"), b[:receiptBody]...), b[receiptBody:]) {
		return id, target, sender, ErrSignature
	}
	return id, target, sender, nil
}

// keyAnn is a node's messaging key, bound to its identity by its
// signature: version (1) ‖ node_id (32) ‖ X25519 public key (32) ‖ seq (8)
// ‖ flags (1: 0x01 it offers storage) ‖ signature (64) over the domain
// string and everything before it.
type keyAnn struct {
	Node  identity.NodeID
	Key   *ecdh.PublicKey
	Seq   uint64
	Store bool
}

func appendKeyAnn(b []byte, s identity.Signer, pub *ecdh.PublicKey, seq uint64, store bool) []byte {
	start := len(b)
	b = append(b, 1)
	b = append(b, s.Public()...)
	b = append(b, pub.Bytes()...)
	b = binary.BigEndian.AppendUint64(b, seq)
	var f byte
	if store {
		f = 1
	}
	b = append(b, f)
	return append(b, s.Sign(append([]byte(keyAnnDomain), b[start:]...))...)
}

func decodeKeyAnn(b []byte) (keyAnn, error) {
	var a keyAnn
	if len(b) != keyAnnLen || b[0] != 1 {
		return a, fmt.Errorf("%w: key announcement of %d bytes", ErrMalformed, len(b))
	}
	copy(a.Node[:], b[1:])
	k, err := ecdh.X25519().NewPublicKey(b[33:65])
	if err != nil {
		return a, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	a.Key = k
	a.Seq = binary.BigEndian.Uint64(b[65:])
	a.Store = b[73]&1 != 0
	n := keyAnnLen - ed25519.SignatureSize
	if !ed25519.Verify(ed25519.PublicKey(a.Node[:]), append([]byte(keyAnnDomain), b[:n]...), b[n:]) {
		return a, ErrSignature
	}
	return a, nil
}
