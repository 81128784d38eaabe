package route

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// Names [ours]: a node may carry a name (Config.Name). Its name record —
// the name and the node_id, signed by the node — is stored like an address
// record: at the end of the greedy path toward a key address derived from
// the name, in each lookup tree. A lookup of the name follows the same
// path and gets the record, which anyone can verify; the node_id then goes
// to the address lookup. Nodes also hand their record to each new
// neighbour (one hop), so a peer list shows names without asking the mesh.
//
// There is no naming authority: any node may claim any name. When two
// claim one, every home settles it the same way, whatever order the
// claims came in, so that every tree and every epoch agree: the lower
// node_id holds the name while its claim is fresh (a record lives two
// epochs, as an address record does); the other is told, and NameTaken
// says by whom.

// MaxName is the longest name, in bytes.
const MaxName = 63

// ErrName reports a name that breaks the rules of ValidName.
var ErrName = errors.New("route: invalid name")

// ErrUnknownName: no lookup found the name.
var ErrUnknownName = errors.New("route: no node has that name")

// ErrNoPosition: this node has no address in any tree yet, so it cannot
// ask the mesh.
var ErrNoPosition = errors.New("route: this node has no address in any tree yet")

// ValidName checks a name: 1..63 bytes of lower-case letters, digits, '-',
// '_' and '.', starting with a letter, and not made only of hex digits (so
// a name is never mistaken for a node_id or its prefix).
func ValidName(s string) error {
	if len(s) == 0 || len(s) > MaxName {
		return fmt.Errorf("%w: %q: 1 to %d bytes", ErrName, s, MaxName)
	}
	if c := s[0]; c < 'a' || c > 'z' {
		return fmt.Errorf("%w: %q: must start with a lower-case letter", ErrName, s)
	}
	hexOnly := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'f', c >= '0' && c <= '9':
		case c >= 'g' && c <= 'z', c == '-', c == '_', c == '.':
			hexOnly = false
		default:
			return fmt.Errorf("%w: %q: only a-z, 0-9, '-', '_' and '.'", ErrName, s)
		}
	}
	if hexOnly {
		return fmt.Errorf("%w: %q: only hex digits (it would read as a node_id)", ErrName, s)
	}
	return nil
}

// NameRecord binds a name to a node_id, signed by that node.
type NameRecord struct {
	Name string
	ID   identity.NodeID
	Time int64 // Unix nanoseconds: a newer record of the same node replaces an older one
	Sig  [ed25519.SignatureSize]byte
}

const nameDomain = "mycelium/name/v1"

// nameRecordMin is the smallest encoded record (a one-byte name).
const nameRecordMin = 1 + 1 + 32 + 8 + ed25519.SignatureSize

func (r *NameRecord) signed(b []byte) []byte {
	b = append(b, nameDomain...)
	b = append(b, byte(len(r.Name)))
	b = append(b, r.Name...)
	b = append(b, r.ID[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(r.Time))
}

// Sign fills Sig with the node's key (id must be the node named by ID).
func (r *NameRecord) Sign(id identity.Signer) { copy(r.Sig[:], id.Sign(r.signed(nil))) }

// Verify checks the name's form and the signature by ID.
func (r *NameRecord) Verify() bool {
	return ValidName(r.Name) == nil && ed25519.Verify(ed25519.PublicKey(r.ID[:]), r.signed(nil), r.Sig[:])
}

// AppendTo encodes the record: len(1) ‖ name ‖ node_id(32) ‖ time(8) ‖ signature(64).
func (r *NameRecord) AppendTo(b []byte) []byte {
	b = append(b, byte(len(r.Name)))
	b = append(b, r.Name...)
	b = append(b, r.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time))
	return append(b, r.Sig[:]...)
}

// UnmarshalBinary decodes a record (the whole of b).
func (r *NameRecord) UnmarshalBinary(b []byte) error {
	if len(b) < nameRecordMin {
		return fmt.Errorf("%w: name record of %d bytes", ErrControl, len(b))
	}
	n := int(b[0])
	if n == 0 || n > MaxName || len(b) != 1+n+32+8+ed25519.SignatureSize {
		return fmt.Errorf("%w: name record: name of %d bytes in %d", ErrControl, n, len(b))
	}
	r.Name = string(b[1 : 1+n])
	b = b[1+n:]
	copy(r.ID[:], b[:32])
	r.Time = int64(binary.BigEndian.Uint64(b[32:40]))
	copy(r.Sig[:], b[40:])
	return nil
}

// keyName is where a name's record lives in tree k.
func keyName(name string, k int) addr.Long { return keyOf(nameDomain, []byte(name), k) }

// nameState is the router's part in names.
type nameState struct {
	own     *NameRecord            // ours, signed when first needed and at each registration
	regs    map[int]*nameReg       // registrations in flight, by tree
	stored  map[string]*storedName // the records whose home we are
	cache   map[string]*cachedName // lookups answered lately
	known   map[identity.NodeID]string
	knownQ  []identity.NodeID // known, oldest first (the bound)
	lookups map[uint32]*nameLookup
	taken   string // a home said our name is another node's (its node_id, hex)
}

type nameReg struct {
	rec    NameRecord
	tries  int // in this round
	rounds int // rounds that went unconfirmed (see registerPause)
	timer  clock.Timer
}

type storedName struct {
	rec NameRecord
	at  time.Time
}

type cachedName struct {
	id      identity.NodeID
	expires time.Time
}

type nameLookup struct {
	name  string
	cbs   []func(identity.NodeID, error)
	tries int
	timer clock.Timer
}

// Name stored status in msgNameStored.
const (
	nameStored = 0
	nameTaken  = 1
)

// ownName returns our name record, signing a fresh one when asked to.
func (r *Router) ownName(fresh bool) *NameRecord {
	if r.cfg.Name == "" {
		return nil
	}
	if r.names.own == nil || fresh {
		rec := &NameRecord{Name: r.cfg.Name, ID: r.self, Time: r.clk.Now().UnixNano()}
		rec.Sign(r.b.Signer())
		r.names.own = rec
	}
	return r.names.own
}

// registerName stores our name record in the lookup trees (with our
// address record: when our positions settle, and to refresh it).
func (r *Router) registerName() {
	rec := r.ownName(true)
	if rec == nil {
		return
	}
	sent := 0
	for _, k := range r.lookupOrder([]byte(rec.Name)) {
		if sent == r.lookupTrees() {
			break
		}
		if _, ok := r.t.Current(k); !ok {
			continue
		}
		sent++
		if r.names.regs == nil {
			r.names.regs = map[int]*nameReg{}
		}
		if old := r.names.regs[k]; old != nil {
			clock.Stop(&old.timer)
		}
		st := &nameReg{rec: *rec}
		r.names.regs[k] = st
		r.sendNameRegister(k, st)
	}
}

func (r *Router) sendNameRegister(k int, st *nameReg) {
	p, ok := r.t.Current(k)
	if !ok {
		delete(r.names.regs, k)
		return
	}
	if st.tries >= registerTries {
		st.tries = 0
		st.rounds++
		r.afterPaced(&st.timer, r.registerPause(st.rounds), func() {
			if r.names.regs[k] == st {
				r.sendNameRegister(k, st)
			}
		})
		return
	}
	st.tries++
	r.sendControl(p.TreeState, keyName(st.rec.Name, k), false, st.rec.AppendTo([]byte{msgNameRegister}))
	r.afterPaced(&st.timer, r.paced(registerRetry, 200)<<min(st.tries-1, 2), func() {
		if r.names.regs[k] == st {
			r.sendNameRegister(k, st)
		}
	})
}

// NameRegistered reports whether every lookup tree we are in confirmed
// our name record (false with no name, or while a home says it is taken).
func (r *Router) NameRegistered() bool {
	return r.cfg.Name != "" && r.names.own != nil && len(r.names.regs) == 0 && r.names.taken == "" && r.recordGood()
}

// NameTaken returns the node_id (hex) a home holds our name for, if one
// said so at our last registration ("" otherwise).
func (r *Router) NameTaken() string { return r.names.taken }

// onNameStored: a home answered our registration.
func (r *Router) onNameStored(rp *routed, b []byte) {
	var id identity.NodeID
	copy(id[:], b[:32])
	at := int64(binary.BigEndian.Uint64(b[32:40]))
	k := tree.TreeOf(rp.Header.TreeState)
	st := r.names.regs[k]
	if st == nil || st.rec.Time != at {
		return
	}
	clock.Stop(&st.timer)
	delete(r.names.regs, k)
	switch {
	case b[40] == nameTaken && id != r.self:
		r.names.taken = id.String()
		r.stats.NameConflicts++
	case b[40] == nameStored && id == r.self:
		r.names.taken = ""
	}
}

// onNameRegister stores a name record that reached its key, unless the
// name is another node's, and answers either way.
func (r *Router) onNameRegister(rp *routed, b []byte) {
	var rec NameRecord
	if rec.UnmarshalBinary(b) != nil {
		r.stats.Malformed++
		return
	}
	if !rec.Verify() || r.revoked(rec.ID) {
		return
	}
	now := r.clk.Now()
	if r.futureDated(rec.Time, now) {
		r.stats.RecordsRefused++ // it would outrank the owner's every later record
		return
	}
	status, holder := byte(nameStored), rec.ID
	old := r.names.stored[rec.Name]
	switch {
	case r.cfg.Name == rec.Name && r.self != rec.ID && bytes.Compare(r.self[:], rec.ID[:]) < 0:
		// The home claims the name itself, with the lower node_id.
		status, holder = nameTaken, r.self
	case old != nil && old.rec.ID != rec.ID && now.Sub(old.at) < r.recordLife() && bytes.Compare(old.rec.ID[:], rec.ID[:]) < 0:
		status, holder = nameTaken, old.rec.ID
	case old != nil && old.rec.ID == rec.ID && rec.Time <= old.rec.Time:
		// A copy, or an older one overtaken: stored already.
	default:
		if r.names.stored == nil {
			r.names.stored = map[string]*storedName{}
		}
		if old == nil && len(r.names.stored) >= r.cfg.Records {
			r.evictName()
		}
		r.names.stored[rec.Name] = &storedName{rec: rec, at: now}
		r.learnName(rec.ID, rec.Name)
	}
	ack := append([]byte{msgNameStored}, holder[:]...)
	ack = binary.BigEndian.AppendUint64(ack, uint64(rec.Time))
	ack = append(ack, status)
	r.reply(rp, ack)
}

func (r *Router) evictName() {
	var oldest string
	var at time.Time
	first := true
	for name, s := range r.names.stored {
		if first || s.at.Before(at) || (s.at.Equal(at) && name < oldest) {
			oldest, at, first = name, s.at, false
		}
	}
	delete(r.names.stored, oldest)
}

// evictCachedName forgets the cached name that expires first.
func (r *Router) evictCachedName() {
	var victim string
	var at time.Time
	first := true
	for name, c := range r.names.cache {
		if first || c.expires.Before(at) || (c.expires.Equal(at) && name < victim) {
			victim, at, first = name, c.expires, false
		}
	}
	delete(r.names.cache, victim)
}

// learnName remembers a verified binding, for NameOf.
func (r *Router) learnName(id identity.NodeID, name string) {
	if r.names.known == nil {
		r.names.known = map[identity.NodeID]string{}
	}
	if _, ok := r.names.known[id]; !ok {
		for len(r.names.knownQ) >= r.cfg.Records {
			delete(r.names.known, r.names.knownQ[0])
			r.names.knownQ = r.names.knownQ[1:]
		}
		r.names.knownQ = append(r.names.knownQ, id)
	}
	r.names.known[id] = name
}

// NameOf returns the name of a node, when a verified record told us: our
// own, a neighbour's, one looked up or stored here.
func (r *Router) NameOf(id identity.NodeID) (string, bool) {
	if id == r.self && r.cfg.Name != "" {
		return r.cfg.Name, true
	}
	name, ok := r.names.known[id]
	return name, ok
}

// LookupName finds the node_id registered under name: ours, one looked up
// lately, else by asking the name's homes in each tree in turn, twice
// round; cb runs on the node's loop, with ErrUnknownName when nobody holds
// the name. (A neighbour's hello is not taken for an answer: the neighbour
// may be the one that lost the name to another node.)
func (r *Router) LookupName(name string, cb func(identity.NodeID, error)) {
	if r.closed {
		cb(identity.NodeID{}, node.ErrClosed)
		return
	}
	if err := ValidName(name); err != nil {
		cb(identity.NodeID{}, err)
		return
	}
	if name == r.cfg.Name {
		cb(r.self, nil)
		return
	}
	if c := r.names.cache[name]; c != nil && r.clk.Now().Before(c.expires) {
		cb(c.id, nil)
		return
	}
	for _, q := range r.names.lookups {
		if q.name == name {
			q.cbs = append(q.cbs, cb)
			return
		}
	}
	if r.names.lookups == nil {
		r.names.lookups = map[uint32]*nameLookup{}
	}
	q := &nameLookup{name: name, cbs: []func(identity.NodeID, error){cb}}
	nonce := r.rng.Uint32()
	r.names.lookups[nonce] = q
	r.stats.NameLookups++
	r.tryNameLookup(nonce, q)
}

func (r *Router) tryNameLookup(nonce uint32, q *nameLookup) {
	n := r.t.Count()
	fail := ErrUnknownName
	if len(r.Addrs()) == 0 {
		fail = ErrNoPosition
		q.tries = 2 * n
	}
	order := r.lookupOrder([]byte(q.name))
	for q.tries < 2*n {
		k := order[q.tries%n]
		q.tries++
		p, ok := r.current(k)
		if !ok {
			continue
		}
		b := binary.BigEndian.AppendUint32([]byte{msgNameLookup}, nonce)
		b = append(b, q.name...)
		r.sendControl(p.TreeState, keyName(q.name, k), false, b)
		q.timer = r.clk.AfterFunc(r.paced(lookupTimeout, 100), func() {
			if r.names.lookups[nonce] == q {
				r.tryNameLookup(nonce, q)
			}
		})
		return
	}
	delete(r.names.lookups, nonce)
	for _, cb := range q.cbs {
		cb(identity.NodeID{}, fail)
	}
}

// onNameLookup answers a lookup that reached the name's home.
func (r *Router) onNameLookup(rp *routed, b []byte) {
	name := string(b[4:])
	reply := append([]byte{msgNameReply}, b[:4]...)
	// The holder: the lower node_id of a stored claim and our own.
	var holder *NameRecord
	if st := r.names.stored[name]; st != nil && r.clk.Now().Sub(st.at) < r.recordLife() {
		holder = &st.rec
	}
	if own := r.ownName(false); own != nil && own.Name == name && (holder == nil || bytes.Compare(own.ID[:], holder.ID[:]) < 0) {
		holder = own
	}
	if holder != nil {
		reply = holder.AppendTo(append(reply, 1))
	} else {
		reply = append(reply, 0)
	}
	r.reply(rp, reply)
}

// onNameReply completes a name lookup, or moves it to the next tree.
func (r *Router) onNameReply(b []byte) {
	nonce := nonceOf(b)
	q := r.names.lookups[nonce]
	if q == nil {
		return
	}
	var rec NameRecord
	if b[4] != 1 || rec.UnmarshalBinary(b[5:]) != nil || rec.Name != q.name || !rec.Verify() || r.revoked(rec.ID) || r.futureDated(rec.Time, r.clk.Now()) {
		clock.Stop(&q.timer)
		r.tryNameLookup(nonce, q)
		return
	}
	clock.Stop(&q.timer)
	delete(r.names.lookups, nonce)
	if r.names.cache == nil {
		r.names.cache = map[string]*cachedName{}
	}
	if _, ok := r.names.cache[rec.Name]; !ok && len(r.names.cache) >= r.cfg.Records {
		r.evictCachedName()
	}
	r.names.cache[rec.Name] = &cachedName{id: rec.ID, expires: r.clk.Now().Add(r.recordLife() / 2)}
	r.learnName(rec.ID, rec.Name)
	for _, cb := range q.cbs {
		cb(rec.ID, nil)
	}
}

// helloName hands our name record to a new neighbour that speaks our
// protocol (one hop).
func (r *Router) helloName(p *peer.Peer) {
	rec := r.ownName(false)
	if rec == nil {
		return
	}
	for _, ep := range p.Endpoints {
		if r.b.SpeaksOurs(ep) {
			r.b.Send(ep, ControlApp, rec.AppendTo([]byte{msgNameHello}), nil)
			return
		}
	}
}

// onNameHello: a neighbour told us its name; it counts only if the
// neighbour is the node the record names.
func (r *Router) onNameHello(m node.Message) {
	var rec NameRecord
	if rec.UnmarshalBinary(m.Blob[1:]) != nil {
		r.stats.Malformed++
		return
	}
	if !m.FromKnown || rec.ID != m.From || !rec.Verify() || r.revoked(rec.ID) || r.futureDated(rec.Time, r.clk.Now()) {
		return
	}
	r.learnName(rec.ID, rec.Name)
}
