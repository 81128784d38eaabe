package cert

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

// Limits of a Verifier's memory. A field device must not grow without bound
// however many chains, trees and epochs its neighbours show it; the limits
// only cost a signature check again when exceeded, never a wrong answer.
const (
	// maxEpochCerts bounds the certificates remembered per (tree,
	// tree_state); beyond it a random one is forgotten.
	maxEpochCerts = 4096
	// maxEpochClaims is how many claims are remembered per epoch: the
	// root re-issues its claim with a new time every period, and only the
	// latest few are in flight.
	maxEpochClaims = 4
	// maxEpochs bounds the epochs remembered: K ≤ 16 trees, each with its
	// current and previous epoch (PROTOCOL.md 6.1). Beyond it the least
	// recently used epoch is forgotten.
	maxEpochs = 32
	// maxCerts bounds the certificates remembered over all epochs (about
	// 1 MB); beyond it least recently used epochs are forgotten.
	maxCerts = 4 * maxEpochCerts
	// memoMax bounds a Memo; when full it starts again empty.
	memoMax = 1 << 20
)

// digest identifies one signature check: SHA-256(pk ‖ msg ‖ sig). It covers
// everything the check depends on, so equal digests mean the same answer.
type digest [sha256.Size]byte

func digestOf(pk *[ed25519.PublicKeySize]byte, msg []byte, sig *[ed25519.SignatureSize]byte) digest {
	var b [ed25519.PublicKeySize + max(claimMsgSize, certMsgSize) + ed25519.SignatureSize]byte
	n := copy(b[:], pk[:])
	n += copy(b[n:], msg)
	n += copy(b[n:], sig[:])
	return sha256.Sum256(b[:n])
}

// VerifierStats counts a Verifier's work.
type VerifierStats struct {
	// Checked is the number of signature checks done (including those a
	// shared Memo answered: they are this node's work, the memo only saves
	// the simulation's wall time).
	Checked uint64
	// Cached is the number of signature checks skipped because the Verifier
	// had already verified the same claim or certificate.
	Cached uint64
	// Rejected is the number of Verify and VerifyClaim calls that failed,
	// for any reason.
	Rejected uint64
}

// epochKey is (tree, tree_state).
type epochKey uint16

func keyOf(tree, treeState uint8) epochKey { return epochKey(tree)<<8 | epochKey(treeState) }

// epoch is what a Verifier remembers of one (tree, tree_state): digests of
// the checks that succeeded.
type epoch struct {
	certs map[digest]struct{}
	// holders are the addresses verified in this epoch, by key: what lets a
	// single certificate be checked (VerifyCert) when its parent's place is
	// already known.
	holders map[[ed25519.PublicKeySize]byte]addr.Address
	// term is the epoch's root and start: a tree_state byte names at most
	// one term at a time here; a new term with the same byte replaces it.
	term   Term
	claims [maxEpochClaims]digest
	nclaim int    // claims in use
	next   int    // claim slot to overwrite next
	used   uint64 // Verifier.tick of the last use, for LRU eviction
}

func (e *epoch) hasClaim(d *digest) bool {
	for i := range e.claims[:e.nclaim] {
		if e.claims[i] == *d {
			return true
		}
	}
	return false
}

// Verifier checks claims and chains, remembering per (tree, tree_state) the
// claims and certificates it verified, so a node pays for each signature
// once per epoch rather than once per packet. Only successes are remembered.
// Memory is bounded (see the limits above); Forget drops an epoch when it
// ends. Not safe for concurrent use: each node owns one, used on its loop.
type Verifier struct {
	memo   *Memo
	epochs map[epochKey]*epoch
	certs  int // certificates remembered over all epochs
	tick   uint64
	stats  VerifierStats
}

// NewVerifier returns an empty Verifier. memo, which may be nil, is a
// process-wide memo shared with other Verifiers to save wall time in
// simulations; it changes no result and no count.
func NewVerifier(memo *Memo) *Verifier {
	return &Verifier{memo: memo, epochs: make(map[epochKey]*epoch)}
}

// Stats returns the counters.
func (v *Verifier) Stats() VerifierStats { return v.stats }

// Forget drops what was remembered of tree's epoch treeState, when the epoch
// is over and its certificates will not be seen again.
func (v *Verifier) Forget(tree uint8, treeState uint8) {
	v.drop(keyOf(tree, treeState))
}

// VerifyClaim checks the claim's signature by its root, once per distinct
// claim: an error wraps ErrSignature. It does not check freshness or whether
// the root is the best one (Claim.CheckFresh, Score).
func (v *Verifier) VerifyClaim(c *Claim) error {
	v.tick++
	err := v.verifyClaim(c, keyOf(c.Tree, c.TreeState()))
	if err != nil {
		v.stats.Rejected++
	}
	return err
}

// Verify checks a whole chain and returns its holder's address: the
// structure (as Address), the claim's signature, then each certificate's
// signature by the previous holder over the tree, the claim's tree_state and
// the certificate's full address. Claims and certificates verified before
// in the same epoch are not checked again. Errors wrap ErrSignature (naming
// the first bad level), ErrIndex or ErrTooLong. It checks neither freshness
// nor who the holder is (Claim.CheckFresh, Chain.CheckHolder).
func (v *Verifier) Verify(ch *Chain) (addr.Address, error) {
	v.tick++
	a, err := v.verify(ch)
	if err != nil {
		v.stats.Rejected++
	}
	return a, err
}

func (v *Verifier) verify(ch *Chain) (addr.Address, error) {
	// Structure first: it is free, and a malformed chain must not cost a
	// signature check.
	if _, err := ch.Address(); err != nil {
		return addr.Address{}, err
	}
	tree, ts := ch.Claim.Tree, ch.Claim.TreeState()
	term := ch.Claim.Term()
	k := keyOf(tree, ts)
	v.claimTerm(k, term)
	if err := v.verifyClaim(&ch.Claim, k); err != nil {
		return addr.Address{}, err
	}
	// The claim succeeded, so the epoch exists; remembering certificates
	// may forget other epochs, never this one.
	ep := v.epoch(k, term)
	parent := &ch.Claim.Root
	var a addr.Address
	v.rememberHolder(ep, &ch.Claim.Root, a)
	var buf [certMsgSize]byte
	for i := range ch.Certs {
		c := &ch.Certs[i]
		var err error
		if a, err = childAddr(a, c.Index, i); err != nil {
			return addr.Address{}, err // unreachable: Address succeeded
		}
		msg := appendCertMsg(buf[:0], &term, &c.Child, &a)
		d := digestOf(parent, msg, &c.Sig)
		if _, ok := ep.certs[d]; ok {
			v.stats.Cached++
		} else if v.check(&d, parent, msg, &c.Sig) {
			v.rememberCert(ep, k, d)
		} else {
			return addr.Address{}, fmt.Errorf("%w: certificate %d (address %v) of tree %d epoch %d is not signed by its parent %x",
				ErrSignature, i, a, tree, ts, parent[:4])
		}
		v.rememberHolder(ep, &c.Child, a)
		parent = &c.Child
	}
	return a, nil
}

// ErrUnknownParent: VerifyCert was given a certificate whose parent's
// address this Verifier has not verified in that epoch.
var ErrUnknownParent = errors.New("cert: parent's address not known in this epoch")

// claimTerm makes k's remembered epoch the given term: what was remembered
// of another term that had the same tree_state byte is forgotten.
func (v *Verifier) claimTerm(k epochKey, term Term) {
	if ep := v.epochs[k]; ep != nil && ep.term != term {
		v.drop(k)
	}
}

// Known returns the address of the holder pk verified in the epoch term
// (by a chain or certificate checked before).
func (v *Verifier) Known(term Term, pk ed25519.PublicKey) (addr.Address, bool) {
	ep := v.epochs[keyOf(term.Tree, term.TreeState)]
	if ep == nil || ep.term != term || len(pk) != ed25519.PublicKeySize {
		return addr.Address{}, false
	}
	a, ok := ep.holders[[ed25519.PublicKeySize]byte(pk)]
	return a, ok
}

// VerifyCert checks one certificate issued by parent in the epoch term,
// when the parent's address is already known (Known): it is how a
// neighbour's position is checked from its own certificate alone, without
// its whole chain. Errors wrap ErrUnknownParent, ErrIndex, ErrTooLong or
// ErrSignature.
func (v *Verifier) VerifyCert(term Term, parent ed25519.PublicKey, c *Cert) (addr.Address, error) {
	v.tick++
	tree, treeState := term.Tree, term.TreeState
	pa, ok := v.Known(term, parent)
	if !ok {
		return addr.Address{}, ErrUnknownParent
	}
	if c.Index == 0 || c.Index > addr.MaxCoord {
		v.stats.Rejected++
		return addr.Address{}, fmt.Errorf("%w: %d", ErrIndex, c.Index)
	}
	a, err := pa.Child(c.Index)
	if err != nil {
		v.stats.Rejected++
		return addr.Address{}, fmt.Errorf("%w: %v", ErrTooLong, err)
	}
	k := keyOf(tree, treeState)
	ep := v.epoch(k, term)
	var buf [certMsgSize]byte
	var ppk [ed25519.PublicKeySize]byte
	copy(ppk[:], parent)
	msg := appendCertMsg(buf[:0], &term, &c.Child, &a)
	d := digestOf(&ppk, msg, &c.Sig)
	if _, ok := ep.certs[d]; ok {
		v.stats.Cached++
	} else if v.check(&d, &ppk, msg, &c.Sig) {
		v.rememberCert(ep, k, d)
	} else {
		v.stats.Rejected++
		return addr.Address{}, fmt.Errorf("%w: certificate for %v of tree %d epoch %d is not signed by %x", ErrSignature, a, tree, treeState, parent[:4])
	}
	v.rememberHolder(ep, &c.Child, a)
	return a, nil
}

// rememberHolder records a verified holder's address, within the limits.
func (v *Verifier) rememberHolder(ep *epoch, pk *[ed25519.PublicKeySize]byte, a addr.Address) {
	if _, ok := ep.holders[*pk]; !ok && len(ep.holders) >= maxEpochCerts {
		for old := range ep.holders {
			delete(ep.holders, old)
			break
		}
	}
	ep.holders[*pk] = a
}

func (v *Verifier) verifyClaim(c *Claim, k epochKey) error {
	var buf [claimMsgSize]byte
	msg := c.SignedBytes(buf[:0])
	d := digestOf(&c.Root, msg, &c.Sig)
	term := c.Term()
	ep := v.epochs[k]
	if ep != nil && ep.term == term {
		ep.used = v.tick
		if ep.hasClaim(&d) {
			v.stats.Cached++
			return nil
		}
	}
	if !v.check(&d, &c.Root, msg, &c.Sig) {
		return fmt.Errorf("%w: claim of tree %d term %d time %d is not signed by its root %x",
			ErrSignature, c.Tree, c.TermStart, c.Time, c.Root[:4])
	}
	if ep != nil && ep.term != term {
		// Another term with the same tree_state byte: checked, not
		// remembered, so a stray claim cannot make us forget our epoch
		// (Verify of one of its chains does, when the term really changes).
		return nil
	}
	ep = v.epoch(k, term)
	v.rememberHolder(ep, &c.Root, addr.Address{}) // the root's place is the zero address
	ep.claims[ep.next] = d
	ep.next = (ep.next + 1) % maxEpochClaims
	if ep.nclaim < maxEpochClaims {
		ep.nclaim++
	}
	return nil
}

// check does one signature check (through the memo if any) and counts it.
func (v *Verifier) check(d *digest, pk *[ed25519.PublicKeySize]byte, msg []byte, sig *[ed25519.SignatureSize]byte) bool {
	v.stats.Checked++
	if v.memo != nil {
		return v.memo.verify(d, pk, msg, sig)
	}
	return ed25519.Verify(pk[:], msg, sig[:])
}

// epoch returns the epoch for k, creating it (and forgetting the least
// recently used one if there are too many). Epochs are created only to
// remember a success, so garbage cannot push real epochs out.
func (v *Verifier) epoch(k epochKey, term Term) *epoch {
	ep := v.epochs[k]
	if ep != nil && ep.term != term {
		v.drop(k)
		ep = nil
	}
	if ep == nil {
		for len(v.epochs) >= maxEpochs && v.dropLRU(k) {
		}
		ep = &epoch{certs: make(map[digest]struct{}), holders: make(map[[ed25519.PublicKeySize]byte]addr.Address), term: term}
		v.epochs[k] = ep
	}
	ep.used = v.tick
	return ep
}

// rememberCert records a verified certificate in ep, epoch k, within the
// limits.
func (v *Verifier) rememberCert(ep *epoch, k epochKey, d digest) {
	if len(ep.certs) >= maxEpochCerts {
		// Map iteration starts at a random place: this forgets an
		// arbitrary certificate, which costs one check if it comes back.
		for old := range ep.certs {
			delete(ep.certs, old)
			v.certs--
			break
		}
	}
	for v.certs >= maxCerts && v.dropLRU(k) {
	}
	ep.certs[d] = struct{}{}
	v.certs++
}

// dropLRU forgets the least recently used epoch other than keep, and
// reports whether there was one.
func (v *Verifier) dropLRU(keep epochKey) bool {
	var (
		lru   epochKey
		found bool
		used  uint64
	)
	for k, ep := range v.epochs {
		if k != keep && (!found || ep.used < used) {
			lru, used, found = k, ep.used, true
		}
	}
	if found {
		v.drop(lru)
	}
	return found
}

func (v *Verifier) drop(k epochKey) {
	if ep := v.epochs[k]; ep != nil {
		v.certs -= len(ep.certs)
		delete(v.epochs, k)
	}
}

// MemoStats counts a Memo's work.
type MemoStats struct {
	// Hits is the number of checks answered from the memo.
	Hits uint64
	// Misses is the number of Ed25519 verifications actually computed.
	Misses uint64
	// Resets is the number of times the memo was full and started again.
	Resets uint64
	// Len is the number of results held now.
	Len int
}

// Memo is an optional process-wide memo of Ed25519 results (valid or not),
// keyed by SHA-256(pk ‖ msg ‖ sig), safe for concurrent use. A simulation
// of many nodes in one process shares one so that each signature is computed
// once per process instead of once per node; each node's Verifier still
// keeps its own cache and counts, so per-node behaviour is unchanged. It
// holds at most 1<<20 results, then starts again empty.
type Memo struct {
	mu    sync.Mutex
	m     map[digest]bool
	stats MemoStats
}

// NewMemo returns an empty Memo.
func NewMemo() *Memo {
	return &Memo{m: make(map[digest]bool)}
}

// Stats returns the counters.
func (m *Memo) Stats() MemoStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Len = len(m.m)
	return s
}

func (m *Memo) verify(d *digest, pk *[ed25519.PublicKeySize]byte, msg []byte, sig *[ed25519.SignatureSize]byte) bool {
	m.mu.Lock()
	valid, ok := m.m[*d]
	if ok {
		m.stats.Hits++
	}
	m.mu.Unlock()
	if ok {
		return valid
	}
	// Outside the lock, so nodes on other goroutines are not serialized on
	// the arithmetic; two may compute the same result, which is harmless.
	valid = ed25519.Verify(pk[:], msg, sig[:])
	m.mu.Lock()
	if len(m.m) >= memoMax {
		m.m = make(map[digest]bool) // a new map gives the memory back
		m.stats.Resets++
	}
	m.m[*d] = valid
	m.stats.Misses++
	m.mu.Unlock()
	return valid
}
