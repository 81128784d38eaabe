package route

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// Name lookup [ours]: a node's record (its addresses, signed) is stored at
// the end of the greedy path toward a key address derived from its node_id
// (the deepest existing ancestor of the key in that tree, the only place
// where greedy routing by tree distance can stop), in LookupTrees trees.
// A lookup follows the same path and finds it there; answers are cached.

// keyLevels and keySpan shape key addresses: twelve coordinates of 1..4,
// so keys follow existing branches (most nodes have a few children) before
// they run out, and land across many nodes rather than at the root.
const (
	keyLevels = 12
	keySpan   = 4
)

// keyAddr is where id's record lives in tree k.
func keyAddr(id identity.NodeID, k int) addr.Long {
	return keyOf("mycelium/lookup/v1", id[:], k)
}

// keyOf is the key address of what (in a domain) in tree k: keyLevels
// coordinates of 1..keySpan from SHA-256(domain ‖ what ‖ k).
func keyOf(domain string, what []byte, k int) addr.Long {
	h := sha256.Sum256(append(append([]byte(domain), what...), byte(k)))
	cs := make([]uint8, keyLevels)
	for i := range cs {
		cs[i] = 1 + h[i]%keySpan
	}
	a, _ := addr.EncodeLong(cs)
	return a
}

type storedRecord struct {
	rec Record
	at  time.Time
	// ts is the epoch whose greedy path brought it here; handed: we have
	// passed it on to a home nearer its key since (handOff).
	ts     uint8
	handed bool
}

type cachedRecord struct {
	d       Destination
	expires time.Time
	// cert is the proxy certificate the record rested on (nil: none): a
	// revocation of it drops the entry.
	cert *revoke.ProxyCert
}

type lookupReq struct {
	id    identity.NodeID
	cbs   []func(Destination, error)
	tries int
	start time.Time
	timer interface{ Stop() bool }
	// fallback is an unvouched proxy record found for a node_id that is a
	// key (a reference board's, or a forgery for a node of ours whose own
	// record was not at that home): the other homes of the lookup trees,
	// in their current and previous epochs, are asked (extra: the asks
	// left) for a record the node vouches for before it is taken. After a
	// new term a node re-registers over the term spread, and until then
	// only the previous epoch's homes may hold its own record: a forgery
	// sent to the new homes is all the current epoch has.
	fallback *Record
	extra    int
	// deadline, when set, ends the lookup (a refresh: refreshLookup)
	// instead of a round of the trees and lookupPatience.
	deadline time.Time
	// failed (a refresh): the addresses the send had, which failed.
	failed []TreeAddr
}

// lookupTimeout bounds one lookup attempt (a round trip over the mesh);
// lookupPatience is how long a lookup keeps trying; a record not found yet
// is asked for again after lookupAgain. (On a slow link each is paced:
// 100, 1,000 and 50 airtimes of a full frame at least.)
const (
	lookupTimeout  = 10 * time.Second
	lookupPatience = 3 * time.Minute
	lookupAgain    = 5 * time.Second
)

// Registration waits for our positions to be quiet for RegisterQuiet
// (they change in bursts: an epoch moves every node at once, and at a cold
// start the trees form one after another), but no longer than RegisterMax
// after the first change, and spreads over RegisterSpread more: the
// records of a whole mesh head for the same few homes. (On a slow link the
// spread is 300 airtimes of a full frame at least: six minutes on LoRa,
// or a mesh's registrations would crowd its air.) A change that only
// adds addresses (a tree formed) leaves the registered record good, so it
// waits RegisterMax: only a record with a stale address is urgent. These
// are the defaults of Config's fields.
//
// A record still good (a new term moved its homes, the addresses in it
// route one epoch more, and lookups ask the previous epoch's homes too)
// is spread over goodPeriods claim periods instead (at most a sixth of a
// term, at least goodSpread airtimes of a full frame): a whole mesh
// re-registers at each new term, and the ways to the homes meet at the
// few relays round the roots. Crowded into a minute (ESP-NOW) or an hour
// (LoRa), the collisions there and the MAC's, the sequences' and the
// registrations' retries cost those relays more than the records
// themselves: on ESP-NOW (random 1,000, seed 1) the busiest node spent
// 2.7 % of its time on the air, 1.9 % of it sending registrations; spread
// over 4 periods (80 s), 0.99 % (seeds 1-3: 0.87 to 0.99 %; 6 periods
// gave 0.53 to 0.91 %, but more LoRa meshes past their budget). On LoRa the claim period is an hour and
// the spread 4 hours; spread over 17 hours or more, lookups made while
// most records were still on their way failed (previous-epoch homes did
// not always answer: delivery fell to 48-95 % a seed).
const (
	goodPeriods    = 4
	goodSpread     = 4000
	registerQuiet  = 10 * time.Second
	registerMax    = time.Minute
	registerSpread = 20 * time.Second
)

// scheduleRegister registers our record once our positions settle.
func (r *Router) scheduleRegister() {
	now := r.clk.Now()
	repair := r.repairEpoch()
	held := r.leases.registeredAll()
	if held && len(r.staleHomes()) == 0 {
		// Every home holds a record of ours that stands (staleHomes),
		// and every leaseholder whose record is ours to register has it
		// registered. They are sent again when an address in them is
		// about to go (the tree's next epoch calls us again), or to
		// refresh them before the homes forget them (refreshTmr). (A
		// leaseholder that came since, or came back, has no record of
		// ours yet: it was found by nobody, or at the proxy it had left,
		// until the refresh.)
		return
	}
	if r.regTmr == nil {
		r.regFirst = now
	} else {
		r.regTmr.Stop()
	}
	quiet, spread := r.cfg.RegisterQuiet, r.cfg.RegisterSpread
	switch {
	case repair:
		// A tree renewed early because a failure broke it: our address
		// there still stands, but the way to it may not. The new one
		// must be found soon (senders use what the record says).
		quiet, spread = quiet/2, spread/2
	case r.recordGood() && held:
		quiet = r.cfg.RegisterMax
		spread = r.paced(spread, goodSpread)
		if len(r.registered) >= len(r.Addrs()) {
			// No tree was added: a new term (or the refresh) moves a
			// whole mesh's records at once. (A tree added is a mesh
			// forming: its records are wanted soon.)
			spread = max(spread, r.termSpread())
		}
	}
	spread = r.paced(spread, 300)
	// (A call draws the spread again: calls that come faster than the
	// spread put the registration off while they come. Position changes
	// come in bursts, and a record registered after the burst holds all
	// of it; a call must change something, or it starves the
	// registration: see onLeaseRequest.)
	wait := min(quiet, r.regFirst.Add(r.cfg.RegisterMax).Sub(now))
	wait = max(wait, 0) + time.Duration(r.rng.Int64N(int64(r.busyPaced(spread))))
	r.regTmr = r.clk.AfterFunc(wait, func() {
		r.regTmr = nil
		r.register()
	})
}

// termSpread is how long a mesh's re-registrations after a new term are
// spread over: goodPeriods claim periods, at most a sixth of a term (the
// records must be at their new homes long before the next one).
func (r *Router) termSpread() time.Duration {
	c := r.t.Config()
	d := goodPeriods * c.ClaimPeriod
	if c.EpochPeriods > 0 {
		d = min(d, time.Duration(c.EpochPeriods)*c.ClaimPeriod/6)
	}
	return d
}

// home is what one lookup tree's home holds of our record: the epoch of
// the tree it was stored in, the addresses it names and when it was
// signed.
//
// A new term of one lookup tree moves that tree's home alone [ours]: the
// other lookup tree's home still holds a record that stands (its address
// in the renewed tree is of the previous epoch, which routes one epoch
// more, and that home gets a new record at its own tree's next term,
// within a cycle). Only the moved home is sent one: sending the record to
// every home at each lookup tree's new term registered each record
// twice a cycle in each lookup tree, and on clustered meshes the relays
// of the chains between towns carried those registrations to the homes
// in other towns: at 1,000 nodes the busiest of them spent 1.2-2.3 % of
// the time on the air, about two thirds of it on registrations and their
// confirmations (docs/routing-notes.md, "h39onehome").
type home struct {
	ts    uint8
	addrs []TreeAddr
	at    time.Time
}

// homeAge is how old a home's record may grow before it is stored again
// (refreshTmr): three quarters of its life, so that the homes of a tree
// that renews every cycle get the record of its new term first, and a
// record that is refreshed still has a quarter of its life to reach its
// home in.
func (r *Router) homeAge() time.Duration { return r.recordLife() * 3 / 4 }

// staleHomes lists the lookup trees whose home wants our record again:
// there is none yet (a tree added, or one that now takes our records:
// lookupOrder), it is of another epoch than the tree's current one (a new
// term moved the key's home: a lookup must find the record at the new
// one), it names an address no longer ours (current or previous epoch)
// or a repaired tree's replaced epoch (repairAddrs), it lacks a tree we
// are in (namesAll), or it is older than homeAge.
func (r *Router) staleHomes() []int {
	var stale []int
	now := r.clk.Now()
	sent := 0
	for _, k := range r.lookupOrder(r.self[:]) {
		if sent == r.lookupTrees() {
			break
		}
		p, ok := r.current(k)
		if !ok {
			continue
		}
		sent++
		h, ok := r.homes[k]
		if !ok || h.ts != p.TreeState || now.Sub(h.at) >= r.homeAge() || !r.addrsGood(h.addrs) || r.repairAddrs(h.addrs) || !r.namesAll(h.addrs) {
			stale = append(stale, k)
		}
	}
	return stale
}

// repairEpoch reports whether a tree in which a record of ours at a home
// names an address has since started a term early (repairAddrs).
func (r *Router) repairEpoch() bool {
	return len(r.homes) > 0 && !r.everyHome(func(addrs []TreeAddr) bool { return !r.repairAddrs(addrs) })
}

// everyHome reports whether ok holds for the addresses of the record of
// ours at every home (false before we registered one: the record we
// registered last is at the homes it was sent to, so it is among them).
func (r *Router) everyHome(ok func([]TreeAddr) bool) bool {
	if len(r.homes) == 0 {
		return false
	}
	for _, h := range r.homes {
		if !ok(h.addrs) {
			return false
		}
	}
	return true
}

// repairAddrs reports whether a tree in which addrs name an address has
// since started a term early (a renewal after a failure: the term it
// replaced ran less than its EpochPeriods claims) while they still name
// the old one.
func (r *Router) repairAddrs(addrs []TreeAddr) bool {
	c := r.t.Config()
	if c.EpochPeriods <= 0 {
		return false
	}
	full := time.Duration(c.EpochPeriods-1) * c.ClaimPeriod
	for _, a := range addrs {
		cur, ok := r.t.Current(int(a.Tree))
		prev, okPrev := r.t.Previous(int(a.Tree))
		if !ok || !okPrev || cur.TreeState == a.TreeState || prev.TreeState != a.TreeState {
			continue
		}
		if time.Duration(cur.Term-prev.Term) < full {
			return true
		}
	}
	return false
}

// Registered reports whether the record stored under our name is complete
// and confirmed: it names an address of ours in every tree we have one in
// (holdsAll), every address it names is still ours, and the homes in the
// lookup trees said they stored it.
func (r *Router) Registered() bool {
	if !r.recordGood() || !r.holdsAll() {
		return false
	}
	for key := range r.regs {
		if key.id == r.self {
			return false
		}
	}
	return true
}

// recordGood reports whether every address of the records of ours at
// the homes is still ours (current or previous epoch: both route).
func (r *Router) recordGood() bool { return r.everyHome(r.addrsGood) }

// addrsGood reports whether every address of addrs is still ours
// (current or previous epoch).
func (r *Router) addrsGood(addrs []TreeAddr) bool {
	for _, a := range addrs {
		p, ok := r.position(a.TreeState)
		if !ok || !p.Addr.SameHolder(a.Addr) {
			return false
		}
	}
	return true
}

// register stores our record at the homes that want it (staleHomes),
// and those of nodes we proxy for.
func (r *Router) register() {
	now := r.clk.Now()
	rec := Record{ID: r.self, Signer: r.self, Time: now.UnixNano(), Addrs: r.Addrs()}
	if len(rec.Addrs) == 0 || r.leases.leaf {
		return // (a leaf's record is its proxy's to register)
	}
	if stale := r.staleHomes(); len(stale) > 0 {
		rec.Sign(r.b.Signer())
		r.registered = rec.Addrs
		r.regAt = now
		r.storeLookup(rec, stale)
	}
	// Refresh before the homes forget it (a record lives recordLife):
	// when the oldest home's record reaches homeAge.
	oldest := now
	for _, h := range r.homes {
		if h.at.Before(oldest) {
			oldest = h.at
		}
	}
	clock.Stop(&r.refreshTmr)
	r.refreshTmr = r.clk.AfterFunc(max(oldest.Add(r.homeAge()).Sub(now), 0), func() {
		r.refreshTmr = nil
		r.scheduleRegister()
	})
	for _, lr := range r.leases.records(r) {
		r.storeLookup(lr, nil)
	}
	r.registerName()
}

// A record registered in a term a failure started is not stored again on
// a timer while the tree fills in [ours]: the home that moves as nodes
// nearer the key get their places hands it on (handOff), and the node
// registers again when its own addresses change. Stored again two and
// four claim periods on (as it was, for every node of a repair), the
// mesh's registrations after a kill of a tenth of 1,000 nodes (seed 4)
// were 3,713 in five minutes instead of 2,147, their hops 210,452
// instead of 121,229, and the relays round the roots refused 10,083
// hops "too many sends waiting" instead of 5,195: the lookups that
// failed three claim periods on were dropped at those relays
// (docs/routing-notes.md, "h17repair").

// refreshFillPeriods bounds, in claim periods, how long after a term a
// failure started a node's record may take to reach its new homes (the
// tree filling in under it), for refreshPatience.
const refreshFillPeriods = 5

// lookupFirst is the tree a record's lookup order starts from: one of n
// by SHA-256("mycelium/lookup/order/v1" ‖ what).
func lookupFirst(what []byte, n int) int {
	if n <= 1 {
		return 0
	}
	h := sha256.Sum256(append([]byte("mycelium/lookup/order/v1"), what...))
	return int(binary.BigEndian.Uint32(h[:4]) % uint32(n))
}

func (r *Router) lookupTrees() int { return min(r.cfg.LookupTrees, r.t.Count()) }

// lookupOrder is every tree, in the order the records of what (a node_id,
// or a name: lookupFirst) are stored in and looked up by: first the trees
// whose root no earlier tree shares, in tree order from the tree what's
// hash picks, round, then the others. Two trees under one root are one tree
// twice (breadth-first from the same node: the same depths, the same
// homes), and the second lookup tree is there to be another way: on a
// line of 200 (seed 1) trees 0 and 1 share their root near one end
// (their salts agree in 7 bits), the nodes more than 128 levels from it
// have no place in either, and their lookups of every record stored
// there failed ("no address known") after asking the other trees for
// three minutes: half the lookups the line sent (2,437 of 4,816), whose
// load on the relays also lost receipts (docs/routing-notes.md, "line"). A node whose trees
// disagree with another's (a root not yet known, or changing) stores
// and asks in other trees first; lookups still end by asking every
// tree. (docs/protocol.md, "Name lookup".)
//
// The first tree is what's own (lookupFirst): in one fixed order every
// record of the mesh went to the homes of trees 0 and 1, by ways that
// meet round those two roots, whose relays carried the whole mesh's
// registrations and their confirmations at every new term. At 2,000
// nodes (random, seed 1) their queues toward the next hop filled (12,117
// hops refused "too many sends waiting" while the trees formed, none at
// 1,000) and the registrations lost there were sent again: more resends
// than first sends. Spread over every tree, each root's relays carry a
// third of that (six trees).
func (r *Router) lookupOrder(what []byte) []int {
	n := r.t.Count()
	order := make([]int, 0, n)
	var roots [][]byte
	var later []int
	first := lookupFirst(what, n)
	for i := range n {
		k := (first + i) % n
		root, _ := r.t.Root(k)
		shared := false
		for _, o := range roots {
			if root != nil && bytes.Equal(o, root) {
				shared = true
				break
			}
		}
		if shared {
			later = append(later, k)
			continue
		}
		if root != nil {
			roots = append(roots, root)
		}
		order = append(order, k)
	}
	return append(order, later...)
}

// storeLookup sends a record toward its keys in the lookup trees (those
// of only, if it is not nil), and again until the node that stores it
// confirms (a routed message can be lost on the way; a name nobody can
// find is a node nobody can reach).
func (r *Router) storeLookup(rec Record, only []int) {
	sent := 0
	var lookup []int
	for _, k := range r.lookupOrder(rec.ID[:]) {
		if sent == r.lookupTrees() {
			break
		}
		if _, ok := r.current(k); !ok {
			continue // lookups try the next trees too
		}
		sent++
		lookup = append(lookup, k)
		if only != nil && !slices.Contains(only, k) {
			continue
		}
		if rec.ID == r.self {
			p, _ := r.current(k)
			if r.homes == nil {
				r.homes = map[int]home{}
			}
			r.homes[k] = home{ts: p.TreeState, addrs: rec.Addrs, at: r.clk.Now()}
		}
		key := regKey{id: rec.ID, tree: k}
		if old := r.regs[key]; old != nil {
			clock.Stop(&old.timer)
		}
		if r.regs == nil {
			r.regs = map[regKey]*regState{}
		}
		st := &regState{rec: rec}
		r.regs[key] = st
		r.sendRegister(key, st)
	}
	if rec.ID == r.self {
		// A tree that no longer takes our records (we left it, or
		// lookupOrder moved on) holds no home of ours we keep.
		maps.DeleteFunc(r.homes, func(k int, _ home) bool { return !slices.Contains(lookup, k) })
	}
}

// regKey names one registration: a record in one tree.
type regKey struct {
	id   identity.NodeID
	tree int
}

// regState is a registration waiting for its confirmation.
type regState struct {
	rec    Record
	tries  int // in this round
	rounds int // rounds of registerTries that went unconfirmed
	timer  clock.Timer
}

// registerTries bounds the attempts of one round of a registration; they
// are spaced by registerRetry (200 airtimes of a full frame at least),
// doubling up to four times that. A round that goes unconfirmed is
// followed by another after registerPause.
const (
	registerTries = 8
	registerRetry = 15 * time.Second
)

// registerPause is the wait before a registration's next round, after
// rounds went unconfirmed: a claim period, doubling up to eight. A record
// given up on would be stored nowhere until our addresses next change
// (the next term: two weeks on LoRa), and no one could find us; while a
// mesh forms, the way to a home can fail at every try of a round (a relay
// on it not yet proven to the next, which refuses what it routes). On
// LoRa 1-2 % of lookups failed so, the node counted as registered.
// Busy air lengthens it, and a try's wait, up to BusyMaxWait while the
// spell lasts (afterPaced).
func (r *Router) registerPause(rounds int) time.Duration {
	return r.t.Config().ClaimPeriod << min(rounds-1, 3)
}

func (r *Router) sendRegister(key regKey, st *regState) {
	p, ok := r.current(key.tree)
	if !ok {
		delete(r.regs, key)
		return
	}
	if st.tries >= registerTries {
		st.tries = 0
		st.rounds++
		r.afterPaced(&st.timer, r.registerPause(st.rounds), func() {
			if r.regs[key] == st {
				r.sendRegister(key, st)
			}
		})
		return
	}
	st.tries++
	r.sendControl(p.TreeState, keyAddr(st.rec.ID, key.tree), false, st.rec.AppendTo([]byte{msgRegister}))
	r.afterPaced(&st.timer, r.paced(registerRetry, 200)<<min(st.tries-1, 2), func() {
		if r.regs[key] == st {
			r.sendRegister(key, st)
		}
	})
}

// onRegistered: the node at a key stored our record.
func (r *Router) onRegistered(rp *routed, b []byte) {
	if len(b) != 40 {
		return
	}
	var id identity.NodeID
	copy(id[:], b[:32])
	at := int64(binary.BigEndian.Uint64(b[32:]))
	key := regKey{id: id, tree: tree.TreeOf(rp.Header.TreeState)}
	if rp.Path != nil {
		key.tree = int(rp.Path.dst[0].Tree) // (the header names the nearest of the addresses)
	}
	if st := r.regs[key]; st != nil && st.rec.Time == at {
		clock.Stop(&st.timer)
		delete(r.regs, key)
	}
}

// onRegister stores a record that reached its key, and confirms it.
func (r *Router) onRegister(rp *routed, b []byte) {
	var rec Record
	if rec.UnmarshalBinary(b) != nil {
		r.stats.Malformed++
		return
	}
	if !rec.Verify() {
		return
	}
	now := r.clk.Now()
	old := r.records[rec.ID]
	if r.futureDated(rec.Time, now) {
		r.stats.RecordsRefused++
		return // not confirmed: its sender keeps trying, and is refused again
	}
	defer func() {
		ack := append([]byte{msgRegistered}, rec.ID[:]...)
		ack = binary.BigEndian.AppendUint64(ack, uint64(rec.Time))
		r.reply(rp, ack)
	}()
	if !r.admitRecord(&rec, old, now) {
		return
	}
	if old == nil && len(r.records) >= r.cfg.Records {
		r.evictRecord()
	}
	ts := rp.Header.TreeState
	if rp.Path != nil && len(rp.Path.dst) > 0 {
		ts = rp.Path.dst[0].TreeState
	}
	r.records[rec.ID] = &storedRecord{rec: rec, at: r.clk.Now(), ts: ts}
}

// handOff passes the records we keep on toward their keys when nb, a
// neighbour whose place in tree k's current epoch just became known, is
// the first nearer one of their keys than we are: we were the end of the
// key's greedy path, where lookups stop, and no longer are. A record is
// stored where its greedy path ended when it came, and a tree fills in
// over a while (on LoRa, hours for the deepest places of a new term): one
// stored before the nodes nearer its key had their places was found by no
// lookup until its node registered again (on LoRa 0.1-0.3 % of lookups
// failed so). Our copy stays (lookups already on their way). The record
// goes as a registration (the node signed it; the answer comes back to us
// and is dropped).
func (r *Router) handOff(k int, nb tree.Neighbor) {
	if len(r.records) == 0 {
		return
	}
	self, ok := r.t.Current(k)
	if !ok {
		return
	}
	m := metric(false)
	nbrs := r.t.Neighbors(k, self.TreeState)
	var ids []identity.NodeID
	for id, s := range r.records {
		// Only records the greedy paths of this epoch brought (the others'
		// nodes register anew in it), not passed on yet.
		if s.ts == self.TreeState && !s.handed {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b identity.NodeID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		s := r.records[id]
		key := keyAddr(id, k)
		mine := m.RouteKey(self.Addr, key)
		if m.RouteKey(nb.Addr, key) >= mine {
			continue
		}
		nearer := false
		for _, o := range nbrs {
			if o.Via != nb.Via && m.RouteKey(o.Addr, key) < mine {
				nearer = true
				break
			}
		}
		if nearer || !r.live(s.rec) {
			continue // not (or no longer) ours to keep for this key
		}
		s.handed = true
		r.stats.HandOffs++
		r.sendControl(self.TreeState, key, false, s.rec.AppendTo([]byte{msgRegister}))
	}
}

// recordLife is how long a record stays good: two epochs of tree 0.
func (r *Router) recordLife() time.Duration {
	c := r.t.Config()
	periods := c.EpochPeriods
	if periods <= 0 {
		periods = 15
	}
	return 2 * time.Duration(periods) * c.ClaimPeriod
}

func (r *Router) evictRecord() {
	var oldest identity.NodeID
	var at time.Time
	first := true
	for id, s := range r.records {
		if first || s.at.Before(at) || (s.at.Equal(at) && bytes.Compare(id[:], oldest[:]) < 0) {
			oldest, at, first = id, s.at, false
		}
	}
	delete(r.records, oldest)
}

// HasRecord reports whether this node stores id's name record.
func (r *Router) HasRecord(id identity.NodeID) bool { return r.records[id] != nil }

// Lookup finds a node's addresses: itself, a neighbour (from the trees),
// the cache, or a lookup over the mesh; cb runs on the node's loop.
func (r *Router) Lookup(id identity.NodeID, cb func(Destination, error)) {
	r.lookup(id, time.Time{}, nil, cb)
}

// refreshLookup is Lookup for a node whose record we had, and whose
// addresses from it just failed (Send): it asks over the mesh for no
// longer than refreshPatience, and fails with ErrUnknownNode then.
//
// A record naming the very addresses that failed, none of them in an
// epoch current here, is taken as not there yet [ours]: the trees renewed
// since it was stored (a failure's repair, or a term's end), the node
// registers anew in them soon (every node does after a new term), and its
// previous-epoch addresses route by trees whose ways may end at the dead.
// At 1,000 nodes after killing a tenth (seed 6), three of the four sends
// that ended "no receipt" three claim periods on had found such a record,
// tried it four times for two minutes, and found the same again at once
// when they looked afresh, while their destination had registered its
// new addresses. (A node that is gone is found so until the refresh's
// deadline, and its send ends then, with its own error.)
func (r *Router) refreshLookup(id identity.NodeID, failed []TreeAddr, cb func(Destination, error)) {
	r.lookup(id, r.clk.Now().Add(r.refreshPatience()), failed, cb)
}

// refreshPatience is how long a lookup for a node whose addresses failed
// keeps asking: long enough for a node that moved (its addresses changed)
// to have stored its new record at its homes, and one lookup's round trip
// more. A node registers at most RegisterMax after its first change, plus
// its spread (a new term's spread over termSpread at most), and a record
// of a term a failure started reaches its new homes within
// refreshFillPeriods claim periods (register); the configuration is the
// mesh's, ours. Never longer than lookupPatience. (Claims every second,
// as in the lab: 2 s + 4 s + 5 s + 10 s, 21 s; the defaults on ESP-NOW
// reach lookupPatience.)
func (r *Router) refreshPatience() time.Duration {
	reg := r.cfg.RegisterMax + r.paced(max(r.cfg.RegisterSpread, r.termSpread()), 300)
	follow := refreshFillPeriods * r.t.Config().ClaimPeriod
	return min(r.paced(lookupPatience, 1000), reg+follow+r.paced(lookupTimeout, 100))
}

func (r *Router) lookup(id identity.NodeID, deadline time.Time, failed []TreeAddr, cb func(Destination, error)) {
	if r.closed {
		cb(Destination{}, node.ErrClosed)
		return
	}
	now := r.clk.Now()
	if id == r.self {
		cb(Destination{ID: id, Addrs: r.Addrs()}, nil)
		return
	}
	if r.cfg.Revocations != nil && r.cfg.Revocations.Revoked(id) {
		// No record of it would be believed: fail now, not after every
		// tree was asked in vain.
		cb(Destination{}, ErrRevoked)
		return
	}
	if d, ok := r.neighbourDest(id); ok {
		cb(d, nil)
		return
	}
	if c := r.cache[id]; c != nil && r.revokedCached(id, c) {
		delete(r.cache, id)
	}
	if c := r.cache[id]; c != nil && now.Before(c.expires) {
		r.stats.LookupHits++
		cb(c.d, nil)
		return
	}
	for _, q := range r.lookups {
		// A refresh neither joins a lookup with the full patience nor
		// is joined by one: each ends when it should.
		if q.id == id && q.deadline.Equal(deadline) {
			q.cbs = append(q.cbs, cb)
			return
		}
	}
	q := &lookupReq{id: id, cbs: []func(Destination, error){cb}, deadline: deadline, failed: failed}
	nonce := r.rng.Uint32()
	r.lookups[nonce] = q
	r.stats.Lookups++
	r.tryLookup(nonce, q)
}

// more reports whether lookup q asks again: a refresh until its deadline;
// any other for a round of every tree at least, and while a node just
// starting may not have registered yet (it waits for its addresses to
// settle), for lookupPatience.
func (r *Router) more(q *lookupReq) bool {
	now := r.clk.Now()
	if !q.deadline.IsZero() {
		return now.Before(q.deadline)
	}
	return q.tries < 2*r.lookupTrees()+r.t.Count() || now.Sub(q.start) < r.paced(lookupPatience, 1000)
}

// lookupWait is a lookup's wait for d (an answer, or the time to ask
// again), a refresh's cut at its deadline.
func (r *Router) lookupWait(q *lookupReq, d time.Duration) time.Duration {
	if !q.deadline.IsZero() {
		d = max(min(d, q.deadline.Sub(r.clk.Now())), 0)
	}
	return d
}

func (r *Router) tryLookup(nonce uint32, q *lookupReq) {
	// The trees holding records are asked in turn, in their current epoch
	// and then in the previous one (a tree that renewed its term moved the
	// key's home; the old home keeps the record until the node registers
	// at the new one), then every tree (a node without an address in one of
	// the first trees registered in the next), then round again: a record
	// may be on its way (nodes register when their addresses settle).
	n, l := r.t.Count(), r.lookupTrees()
	order := r.lookupOrder(q.id[:])
	r.newestFirst(order[:min(l, len(order))])
	if q.start.IsZero() {
		q.start = r.clk.Now()
	}
	if q.fallback != nil {
		if q.extra == 0 {
			r.completeLookup(nonce, q, *q.fallback)
			return
		}
		q.extra--
	}
	skipped := 0
	for r.more(q) {
		round := q.tries % (2*l + n)
		q.tries++
		var p tree.Position
		var ok bool
		var k int
		switch {
		case round < l:
			k = order[round]
			p, ok = r.current(k)
		case round < 2*l:
			k = order[round-l]
			p, ok = r.t.Previous(k)
		default:
			k = round - 2*l
			p, ok = r.current(k)
		}
		if !ok {
			if skipped++; skipped >= 2*l+n {
				// No address in any tree (yet): nothing to ask through.
				q.timer = r.clk.AfterFunc(r.lookupWait(q, r.paced(lookupAgain, 50)), func() {
					if r.lookups[nonce] == q {
						r.tryLookup(nonce, q)
					}
				})
				return
			}
			continue
		}
		b := append([]byte{msgLookup}, q.id[:]...)
		b = append(b, byte(nonce>>24), byte(nonce>>16), byte(nonce>>8), byte(nonce))
		if !q.deadline.IsZero() {
			// A refresh: the addresses we had failed, and a relay's copy
			// (answerOnPath) may be what we had. Only a home answers.
			b = append(b, lookupHomeOnly)
		}
		r.sendControl(p.TreeState, keyAddr(q.id, k), false, b)
		q.timer = r.clk.AfterFunc(r.lookupWait(q, r.paced(lookupTimeout, 100)), func() {
			if r.lookups[nonce] == q {
				r.tryLookup(nonce, q)
			}
		})
		return
	}
	if q.fallback != nil {
		r.completeLookup(nonce, q, *q.fallback)
		return
	}
	delete(r.lookups, nonce)
	for _, cb := range q.cbs {
		cb(Destination{}, ErrUnknownNode)
	}
}

// newestFirst orders the lookup trees by their current terms, the
// latest first [ours]: a node sends its record to a lookup tree's home
// at that tree's new term alone (home), so the home of the tree that
// renewed last holds the newest record, whose addresses are of the
// current epochs of more trees. A record naming the previous epochs of
// most trees routes longer on dense meshes (h36prev): asked in a fixed
// order, the lookups found records naming 3-5 of six trees' previous
// epochs (docs/routing-notes.md, "h39onehome"). A tree we have no
// place in goes last.
func (r *Router) newestFirst(trees []int) {
	term := func(k int) int64 {
		if p, ok := r.current(k); ok {
			return p.Term
		}
		return math.MinInt64
	}
	slices.SortStableFunc(trees, func(a, b int) int { return cmp.Compare(term(b), term(a)) })
}

// ErrRevoked: an operator revoked the node's key (Config.Revocations).
var ErrRevoked = errors.New("route: the node's key is revoked by its operator")

// ErrUnknownNode: no lookup found the node.
var ErrUnknownNode = errors.New("route: no address known for that node")

// neighbourDest builds a neighbour's destination from what the trees know.
func (r *Router) neighbourDest(id identity.NodeID) (Destination, bool) {
	d := Destination{ID: id}
	for k := range r.t.Count() {
		p, ok := r.t.Current(k)
		if !ok {
			continue
		}
		for _, nb := range r.t.Neighbors(k, p.TreeState) {
			if nb.ID == id {
				d.Addrs = append(d.Addrs, TreeAddr{Tree: uint8(k), TreeState: p.TreeState, Addr: nb.Addr})
				break
			}
		}
	}
	return d, len(d.Addrs) > 0
}

// onLookup answers a lookup that reached the key's home.
func (r *Router) onLookup(rp *routed, b []byte) {
	if len(b) != 36 && len(b) != 37 {
		return
	}
	var id identity.NodeID
	copy(id[:], b[:32])
	reply := append([]byte{msgLookupReply}, b[32:36]...)
	if s := r.records[id]; s != nil && r.revokedRecord(&s.rec) {
		delete(r.records, id) // revoked since it was stored: dropped, not served
	}
	if s := r.records[id]; s != nil && r.clk.Now().Sub(s.at) < r.recordLife() && r.live(s.rec) {
		reply = append(reply, 1)
		reply = s.rec.AppendTo(reply)
	} else if id == r.self {
		rec := Record{ID: r.self, Signer: r.self, Time: r.clk.Now().UnixNano(), Addrs: r.Addrs()}
		rec.Sign(r.b.Signer())
		reply = rec.AppendTo(append(reply, 1))
	} else {
		reply = append(reply, 0)
	}
	r.reply(rp, reply)
}

// onLookupReply completes a lookup.
func (r *Router) onLookupReply(b []byte) {
	if len(b) < 5 {
		return
	}
	nonce := nonceOf(b)
	q := r.lookups[nonce]
	if q == nil {
		return
	}
	var rec Record
	if b[4] != 1 || rec.UnmarshalBinary(b[5:]) != nil || rec.ID != q.id || !rec.Verify() || r.revokedRecord(&rec) || !r.live(rec) || r.futureDated(rec.Time, r.clk.Now()) || !r.stands(&rec) || r.staleAgain(q, &rec) {
		// Not there (yet), or only at addresses of epochs gone by (a
		// record from before the node re-registered): ask again a little
		// later.
		if q.timer != nil {
			q.timer.Stop()
		}
		if q.fallback != nil {
			// Asking the other homes for the node's own: the next at
			// once (tryLookup takes the fallback when none is left).
			r.tryLookup(nonce, q)
			return
		}
		q.timer = r.clk.AfterFunc(r.lookupWait(q, r.paced(lookupAgain, 50)), func() {
			if r.lookups[nonce] == q {
				r.tryLookup(nonce, q)
			}
		})
		return
	}
	if q.timer != nil {
		q.timer.Stop()
	}
	if rec.Signer != rec.ID && rec.Deleg == nil && canSign(rec.ID) {
		// No delegation vouches for it, and the node could have signed
		// its own: before it is taken, the lookup trees' other homes
		// (current and previous epochs) are asked for one.
		if q.fallback == nil {
			q.extra = 2*r.lookupTrees() - 1
		}
		if q.fallback == nil || rec.Time > q.fallback.Time {
			q.fallback = &rec
		}
		r.tryLookup(nonce, q)
		return
	}
	r.completeLookup(nonce, q, rec)
}

// staleAgain reports whether rec, the answer to refresh q, names the
// addresses that failed, none in an epoch current here (refreshLookup).
func (r *Router) staleAgain(q *lookupReq, rec *Record) bool {
	return q.failed != nil && slices.Equal(rec.Addrs, q.failed) && !r.inCurrent(*rec)
}

// stands reports whether a record in a lookup's answer holds as a home
// would store it (its delegation or certificate; a keyless board's proxy
// record with no certificate where CertifiedProxies is set).
func (r *Router) stands(rec *Record) bool {
	_, ok := r.standing(rec, r.clk.Now())
	return ok
}

// completeLookup ends a lookup with rec.
func (r *Router) completeLookup(nonce uint32, q *lookupReq, rec Record) {
	if q.timer != nil {
		q.timer.Stop()
	}
	delete(r.lookups, nonce)
	d := Destination{ID: rec.ID, Addrs: rec.Addrs}
	if rec.Signer != rec.ID {
		// A delegated proxy's signed receipts count as the node's; an
		// unvouched proxy's record is a board's, which cannot sign.
		if rec.Deleg != nil {
			d.Proxy = rec.Signer
		}
		d.Unvouched = rec.Deleg == nil
	}
	r.cache[rec.ID] = &cachedRecord{d: d, expires: r.clk.Now().Add(r.recordLife() / 2), cert: rec.Cert}
	r.keepRelayed(rec)
	for _, cb := range q.cbs {
		cb(d, nil)
	}
}

// current is this node's position in the current epoch of tree k: its
// own, or for a leaf, the lease its proxy gave it there (a leaf looks names
// up like anyone; the lookup leaves through its proxy).
func (r *Router) current(k int) (tree.Position, bool) {
	if p, ok := r.t.Current(k); ok {
		return p, true
	}
	for _, a := range r.leases.own {
		if int(a.Tree) == k {
			return r.leases.position(a.TreeState)
		}
	}
	return tree.Position{}, false
}

// live reports whether rec names an address in an epoch this node is in
// (current or previous, by its own position or a lease): homes change from
// epoch to epoch, and a home may still hold a record from an epoch since
// retired, which leads nowhere.
func (r *Router) live(rec Record) bool {
	for _, a := range rec.Addrs {
		if _, ok := r.position(a.TreeState); ok {
			return true
		}
	}
	return false
}
