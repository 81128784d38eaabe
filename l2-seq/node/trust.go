package node

// Neighbour proof [ours]: a peer's beacon is a claim; the peer becomes a
// full peer — one the layer above takes tree positions from, gives them
// through and relays routed traffic through — only once it has signed a
// fresh nonce of ours bound to both link addresses (package proof). Until
// then, and for reference boards that cannot sign, it is a reference-grade
// peer. An endpoint proven for one node_id is not taken over by a beacon
// claiming another, and a beacon claiming a proven node's id from an
// unproven address joins nothing: it is challenged instead.

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	mrand "math/rand/v2"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/internal/bucket"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
)

// TrustStats counts the neighbour-proof exchange and what it refused.
type TrustStats struct {
	ChallengesSent uint64 // challenges sent (first tries and retries)
	ProofsSent     uint64 // proofs signed for a neighbour's challenge
	ProofsOK       uint64 // neighbours' proofs that verified
	ProofsBad      uint64 // proofs that did not verify (forged, relayed, stale)
	ProofsLimited  uint64 // challenges left unanswered: the signing budget was spent
	ForgedGoodbyes uint64 // goodbyes refused: unsigned or badly signed for a proven peer, or from an address not the peer's
	ClaimsRefused  uint64 // beacons claiming a proven node_id from an unproven address, or another id from a proven one
	UnprovenRouted uint64 // routed Packages refused from a neighbour not proven
	RetriesLimited uint64 // retries of challenges to addresses with no peer entry left unsent: the budget for them was spent
	ProofsRevoked  uint64 // proofs that verified for a node_id an operator revoked
	RevokedDropped uint64 // proven neighbours dropped when their revocation came
	Superseded     uint64 // challenges replaced, still queued, by a newer one to the same neighbour
}

// proofState is what a node keeps per endpoint about the neighbour proof.
type proofState struct {
	proven bool
	id     identity.NodeID // whom the endpoint is proven for
	boot   proof.Boot      // the prover's run, from its proof
	// The challenge in flight: its nonce, when it was drawn (it expires)
	// and when it was last sent (retries are spaced).
	nonce              proof.Nonce
	drawn, lastChallng time.Time
	tries              int // challenges sent with this nonce
	// retryDue: a retry of the challenge is scheduled (one at a time).
	// rounds: the backoff rounds sent to this address while it had no
	// peer entry, since a challenge of ours last began afresh.
	retryDue bool
	rounds   int
	hop      hopState // hop keys with it (hopauth.go)
	keyOf    keyOf    // whether the node here can hold keys at all
}

// Proof timing.
const (
	nonceLife = 30 * time.Second
	// challengeTries bounds the challenges sent with one nonce, the first
	// and its retries: beyond them, the neighbour's next beacon asks.
	challengeTries = 3
	// proofBurst and proofRefill bound the signatures a flood of
	// challenges can cost us: a bucket of proofBurst, one more every
	// proofRefill (100 a second).
	proofBurst  = 64
	proofRefill = 10 * time.Millisecond
	// strangerRounds bounds the rounds a challenge to an address with no
	// peer entry gets once its nonce's tries are spent: one challenge
	// each, 4, 16 and 64 retry intervals apart (about 1, 3 and 13 s on
	// ESP-NOW). No beacon of such a neighbour reached us, so none will
	// ask again, and it may have taken our proof and be sending to us.
	strangerRounds = 3
	// strangerBurst and strangerRefill bound the retries to addresses
	// with no peer entry over all of them: a bucket of strangerBurst,
	// one more every strangerRefill (4 a second).
	strangerBurst  = 16
	strangerRefill = 250 * time.Millisecond
)

// initTrust sets up the source of nonces and draws this run's boot nonce.
// Without Config.Entropy the nonces come from a ChaCha8 stream keyed by
// our signature over Config.Seed: unpredictable to anyone without our
// key, and repeatable in a simulation (same key, same seed).
func (n *Node) initTrust() {
	n.entropy = n.cfg.Entropy
	if n.entropy == nil {
		var seed [8]byte
		binary.BigEndian.PutUint64(seed[:], n.cfg.Seed)
		key := sha256.Sum256(n.id.Sign(append([]byte("mycelium nonce stream v1\x00"), seed[:]...)))
		n.entropy = mrand.NewChaCha8(key)
	}
	n.readEntropy(n.boot[:])
	n.proofBucket = bucket.Bucket{Burst: proofBurst, Every: proofRefill}
	n.strangerRetries = bucket.Bucket{Burst: strangerBurst, Every: strangerRefill}
}

// readEntropy fills b from the node's source of nonces.
func (n *Node) readEntropy(b []byte) {
	if _, err := io.ReadFull(n.entropy, b); err != nil {
		// A failing entropy source is not one to sign with.
		panic("node: entropy source failed: " + err.Error())
	}
}

// proven reports whether the neighbour at key has proven the node_id its
// peer entry carries, at that address.
func (n *Node) proven(key peer.Endpoint) bool {
	ep := n.endpointAt(key)
	if ep == nil || !ep.pf.proven {
		return false
	}
	p := n.peers.ByEndpoint(key)
	return p != nil && p.ID == ep.pf.id && p.Proven && !n.revoked(p.ID)
}

// revoked reports whether an operator revoked id's key.
func (n *Node) revoked(id identity.NodeID) bool {
	return n.cfg.Revocations != nil && n.cfg.Revocations.Revoked(id)
}

// DropRevoked forgets the proofs of every neighbour whose node_id is
// revoked now and tells the layer above it went (as a goodbye does): its
// tree positions and routes through it go. Its next beacons find it a
// reference-grade peer, whose proofs are refused. It returns how many
// went. Call it on the node's loop.
func (n *Node) DropRevoked() int {
	if n.cfg.Revocations == nil {
		return 0
	}
	var gone []*peer.Peer
	for _, p := range n.peers.All() {
		if n.revoked(p.ID) {
			gone = append(gone, p)
		}
	}
	for _, p := range gone {
		was := p.Proven
		n.forgetProofs(p)
		n.peers.Remove(p.ID)
		if was {
			n.stats.Trust.RevokedDropped++
		}
		n.peerEvent(p, false)
	}
	return len(gone)
}

// challengeRetry is how long an unanswered challenge waits before it is
// sent again: a few round trips on the link.
func (ep *endpoint) challengeRetry() time.Duration {
	return max(8*ep.tl.airMTU, 200*time.Millisecond)
}

// challenge asks the neighbour at ep to prove its key (again, if the last
// challenge went unanswered long enough). It is called on what says the
// neighbour wants to be known or is to be known again (its beacon, its
// challenge, its routed Package): a challenge no retry of which is under
// way begins afresh (its stranger rounds, below, are counted from it).
func (n *Node) challenge(ep *endpoint, now time.Time) {
	if !ep.pf.retryDue {
		ep.pf.rounds = 0
	}
	n.challengeOnce(ep, now)
}

// armRetry schedules the next try of ep's challenge, if it gets one. A
// challenge lost on the air (or its proof back) would wait for the
// neighbour's next beacon: an hour on LoRa. It is asked again a few round
// trips on, while the nonce has tries left (challengeTries). An address
// with no peer entry gets strangerRounds more after that, each further
// off: no beacon of its reached us, so none will ask again, yet it sent
// us its challenge (it may take our proof and send to us, refused as
// unproven, for as long as we do not know it). Those retries to
// strangers come out of one budget for the node (strangerRetries), so
// that many addresses at once cannot make a storm of them.
func (n *Node) armRetry(ep *endpoint) {
	pf := &ep.pf
	if pf.retryDue {
		return
	}
	retry := ep.challengeRetry()
	switch {
	case pf.tries < challengeTries && pf.rounds == 0:
	case pf.rounds < strangerRounds && n.peers.ByEndpoint(ep.key) == nil:
		pf.rounds++
		retry <<= 2 * pf.rounds
	default:
		return
	}
	pf.retryDue = true
	n.clk.AfterFunc(retry+time.Duration(n.rng.Int64N(int64(retry))), func() {
		pf.retryDue = false
		if n.closed || n.endpointAt(ep.key) != ep || n.proven(ep.key) {
			return
		}
		now := n.clk.Now()
		if n.peers.ByEndpoint(ep.key) == nil {
			if !n.strangerRetries.Take(now) {
				n.stats.Trust.RetriesLimited++
				return
			}
		} else if pf.rounds > 0 {
			return // known now: its beacons ask
		}
		if !n.challengeOnce(ep, now) {
			n.armRetry(ep) // one went meanwhile: this retry counts from it
		}
	})
}

// challengeOnce sends ep a challenge, unless one went less than a retry
// interval ago; it reports whether it sent one.
func (n *Node) challengeOnce(ep *endpoint, now time.Time) bool {
	if n.cfg.Reference || n.closed || n.byeSent {
		return false
	}
	pf := &ep.pf
	if !pf.lastChallng.IsZero() && now.Sub(pf.lastChallng) < ep.challengeRetry() {
		return false
	}
	if pf.drawn.IsZero() || now.Sub(pf.drawn) > nonceLife {
		n.readEntropy(pf.nonce[:])
		pf.drawn = now
		pf.tries = 0
	}
	pf.lastChallng = now
	pf.tries++
	n.armRetry(ep)
	n.stats.Trust.ChallengesSent++
	b := proof.AppendChallenge(nil, pf.nonce)
	if pf.hop.back {
		b = proof.AppendRekey(b[:0], pf.nonce)
	}
	// Every neighbour that heard a beacon challenges its sender: sent at
	// once, their challenges (and the sender's answer to the beacon) meet
	// on its air. On LoRa, which does not listen before it talks, they
	// all collided and a mesh of 100 never proved its neighbours (nor
	// formed a tree) in 12 hours. Each waits a random share of a few
	// airtimes instead, as beacon responses do.
	window := 8 * link.Airtime(ep.tl.l, challengeSize)
	if window <= 0 {
		n.sendPlain(ep, proof.AppID, b)
		return true
	}
	n.clk.AfterFunc(time.Duration(n.rng.Int64N(int64(window))), func() {
		n.sendPlain(ep, proof.AppID, b)
	})
	return true
}

// challengeSize is about a challenge frame's size on the air (the packet
// and Package headers around the nonce): what its spreading window is
// counted in.
const challengeSize = 80

// receiveProof is the neighbour-proof application.
func (n *Node) receiveProof(m Message) {
	if n.cfg.Reference || m.Broadcast || m.Route != nil {
		return
	}
	var pm proof.Message
	if err := pm.UnmarshalBinary(m.Blob); err != nil {
		n.drop(DropMalformed)
		return
	}
	now := m.Time
	if now.IsZero() {
		now = n.clk.Now()
	}
	ep := n.strangerEndpoint(m.Via, now)
	if ep == nil {
		n.drop(DropBudget)
		return
	}
	switch pm.Type {
	case proof.TypeChallenge, proof.TypeRekey:
		if !n.proofBucket.Take(now) {
			n.stats.Trust.ProofsLimited++
			return
		}
		n.stats.Trust.ProofsSent++
		n.sendPlain(ep, proof.AppID, proof.AppendProof(nil, n.id, pm.Nonce, n.boot, ep.tl.info.Addr, m.Via.Addr))
		// If it takes this proof, it sends to us under this nonce's key.
		n.answeredChallenge(ep, pm.Nonce)
		if !n.proven(m.Via) || pm.Type == proof.TypeRekey && ep.pf.hop.backDue(now) {
			// It wants to know us; we want to know it (this also
			// re-proves a neighbour that restarted). A Rekey asks it
			// outright: it cannot open what we send it, and our next
			// key comes with its next proof.
			n.challenge(ep, now)
		}
	case proof.TypeProof:
		pf := &ep.pf
		if pf.drawn.IsZero() || now.Sub(pf.drawn) > nonceLife {
			n.stats.Trust.ProofsBad++
			return
		}
		if err := pm.Verify(pf.nonce, m.Via.Addr, ep.tl.info.Addr); err != nil {
			n.stats.Trust.ProofsBad++
			n.log.Debug("neighbour proof refused", "via", m.Via.Addr, "err", err)
			return
		}
		pf.drawn, pf.lastChallng = time.Time{}, time.Time{} // the nonce is spent
		if n.revoked(identity.NodeID(pm.NodeID)) {
			// A true proof by a key its operator declared compromised.
			n.stats.Trust.ProofsRevoked++
			n.log.Debug("neighbour proof refused: revoked", "via", m.Via.Addr, "peer", identity.NodeID(pm.NodeID).Short())
			return
		}
		n.stats.Trust.ProofsOK++
		n.acceptProof(ep, identity.NodeID(pm.NodeID), pm.Boot, now)
		n.provedOurs(ep, identity.NodeID(pm.NodeID), pf.nonce)
	}
}

// acceptProof makes the endpoint a proven endpoint of id: the peer entry
// takes it (from whoever claimed it before), drops the endpoints nobody
// proved, and becomes full.
func (n *Node) acceptProof(ep *endpoint, id identity.NodeID, boot proof.Boot, now time.Time) {
	if old := n.peers.ByEndpoint(ep.key); old != nil && old.ID != id {
		n.forgetProofs(old)
	}
	ep.pf.proven, ep.pf.id, ep.pf.boot = true, id, boot
	p, isNew := n.peers.Refresh(id, ep.key, now)
	for _, k := range p.Endpoints {
		if !n.endpointAt(k).provenFor(id) {
			n.peers.RemoveEndpoint(id, k)
		}
	}
	was := p.Proven
	// Only our nodes prove: it speaks the whole protocol, even if its
	// proof came before its beacon did.
	p.Proven, p.Full = true, true
	if info := n.nodes.Get(id, now); info != nil && len(p.Apps) == 0 {
		p.Apps = append(p.Apps, info.Apps...)
	}
	if isNew || !was {
		n.peerEvent(p, true)
	}
}

// provenFor reports whether ep (possibly nil) is proven for id.
func (ep *endpoint) provenFor(id identity.NodeID) bool {
	return ep != nil && ep.pf.proven && ep.pf.id == id
}

// forgetProofs clears the proofs of a peer that went (timed out, said
// goodbye, lost its endpoint to another).
func (n *Node) forgetProofs(p *peer.Peer) {
	for _, k := range p.Endpoints {
		if ep := n.endpointAt(k); ep != nil && ep.pf.id == p.ID {
			ep.pf.proven = false
		}
	}
	p.Proven = false
}
