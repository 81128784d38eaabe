package cert

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

// Limits of a Verifier's memory. A field device must not grow without bound
// however many chains, trees and epochs its neighbours show it; the limits
// only cost a signature check again when exceeded, never a wrong answer.
const (
	// maxEpochCerts bounds the holders remembered per (tree, tree_state);
	// beyond it the epoch is forgotten and learnt again.
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

// epoch is what a Verifier remembers of one (tree, tree_state): every
// holder whose place it verified, and the claims.
type epoch struct {
	// holders are the keys verified in this epoch, each an entry: its
	// parent's entry (-1 for the root) and the index the parent gave it.
	// An address is read off by walking up; a certificate that says again
	// what an entry says (the same holder, parent and index) needs no
	// second check: it is already known to be true. Kept this way a holder
	// costs a map entry and 8 bytes, where a digest and an address cost
	// over a hundred: a node verifies hundreds of places per epoch.
	holders map[[ed25519.PublicKeySize]byte]int32
	entries []holderEntry
	// term is the epoch's root and start: a tree_state byte names at most
	// one term at a time here; a new term with the same byte replaces it.
	term   Term
	claims [maxEpochClaims]digest
	nclaim int    // claims in use
	next   int    // claim slot to overwrite next
	used   uint64 // Verifier.tick of the last use, for LRU eviction
}

// holderEntry is one verified place: under the entry parent, at index,
// by the certificate whose check's digest begins with fp (a certificate
// saying the same with another signature is checked anew: the cache never
// vouches for a forgery).
type holderEntry struct {
	parent int32
	index  uint8
	fp     uint64
}

func fingerprint(d *digest) uint64 { return binary.BigEndian.Uint64(d[:8]) }

// address reads entry i's address off its ancestors.
func (e *epoch) address(i int32) addr.Long {
	var idx [MaxDepth + 1]uint8
	n := 0
	for ; i >= 0 && n < len(idx); i = e.entries[i].parent {
		if e.entries[i].parent >= 0 {
			idx[n] = e.entries[i].index
			n++
		}
	}
	var cs [MaxDepth]uint8
	for k := range n {
		cs[k] = idx[n-1-k]
	}
	a, _ := addr.EncodeLong(cs[:n]) // verified on the way in: it fits
	return a
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
	certs  int // holders remembered over all epochs
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
func (v *Verifier) Verify(ch *Chain) (addr.Long, error) {
	v.tick++
	a, err := v.verify(ch)
	if err != nil {
		v.stats.Rejected++
	}
	return a, err
}

func (v *Verifier) verify(ch *Chain) (addr.Long, error) {
	// Structure first: it is free, and a malformed chain must not cost a
	// signature check.
	if _, err := ch.Address(); err != nil {
		return addr.Long{}, err
	}
	tree, ts := ch.Claim.Tree, ch.Claim.TreeState()
	term := ch.Claim.Term()
	k := keyOf(tree, ts)
	v.claimTerm(k, term)
	if err := v.verifyClaim(&ch.Claim, k); err != nil {
		return addr.Long{}, err
	}
	// The claim succeeded, so the epoch exists; remembering holders may
	// forget other epochs, never this one.
	ep := v.epoch(k, term)
	parent := &ch.Claim.Root
	pe := v.rememberHolder(ep, k, &ch.Claim.Root, -1, 0, 0)
	var a addr.Long
	var buf [certMsgSize]byte
	for i := range ch.Certs {
		c := &ch.Certs[i]
		var err error
		if a, err = childAddr(a, c.Index, i); err != nil {
			return addr.Long{}, err // unreachable: Address succeeded
		}
		msg := appendCertMsg(buf[:0], &term, &c.Child, &a)
		d := digestOf(parent, msg, &c.Sig)
		if ce, ok := ep.holders[c.Child]; ok && pe != noEntry && ep.entries[ce] == (holderEntry{parent: pe, index: c.Index, fp: fingerprint(&d)}) {
			v.stats.Cached++
			pe, parent = ce, &c.Child
			continue
		}
		if !v.check(&d, parent, msg, &c.Sig) {
			return addr.Long{}, fmt.Errorf("%w: certificate %d (address %v) of tree %d epoch %d is not signed by its parent %x",
				ErrSignature, i, a, tree, ts, parent[:4])
		}
		ep = v.epoch(k, term) // (remembering may have started it afresh)
		pe = v.rememberHolder(ep, k, &c.Child, v.parentEntry(ep, k, parent, i, ch), c.Index, fingerprint(&d))
		parent = &c.Child
	}
	return a, nil
}

// parentEntry is the entry of the holder at level i of ch (its parent's
// key is parent), remembering the levels above it again if the epoch was
// forgotten meanwhile (a Verifier over its bounds).
func (v *Verifier) parentEntry(ep *epoch, k epochKey, parent *[ed25519.PublicKeySize]byte, i int, ch *Chain) int32 {
	if e, ok := ep.holders[*parent]; ok {
		return e
	}
	// The levels above were checked just now (or cached): their
	// fingerprints are not at hand, so they are kept without (a repeat of
	// them is checked again).
	e := v.rememberHolder(ep, k, &ch.Claim.Root, -1, 0, 0)
	for j := range i {
		e = v.rememberHolder(ep, k, &ch.Certs[j].Child, e, ch.Certs[j].Index, 0)
	}
	return e
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
func (v *Verifier) Known(term Term, pk ed25519.PublicKey) (addr.Long, bool) {
	ep := v.epochs[keyOf(term.Tree, term.TreeState)]
	if ep == nil || ep.term != term || len(pk) != ed25519.PublicKeySize {
		return addr.Long{}, false
	}
	i, ok := ep.holders[[ed25519.PublicKeySize]byte(pk)]
	if !ok {
		return addr.Long{}, false
	}
	return ep.address(i), true
}

// VerifyCert checks one certificate issued by parent in the epoch term,
// when the parent's address is already known (Known): it is how a
// neighbour's position is checked from its own certificate alone, without
// its whole chain. Errors wrap ErrUnknownParent, ErrIndex, ErrTooLong or
// ErrSignature.
func (v *Verifier) VerifyCert(term Term, parent ed25519.PublicKey, c *Cert) (addr.Long, error) {
	v.tick++
	tree, treeState := term.Tree, term.TreeState
	k := keyOf(tree, treeState)
	ep := v.epochs[k]
	var pk [ed25519.PublicKeySize]byte
	copy(pk[:], parent)
	pe, ok := int32(0), false
	if ep != nil && ep.term == term && len(parent) == ed25519.PublicKeySize {
		pe, ok = ep.holders[pk]
	}
	if !ok {
		return addr.Long{}, ErrUnknownParent
	}
	if c.Index == 0 || c.Index > addr.MaxCoord {
		v.stats.Rejected++
		return addr.Long{}, fmt.Errorf("%w: %d", ErrIndex, c.Index)
	}
	a, err := ep.address(pe).Child(c.Index)
	if err != nil {
		v.stats.Rejected++
		return addr.Long{}, fmt.Errorf("%w: %v", ErrTooLong, err)
	}
	ep.used = v.tick
	var buf [certMsgSize]byte
	msg := appendCertMsg(buf[:0], &term, &c.Child, &a)
	d := digestOf(&pk, msg, &c.Sig)
	if ce, ok := ep.holders[c.Child]; ok && ep.entries[ce] == (holderEntry{parent: pe, index: c.Index, fp: fingerprint(&d)}) {
		v.stats.Cached++
		return a, nil
	}
	if !v.check(&d, &pk, msg, &c.Sig) {
		v.stats.Rejected++
		return addr.Long{}, fmt.Errorf("%w: certificate for %v of tree %d epoch %d is not signed by %x", ErrSignature, a, tree, treeState, parent[:4])
	}
	ep = v.epoch(k, term)
	if pe, ok = ep.holders[pk]; !ok {
		// The epoch was forgotten over the bounds meanwhile: the parent's
		// place is no longer on record to hang the child on.
		return a, nil
	}
	v.rememberHolder(ep, k, &c.Child, pe, c.Index, fingerprint(&d))
	return a, nil
}

// rememberHolder records a verified place (parent entry -1: the root) and
// returns its entry, within the limits: an epoch of maxEpochCerts holders
// remembers no more (noEntry), a Verifier over maxCerts forgets its least
// recently used epochs. What is not remembered costs a signature check
// again, never a wrong answer.
func (v *Verifier) rememberHolder(ep *epoch, k epochKey, pk *[ed25519.PublicKeySize]byte, parent int32, index uint8, fp uint64) int32 {
	if parent < -1 {
		return noEntry // its parent is not on record
	}
	if i, ok := ep.holders[*pk]; ok {
		if e := &ep.entries[i]; e.parent != parent || e.index != index || fp != 0 {
			*e = holderEntry{parent: parent, index: index, fp: fp}
		}
		return i
	}
	if len(ep.entries) >= maxEpochCerts {
		return noEntry
	}
	for v.certs >= maxCerts && v.dropLRU(k) {
	}
	i := int32(len(ep.entries))
	ep.entries = append(ep.entries, holderEntry{parent: parent, index: index, fp: fp})
	ep.holders[*pk] = i
	v.certs++
	return i
}

// noEntry is a place not on record.
const noEntry = -2

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
	v.rememberHolder(ep, k, &c.Root, -1, 0, 0) // the root's place is the zero address
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
		ep = &epoch{holders: make(map[[ed25519.PublicKeySize]byte]int32), term: term}
		v.epochs[k] = ep
	}
	ep.used = v.tick
	return ep
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
		v.certs -= len(ep.entries)
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
