package admin

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// AppID is the admin application's app_id: remote commands and their
// answers travel as routed Packages of it.
var AppID = packet.NewAppID("Mycelium", "admin", 1)

// Remote commands [ours]. An operator's command is signed by the
// operator's Ed25519 key over a fresh nonce the target issued, so it can
// be neither forged nor replayed; the target runs it only for a key its
// configuration lists, and signs its answer with its node key:
//
//	0x01 nonce request ‖ req (8) ‖ reply_to node_id (32)
//	0x02 nonce         ‖ req (8) ‖ nonce (16)
//	0x03 command       ‖ req (8) ‖ reply_to (32) ‖ operator key (32) ‖ nonce (16) ‖ signature (64) ‖ command
//	0x04 answer        ‖ req (8) ‖ outcome (1) ‖ text ‖ signature (64, by the target over "mycelium admin answer v1" ‖ req ‖ outcome ‖ text)
//
// The command's signature covers "mycelium admin v1" ‖ target node_id ‖
// nonce ‖ command. The daemon carries these messages sealed end to end
// (l2-seq/e2e), so relays read none of them; the signature, not the
// session, binds a command to its operator.
const (
	MsgNonceRequest = 0x01
	MsgNonce        = 0x02
	MsgCommand      = 0x03
	MsgAnswer       = 0x04
)

// Outcomes of a remote command.
const (
	OutcomeOK          = 0
	OutcomeError       = 1
	OutcomeRefused     = 2
	OutcomeRateLimited = 3
)

// Sizes.
const (
	NonceSize  = 16
	cmdHead    = 1 + 8 + 32 + 32 + NonceSize + ed25519.SignatureSize
	MaxCommand = 8 << 10
)

// ErrMalformed: a remote message that does not decode.
var ErrMalformed = errors.New("admin: malformed remote message")

// SignedBytes is what an operator signs for a command to target.
func SignedBytes(target [32]byte, nonce [NonceSize]byte, command string) []byte {
	b := []byte("mycelium admin v1")
	b = append(b, target[:]...)
	b = append(b, nonce[:]...)
	return append(b, command...)
}

// AnswerBytes is what a target signs for an answer.
func AnswerBytes(req uint64, outcome byte, text string) []byte {
	b := []byte("mycelium admin answer v1")
	b = binary.BigEndian.AppendUint64(b, req)
	b = append(b, outcome)
	return append(b, text...)
}

// Command is a decoded remote command.
type Command struct {
	Req      uint64
	ReplyTo  [32]byte
	Operator [32]byte
	Nonce    [NonceSize]byte
	Sig      []byte
	Text     string
}

// AppendCommand encodes a command.
func AppendCommand(b []byte, c *Command) []byte {
	b = append(b, MsgCommand)
	b = binary.BigEndian.AppendUint64(b, c.Req)
	b = append(b, c.ReplyTo[:]...)
	b = append(b, c.Operator[:]...)
	b = append(b, c.Nonce[:]...)
	b = append(b, c.Sig...)
	return append(b, c.Text...)
}

// DecodeCommand decodes a command (the type byte included).
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if len(b) < cmdHead || b[0] != MsgCommand || len(b)-cmdHead > MaxCommand {
		return c, fmt.Errorf("%w: command of %d bytes", ErrMalformed, len(b))
	}
	c.Req = binary.BigEndian.Uint64(b[1:])
	copy(c.ReplyTo[:], b[9:])
	copy(c.Operator[:], b[41:])
	copy(c.Nonce[:], b[73:])
	c.Sig = b[89 : 89+ed25519.SignatureSize]
	c.Text = string(b[cmdHead:])
	return c, nil
}

// Nonces issues single-use nonces, each good for TTL; at most Max are
// outstanding (the oldest go first).
type Nonces struct {
	TTL time.Duration
	Max int
	Now func() time.Time
	mu  sync.Mutex
	m   map[[NonceSize]byte]time.Time
	q   [][NonceSize]byte
}

// Issue returns a fresh nonce.
func (n *Nonces) Issue() [NonceSize]byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[[NonceSize]byte]time.Time{}
	}
	var x [NonceSize]byte
	rand.Read(x[:])
	for len(n.q) >= n.Max {
		delete(n.m, n.q[0])
		n.q = n.q[1:]
	}
	n.m[x] = n.Now()
	n.q = append(n.q, x)
	return x
}

// Take spends a nonce: true once, if it was issued within TTL.
func (n *Nonces) Take(x [NonceSize]byte) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.m[x]
	if !ok {
		return false
	}
	delete(n.m, x)
	n.q = slices.DeleteFunc(n.q, func(y [NonceSize]byte) bool { return y == x })
	return n.Now().Sub(t) <= n.TTL
}

// Remote runs a remote command on this node (self) if it is signed over a
// nonce we issued by one of operators; every outcome is audited. The
// outcome and text make the answer.
func (a *Admin) Remote(self [32]byte, operators [][32]byte, nonces *Nonces, c Command) (byte, string) {
	who := hex.EncodeToString(c.Operator[:])
	if !slices.Contains(operators, c.Operator) {
		a.Audit(who, "remote", c.Text, "refused", "not an operator key of this node")
		return OutcomeRefused, ErrRefused.Error()
	}
	if !ed25519.Verify(ed25519.PublicKey(c.Operator[:]), SignedBytes(self, c.Nonce, c.Text), c.Sig) {
		a.Audit(who, "remote", c.Text, "refused", "bad signature")
		return OutcomeRefused, "admin: refused: bad signature"
	}
	if !nonces.Take(c.Nonce) {
		a.Audit(who, "remote", c.Text, "refused", "nonce not issued, used or stale")
		return OutcomeRefused, "admin: refused: nonce not issued here, already used, or stale"
	}
	out, err := a.Exec(who, "remote", c.Text)
	switch {
	case errors.Is(err, ErrRateLimited):
		return OutcomeRateLimited, err.Error()
	case err != nil:
		return OutcomeError, err.Error()
	}
	return OutcomeOK, out
}
