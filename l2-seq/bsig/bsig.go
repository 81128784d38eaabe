// Package bsig is the signed-broadcast envelope [ours]: an application
// broadcast from one of our nodes, signed by the sender's key (its
// node_id) for its current run, so that a neighbour that proved the
// sender (l2-seq/proof) can tell the broadcast is the sender's, unchanged,
// and no copy of one it took before.
//
// Wire format, the blob of a Package to AppID:
//
//	0x01 ‖ boot (8) ‖ counter (4) ‖ app_id (16) ‖ blob ‖ sig (64)
//
// boot is the sender's run nonce (the one its neighbour proof carries),
// counter counts the run's signed broadcasts from 0, app_id is the
// application the blob is for, and sig is Ed25519 by the sender's key over
// "mycelium signed broadcast v1\x00" ‖ node_id (32) ‖ everything before
// sig. The outer Package names this application, so the envelope adds
// Overhead (93) bytes to a clear broadcast's Package: the header (13), the
// inner app_id (16) and the signature (64).
//
// A receiver takes the node_id to verify with from the neighbour proven at
// the address the broadcast came from (the envelope does not carry it),
// the run from that proof, and keeps a replay window of counters per
// sender: a copy, a broadcast of another run, or one changed on the way is
// never taken for the sender's.
package bsig

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// AppID is the signed-broadcast application: ("Mycelium", "signed broadcast", 1).
var AppID = packet.NewAppID("Mycelium", "signed broadcast", 1)

// Sizes on the wire.
const (
	Version     = 0x01
	CounterSize = 4
	SigSize     = ed25519.SignatureSize
	// Header is version ‖ boot ‖ counter.
	Header = 1 + proof.BootSize + CounterSize
	// Min is the smallest envelope: an empty blob.
	Min = Header + packet.AppIDSize + SigSize
	// Overhead is what signing adds to a broadcast's Package.
	Overhead = Min
)

// Errors.
var (
	ErrMalformed = errors.New("bsig: malformed envelope")
	ErrBadSig    = errors.New("bsig: signature does not verify")
)

var domain = []byte("mycelium signed broadcast v1\x00")

// Envelope is a decoded signed broadcast. Blob aliases the decoded
// bytes.
type Envelope struct {
	Boot    proof.Boot
	Counter uint32
	App     packet.AppID
	Blob    []byte
	Sig     [SigSize]byte
	signed  []byte // everything before sig
}

// Signer signs with the sender's key (identity.Identity).
type Signer interface {
	Sign(msg []byte) []byte
}

// Append appends the envelope of blob for app, signed by s (whose node_id
// is id) for run boot as its counter-th signed broadcast, to b.
func Append(b []byte, s Signer, id identity.NodeID, boot proof.Boot, counter uint32, app packet.AppID, blob []byte) []byte {
	start := len(b)
	b = append(b, Version)
	b = append(b, boot[:]...)
	b = binary.BigEndian.AppendUint32(b, counter)
	b = append(b, app[:]...)
	b = append(b, blob...)
	return append(b, s.Sign(input(id, b[start:]))...)
}

func input(id identity.NodeID, signed []byte) []byte {
	in := make([]byte, 0, len(domain)+len(id)+len(signed))
	in = append(append(append(in, domain...), id[:]...), signed...)
	return in
}

// UnmarshalBinary decodes an envelope (without verifying it).
func (e *Envelope) UnmarshalBinary(b []byte) error {
	if len(b) < Min {
		return fmt.Errorf("%w: %d bytes, at least %d", ErrMalformed, len(b), Min)
	}
	if b[0] != Version {
		return fmt.Errorf("%w: version %#x", ErrMalformed, b[0])
	}
	copy(e.Boot[:], b[1:])
	e.Counter = binary.BigEndian.Uint32(b[1+proof.BootSize:])
	copy(e.App[:], b[Header:])
	end := len(b) - SigSize
	e.Blob = b[Header+packet.AppIDSize : end]
	copy(e.Sig[:], b[end:])
	e.signed = b[:end]
	return nil
}

// Verify checks the signature against id's key.
func (e *Envelope) Verify(id identity.NodeID) error {
	if e.signed == nil || !ed25519.Verify(id[:], input(id, e.signed), e.Sig[:]) {
		return ErrBadSig
	}
	return nil
}
