package route

// Who may sign a node's name record, and when [ours].
//
// A record is signed by the node itself, or by a proxy: the neighbour that
// leases it addresses (lease.go). A proxy record counts as the node's only
// if the node delegated to that proxy — a Delegation, signed by the node,
// naming the proxy and how long it holds — which our leaves hand their
// proxy with each lease request. A reference board cannot sign, so a proxy
// record for it is unvouched: it is stored only while no vouched record
// (self-signed or delegated) of the same node is alive, and never
// displaces one. An operator can certify the proxy of a keyless board
// (revoke.ProxyCert, carried in the record): a certified record stands
// above unvouched ones, and a node with Config.CertifiedProxies takes a
// keyless board's proxy record only with a certificate. Records dated beyond the clock-skew allowance (the trees'
// MaxSkew, 1 minute by default) in the future are refused outright: a
// far-future record would otherwise outrank every honest one for as long
// as it claims.

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
)

// Delegation is a node's permission for a proxy to sign its name records
// until Until (Unix nanoseconds).
type Delegation struct {
	Proxy identity.NodeID
	Until int64
	Sig   [ed25519.SignatureSize]byte
}

// DelegationSize is a delegation's size on the wire (Until ‖ Sig: the
// proxy is the record's signer).
const DelegationSize = 8 + ed25519.SignatureSize

const delegationDomain = "mycelium/delegation/v1"

func delegationInput(owner, proxy identity.NodeID, until int64) []byte {
	b := append([]byte(delegationDomain), owner[:]...)
	b = append(b, proxy[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(until))
}

// SignDelegation makes owner's delegation to proxy until until.
func SignDelegation(owner identity.Signer, proxy identity.NodeID, until int64) Delegation {
	d := Delegation{Proxy: proxy, Until: until}
	var id identity.NodeID
	copy(id[:], owner.Public())
	copy(d.Sig[:], owner.Sign(delegationInput(id, proxy, until)))
	return d
}

// Verify checks that owner signed d.
func (d *Delegation) Verify(owner identity.NodeID) bool {
	return ed25519.Verify(ed25519.PublicKey(owner[:]), delegationInput(owner, d.Proxy, d.Until), d.Sig[:])
}

// Record standing, lowest first.
const (
	recordUnvouched = iota // a proxy's, without a delegation (a reference board's)
	recordCertified        // a proxy's for a keyless board, with an operator's certificate
	recordVouched          // the node's own, or its delegated proxy's
)

// standing rates a verified record at now; ok is false for a record that
// claims a delegation or certificate that does not hold (forged, for
// another proxy, expired, by an operator not listed): such a record is
// refused, not demoted. With Config.CertifiedProxies, a proxy's record for
// a keyless node_id without a certificate is refused too.
func (r *Router) standing(rec *Record, now time.Time) (rank int, ok bool) {
	switch {
	case rec.Signer == rec.ID:
		return recordVouched, true
	case rec.Cert != nil:
		err := rec.Cert.Check(r.cfg.ProxyOperators, rec.ID, rec.Signer, now)
		switch {
		case canSign(rec.ID):
			return 0, false // a node with a key vouches for itself
		case r.certRevoked(rec.Cert):
			return 0, false // revoked: refused, not demoted to an unvouched record
		case errors.Is(err, revoke.ErrUntrusted) && !r.cfg.CertifiedProxies:
			return recordUnvouched, true // an operator we do not list: as good as none
		case err != nil:
			return 0, false
		}
		return recordCertified, true
	case rec.Deleg == nil:
		if r.cfg.CertifiedProxies && !canSign(rec.ID) {
			return 0, false
		}
		return recordUnvouched, true
	case rec.Deleg.Proxy != rec.Signer || rec.Deleg.Until < now.UnixNano() || !rec.Deleg.Verify(rec.ID):
		return 0, false
	}
	return recordVouched, true
}

// recordSkew is how far in the future a record's time may be.
func (r *Router) recordSkew() time.Duration { return r.t.Config().MaxSkew }

// futureDated reports a record dated beyond the skew allowance.
func (r *Router) futureDated(t int64, now time.Time) bool {
	return time.Duration(t-now.UnixNano()) > r.recordSkew()
}

// revoked reports whether an operator revoked any of ids' keys, counting
// the record refused for it.
func (r *Router) revoked(ids ...identity.NodeID) bool {
	if r.cfg.Revocations == nil {
		return false
	}
	for _, id := range ids {
		if r.cfg.Revocations.Revoked(id) {
			r.stats.RevokedRecords++
			return true
		}
	}
	return false
}

// revokedRecord reports a record for, or signed by, a revoked node, or
// resting on a revoked proxy certificate (counting it refused).
func (r *Router) revokedRecord(rec *Record) bool {
	if r.revoked(rec.ID, rec.Signer) {
		return true
	}
	if rec.Cert != nil && r.certRevoked(rec.Cert) {
		r.stats.RevokedRecords++
		return true
	}
	return false
}

// certRevoked reports a proxy certificate an operator revoked.
func (r *Router) certRevoked(c *revoke.ProxyCert) bool {
	return r.cfg.CertRevocations != nil && r.cfg.CertRevocations.CertRevoked(c)
}

// DropRevoked forgets the name records this node stores (as a home) and
// the lookups it cached that an operator's revocation now refuses: of a
// revoked node, signed by one, or resting on a revoked proxy
// certificate. The daemon calls it, on the loop, when it takes a new
// revocation; it returns how many it dropped. (A home also checks a
// record before it answers with it, and a lookup checks the answer: this
// frees what is held at once.)
func (r *Router) DropRevoked() int {
	n := 0
	for id, s := range r.records {
		if r.revokedRecord(&s.rec) {
			delete(r.records, id)
			n++
		}
	}
	for id, c := range r.cache {
		if r.revokedCached(id, c) {
			delete(r.cache, id)
			n++
		}
	}
	return n
}

// revokedCached reports a cached lookup a revocation now refuses.
func (r *Router) revokedCached(id identity.NodeID, c *cachedRecord) bool {
	return r.cfg.Revocations != nil && (r.cfg.Revocations.Revoked(id) || c.d.Proxy != (identity.NodeID{}) && r.cfg.Revocations.Revoked(c.d.Proxy)) ||
		c.cert != nil && r.certRevoked(c.cert)
}

// admitRecord decides whether a verified record may replace old (nil: none
// stored) and counts what it refuses.
func (r *Router) admitRecord(rec *Record, old *storedRecord, now time.Time) bool {
	if r.revokedRecord(rec) {
		return false
	}
	if r.futureDated(rec.Time, now) {
		r.stats.RecordsRefused++
		return false
	}
	rank, ok := r.standing(rec, now)
	if !ok {
		r.stats.RecordsRefused++
		return false
	}
	if old == nil {
		return true
	}
	oldRank, _ := r.standing(&old.rec, now)
	if now.Sub(old.at) >= r.recordLife() {
		oldRank = -1 // gone stale: anything valid replaces it
	}
	switch {
	case rank < oldRank:
		r.stats.RecordsRefused++
		return false
	case rec.Time <= old.rec.Time && rank == oldRank:
		return false // a copy, or older
	}
	return true
}

// leaseRequest is a leaf's lease request to the neighbour proxy: the
// message type, then our delegation to it for two record lives, so that
// the records it signs for us count as ours.
func (r *Router) leaseRequest(proxy identity.NodeID) []byte {
	return r.leaseRequestFor(r.b.Signer(), proxy, r.clk.Now().Add(2*r.recordLife()).UnixNano())
}

func (*Router) leaseRequestFor(s identity.Signer, proxy identity.NodeID, until int64) []byte {
	d := SignDelegation(s, proxy, until)
	b := binary.BigEndian.AppendUint64([]byte{msgLeaseReq}, uint64(d.Until))
	return append(b, d.Sig[:]...)
}

// parseLeaseDelegation reads the delegation a lease request carries, for
// proxy self (false: none, as from an older leaf).
func parseLeaseDelegation(b []byte, self identity.NodeID) (Delegation, bool) {
	switch len(b) {
	case 1 + DelegationSize:
		b = b[1:]
	case 2 + DelegationSize: // after the flags byte
		b = b[2:]
	default:
		return Delegation{}, false
	}
	d := Delegation{Proxy: self, Until: int64(binary.BigEndian.Uint64(b))}
	copy(d.Sig[:], b[8:])
	return d, true
}
