// Package proof is the neighbour-proof exchange [ours]: how a node shows a
// neighbour that it holds the private key of the node_id it beacons, at the
// link address it beacons from, now. A beacon (PROTOCOL 5.2) is a claim
// anyone can make; a Proof is an Ed25519 signature over a nonce the
// challenger just drew, the prover's node_id, the prover's run (boot) nonce
// and both link addresses, so it can be neither replayed (the nonce), nor
// relayed from another address (the addresses), nor forged (the key).
//
// Wire format, the blob of a Package to AppID:
//
//	Challenge: 0x01 ‖ nonce (16)                                   17 bytes
//	Rekey:     0x03 ‖ nonce (16)                                   17 bytes
//	Proof:     0x02 ‖ node_id (32) ‖ nonce (16) ‖ boot (8) ‖ sig (64)  121 bytes
//
// A Rekey is a Challenge that also asks the neighbour to challenge us
// again: we cannot open what it sends (hop keys, l2-seq/hop; we lost ours,
// or it holds one of an exchange we did not finish).
//
// Both fit one packet of every schema family (ESP-NOW 250 B, RYLR-998
// 240 B). The same key signs a goodbye (Goodbye): op 0xff ‖ node_id as the
// reference has it, then boot ‖ sig, which the reference's decoder skips as
// trailing bytes.
package proof

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// AppID is the neighbour-proof application: ("Mycelium", "neighbour proof", 1).
var AppID = packet.NewAppID("Mycelium", "neighbour proof", 1)

// Sizes.
const (
	NonceSize     = 16
	BootSize      = 8
	NodeIDSize    = ed25519.PublicKeySize
	SigSize       = ed25519.SignatureSize
	ChallengeSize = 1 + NonceSize
	ProofSize     = 1 + NodeIDSize + NonceSize + BootSize + SigSize
	// GoodbyeTail is what a signed goodbye adds to the reference's
	// op ‖ node_id.
	GoodbyeTail = BootSize + SigSize
)

// Message types.
const (
	TypeChallenge = 0x01
	TypeProof     = 0x02
	TypeRekey     = 0x03
)

// Errors.
var (
	ErrMalformed = errors.New("proof: malformed message")
	ErrBadSig    = errors.New("proof: signature does not verify")
)

// Nonce is a challenger's fresh random value.
type Nonce [NonceSize]byte

// Boot is a node's run nonce: drawn at start, it names one run of the node,
// so that what it signed in an earlier run (a goodbye) cannot be replayed
// against the next.
type Boot [BootSize]byte

// Message is a decoded Challenge, Rekey or Proof.
type Message struct {
	Type   byte
	Nonce  Nonce
	NodeID [NodeIDSize]byte // Proof only
	Boot   Boot             // Proof only
	Sig    [SigSize]byte    // Proof only
}

// AppendChallenge appends a Challenge for nonce to b.
func AppendChallenge(b []byte, nonce Nonce) []byte {
	return append(append(b, TypeChallenge), nonce[:]...)
}

// AppendRekey appends a Rekey (a Challenge asking to be challenged back)
// for nonce to b.
func AppendRekey(b []byte, nonce Nonce) []byte {
	return append(append(b, TypeRekey), nonce[:]...)
}

// Signer is what signs a proof: the node's identity.
type Signer interface {
	Public() ed25519.PublicKey
	Sign(msg []byte) []byte
}

// AppendProof appends the Proof that answers nonce: signed by s, for a
// prover at own answering the challenger at peer (as the prover sees it).
func AppendProof(b []byte, s Signer, nonce Nonce, boot Boot, own, peer link.Addr) []byte {
	var id [NodeIDSize]byte
	copy(id[:], s.Public())
	sig := s.Sign(proofInput(nil, nonce, id, boot, own, peer))
	b = append(b, TypeProof)
	b = append(b, id[:]...)
	b = append(b, nonce[:]...)
	b = append(b, boot[:]...)
	return append(b, sig...)
}

// Verify checks a decoded Proof against the nonce the challenger drew, the
// prover's address as the challenger sees it (the frame's source) and the
// challenger's own address on that link.
func (m *Message) Verify(nonce Nonce, prover, own link.Addr) error {
	if m.Type != TypeProof {
		return fmt.Errorf("%w: not a proof", ErrMalformed)
	}
	if m.Nonce != nonce {
		return fmt.Errorf("%w: stale nonce", ErrBadSig)
	}
	if !ed25519.Verify(m.NodeID[:], proofInput(nil, nonce, m.NodeID, m.Boot, prover, own), m.Sig[:]) {
		return ErrBadSig
	}
	return nil
}

const (
	proofContext   = "mycelium neighbour proof v1\x00"
	goodbyeContext = "mycelium goodbye v1\x00"
)

// proofInput is what a proof signs: a context string (so no other signed
// message of ours can pass for one), the nonce, the prover's id and boot,
// and the two addresses by network and text, each length-prefixed.
func proofInput(b []byte, nonce Nonce, id [NodeIDSize]byte, boot Boot, prover, challenger link.Addr) []byte {
	b = append(b, proofContext...)
	b = append(b, nonce[:]...)
	b = append(b, id[:]...)
	b = append(b, boot[:]...)
	b = appendAddr(b, prover)
	return appendAddr(b, challenger)
}

func appendAddr(b []byte, a link.Addr) []byte {
	if a == nil {
		return append(b, 0, 0)
	}
	if m, ok := a.(espnow.MAC); ok {
		// String's bytes, not allocated: an ESP-NOW mesh proves itself
		// to every neighbour.
		b = append(b, byte(len(espnow.Network)))
		b = append(b, espnow.Network...)
		b = append(b, byte(espnow.MACTextSize))
		b, _ = m.AppendText(b)
		return b
	}
	net, s := a.Network(), a.String()
	b = append(b, byte(len(net)))
	b = append(b, net...)
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// UnmarshalBinary decodes a Challenge, a Rekey or a Proof; anything else, or a
// message of the wrong length, is ErrMalformed.
func (m *Message) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", ErrMalformed)
	}
	m.Type = b[0]
	switch m.Type {
	case TypeChallenge, TypeRekey:
		if len(b) != ChallengeSize {
			return fmt.Errorf("%w: challenge of %d bytes", ErrMalformed, len(b))
		}
		copy(m.Nonce[:], b[1:])
	case TypeProof:
		if len(b) != ProofSize {
			return fmt.Errorf("%w: proof of %d bytes", ErrMalformed, len(b))
		}
		b = b[1:]
		b = b[copy(m.NodeID[:], b):]
		b = b[copy(m.Nonce[:], b):]
		b = b[copy(m.Boot[:], b):]
		copy(m.Sig[:], b)
	default:
		return fmt.Errorf("%w: type %#x", ErrMalformed, m.Type)
	}
	return nil
}

// AppendGoodbyeTail appends boot ‖ sig to a goodbye (op ‖ node_id): the
// signature over the node_id and this run's boot nonce.
func AppendGoodbyeTail(b []byte, s Signer, boot Boot) []byte {
	var id [NodeIDSize]byte
	copy(id[:], s.Public())
	b = append(b, boot[:]...)
	return append(b, s.Sign(goodbyeInput(id, boot))...)
}

// VerifyGoodbye checks a goodbye's tail (what follows op ‖ node_id) for
// node id: it must be signed by id, for the run boot the node proved
// itself in.
func VerifyGoodbye(id [NodeIDSize]byte, boot Boot, tail []byte) error {
	if len(tail) < GoodbyeTail {
		return fmt.Errorf("%w: unsigned goodbye", ErrBadSig)
	}
	if Boot(tail[:BootSize]) != boot {
		return fmt.Errorf("%w: goodbye from another run", ErrBadSig)
	}
	if !ed25519.Verify(id[:], goodbyeInput(id, boot), tail[BootSize:GoodbyeTail]) {
		return ErrBadSig
	}
	return nil
}

func goodbyeInput(id [NodeIDSize]byte, boot Boot) []byte {
	b := append([]byte(goodbyeContext), id[:]...)
	return append(b, boot[:]...)
}
