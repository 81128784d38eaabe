package tree

import (
	"errors"
	"fmt"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
)

// AppID is the tree application's id: ("Mycelium", "tree", 1).
var AppID = packet.NewAppID("Mycelium", "tree", 1)

// Message types (PROTOCOL 6.1: the first byte of every message).
const (
	MsgClaim    = 0x00 // a root claim: claim ‖ hops (1, [ours]: how far it came, a hint for parent choice; not signed)
	MsgNotify   = 0x0f // my address: chain
	MsgRequest  = 0xf0 // please give me an address under you: tree ‖ tree_state ‖ my public key ‖ flags (1, [ours]; absent: 0)
	MsgResponse = 0xff // your address: status ‖ chain (status 0), or [ours] status ‖ tree ‖ tree_state ‖ certificate (StatusCert), or status alone
	MsgQuery    = 0x0e // [ours] tell me your address in this epoch: tree ‖ tree_state ‖ n (the last n certificates of your chain, as a suffix; 0: all, as a notify; 255: not my address but your root's newest claim, as a claim)
	MsgSuffix   = 0x0c // [ours] the end of my chain: tree ‖ tree_state ‖ key of the first certificate's issuer ‖ certificates (1 to 32)
	MsgPosition = 0x0d // [ours] my address by my certificate alone: tree ‖ tree_state ‖ parent key ‖ cert ‖ depth (1, unsigned hint)
)

// Response statuses.
const (
	StatusOK         = 0
	StatusNoPosition = 1 // I have no address in that epoch myself
	StatusFull       = 2 // I have 135 children already
	StatusTooDeep    = 3 // your address would not fit in 16 bytes
	StatusRefused    = 4 // you are not a peer of mine
	StatusWait       = 5 // [ours] I am getting my own address in that epoch: yours follows
	StatusCert       = 6 // [ours] your certificate alone: your chain is mine (as I broadcast it) and it
)

// ReqHaveChain is the request's flag [ours] saying that the asker holds
// the chain of the node it asks (in the epoch it asks for, from that
// node's broadcast notify): the answer may be its certificate alone
// (StatusCert). A request with the flags byte at all says the asker
// understands StatusCert; without this flag it is answered with the whole
// chain (the fallback of an asker that got a certificate it could not
// complete).
const ReqHaveChain = 1

// wantClaim in a query asks for the root's newest claim.
const wantClaim = 0xff

// ErrMessage reports a tree message that does not parse.
var ErrMessage = errors.New("tree: malformed message")

// message is one decoded tree message.
type message struct {
	typ       byte
	claim     cert.Claim
	chain     cert.Chain
	tree      uint8
	treeState uint8
	status    uint8
	hops      uint8
	depth     uint8 // a position's depth as its holder says (checked when the chain is)
	want      uint8
	certs     []cert.Cert
	parent    [32]byte
	cert      cert.Cert
	flags     uint8 // a request's flags (ReqHaveChain)
	ext       bool  // a request carried the flags byte: the asker understands StatusCert
}

func (m *message) decode(b []byte) error {
	if len(b) < 1 {
		return fmt.Errorf("%w: empty", ErrMessage)
	}
	m.typ = b[0]
	b = b[1:]
	switch m.typ {
	case MsgClaim:
		switch len(b) {
		case cert.ClaimSize:
			m.hops = 255 // no hint
		case cert.ClaimSize + 1:
			m.hops = b[cert.ClaimSize]
			b = b[:cert.ClaimSize]
		}
		return m.claim.UnmarshalBinary(b)
	case MsgNotify:
		return m.chain.UnmarshalBinary(b)
	case MsgQuery:
		if len(b) != 3 {
			return fmt.Errorf("%w: query of %d bytes", ErrMessage, len(b))
		}
		m.tree, m.treeState, m.want = b[0], b[1], b[2]
		return nil
	case MsgSuffix:
		n := len(b) - 2 - 32
		if n < cert.CertSize || n%cert.CertSize != 0 || n/cert.CertSize > cert.MaxDepth {
			return fmt.Errorf("%w: suffix of %d bytes", ErrMessage, len(b))
		}
		m.tree, m.treeState = b[0], b[1]
		copy(m.parent[:], b[2:34])
		m.certs = m.certs[:0]
		for b = b[34:]; len(b) > 0; b = b[cert.CertSize:] {
			var c cert.Cert
			if err := c.UnmarshalBinary(b[:cert.CertSize]); err != nil {
				return err
			}
			m.certs = append(m.certs, c)
		}
		return nil
	case MsgRequest:
		switch {
		case len(b) == 2+32:
		case len(b) == 2+32+1 && b[34]&^ReqHaveChain == 0:
			m.flags, m.ext = b[34], true
		default:
			return fmt.Errorf("%w: request of %d bytes", ErrMessage, len(b))
		}
		m.tree, m.treeState = b[0], b[1]
		copy(m.parent[:], b[2:34]) // the requester's key
		return nil
	case MsgPosition:
		if len(b) != 2+32+cert.CertSize+1 {
			return fmt.Errorf("%w: position of %d bytes", ErrMessage, len(b))
		}
		m.tree, m.treeState = b[0], b[1]
		copy(m.parent[:], b[2:34])
		m.depth = b[len(b)-1]
		return m.cert.UnmarshalBinary(b[34 : len(b)-1])
	case MsgResponse:
		if len(b) < 1 {
			return fmt.Errorf("%w: response without status", ErrMessage)
		}
		m.status = b[0]
		if m.status == StatusCert {
			if len(b) != 1+2+cert.CertSize {
				return fmt.Errorf("%w: certificate answer of %d bytes", ErrMessage, len(b))
			}
			m.tree, m.treeState = b[1], b[2]
			return m.cert.UnmarshalBinary(b[3:])
		}
		if m.status != StatusOK {
			if len(b) != 1 {
				return fmt.Errorf("%w: refusal with a body", ErrMessage)
			}
			return nil
		}
		return m.chain.UnmarshalBinary(b[1:])
	}
	return fmt.Errorf("%w: type %#02x", ErrMessage, m.typ)
}

func appendClaim(b []byte, c *cert.Claim, hops uint8) []byte {
	return append(c.AppendTo(append(b, MsgClaim)), hops)
}
func appendNotify(b []byte, ch *cert.Chain) []byte {
	return ch.AppendTo(append(b, MsgNotify))
}
func appendRequest(b []byte, tree, ts uint8, pk []byte, flags uint8) []byte {
	return append(append(append(b, MsgRequest, tree, ts), pk...), flags)
}

// appendCertResponse answers a request with the asker's certificate
// alone (StatusCert): the asker holds the rest, our chain.
func appendCertResponse(b []byte, tree, ts uint8, c *cert.Cert) []byte {
	return c.AppendTo(append(b, MsgResponse, StatusCert, tree, ts))
}
func appendQuery(b []byte, tree, ts, want uint8) []byte { return append(b, MsgQuery, tree, ts, want) }

// appendSuffix sends the last n certificates of ch (n < len(ch.Certs)).
func appendSuffix(b []byte, ch *cert.Chain, n int) []byte {
	b = append(b, MsgSuffix, ch.Claim.Tree, ch.Claim.TreeState())
	first := len(ch.Certs) - n
	parent := ch.Claim.Root
	if first > 0 {
		parent = ch.Certs[first-1].Child
	}
	b = append(b, parent[:]...)
	for i := first; i < len(ch.Certs); i++ {
		b = ch.Certs[i].AppendTo(b)
	}
	return b
}

// appendPosition announces a position by its last certificate; the root,
// which has none, announces its chain (the claim alone).
func appendPosition(b []byte, ch *cert.Chain) []byte {
	if len(ch.Certs) == 0 {
		return appendNotify(b, ch)
	}
	b = append(b, MsgPosition, ch.Claim.Tree, ch.Claim.TreeState())
	parent := ch.Claim.Root
	if n := len(ch.Certs); n > 1 {
		parent = ch.Certs[n-2].Child
	}
	b = append(b, parent[:]...)
	b = ch.Certs[len(ch.Certs)-1].AppendTo(b)
	return append(b, byte(len(ch.Certs)))
}
func appendResponse(b []byte, status uint8, ch *cert.Chain) []byte {
	b = append(b, MsgResponse, status)
	if status == StatusOK {
		b = ch.AppendTo(b)
	}
	return b
}
