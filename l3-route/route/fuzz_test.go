package route

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

var updateCorpus = flag.Bool("update", false, "rewrite the seed corpora in testdata/fuzz")

type fuzzSeed struct {
	name string
	data []byte
}

// Fixed identities and times, so that seeds (and their signatures) are
// the same on every run: the corpus doubles as a golden test of the wire
// forms.
var (
	fuzzNode  = identity.FromSeed([32]byte{0xf0, 1})
	fuzzProxy = identity.FromSeed([32]byte{0xf0, 2})
	fuzzPeer  = identity.FromSeed([32]byte{0xf0, 3})
)

const fuzzTime = int64(1767225600_000000000) // 2026-01-01 UTC

// fuzzNonce is the nonce of the fixture's send's latest attempt, and
// fuzzEarlier its first's (tried again since).
const (
	fuzzNonce   = uint64(0x6e6f6e6365000001)
	fuzzEarlier = uint64(0x6e6f6e6365000000)
)

func signedRecord(id identity.Identity, signer identity.Identity, addrs ...TreeAddr) Record {
	r := Record{ID: id.ID(), Signer: signer.ID(), Time: fuzzTime, Addrs: addrs}
	r.Sign(signer)
	return r
}

func ta(tree, ts uint8, coords ...uint8) TreeAddr {
	return TreeAddr{Tree: tree, TreeState: ts, Addr: addr.MustEncodeLong(coords...)}
}

// recordSeeds are real records and typical damage to them.
func recordSeeds() []fuzzSeed {
	own := signedRecord(fuzzNode, fuzzNode, ta(0, 16, 1, 2, 3), ta(1, 33, 4), ta(2, 2))
	lease, _ := addr.MustEncodeLong(2, 9, 135).Lease(3)
	proxied := signedRecord(fuzzPeer, fuzzProxy, TreeAddr{Tree: 0, TreeState: 16, Addr: lease})
	var many []TreeAddr
	for k := range 16 {
		many = append(many, ta(uint8(k), uint8(k+16*k), slices.Repeat([]uint8{135}, 16)...))
	}
	deep := signedRecord(fuzzNode, fuzzNode, ta(0, 16, slices.Repeat([]uint8{3, 100}, 40)...))
	full := signedRecord(fuzzNode, fuzzNode, many...)
	none := signedRecord(fuzzNode, fuzzNode)
	e := own.AppendTo(nil)
	with := func(b []byte, i int, v byte) []byte { b = bytes.Clone(b); b[i] = v; return b }
	// The first address's length byte sits after id(32), flags(1),
	// time(8), count(1), tree(1), tree_state(1).
	lenAt := 32 + 1 + 8 + 1 + 2
	// A non-canonical form: the first address written with a zero byte
	// more than it needs (length 4 for the 3 bytes of 1,2,3 → 12 30 00).
	pad := slices.Concat(e[:lenAt], []byte{e[lenAt] + 1}, e[lenAt+1:lenAt+1+int(e[lenAt])], []byte{0}, e[lenAt+1+int(e[lenAt]):])
	// Another: the proxy flag with the node's own id as the signer.
	self := slices.Concat(e[:32], []byte{recordProxy}, e[:32], e[33:])
	// A keyless board's record by its certified proxy.
	cert := revoke.SignProxy(fuzzProxy, keylessID(), fuzzProxy.ID(), time.Unix(0, fuzzTime).Add(time.Hour))
	certified := Record{ID: keylessID(), Signer: fuzzProxy.ID(), Time: fuzzTime, Addrs: []TreeAddr{{Tree: 0, TreeState: 16, Addr: lease}}, Cert: &cert}
	certified.Sign(fuzzProxy)
	c := certified.AppendTo(nil)
	return []fuzzSeed{
		{"own", e},
		{"proxied_lease", proxied.AppendTo(nil)},
		{"sixteen_addresses", full.AppendTo(nil)},
		{"deep_address", deep.AppendTo(nil)},
		{"no_address", none.AppendTo(nil)},
		{"bad_signature", with(e, len(e)-1, e[len(e)-1]^1)},
		{"truncated", e[:len(e)-1]},
		{"trailing", append(bytes.Clone(e), 0)},
		{"flags_2", with(e, 32, 2)},
		{"count_17", with(full.AppendTo(nil), 41, 17)},
		{"addr_len_65", with(e, lenAt, 65)},
		{"noncanonical_addr_len", pad},
		{"noncanonical_proxy_self", self},
		{"certified_proxy", c},
		{"certified_short", c[:32+1+32+CertSize-1]},
		{"flags_6", with(c, 32, recordDelegated|recordWithCert)},
	}
}

// FuzzRecord: any bytes decode or fail with ErrControl; what decodes
// re-encodes to the very same bytes (one record, one wire form: the
// signature covers the record, not its bytes, so a second form would be a
// second valid message); Verify never panics.
func FuzzRecord(f *testing.F) {
	for _, s := range recordSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		err := r.UnmarshalBinary(data)
		if err != nil {
			if !errors.Is(err, ErrControl) {
				t.Fatalf("decode error of no known kind: %v", err)
			}
			return
		}
		got := r.AppendTo(nil)
		if !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", data, got)
		}
		var again Record
		if err := again.UnmarshalBinary(got); err != nil || again.ID != r.ID || again.Signer != r.Signer || again.Time != r.Time || !slices.Equal(again.Addrs, r.Addrs) || again.Sig != r.Sig ||
			(again.Cert == nil) != (r.Cert == nil) || r.Cert != nil && *again.Cert != *r.Cert {
			t.Fatalf("decoding the re-encoding: %v, %+v, want %+v", err, again, r)
		}
		_ = r.Verify()
	})
}

// controlFixture is a router on a node that never starts (no mesh: no
// positions, no neighbours) with one of each thing a control message can
// complete waiting: a send, a lookup, a trace; and it is a leaf, so that
// lease grants are taken.
type controlFixture struct {
	clk       *clock.Virtual
	r         *Router
	sendHash  [16]byte
	sendRes   *node.Result
	boardHash [16]byte
	boardRes  *node.Result
	lookupID  identity.NodeID
	lookupNon uint32
	lookupGot *Destination
	lookupErr error
	lookupN   int
	traceNon  uint32
	traceHops []TraceHop
	traceN    int
	nameNon   uint32
	nameGot   identity.NodeID
	nameErr   error
	nameN     int
}

// fuzzName is the name the fixture's pending name lookup asks for.
const fuzzName = "fuzz-peer"

func signedName(id identity.Identity, name string) NameRecord {
	rec := NameRecord{Name: name, ID: id.ID(), Time: fuzzTime}
	rec.Sign(id)
	return rec
}

func newControlFixture(t testing.TB) *controlFixture {
	clk := clock.NewVirtual(time.Unix(0, fuzzTime))
	n, err := node.New(node.Config{Clock: clk, Identity: fuzzNode, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Attach(n, tree.Config{Trees: 3}, Config{Records: 8})
	if err != nil {
		t.Fatal(err)
	}
	fx := &controlFixture{clk: clk, r: rt}
	r := fx.r
	r.leases.leaf = true

	// A send waiting for its receipt.
	pkg := packet.NewPackage(testApp, []byte("waiting for a receipt"))
	fx.sendHash, fx.sendRes = pkg.Hash, node.NewResult()
	r.pending[pkg.Hash] = &pendingSend{res: fx.sendRes, pkg: pkg, attempts: 2, dst: Destination{ID: fuzzPeer.ID()}, since: clk.Now(), nonces: []uint64{fuzzEarlier, fuzzNonce}}
	// And one to a keyless board, which cannot sign its receipt.
	bpkg := packet.NewPackage(testApp, []byte("waiting for a board's receipt"))
	fx.boardHash, fx.boardRes = bpkg.Hash, node.NewResult()
	r.pending[bpkg.Hash] = &pendingSend{res: fx.boardRes, pkg: bpkg, attempts: 1, dst: Destination{ID: keylessID()}, since: clk.Now()}

	// A lookup under way (it cannot go out: no positions).
	fx.lookupID = fuzzPeer.ID()
	r.Lookup(fx.lookupID, func(d Destination, err error) { fx.lookupN++; fx.lookupGot, fx.lookupErr = &d, err })
	for non := range r.lookups {
		fx.lookupNon = non
	}
	// A trace under way.
	fx.traceNon = 0x7ace0001
	q := &traceReq{cb: func(h []TraceHop, err error) { fx.traceN++; fx.traceHops = h }}
	q.timer = clk.AfterFunc(traceTimeout, func() {})
	r.traces[fx.traceNon] = q
	// A name lookup under way (set up by hand: with no positions it could
	// not go out).
	fx.nameNon = 0x4a4e0001
	r.names.lookups = map[uint32]*nameLookup{fx.nameNon: {name: fuzzName, cbs: []func(identity.NodeID, error){func(id identity.NodeID, err error) {
		fx.nameN++
		fx.nameGot, fx.nameErr = id, err
	}}}}
	return fx
}

// controlSeeds are control messages of every type, as the router sends
// them, aimed at what the fixture waits for, and some damage.
func controlSeeds(t testing.TB) []fuzzSeed {
	fx := newControlFixture(t)
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	lookupRec := signedRecord(fuzzPeer, fuzzPeer, ta(0, 16, 1, 1), ta(1, 17, 2))
	proxyRec := signedRecord(fuzzPeer, fuzzProxy, ta(0, 16, 1, 1))
	var wrongID Record = signedRecord(fuzzProxy, fuzzProxy, ta(0, 16, 3))
	nodeAddr := addr.MustEncode(3, 1, 4)
	nameRec := signedName(fuzzPeer, fuzzName)
	otherName := signedName(fuzzPeer, "someone-else")
	proxyName := signedName(fuzzProxy, "the-proxy")
	badName := signedName(fuzzPeer, "Not A Name")
	nodeLong := addr.MustEncodeLong(3, 1, 4)
	lease, _ := nodeLong.Lease(9)
	compact := func(a addr.Long) []byte { return a.AppendCompact(nil) }
	cat := slices.Concat[[]byte]
	return []fuzzSeed{
		{"receipt", cat([]byte{msgReceipt}, fx.sendHash[:])},
		{"receipt_board", cat([]byte{msgReceipt}, fx.boardHash[:])},
		{"receipt_other", cat([]byte{msgReceipt}, bytes.Repeat([]byte{1}, 16))},
		{"receipt_short", cat([]byte{msgReceipt}, fx.sendHash[:15])},
		{"receipt_signed", signedReceipt(fuzzPeer, fx.sendHash, fuzzTime)},
		{"receipt_nonce", nonceReceipt(fuzzPeer, fx.sendHash, fuzzNonce, fuzzTime)},
		{"receipt_nonce_other", nonceReceipt(fuzzPeer, fx.sendHash, fuzzNonce+1, fuzzTime)},
		{"receipt_nonce_by_other", nonceReceipt(fuzzProxy, fx.sendHash, fuzzNonce, fuzzTime)},
		{"receipt_nonce_old", nonceReceipt(fuzzPeer, fx.sendHash, fuzzNonce, fuzzTime-int64(time.Hour))},
		{"receipt_signed_by_other", signedReceipt(fuzzProxy, fx.sendHash, fuzzTime)},
		{"receipt_signed_old", signedReceipt(fuzzPeer, fx.sendHash, fuzzTime-int64(time.Hour))},
		{"receipt_signed_future", signedReceipt(fuzzPeer, fx.sendHash, fuzzTime+int64(time.Hour))},
		{"error_no_route", cat([]byte{msgError, node.ErrNoRoute.Code}, fx.sendHash[:], nodeAddr[:])},
		{"error_board", cat([]byte{msgError, node.ErrUnknownApp.Code}, fx.boardHash[:], nodeAddr[:])},
		{"error_unknown_app", cat([]byte{msgError, node.ErrUnknownApp.Code}, fx.sendHash[:], nodeAddr[:])},
		{"error_unknown_code", cat([]byte{msgError, 200}, fx.sendHash[:], nodeAddr[:])},
		{"error_long", cat([]byte{msgError, 2}, fx.sendHash[:], nodeAddr[:], []byte{0})},
		{"error_signed", signedError(fuzzPeer, node.ErrUnknownApp.Code, fx.sendHash, nodeAddr, fuzzTime)},
		{"error_signed_relay", signedError(fuzzProxy, node.ErrHopLimit.Code, fx.sendHash, nodeAddr, fuzzTime)},
		{"error_nonce", nonceError(fuzzPeer, node.ErrUnknownApp.Code, fx.sendHash, nodeAddr, fuzzNonce, fuzzTime)},
		{"error_nonce_earlier", nonceError(fuzzPeer, node.ErrUnknownApp.Code, fx.sendHash, nodeAddr, fuzzEarlier, fuzzTime)},
		{"error_nonce_other", nonceError(fuzzPeer, node.ErrUnknownApp.Code, fx.sendHash, nodeAddr, fuzzNonce+1, fuzzTime)},
		{"error_nonce_relay", nonceError(fuzzProxy, node.ErrHopLimit.Code, fx.sendHash, nodeAddr, fuzzNonce, fuzzTime)},
		{"error_nonce_relay_earlier", nonceError(fuzzProxy, node.ErrHopLimit.Code, fx.sendHash, nodeAddr, fuzzEarlier, fuzzTime)},
		{"error_nonce_old", nonceError(fuzzPeer, node.ErrUnknownApp.Code, fx.sendHash, nodeAddr, fuzzNonce, fuzzTime-int64(time.Hour))},
		{"error_nonce_short", nonceError(fuzzPeer, node.ErrUnknownApp.Code, fx.sendHash, nodeAddr, fuzzNonce, fuzzTime)[:ErrorNonceSize-1]},
		{"error_nonce_bad", func() []byte {
			b := nonceError(fuzzPeer, node.ErrUnknownApp.Code, fx.sendHash, nodeAddr, fuzzNonce, fuzzTime)
			b[70] ^= 1 // another nonce than the one signed
			return b
		}()},
		{"error_signed_bad", func() []byte {
			b := signedError(fuzzPeer, node.ErrUnknownApp.Code, fx.sendHash, nodeAddr, fuzzTime)
			b[1] = node.ErrHopLimit.Code
			return b
		}()},
		{"renew_signed", signedRenew(msgRenewSigned, fuzzPeer, 0, 16, fuzzTime)},
		{"renew_via_signed", signedRenew(msgRenewViaSigned, fuzzPeer, 0, 16, fuzzTime)},
		{"renew_unsigned", []byte{msgRenew, 0, 16}},
		{"register", cat([]byte{msgRegister}, lookupRec.AppendTo(nil))},
		{"register_proxied", cat([]byte{msgRegister}, proxyRec.AppendTo(nil))},
		{"register_bad_sig", func() []byte {
			b := cat([]byte{msgRegister}, lookupRec.AppendTo(nil))
			b[len(b)-1] ^= 0x80
			return b
		}()},
		{"registered", cat([]byte{msgRegistered}, idBytes(fuzzNode.ID()), binary.BigEndian.AppendUint64(nil, uint64(fuzzTime)))},
		{"lookup", cat([]byte{msgLookup}, fx.lookupID[:], u32(0x01020304))},
		{"lookup_self", cat([]byte{msgLookup}, idBytes(fuzzNode.ID()), u32(9))},
		{"lookup_reply", cat([]byte{msgLookupReply}, u32(fx.lookupNon), []byte{1}, lookupRec.AppendTo(nil))},
		{"lookup_reply_proxied", cat([]byte{msgLookupReply}, u32(fx.lookupNon), []byte{1}, proxyRec.AppendTo(nil))},
		{"lookup_reply_wrong_id", cat([]byte{msgLookupReply}, u32(fx.lookupNon), []byte{1}, wrongID.AppendTo(nil))},
		{"lookup_reply_not_found", cat([]byte{msgLookupReply}, u32(fx.lookupNon), []byte{0})},
		{"trace", cat([]byte{msgTrace}, u32(fx.traceNon))},
		{"trace_report", cat([]byte{msgTraceReport}, u32(fx.traceNon), []byte{2, 0}, compact(nodeLong), idBytes(fuzzPeer.ID()), []byte("espnow"))},
		{"trace_report_final", cat([]byte{msgTraceReport}, u32(fx.traceNon), []byte{3, 1}, compact(nodeLong), idBytes(fuzzPeer.ID()))},
		{"trace_report_short", cat([]byte{msgTraceReport}, u32(fx.traceNon), []byte{3, 1}, compact(nodeLong), idBytes(fuzzPeer.ID())[:31])},
		{"trace_report_bad_address", cat([]byte{msgTraceReport}, u32(fx.traceNon), []byte{3, 1}, []byte{3, 0x31, 0x40, 0}, idBytes(fuzzPeer.ID()))},
		{"name_register", cat([]byte{msgNameRegister}, nameRec.AppendTo(nil))},
		{"name_register_bad_sig", func() []byte {
			b := cat([]byte{msgNameRegister}, nameRec.AppendTo(nil))
			b[len(b)-1] ^= 0x80
			return b
		}()},
		{"name_register_bad_name", cat([]byte{msgNameRegister}, badName.AppendTo(nil))},
		{"name_stored", cat([]byte{msgNameStored}, idBytes(fuzzNode.ID()), binary.BigEndian.AppendUint64(nil, uint64(fuzzTime)), []byte{1})},
		{"name_lookup", cat([]byte{msgNameLookup}, u32(7), []byte(fuzzName))},
		{"name_reply", cat([]byte{msgNameReply}, u32(fx.nameNon), []byte{1}, nameRec.AppendTo(nil))},
		{"name_reply_other_name", cat([]byte{msgNameReply}, u32(fx.nameNon), []byte{1}, otherName.AppendTo(nil))},
		{"name_reply_not_found", cat([]byte{msgNameReply}, u32(fx.nameNon), []byte{0})},
		{"name_hello", cat([]byte{msgNameHello}, proxyName.AppendTo(nil))},
		{"name_hello_not_sender", cat([]byte{msgNameHello}, nameRec.AppendTo(nil))},
		{"lease_request", []byte{msgLeaseReq}},
		{"lease_request_self", []byte{msgLeaseReq, leaseSelf}},
		{"lease_grant", cat([]byte{msgLeaseGrant, 1, 0, 16}, compact(lease))},
		{"lease_grant_two", cat([]byte{msgLeaseGrant, 2, 0, 16}, compact(lease), []byte{1, 17}, compact(lease))},
		{"lease_grant_short", cat([]byte{msgLeaseGrant, 2, 0, 16}, compact(lease))},
		{"lease_grant_not_a_lease", cat([]byte{msgLeaseGrant, 1, 0, 16}, compact(nodeLong))},
		{"empty", nil},
		{"unknown_type", []byte{0x7f, 1, 2, 3}},
	}
}

// FuzzControl feeds any bytes to the router as a control message's blob,
// both routed (control) and one hop (receiveOneHop, the leases), the
// way the router parses them, and checks the outcome against what the
// bytes say: nothing panics; a send, lookup or trace completes only on a
// well-formed message that names it, and with what it says; a stored or
// delivered record is one that verifies; a leaf takes a grant only whole.
func FuzzControl(f *testing.F) {
	for _, s := range controlSeeds(f) {
		f.Add(s.data)
	}
	from := addr.MustEncode(3, 1, 4)
	f.Fuzz(func(t *testing.T, data []byte) {
		fx := newControlFixture(t)
		r := fx.r
		rp := &routed{Header: node.RouteHeader{To: addr.Address{}, From: from, TreeState: 16, TTL: 60}}
		r.control(rp, bytes.Clone(data))
		r.receiveOneHop(node.Message{App: ControlApp, Blob: bytes.Clone(data), FromKnown: true, From: fuzzProxy.ID(), Via: peer.Endpoint{Link: 0}})
		// And passing through us (onpath.go): a lookup answer kept, a
		// lookup answered.
		r.onPath(&routed{Header: rp.Header, Inner: packet.NewPackage(ControlApp, bytes.Clone(data))})
		fx.clk.RunFor(time.Millisecond) // what the handling scheduled at once
		if len(r.relayed) > r.cfg.Records {
			t.Fatalf("%d relayed records kept, the bound is %d", len(r.relayed), r.cfg.Records)
		}
		for id, s := range r.relayed {
			if s.rec.ID != id || !s.rec.Verify() || s.rec.Signer != id && s.rec.Deleg == nil {
				t.Fatalf("kept a relayed record that does not verify, or is unvouched: %+v", s.rec)
			}
		}

		typ := byte(0xff)
		if len(data) > 0 {
			typ = data[0]
		}
		// The send waiting for its receipt.
		switch {
		case typ == msgReceiptNonce && len(data) == ReceiptNonceSize && bytes.Equal(data[1:17], fx.sendHash[:]) &&
			slices.Contains([]uint64{fuzzEarlier, fuzzNonce}, binary.BigEndian.Uint64(data[17:25])) &&
			bytes.Equal(data, nonceReceipt(fuzzPeer, fx.sendHash, binary.BigEndian.Uint64(data[17:25]), int64(binary.BigEndian.Uint64(data[25:33])))) &&
			inSkew(data[25:33]):
			// (A receipt with no nonce, msgReceiptSigned, answers no
			// attempt of a send that drew one: default below.)
			if !fx.sendRes.Finished() || fx.sendRes.Err() != nil {
				t.Fatalf("the destination's receipt for the send: finished %v, err %v", fx.sendRes.Finished(), fx.sendRes.Err())
			}
		case typ == msgErrorNonce && len(data) == ErrorNonceSize && bytes.Equal(data[2:18], fx.sendHash[:]):
			// (An error with no nonce, msgErrorSigned, answers no attempt
			// of a send that drew one: default below.)
			var rep addr.Address
			copy(rep[:], data[18:34])
			var who identity.Identity
			for _, id := range []identity.Identity{fuzzPeer, fuzzProxy, fuzzNode} {
				if bytes.Equal(data[34:66], idBytes(id.ID())) {
					who = id
				}
			}
			nonce := binary.BigEndian.Uint64(data[66:74])
			valid := !who.IsZero() && bytes.Equal(data, nonceError(who, data[1], fx.sendHash, rep, nonce, int64(binary.BigEndian.Uint64(data[74:82])))) &&
				inSkew(data[74:82])
			// The destination's (fuzzPeer's) for either attempt ends the
			// send; a relay's only makes it try again (never at once), and
			// counts only for the latest attempt.
			dest := valid && who.ID() == fuzzPeer.ID() && (nonce == fuzzNonce || nonce == fuzzEarlier)
			if fx.sendRes.Finished() {
				var re *node.RemoteError
				if !dest || !errors.As(fx.sendRes.Err(), &re) || node.CodeOf(re.Err) != node.CodeOf(node.ErrorForCode(data[1])) || re.From != reporterName(rep) {
					t.Fatalf("error %x finished the send with %v", data, fx.sendRes.Err())
				}
			} else if dest && !retryable(node.ErrorForCode(data[1])) {
				t.Fatalf("the destination's error %x did not end the send", data)
			}
			relayed := r.stats.RelayErrors > 0
			if relayed != (valid && who.ID() != fuzzPeer.ID() && nonce == fuzzNonce) {
				t.Fatalf("error %x: taken as a relay's %v", data, relayed)
			}
		case typ == msgError && len(data) == 34 && bytes.Equal(data[2:18], fx.boardHash[:]):
			// A keyless board's plain report counts for a send to it.
			if fx.boardRes.Finished() {
				var re *node.RemoteError
				if !errors.As(fx.boardRes.Err(), &re) || node.CodeOf(re.Err) != node.CodeOf(node.ErrorForCode(data[1])) {
					t.Fatalf("error code %d for the send finished it with %v", data[1], fx.boardRes.Err())
				}
				var rep addr.Address
				copy(rep[:], data[18:])
				if re.From != reporterName(rep) {
					t.Fatalf("reported by %q, the message says %q", re.From, reporterName(rep))
				}
			}
		case typ == msgReceipt && len(data) == 17 && bytes.Equal(data[1:], fx.boardHash[:]):
			if !fx.boardRes.Finished() || fx.boardRes.Err() != nil {
				t.Fatalf("a board's plain receipt: finished %v, err %v", fx.boardRes.Finished(), fx.boardRes.Err())
			}
		default:
			// Anything else (a plain receipt or error for a destination
			// that signs, a signature that does not hold, a stale date)
			// finishes neither send.
			if fx.sendRes.Finished() || fx.boardRes.Finished() {
				t.Fatalf("a send finished (%v, %v) on %x", fx.sendRes.Err(), fx.boardRes.Err(), data)
			}
		}
		// Records stored.
		if len(r.records) > r.cfg.Records {
			t.Fatalf("%d records stored, the bound is %d", len(r.records), r.cfg.Records)
		}
		for id, s := range r.records {
			if s.rec.ID != id || !s.rec.Verify() {
				t.Fatalf("stored a record that does not verify: %+v", s.rec)
			}
			if typ != msgRegister {
				t.Fatalf("a record stored on message type %#x", typ)
			}
		}
		if typ == msgRegister {
			var rec Record
			if rec.UnmarshalBinary(data[1:]) == nil && rec.Verify() && !r.HasRecord(rec.ID) {
				t.Fatal("a valid registration was not stored")
			}
		}
		// The lookup.
		if fx.lookupN > 1 {
			t.Fatalf("lookup callback ran %d times", fx.lookupN)
		}
		if fx.lookupN == 1 && fx.lookupErr == nil {
			var rec Record
			if typ != msgLookupReply || len(data) < 6 || binary.BigEndian.Uint32(data[1:5]) != fx.lookupNon || data[5] != 1 ||
				rec.UnmarshalBinary(data[6:]) != nil || !rec.Verify() || rec.ID != fx.lookupID {
				t.Fatalf("lookup answered by %x", data)
			}
			if fx.lookupGot.ID != rec.ID || !slices.Equal(fx.lookupGot.Addrs, rec.Addrs) {
				t.Fatalf("lookup gave %+v, the record says %+v", *fx.lookupGot, rec)
			}
			if c := r.cache[rec.ID]; c == nil || !slices.Equal(c.d.Addrs, rec.Addrs) {
				t.Fatal("the answer was not cached")
			}
		}
		// The trace.
		if fx.traceN > 1 {
			t.Fatalf("trace callback ran %d times", fx.traceN)
		}
		if fx.traceN == 1 {
			// type ‖ nonce(4) ‖ hop ‖ final ‖ compact address ‖ node_id(32) ‖ link
			if typ != msgTraceReport || len(data) < 8+32 || binary.BigEndian.Uint32(data[1:5]) != fx.traceNon || data[6] != 1 {
				t.Fatalf("trace completed by %x", data)
			}
			a, rest, err := addr.ReadCompact(data[7:])
			last := fx.traceHops[len(fx.traceHops)-1]
			if err != nil || len(rest) < 32 || !last.Final || last.Hop != int(data[5]) || last.Addr != a || !bytes.Equal(last.ID[:], rest[:32]) || last.Link != string(rest[32:]) {
				t.Fatalf("trace gave %+v for %x", last, data)
			}
		}
		// Names: stored and learnt only from records that verify, a
		// neighbour's only from itself, the lookup completed only by its
		// own name's record.
		for name, st := range r.names.stored {
			if typ != msgNameRegister || st.rec.Name != name || !st.rec.Verify() {
				t.Fatalf("stored name %q on %x", name, data)
			}
		}
		for id, name := range r.names.known {
			var rec NameRecord
			off := 1
			if typ == msgNameReply {
				off = 6
			}
			if len(data) < off || rec.UnmarshalBinary(data[off:]) != nil || rec.ID != id || rec.Name != name || !rec.Verify() {
				t.Fatalf("learnt %q for %x from %x", name, id[:4], data)
			}
			if typ == msgNameHello && id != fuzzProxy.ID() {
				t.Fatalf("a hello taught the name of a node that did not send it: %x", data)
			}
		}
		if fx.nameN > 1 {
			t.Fatalf("name lookup callback ran %d times", fx.nameN)
		}
		if fx.nameN == 1 && fx.nameErr == nil {
			var rec NameRecord
			if typ != msgNameReply || len(data) < 6 || binary.BigEndian.Uint32(data[1:5]) != fx.nameNon || data[5] != 1 ||
				rec.UnmarshalBinary(data[6:]) != nil || !rec.Verify() || rec.Name != fuzzName || rec.ID != fx.nameGot {
				t.Fatalf("name lookup answered %x by %x", fx.nameGot[:4], data)
			}
		}
		// The leaf's leases.
		own := r.leases.own
		if grant, err := decodeGrant(data); typ == msgLeaseGrant && err == nil && len(grant) > 0 {
			if !slices.Equal(own, grant) || !r.leases.proxied {
				t.Fatalf("a whole grant of %d leases gave %+v", len(grant), own)
			}
			for _, a := range own {
				if a.Addr.LeaseID() == 0 {
					t.Fatalf("took %v, not a lease", a.Addr)
				}
			}
		} else if len(own) != 0 {
			t.Fatalf("leases %+v taken from %x", own, data)
		}
	})
}

func idBytes(id identity.NodeID) []byte { return id[:] }

// pathSeeds are path headers as routers write them, and damage to them.
func pathSeeds() []fuzzSeed {
	inner := packet.NewPackage(testApp, []byte("carried"))
	deep := ta(1, 17, slices.Repeat([]uint8{2, 40}, 30)...)
	lease, _ := addr.MustEncodeLong(3, 1).Lease(7)
	one := appendPath(nil, &pathHeader{bound: noBound, dst: []TreeAddr{ta(0, 16, 3, 1, 4)}}, &inner)
	full := appendPath(nil, &pathHeader{phase: 2, bound: 0x00fe000003000011,
		dst: []TreeAddr{ta(0, 16, 3, 1, 4), deep, {Tree: 2, TreeState: 2, Addr: lease}},
		src: []TreeAddr{ta(0, 16, 1), ta(1, 17)}}, &inner)
	nonce := appendPath(nil, &pathHeader{bound: noBound, dst: []TreeAddr{ta(0, 16, 3, 1, 4)}, src: []TreeAddr{ta(0, 16, 1)},
		nonce: 0x0102030405060708, hasNonce: true}, &inner)
	tagged := appendPath(nil, &pathHeader{bound: noBound, dst: []TreeAddr{ta(0, 16, 3, 1, 4)}, src: []TreeAddr{ta(0, 16, 1)},
		nonce: 0x0102030405060708, hasNonce: true, dstTag: [dstTagSize]byte{0xd5, 1, 2, 3, 4, 5, 6, 7}, hasDstTag: true}, &inner)
	with := func(b []byte, i int, v byte) []byte { b = bytes.Clone(b); b[i] = v; return b }
	return []fuzzSeed{
		{"one", one},
		{"origin_and_nonce", nonce},
		{"nonce_truncated", nonce[:len(nonce)-inner.Len()-3]},
		{"nonce_and_destination_tag", tagged},
		{"destination_tag_truncated", tagged[:len(tagged)-inner.Len()-3]},
		{"flags_4_no_tag", with(one, 0, 4)},
		{"flags_8", with(one, 0, 8)},
		{"three_and_origin", full},
		{"flags_2", with(one, 0, 2)},
		{"phase_past_the_list", with(one, 1, 2)},
		{"no_destination", with(one, 10, 0)},
		{"seventeen", with(one, 10, 17)},
		{"truncated", one[:len(one)-len(inner.Blob)-1]},
		{"address_trailing_zero", func() []byte {
			b := bytes.Clone(one)
			b[12]++ // the first address's length, one byte longer ...
			return slices.Concat(b[:13+int(one[12])], []byte{0}, b[13+int(one[12]):])
		}()},
	}
}

// FuzzPath: any bytes decode as a path header or fail with ErrControl;
// what decodes re-encodes to the very same bytes, with a phase within its
// list and at most 16 addresses each way.
func FuzzPath(f *testing.F) {
	for _, s := range pathSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ph pathHeader
		var inner packet.Package
		if err := decodePath(data, &ph, &inner); err != nil {
			if !errors.Is(err, ErrControl) {
				t.Fatalf("decode error of no known kind: %v", err)
			}
			return
		}
		if len(ph.dst) == 0 || len(ph.dst) > maxPathAddrs || len(ph.src) > maxPathAddrs || int(ph.phase) > len(ph.dst) {
			t.Fatalf("decoded %d/%d addresses, phase %d", len(ph.dst), len(ph.src), ph.phase)
		}
		if got := appendPath(nil, &ph, &inner); !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", data, got)
		}
	})
}

func corpusFile(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// TestSeedCorpus keeps testdata/fuzz in step with the seeds (regenerate
// with -update when a wire form changes on purpose).
func TestSeedCorpus(t *testing.T) {
	for target, seeds := range map[string][]fuzzSeed{"FuzzRecord": recordSeeds(), "FuzzControl": controlSeeds(t), "FuzzPath": pathSeeds()} {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
			path := filepath.Join(dir, s.name)
			want := corpusFile(s.data)
			if *updateCorpus {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%v (run go test -run TestSeedCorpus -update)", err)
			} else if !bytes.Equal(got, want) {
				t.Errorf("%s is out of date (if the change is meant, run go test -run TestSeedCorpus -update)", path)
			}
		}
	}
}

// signedReceipt is id's receipt for hash dated t, as the wire holds it
// (docs/protocol.md): written out here, not by the router's encoder.
func signedReceipt(id identity.Identity, hash [16]byte, t int64) []byte {
	nid := id.ID()
	msg := slices.Concat([]byte("mycelium/receipt/v1"), nid[:], hash[:], binary.BigEndian.AppendUint64(nil, uint64(t)))
	return slices.Concat([]byte{msgReceiptSigned}, hash[:], binary.BigEndian.AppendUint64(nil, uint64(t)), id.Sign(msg))
}

// nonceReceipt is id's receipt for the attempt of hash that carried
// nonce, dated t, as the wire holds it (docs/protocol.md).
func nonceReceipt(id identity.Identity, hash [16]byte, nonce uint64, t int64) []byte {
	nid := id.ID()
	n, ts := binary.BigEndian.AppendUint64(nil, nonce), binary.BigEndian.AppendUint64(nil, uint64(t))
	msg := slices.Concat([]byte("mycelium/receipt/v2"), nid[:], hash[:], n, ts)
	return slices.Concat([]byte{msgReceiptNonce}, hash[:], n, ts, id.Sign(msg))
}

// signedError is id's error report.
func signedError(id identity.Identity, code uint8, hash [16]byte, rep addr.Address, t int64) []byte {
	nid := id.ID()
	body := slices.Concat([]byte{code}, hash[:], rep[:], nid[:], binary.BigEndian.AppendUint64(nil, uint64(t)))
	return slices.Concat([]byte{msgErrorSigned}, body, id.Sign(slices.Concat([]byte("mycelium/error/v1"), body)))
}

// nonceError is id's error report for the attempt of hash that carried
// nonce, as the wire holds it (docs/protocol.md).
func nonceError(id identity.Identity, code uint8, hash [16]byte, rep addr.Address, nonce uint64, t int64) []byte {
	nid := id.ID()
	body := slices.Concat([]byte{code}, hash[:], rep[:], nid[:], binary.BigEndian.AppendUint64(nil, nonce), binary.BigEndian.AppendUint64(nil, uint64(t)))
	return slices.Concat([]byte{msgErrorNonce}, body, id.Sign(slices.Concat([]byte("mycelium/error/v2"), body)))
}

// signedRenew is id's renew request for tree k's epoch ts.
func signedRenew(typ byte, id identity.Identity, k, ts uint8, t int64) []byte {
	nid := id.ID()
	body := slices.Concat([]byte{k, ts}, nid[:], binary.BigEndian.AppendUint64(nil, uint64(t)))
	return slices.Concat([]byte{typ}, body, id.Sign(slices.Concat([]byte("mycelium/renew/v1"), body)))
}

// keylessID is a node_id that is no Ed25519 key (a board's).
func keylessID() identity.NodeID {
	id := identity.NodeID{0xb0}
	for canSign(id) {
		id[1]++
	}
	return id
}

// inSkew reports a wire time (8 bytes) within the fixture's skew
// allowance of its clock (the send began then too).
func inSkew(b []byte) bool {
	d := time.Duration(int64(binary.BigEndian.Uint64(b)) - fuzzTime)
	return d >= -time.Minute && d <= time.Minute
}
