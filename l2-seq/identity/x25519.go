package identity

import (
	"crypto/ecdh"
	"crypto/sha512"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
)

// The X25519 key of a node is derived from its Ed25519 identity [ours], as
// libsodium's crypto_sign_ed25519_sk_to_curve25519 does: the private scalar
// is the first half of SHA-512(seed) (X25519 clamps it), and the public key
// is the node_id mapped from the Edwards curve to the Montgomery form. So
// anyone who knows a node_id knows its X25519 key, and no key needs to be
// announced or certified: end-to-end sessions (l2-seq/e2e) are Noise IK
// handshakes to it.

// ErrNotAKey reports a node_id that is not an Ed25519 point (a reference
// board's opaque id, or garbage): it has no X25519 key.
var ErrNotAKey = errors.New("identity: node_id is not an Ed25519 public key")

// X25519 returns the node's X25519 key pair (private, public).
func (i Identity) X25519() (priv, pub []byte) {
	h := sha512.Sum512(i.priv.Seed())
	k, err := ecdh.X25519().NewPrivateKey(h[:32])
	if err != nil {
		panic("identity: X25519 key: " + err.Error()) // 32 bytes are always a key
	}
	return k.Bytes(), k.PublicKey().Bytes()
}

// X25519Public returns the X25519 public key of node id.
func X25519Public(id NodeID) ([]byte, error) {
	p, err := new(edwards25519.Point).SetBytes(id[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAKey, err)
	}
	return p.BytesMontgomery(), nil
}
