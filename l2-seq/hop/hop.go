// Package hop authenticates the frames two of our neighbours send each
// other once they have proven their keys (package proof) [ours].
//
// The neighbour proof shows who holds an address at one moment; without
// more, a radio that spoofs that address afterwards is believed. So each
// proof also gives its direction a key, with no message more than the
// proof exchange has: a challenger that accepts a proof of its nonce
// sends to the prover under
//
//	HKDF-SHA256(secret = X25519(challenger, prover), salt = nonce,
//	            info = "mycelium hop v2\x00" ‖ challenger id ‖ prover id)
//
// where X25519 is between the two nodes' static keys, derived from their
// Ed25519 identities (identity.X25519): only the two of them can compute
// it, and the nonce, fresh and signed by the prover, makes the key new for
// every proof. The prover, which signed that nonce, keeps it and derives
// the same key to check what the challenger sends. Every unicast frame
// under the key then carries a trailer
//
//	counter (4, big-endian, per key from 1) ‖ tag (8)
//
// after the packet, and the packet's reserved header byte (PROTOCOL 2.1,
// byte 1) says so (Marker). The tag is HMAC-SHA256 over the frame as sent
// (header with the marker, body, counter), cut to 8 bytes. A receiver
// checks the tag with the key of the direction, refuses a counter it has
// seen (a 1,024-wide sliding window, package replay) and strips the
// trailer: what follows is the packet as the reference has it. Reference
// boards never prove, so they never get a marked frame.
package hop

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/internal/replay"
)

// Sizes.
const (
	CounterSize = 4
	TagSize     = 8
	// Overhead is what an authenticated frame carries more: the trailer.
	Overhead = CounterSize + TagSize
	// NonceSize is the size of the proof nonce a key is derived with.
	NonceSize = 16
)

// Marker is the value of the packet's reserved header byte (byte 1) on an
// authenticated frame; the reference always sends 0 there.
const Marker = 0x01

// minFrame is the shortest authenticated frame: the 4-byte packet header
// and the trailer.
const minFrame = 4 + Overhead

// Errors.
var (
	ErrMalformed = errors.New("hop: not an authenticated frame")
	ErrTag       = errors.New("hop: tag does not verify")
	ErrReplayed  = errors.New("hop: counter seen before")
	ErrExhausted = errors.New("hop: counter space used up")
	ErrKey       = errors.New("hop: no key agreement with that node")
)

// Key authenticates one direction of a pair of neighbours: its sender
// seals with it (and counts), its receiver opens with it (and keeps the
// replay window). It is owned by one goroutine (the node's loop).
type Key struct {
	mac hash.Hash
	ctr uint32 // last counter sent
	win replay.Window
	sum [sha256.Size]byte
}

// Secret is the X25519 secret two nodes share: what their keys are
// derived from.
type Secret [32]byte

const info = "mycelium hop v2\x00"

// Agree computes the secret between self (whose X25519 key is priv) and
// the node peer. A peer whose node_id is no key (not an Ed25519 point, or
// one of low order) is ErrKey.
func Agree(priv *ecdh.PrivateKey, self, peer identity.NodeID) (Secret, error) {
	if self == peer {
		return Secret{}, fmt.Errorf("%w: itself", ErrKey)
	}
	pubBytes, err := identity.X25519Public(peer)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: %w", ErrKey, err)
	}
	pub, err := ecdh.X25519().NewPublicKey(pubBytes)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: %w", ErrKey, err)
	}
	secret, err := priv.ECDH(pub) // refuses a low-order point (all-zero secret)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return Secret(secret), nil
}

// Key derives the key of the direction from → to for the proof of nonce
// (the one from drew and to signed). Both ends derive the same key: from
// to seal, to to open.
func (s *Secret) Key(from, to identity.NodeID, nonce [NonceSize]byte) *Key {
	inf := make([]byte, 0, len(info)+2*identity.NodeIDSize)
	inf = append(append(append(inf, info...), from[:]...), to[:]...)
	km, err := hkdf.Key(sha256.New, s[:], nonce[:], string(inf), sha256.Size)
	if err != nil {
		panic("hop: HKDF of 32 bytes: " + err.Error()) // within HKDF's bounds always
	}
	return &Key{mac: hmac.New(sha256.New, km)}
}

// Seal appends frame, marked and authenticated, to dst and returns the
// extended slice. frame is an encoded packet (its byte 1, reserved, is
// overwritten in the copy). It does not allocate when dst has room.
func (k *Key) Seal(dst, frame []byte) ([]byte, error) {
	if len(frame) < 4 {
		return dst, ErrMalformed
	}
	if k.ctr == math.MaxUint32 {
		return dst, ErrExhausted
	}
	k.ctr++
	return k.SealCounter(dst, frame, k.ctr), nil
}

// SealCounter is Seal with the counter given, and not recorded: what a
// holder of the key could send (tests play a compromised neighbour with
// it). frame must be an encoded packet of 4 bytes or more.
func (k *Key) SealCounter(dst, frame []byte, ctr uint32) []byte {
	start := len(dst)
	dst = append(dst, frame...)
	dst[start+1] = Marker
	dst = binary.BigEndian.AppendUint32(dst, ctr)
	k.mac.Reset()
	k.mac.Write(dst[start:])
	sum := k.mac.Sum(k.sum[:0])
	return append(dst, sum[:TagSize]...)
}

// Open checks an authenticated frame and returns the packet it carries (a
// subslice of frame, trailer stripped; its reserved byte still holds the
// marker). A frame whose tag fails, or whose counter was seen, is refused;
// neither changes the window.
func (k *Key) Open(frame []byte) ([]byte, error) {
	if len(frame) < minFrame || frame[1] != Marker {
		return nil, ErrMalformed
	}
	n := len(frame)
	if !k.Verify(frame) {
		return nil, ErrTag
	}
	ctr := uint64(binary.BigEndian.Uint32(frame[n-Overhead:]))
	if ctr == 0 || !k.win.Fresh(ctr) {
		return nil, ErrReplayed
	}
	k.win.Mark(ctr)
	return frame[:n-Overhead], nil
}

// Verify reports whether frame's tag is right for this key, without
// looking at its counter (a receiver holding several keys for a
// neighbour asks which one signed it).
func (k *Key) Verify(frame []byte) bool {
	n := len(frame)
	if n < minFrame {
		return false
	}
	k.mac.Reset()
	k.mac.Write(frame[:n-TagSize])
	sum := k.mac.Sum(k.sum[:0])
	return subtle.ConstantTimeCompare(sum[:TagSize], frame[n-TagSize:]) == 1
}

// Marked reports whether frame says it is authenticated (its reserved
// header byte is Marker).
func Marked(frame []byte) bool { return len(frame) >= 4 && frame[1] == Marker }

// Packet returns the packet a frame carries: frame itself, or, on a
// marked frame long enough to hold one, frame without its trailer (for
// what holds no key: a receiver that has not proven the sender, capture
// views, monitors; the tag is not checked).
func Packet(frame []byte) []byte {
	if Marked(frame) && len(frame) >= minFrame {
		return frame[:len(frame)-Overhead]
	}
	return frame
}
