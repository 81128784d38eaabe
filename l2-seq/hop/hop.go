// Package hop authenticates the frames two of our neighbours send each
// other once each has proven its key to the other (package proof) [ours].
//
// The neighbour proof shows who holds an address at one moment; without
// more, a radio that spoofs that address afterwards is believed. So the
// exchange also agrees a key per pair of neighbours: X25519 between the two
// nodes' keys (derived from their Ed25519 identities, identity.X25519),
// mixed with both fresh nonces of the exchange through HKDF-SHA256, one
// key per direction. Every unicast frame between the two then carries a
// trailer
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
	"bytes"
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
	// NonceSize is the size of each side's proof nonce mixed into the key.
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

// Keys are one pair of neighbours' keys, as one side holds them: the key
// it sends with, the key it checks with, its counter and its window. It
// is owned by one goroutine (the node's loop).
type Keys struct {
	send, recv hash.Hash
	ctr        uint32 // last counter sent
	win        replay.Window
	sum        [sha256.Size]byte
}

const info = "mycelium hop v1\x00"

// Derive agrees the keys between self (whose X25519 key is priv) and the
// node peer, from both nonces of the proof exchange that proved them to
// each other: selfNonce the one self drew (and peer signed), peerNonce the
// one peer drew (and self signed). Both sides derive the same two keys;
// each sends with the one the other checks with.
func Derive(priv *ecdh.PrivateKey, self, peer identity.NodeID, selfNonce, peerNonce [NonceSize]byte) (*Keys, error) {
	if self == peer {
		return nil, fmt.Errorf("%w: itself", ErrKey)
	}
	pubBytes, err := identity.X25519Public(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	pub, err := ecdh.X25519().NewPublicKey(pubBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	secret, err := priv.ECDH(pub) // refuses a low-order point (all-zero secret)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	// Ordered by node_id, so both sides build the same salt and info.
	lo, hi, nlo, nhi := self, peer, selfNonce, peerNonce
	selfLow := bytes.Compare(self[:], peer[:]) < 0
	if !selfLow {
		lo, hi, nlo, nhi = peer, self, peerNonce, selfNonce
	}
	salt := append(append(make([]byte, 0, 2*NonceSize), nlo[:]...), nhi[:]...)
	inf := append(append(append(make([]byte, 0, len(info)+64), info...), lo[:]...), hi[:]...)
	km, err := hkdf.Key(sha256.New, secret, salt, string(inf), 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	loToHi, hiToLo := km[:32], km[32:]
	k := &Keys{}
	if selfLow {
		k.send, k.recv = hmac.New(sha256.New, loToHi), hmac.New(sha256.New, hiToLo)
	} else {
		k.send, k.recv = hmac.New(sha256.New, hiToLo), hmac.New(sha256.New, loToHi)
	}
	return k, nil
}

// Seal appends frame, marked and authenticated, to dst and returns the
// extended slice. frame is an encoded packet (its byte 1, reserved, is
// overwritten in the copy). It does not allocate when dst has room.
func (k *Keys) Seal(dst, frame []byte) ([]byte, error) {
	if len(frame) < 4 {
		return dst, ErrMalformed
	}
	if k.ctr == math.MaxUint32 {
		return dst, ErrExhausted
	}
	k.ctr++
	start := len(dst)
	dst = append(dst, frame...)
	dst[start+1] = Marker
	dst = binary.BigEndian.AppendUint32(dst, k.ctr)
	k.send.Reset()
	k.send.Write(dst[start:])
	sum := k.send.Sum(k.sum[:0])
	return append(dst, sum[:TagSize]...), nil
}

// Open checks an authenticated frame and returns the packet it carries (a
// subslice of frame, trailer stripped; its reserved byte still holds the
// marker). A frame whose tag fails, or whose counter was seen, is refused;
// neither changes the window.
func (k *Keys) Open(frame []byte) ([]byte, error) {
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

// Verify reports whether frame's tag is right for these keys, without
// looking at its counter (a receiver that keeps two keys around a rekey
// asks which one signed it).
func (k *Keys) Verify(frame []byte) bool {
	n := len(frame)
	if n < minFrame {
		return false
	}
	k.recv.Reset()
	k.recv.Write(frame[:n-TagSize])
	sum := k.recv.Sum(k.sum[:0])
	return subtle.ConstantTimeCompare(sum[:TagSize], frame[n-TagSize:]) == 1
}

// Marked reports whether frame says it is authenticated (its reserved
// header byte is Marker).
func Marked(frame []byte) bool { return len(frame) >= 4 && frame[1] == Marker }
