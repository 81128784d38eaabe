package route

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

// ControlApp is the routing layer's own application: receipts, errors,
// name lookups, trace route and leases travel as its messages.
var ControlApp = packet.NewAppID("Mycelium", "route", 1)

// Control message types (the first byte).
const (
	msgReceipt     = 0x01 // ‖ hash(16): the Package with that hash was delivered (a keyless board's; ours sign: signed.go)
	msgError       = 0x02 // ‖ code ‖ hash(16) ‖ reporter addr(16): it was not, and why (a keyless board's; ours sign)
	msgRegister    = 0x10 // ‖ record: store my addresses under my node_id
	msgLookup      = 0x11 // ‖ node_id(32) ‖ nonce(4) [‖ lookupHomeOnly]: where is this node?
	msgRegistered  = 0x13 // ‖ node_id(32) ‖ time(8): that record is stored here
	msgLookupReply = 0x12 // ‖ nonce(4) ‖ found(1) ‖ record
	msgTrace       = 0x20 // ‖ nonce(4): a trace probe; every relay reports
	msgTraceReport = 0x21 // ‖ nonce(4) ‖ hop(1) ‖ final(1) ‖ compact address ‖ node_id(32) ‖ link name
	msgLeaseReq    = 0x30 // (one hop) please lease me an address [‖ flags: 0x01 I register myself] [‖ until ‖ delegation sig]
	msgRenew       = 0x40 // ‖ tree ‖ tree_state: unsigned, refused (signed.go: msgRenewSigned)
	msgRenewVia    = 0x41 // (one hop) ‖ tree ‖ tree_state: unsigned, refused (msgRenewViaSigned)
	msgLeaseGrant  = 0x31 // (one hop) ‖ count ‖ count × (tree ‖ ts ‖ compact address)

	msgNameRegister = 0x14 // ‖ name record: store my name
	msgNameStored   = 0x15 // ‖ node_id(32) ‖ time(8) ‖ status(1): the name is stored (0), or held for that node (1)
	msgNameLookup   = 0x16 // ‖ nonce(4) ‖ name: whose is this name?
	msgNameReply    = 0x17 // ‖ nonce(4) ‖ found(1) ‖ name record
	msgNameHello    = 0x18 // (one hop) ‖ name record: my name, neighbour
	// msgHood (hood.go) = 0x19: (one hop, broadcast) ‖ tree_state ‖ n ‖ n × (tag ‖ compact address): where my neighbours are
)

// ControlName names a control message by its type byte (for captures and
// measurements; "unknown" for a type we do not send).
func ControlName(t byte) string {
	switch t {
	case msgReceipt:
		return "receipt"
	case msgError:
		return "error"
	case msgRegister:
		return "register"
	case msgLookup:
		return "lookup"
	case msgRegistered:
		return "registered"
	case msgLookupReply:
		return "lookup reply"
	case msgTrace:
		return "trace"
	case msgTraceReport:
		return "trace report"
	case msgLeaseReq:
		return "lease request"
	case msgRenew:
		return "renew"
	case msgRenewVia:
		return "renew via"
	case msgLeaseGrant:
		return "lease grant"
	case msgNameRegister:
		return "name register"
	case msgNameStored:
		return "name stored"
	case msgNameLookup:
		return "name lookup"
	case msgNameReply:
		return "name reply"
	case msgNameHello:
		return "name hello"
	case msgHood:
		return "neighbourhood"
	}
	return "unknown"
}

// ErrControl reports a control message that does not parse.
var ErrControl = errors.New("route: malformed control message")

// checkControl checks a control message's type and length (records inside
// are checked when decoded): a malformed one is dropped and counted
// (Stats.Malformed), never half-read.
func checkControl(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", ErrControl)
	}
	n := len(b) - 1
	ok := false
	switch b[0] {
	case msgReceipt:
		ok = n == 16
	case msgReceiptSigned:
		ok = n == ReceiptSize-1
	case msgReceiptNonce:
		ok = n == ReceiptNonceSize-1
	case msgError:
		ok = n == 33
	case msgErrorSigned:
		ok = n == ErrorSize-1
	case msgErrorNonce:
		ok = n == ErrorNonceSize-1
	case msgRenew, msgRenewVia:
		ok = n == 2
	case msgRenewSigned, msgRenewViaSigned:
		ok = n == RenewSize-1
	case msgRegister:
		ok = n >= 32+1+8+1+64
	case msgRegistered:
		ok = n == 40
	case msgLookup:
		ok = n == 36 || n == 37 && b[37] == lookupHomeOnly
	case msgLookupReply:
		ok = n >= 5
	case msgTrace:
		ok = n == 4
	case msgTraceReport:
		ok = n >= 7+32
	case msgNameRegister, msgNameHello:
		ok = n >= nameRecordMin && n <= nameRecordMin-1+MaxName
	case msgNameStored:
		ok = n == 41
	case msgHood:
		ok = n >= hoodMin-1
	case msgNameLookup:
		ok = n >= 5 && n <= 4+MaxName
	case msgNameReply:
		ok = n >= 5
	case msgLeaseReq:
		// [flags] [delegation]: a crowded node's flags, a leaf's
		// delegation (delegation.go), or both.
		ok = n == 0 || n == 1 || n == DelegationSize || n == 1+DelegationSize
	case msgLeaseGrant:
		_, err := decodeGrant(b)
		ok = err == nil
	}
	if !ok {
		return fmt.Errorf("%w: type %#02x of %d bytes", ErrControl, b[0], len(b))
	}
	return nil
}

// TreeAddr is one address of a node: the tree, its epoch, the coordinates
// (a Long: deeper than the wire's 32 nibbles, if need be).
type TreeAddr struct {
	Tree      uint8
	TreeState uint8
	Addr      addr.Long
}

// Record is what the name lookup stores for a node: its addresses, signed
// by the node (or, for a node behind a proxy, by the proxy that leased them).
type Record struct {
	ID     identity.NodeID
	Signer identity.NodeID // ID itself, or the proxy
	Time   int64
	Addrs  []TreeAddr
	Sig    [ed25519.SignatureSize]byte
	// Deleg is ID's delegation to Signer, in a proxy's record for one of
	// our leaves (delegation.go); nil in a self-signed record and in a
	// proxy's record for a reference board.
	Deleg *Delegation
	// Cert is an operator's certificate that Signer may register records
	// for ID (a keyless board), in a proxy's record for one; nil
	// elsewhere. Its Board and Proxy are ID and Signer.
	Cert *revoke.ProxyCert
}

const recordDomain = "mycelium/record/v1"

func (r *Record) signed(b []byte) []byte {
	b = append(b, recordDomain...)
	b = append(b, r.ID[:]...)
	b = append(b, r.Signer[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time))
	b = append(b, byte(len(r.Addrs)))
	for _, a := range r.Addrs {
		b = append(b, a.Tree, a.TreeState)
		b = append(b, a.Addr[:]...)
	}
	return b
}

// Sign fills Sig with the signer's key.
func (r *Record) Sign(id identity.Signer) {
	copy(r.Sig[:], id.Sign(r.signed(nil)))
}

// Verify checks the signature by Signer.
func (r *Record) Verify() bool {
	return ed25519.Verify(ed25519.PublicKey(r.Signer[:]), r.signed(nil), r.Sig[:])
}

// Record wire form [ours], compact so that a record (and a lookup reply
// carrying one) fits a single routed packet, which costs a relay one frame
// and its ack instead of a sequence's rounds: id(32) ‖ flags(1: bit 0, a
// proxy signed it and its id follows; bit 1, the node's delegation follows
// the signer; bit 2, an operator's proxy certificate follows it) ‖
// [signer(32)] ‖ [delegation or certificate] ‖ time(8) ‖ n(1) ‖ n ×
// (tree ‖ tree_state ‖ len(1) ‖ the address's first len bytes, 0–64, as a
// Long: the rest are zero) ‖ signature(64). The signature covers the full
// form (signed: each address as its 64 bytes).
const (
	recordProxy     = 0x01
	recordDelegated = 0x02 // a proxy's, with the node's delegation: until (8) ‖ sig (64) follow the signer
	recordWithCert  = 0x04 // a proxy's, with an operator's certificate: operator (32) ‖ until (8, Unix s) ‖ sig (64) follow the signer
)

// CertSize is a proxy certificate's size in a record.
const CertSize = 32 + 8 + ed25519.SignatureSize

// AppendTo encodes the record.
func (r *Record) AppendTo(b []byte) []byte {
	b = append(b, r.ID[:]...)
	switch {
	case r.Signer == r.ID:
		b = append(b, 0)
	case r.Deleg != nil:
		b = append(b, recordDelegated)
		b = append(b, r.Signer[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Deleg.Until))
		b = append(b, r.Deleg.Sig[:]...)
	case r.Cert != nil:
		b = append(b, recordWithCert)
		b = append(b, r.Signer[:]...)
		b = append(b, r.Cert.Operator[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Cert.Until))
		b = append(b, r.Cert.Sig[:]...)
	default:
		b = append(b, recordProxy)
		b = append(b, r.Signer[:]...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time))
	b = append(b, byte(len(r.Addrs)))
	for _, a := range r.Addrs {
		b = append(b, a.Tree, a.TreeState)
		b = a.Addr.AppendCompact(b)
	}
	return append(b, r.Sig[:]...)
}

// UnmarshalBinary decodes a record.
func (r *Record) UnmarshalBinary(b []byte) error {
	bad := func(why string) error { return fmt.Errorf("%w: record: %s", ErrControl, why) }
	if len(b) < 32+1+8+1+ed25519.SignatureSize {
		return bad(fmt.Sprintf("%d bytes", len(b)))
	}
	copy(r.ID[:], b[:32])
	flags := b[32]
	b = b[33:]
	r.Deleg, r.Cert = nil, nil
	switch flags {
	case 0:
		r.Signer = r.ID
	case recordProxy, recordDelegated, recordWithCert:
		if len(b) < 32 {
			return bad("short signer")
		}
		copy(r.Signer[:], b[:32])
		if r.Signer == r.ID {
			return bad("proxy flag with the node's own id") // its one form is flags 0
		}
		b = b[32:]
		if flags == recordDelegated {
			if len(b) < DelegationSize {
				return bad("short delegation")
			}
			d := &Delegation{Proxy: r.Signer, Until: int64(binary.BigEndian.Uint64(b))}
			copy(d.Sig[:], b[8:DelegationSize])
			r.Deleg = d
			b = b[DelegationSize:]
		}
		if flags == recordWithCert {
			if len(b) < CertSize {
				return bad("short certificate")
			}
			c := &revoke.ProxyCert{Board: r.ID, Proxy: r.Signer, Until: int64(binary.BigEndian.Uint64(b[32:40]))}
			copy(c.Operator[:], b[:32])
			copy(c.Sig[:], b[40:CertSize])
			r.Cert = c
			b = b[CertSize:]
		}
	default:
		return bad(fmt.Sprintf("flags %#x", flags))
	}
	if len(b) < 9 {
		return bad("short")
	}
	r.Time = int64(binary.BigEndian.Uint64(b[:8]))
	n := int(b[8])
	b = b[9:]
	if n > 16 {
		return bad(fmt.Sprintf("%d addresses", n))
	}
	r.Addrs = r.Addrs[:0]
	for range n {
		if len(b) < 3 {
			return bad("truncated address")
		}
		var a TreeAddr
		a.Tree, a.TreeState = b[0], b[1]
		var err error
		// Its one form stops at the last non-zero byte.
		if a.Addr, b, err = addr.ReadCompact(b[2:]); err != nil {
			return bad(err.Error())
		}
		r.Addrs = append(r.Addrs, a)
	}
	if len(b) != ed25519.SignatureSize {
		return bad(fmt.Sprintf("%d bytes where the signature goes", len(b)))
	}
	copy(r.Sig[:], b)
	return nil
}
