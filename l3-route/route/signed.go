package route

// Receipts, error reports and renew requests bound to their originator
// [ours]. They cross relays, so a relay (or anyone on the radio who heard
// a Package go by) could otherwise confirm a Package that was never
// delivered, end a send with a made-up error, or start a tree's term over.
// Each is signed by the node that makes it (Ed25519, its identity) and
// dated by its clock; the receiver checks the signature against the key
// the message must come from and the date against the trees' clock-skew
// allowance (tree.Config.MaxSkew):
//
//   - a receipt (msgReceiptNonce) by the destination, or by the proxy
//     whose record the sender looked up (it confirms for a board behind
//     it), naming a nonce the sender drew for one of this send's attempts
//     (path.go) and dated no earlier than the send began (less the skew):
//     a receipt recorded for an earlier send of the same Package, however
//     recent, names another nonce and is refused. (msgReceiptSigned, with
//     no nonce, answers a Package that carried none: it counts only for a
//     send that drew none, and ours always draw one to a node that signs.)
//   - an error report (msgErrorNonce) by its reporter, who names itself,
//     naming the nonce of the attempt it is about (as a receipt does):
//     from the destination (or its proxy) it ends the send, for any of
//     the send's attempts; from anyone else it is a relay's word that one
//     way failed, counted only for the latest attempt (an earlier one has
//     been tried again already), and the sender tries again (every tree)
//     before it gives the error up — a node that heard a Package pass can
//     cost its sender a try, never the send. An error recorded for an
//     earlier send of the same Package, or for an earlier try of this one,
//     names another nonce and is refused. (msgErrorSigned, with no nonce,
//     answers a Package that carried none: it counts only for a send that
//     drew none.)
//   - a renew request (msgRenewSigned, and msgRenewViaSigned one hop to a
//     neighbour, who passes the orphan's signed request on unchanged) by
//     the orphan, dated within the skew of the root's clock: a request for
//     an epoch gone by cannot be replayed into a later one that reuses its
//     tree_state. (The root starts a term at most once per MinTermPeriods
//     claim periods whoever asks.)
//
// Keyless boards cannot sign. Their receipts and error reports keep the
// plain layouts (msgReceipt, msgError), which count only for a send to a
// destination that cannot sign: a node_id that is no Ed25519 key, or one
// known only by an unvouched proxy record (a reference board behind a
// proxy, delegation.go). Anywhere else a plain one is refused and counted.

import (
	"crypto/ed25519"
	"encoding/binary"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

// Signed control messages (the first byte), and their sizes with it.
const (
	msgReceiptSigned  = 0x03 // ‖ hash(16) ‖ time(8) ‖ sig(64): the destination delivered it (a Package with no nonce)
	msgReceiptNonce   = 0x05 // ‖ hash(16) ‖ nonce(8) ‖ time(8) ‖ sig(64): the destination delivered the attempt with that nonce
	msgErrorSigned    = 0x04 // ‖ code ‖ hash(16) ‖ reporter addr(16) ‖ reporter node_id(32) ‖ time(8) ‖ sig(64) (a Package with no nonce)
	msgErrorNonce     = 0x06 // ‖ code ‖ hash(16) ‖ reporter addr(16) ‖ reporter node_id(32) ‖ nonce(8) ‖ time(8) ‖ sig(64): the attempt with that nonce failed
	msgRenewSigned    = 0x42 // ‖ tree ‖ tree_state ‖ node_id(32) ‖ time(8) ‖ sig(64) (to that tree's root)
	msgRenewViaSigned = 0x43 // (one hop) the same body: pass my signed renew request on

	ReceiptSize = 1 + 16 + 8 + ed25519.SignatureSize // 89
	// ReceiptNonceSize is a receipt that names the attempt's nonce.
	ReceiptNonceSize = ReceiptSize + 8                                  // 97
	ErrorSize        = 1 + 1 + 16 + 16 + 32 + 8 + ed25519.SignatureSize // 138
	// ErrorNonceSize is an error report that names the attempt's nonce.
	ErrorNonceSize = ErrorSize + 8                                           // 146
	RenewSize      = 1 + 2 + identity.NodeIDSize + 8 + ed25519.SignatureSize // 107
)

const (
	receiptDomain      = "mycelium/receipt/v1"
	receiptNonceDomain = "mycelium/receipt/v2"
	errorDomain        = "mycelium/error/v1"
	errorNonceDomain   = "mycelium/error/v2"
	renewDomain        = "mycelium/renew/v1"
)

// receiptSigned is what a receipt's signature covers.
func receiptSigned(signer identity.NodeID, hash [16]byte, t int64) []byte {
	b := make([]byte, 0, len(receiptDomain)+32+16+8)
	b = append(b, receiptDomain...)
	b = append(b, signer[:]...)
	b = append(b, hash[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(t))
}

// appendReceipt makes this node's signed receipt for the Package hash,
// naming the attempt's nonce when its path header carried one.
func (r *Router) appendReceipt(b []byte, hash [16]byte, ph *pathHeader) []byte {
	if ph != nil && ph.hasNonce {
		return AppendReceiptNonce(b, r.b.Signer(), hash, ph.nonce, r.clk.Now().UnixNano())
	}
	return AppendReceipt(b, r.b.Signer(), hash, r.clk.Now().UnixNano())
}

// receiptNonceSigned is what a receipt naming a nonce has signed.
func receiptNonceSigned(signer identity.NodeID, hash [16]byte, nonce uint64, t int64) []byte {
	b := make([]byte, 0, len(receiptNonceDomain)+32+16+8+8)
	b = append(b, receiptNonceDomain...)
	b = append(b, signer[:]...)
	b = append(b, hash[:]...)
	b = binary.BigEndian.AppendUint64(b, nonce)
	return binary.BigEndian.AppendUint64(b, uint64(t))
}

// AppendReceiptNonce appends the signed receipt (msgReceiptNonce) of the
// node whose key s holds for the attempt of Package hash that carried
// nonce, dated t (Unix ns).
func AppendReceiptNonce(b []byte, s identity.Signer, hash [16]byte, nonce uint64, t int64) []byte {
	b = append(b, msgReceiptNonce)
	b = append(b, hash[:]...)
	b = binary.BigEndian.AppendUint64(b, nonce)
	b = binary.BigEndian.AppendUint64(b, uint64(t))
	return append(b, s.Sign(receiptNonceSigned(identity.NodeID(s.Public()), hash, nonce, t))...)
}

// AppendReceipt appends the signed receipt (msgReceiptSigned) of the node
// whose key s holds for the Package hash, dated t (Unix ns).
func AppendReceipt(b []byte, s identity.Signer, hash [16]byte, t int64) []byte {
	b = append(b, msgReceiptSigned)
	b = append(b, hash[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(t))
	return append(b, s.Sign(receiptSigned(identity.NodeID(s.Public()), hash, t))...)
}

// errorSigned is what an error report's signature covers (b: the report
// from its code to its time); errorNonceSigned, one that names a nonce.
func errorSigned(b []byte) []byte {
	return append([]byte(errorDomain), b...)
}

func errorNonceSigned(b []byte) []byte {
	return append([]byte(errorNonceDomain), b...)
}

// appendError makes this node's signed error report for the Package hash,
// naming the attempt's nonce when its path header carried one.
func (r *Router) appendError(b []byte, code uint8, hash [16]byte, rep addr.Address, ph *pathHeader) []byte {
	if ph != nil && ph.hasNonce {
		return AppendErrorNonce(b, r.b.Signer(), r.self, code, hash, rep, ph.nonce, r.clk.Now().UnixNano())
	}
	return AppendError(b, r.b.Signer(), r.self, code, hash, rep, r.clk.Now().UnixNano())
}

// AppendError appends a signed error report (msgErrorSigned) naming
// reporter, with s's signature (a report is valid only when s holds
// reporter's key).
func AppendError(b []byte, s identity.Signer, reporter identity.NodeID, code uint8, hash [16]byte, rep addr.Address, t int64) []byte {
	b = append(b, msgErrorSigned)
	body := len(b)
	b = appendErrorBody(b, code, hash, rep, reporter)
	b = binary.BigEndian.AppendUint64(b, uint64(t))
	return append(b, s.Sign(errorSigned(b[body:]))...)
}

// AppendErrorNonce appends a signed error report (msgErrorNonce) naming
// reporter and the nonce of the attempt of Package hash that failed, with
// s's signature (valid only when s holds reporter's key), dated t (Unix
// ns).
func AppendErrorNonce(b []byte, s identity.Signer, reporter identity.NodeID, code uint8, hash [16]byte, rep addr.Address, nonce uint64, t int64) []byte {
	b = append(b, msgErrorNonce)
	body := len(b)
	b = appendErrorBody(b, code, hash, rep, reporter)
	b = binary.BigEndian.AppendUint64(b, nonce)
	b = binary.BigEndian.AppendUint64(b, uint64(t))
	return append(b, s.Sign(errorNonceSigned(b[body:]))...)
}

func appendErrorBody(b []byte, code uint8, hash [16]byte, rep addr.Address, reporter identity.NodeID) []byte {
	b = append(b, code)
	b = append(b, hash[:]...)
	b = append(b, rep[:]...)
	return append(b, reporter[:]...)
}

// AppendPlainReceipt and AppendPlainError append the unsigned layouts a
// keyless board sends (msgReceipt, msgError).
func AppendPlainReceipt(b []byte, hash [16]byte) []byte {
	return append(append(b, msgReceipt), hash[:]...)
}

// AppendPlainError: see AppendPlainReceipt.
func AppendPlainError(b []byte, code uint8, hash [16]byte, rep addr.Address) []byte {
	b = append(b, msgError, code)
	b = append(b, hash[:]...)
	return append(b, rep[:]...)
}

// renewSigned is what a renew request's signature covers (b: the request
// from its tree to its time).
func renewSigned(b []byte) []byte {
	return append([]byte(renewDomain), b...)
}

// appendRenew makes this node's signed renew request for tree k's epoch ts.
func (r *Router) appendRenew(b []byte, typ byte, k int, ts uint8) []byte {
	b = append(b, typ)
	body := len(b)
	b = append(b, byte(k), ts)
	b = append(b, r.self[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.clk.Now().UnixNano()))
	return append(b, r.b.Signer().Sign(renewSigned(b[body:]))...)
}

// canSign reports whether a node_id is an Ed25519 key: a node that could
// sign what it sends. A keyless node_id (no point on the curve; boards
// that have no identity) cannot.
func canSign(id identity.NodeID) bool {
	_, err := identity.X25519Public(id)
	return err == nil
}

// unsignable reports a destination that cannot sign its receipts and
// errors: a keyless node_id, or a node known only by a proxy record no
// delegation vouches for (a reference board behind our proxy).
func (d *Destination) unsignable() bool {
	return !canSign(d.ID) || d.Unvouched
}

// within reports whether a signed message's time t is no later than the
// skew allowance from now and no earlier than since less the allowance.
func (r *Router) within(t int64, since, now time.Time) bool {
	skew := r.recordSkew()
	d := time.Unix(0, t)
	return !d.After(now.Add(skew)) && !d.Before(since.Add(-skew))
}

// onReceipt handles a receipt, signed (msgReceiptNonce, msgReceiptSigned) or plain
// (msgReceipt, a keyless board's).
func (r *Router) onReceipt(b []byte) {
	var hash [16]byte
	copy(hash[:], b[1:17])
	p := r.pending[hash]
	if p == nil {
		return // late (the send is over) or for no send of ours
	}
	if b[0] == msgReceipt {
		if !p.dst.unsignable() {
			r.stats.ReceiptsRefused++
			return
		}
		r.stats.Receipts++
		r.finish(hash, nil)
		return
	}
	var nonce uint64
	body := b[17:]
	if b[0] == msgReceiptNonce {
		nonce, body = binary.BigEndian.Uint64(body), body[8:]
		if !slices.Contains(p.nonces, nonce) {
			r.stats.ReceiptsRefused++ // for another send of the Package (a replay), or no attempt of ours
			return
		}
	} else if len(p.nonces) > 0 {
		r.stats.ReceiptsRefused++ // our attempts carried nonces: a receipt without one is no answer to them
		return
	}
	t := int64(binary.BigEndian.Uint64(body))
	sig := body[8:]
	ok := false
	for _, s := range []identity.NodeID{p.dst.ID, p.dst.Proxy} {
		if s == (identity.NodeID{}) {
			continue
		}
		in := receiptSigned(s, hash, t)
		if b[0] == msgReceiptNonce {
			in = receiptNonceSigned(s, hash, nonce, t)
		}
		if ed25519.Verify(s[:], in, sig) {
			ok = true
			break
		}
	}
	if !ok || !r.within(t, p.since, r.clk.Now()) {
		r.stats.ReceiptsRefused++
		return
	}
	r.stats.Receipts++
	r.finish(hash, nil)
}

// onError handles an error report, signed (msgErrorNonce,
// msgErrorSigned) or plain (msgError, a keyless board's).
func (r *Router) onError(b []byte) {
	var hash [16]byte
	copy(hash[:], b[2:18])
	p := r.pending[hash]
	if p == nil {
		return
	}
	var rep addr.Address
	copy(rep[:], b[18:34])
	remote := &node.RemoteError{Err: node.ErrorForCode(b[1]), From: reporterName(rep)}
	if b[0] == msgError {
		if !p.dst.unsignable() {
			r.stats.ErrorsRefused++
			return
		}
		r.stats.ErrorsRecv++
		r.failed(hash, remote, false)
		return
	}
	var reporter identity.NodeID
	copy(reporter[:], b[34:66])
	// The destination's word ends the send; a relay's says one way failed.
	relay := reporter != p.dst.ID && reporter != p.dst.Proxy
	body, signed := b[66:], errorSigned(b[1:74])
	if b[0] == msgErrorNonce {
		nonce := binary.BigEndian.Uint64(body)
		body, signed = body[8:], errorNonceSigned(b[1:82])
		i := slices.Index(p.nonces, nonce)
		if i < 0 || relay && i != len(p.nonces)-1 {
			// For another send of the Package (a replay), no attempt of
			// ours, or — a relay's — an attempt tried again since.
			r.stats.ErrorsRefused++
			return
		}
	} else if len(p.nonces) > 0 {
		r.stats.ErrorsRefused++ // our attempts carried nonces: an error without one is no answer to them
		return
	}
	t := int64(binary.BigEndian.Uint64(body))
	if !ed25519.Verify(reporter[:], signed, body[8:]) || !r.within(t, p.since, r.clk.Now()) {
		r.stats.ErrorsRefused++
		return
	}
	r.stats.ErrorsRecv++
	if relay {
		r.stats.RelayErrors++
	}
	r.failed(hash, remote, relay)
}

// reporterName is how an error report's reporter is named: its address
// in the report's tree, or "(root)" for the root, whose address has no
// coordinates (it printed as nothing: "no route (reported by )"; the CLI
// names the root so too). A reporter with no place in the tree sends the
// root's address too (forward.go reportError).
func reporterName(rep addr.Address) string {
	if rep.Depth() == 0 {
		return "(root)"
	}
	return rep.String()
}

// renewFrom checks a renew request of type want (b: the whole message) and
// reports its tree and epoch.
func (r *Router) renewFrom(b []byte, want byte) (k int, ts uint8, ok bool) {
	if b[0] != want {
		r.stats.RenewsRefused++ // unsigned: anyone could have sent it
		return 0, 0, false
	}
	body := b[1:]
	var id identity.NodeID
	copy(id[:], body[2:34])
	t := int64(binary.BigEndian.Uint64(body[34:42]))
	now := r.clk.Now()
	if !ed25519.Verify(id[:], renewSigned(body[:42]), body[42:]) || !r.within(t, now, now) {
		r.stats.RenewsRefused++
		return 0, 0, false
	}
	return int(body[0]), body[1], true
}

// onRenew is a renew request that reached us: only the root of that epoch
// acts on it.
func (r *Router) onRenew(b []byte) {
	k, ts, ok := r.renewFrom(b, msgRenewSigned)
	if !ok {
		return
	}
	r.renew(k, ts)
}
