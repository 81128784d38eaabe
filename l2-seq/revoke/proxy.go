package revoke

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// Proxy certificates [ours]: an operator's signed statement that one node
// (the proxy) may register name records for a keyless board (a node_id
// that cannot sign) until a date. A reference board cannot sign records or
// delegate to its proxy, so without one anyone can sign a proxy record for
// it; a node configured to (l3-route's Config.CertifiedProxies) takes a
// proxy record for a keyless node_id only with a certificate by an
// operator it lists, for that proxy, unexpired. A certificate is 169
// bytes:
//
//	version (1) = 1 | operator (32) | board (32) | proxy (32) | until (8, Unix seconds, big-endian) | signature (64)
//
// the signature being the operator's over "mycelium proxy certificate
// v1\x00" followed by the first 105 bytes. In a name record it travels as
// operator ‖ until ‖ signature (104 bytes): the record names the board and
// its signer, the proxy.
type ProxyCert struct {
	Operator identity.NodeID
	Board    identity.NodeID
	Proxy    identity.NodeID
	Until    int64 // Unix seconds: the last second it holds
	Sig      [ed25519.SignatureSize]byte
}

// ProxyCertSize is a certificate's full size (file, PEM block).
const ProxyCertSize = 1 + 3*32 + 8 + ed25519.SignatureSize

// ProxyCertPEMType is the PEM block type a certificate travels in between
// people (mycelium keys operator certify-proxy writes it).
const ProxyCertPEMType = "MYCELIUM PROXY CERTIFICATE"

const proxyDomain = "mycelium proxy certificate v1\x00"

// ErrExpired reports a certificate past its date.
var ErrExpired = errors.New("revoke: proxy certificate expired")

func (c *ProxyCert) signed() []byte {
	b := append([]byte(proxyDomain), Version)
	b = append(b, c.Operator[:]...)
	b = append(b, c.Board[:]...)
	b = append(b, c.Proxy[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(c.Until))
}

// SignProxy makes op's certificate that proxy may register records for
// board until until.
func SignProxy(op identity.Signer, board, proxy identity.NodeID, until time.Time) ProxyCert {
	c := ProxyCert{Board: board, Proxy: proxy, Until: until.Unix()}
	copy(c.Operator[:], op.Public())
	copy(c.Sig[:], op.Sign(c.signed()))
	return c
}

// Verify checks the operator's signature.
func (c *ProxyCert) Verify() error {
	if !ed25519.Verify(ed25519.PublicKey(c.Operator[:]), c.signed(), c.Sig[:]) {
		return fmt.Errorf("%w: proxy certificate", ErrForged)
	}
	return nil
}

// Check verifies c for proxy registering board's records at now, by one
// of operators: typed errors (ErrUntrusted, ErrMalformed for another
// board or proxy, ErrExpired, ErrForged), the cheap checks first.
func (c *ProxyCert) Check(operators []identity.NodeID, board, proxy identity.NodeID, now time.Time) error {
	trusted := false
	for _, op := range operators {
		trusted = trusted || op == c.Operator
	}
	switch {
	case !trusted:
		return fmt.Errorf("%w: proxy certificate by %s", ErrUntrusted, c.Operator)
	case c.Board != board || c.Proxy != proxy:
		return fmt.Errorf("%w: a proxy certificate for another board or proxy", ErrMalformed)
	case now.Unix() > c.Until:
		return fmt.Errorf("%w: %s", ErrExpired, time.Unix(c.Until, 0).UTC().Format(time.RFC3339))
	}
	return c.Verify()
}

// AppendBinary appends the certificate's 169 bytes to b.
func (c *ProxyCert) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, Version)
	b = append(b, c.Operator[:]...)
	b = append(b, c.Board[:]...)
	b = append(b, c.Proxy[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Until))
	return append(b, c.Sig[:]...), nil
}

// MarshalBinary returns the certificate's 169 bytes.
func (c *ProxyCert) MarshalBinary() ([]byte, error) {
	return c.AppendBinary(make([]byte, 0, ProxyCertSize))
}

// UnmarshalBinary reads exactly one certificate (it does not verify it).
func (c *ProxyCert) UnmarshalBinary(b []byte) error {
	if len(b) != ProxyCertSize {
		return fmt.Errorf("%w: proxy certificate of %d bytes, want %d", ErrMalformed, len(b), ProxyCertSize)
	}
	if b[0] != Version {
		return fmt.Errorf("%w: proxy certificate version %d", ErrMalformed, b[0])
	}
	copy(c.Operator[:], b[1:33])
	copy(c.Board[:], b[33:65])
	copy(c.Proxy[:], b[65:97])
	c.Until = int64(binary.BigEndian.Uint64(b[97:105]))
	copy(c.Sig[:], b[105:])
	return nil
}

// PEM is the certificate as a PEM block, its fields in headers for people
// to read (the bytes are what is verified).
func (c *ProxyCert) PEM() []byte {
	b, _ := c.MarshalBinary()
	return pem.EncodeToMemory(&pem.Block{Type: ProxyCertPEMType, Bytes: b, Headers: map[string]string{
		"Board":    c.Board.String(),
		"Proxy":    c.Proxy.String(),
		"Operator": c.Operator.String(),
		"Until":    time.Unix(c.Until, 0).UTC().Format(time.RFC3339),
	}})
}

// ParseProxyPEM reads the certificate in a PEM block (it does not verify
// it).
func ParseProxyPEM(b []byte) (ProxyCert, error) {
	var c ProxyCert
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != ProxyCertPEMType {
		return c, fmt.Errorf("%w: not a %s PEM block", ErrMalformed, ProxyCertPEMType)
	}
	return c, c.UnmarshalBinary(blk.Bytes)
}
