package route

import (
	"bytes"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// Lookups answered on the way [ours]. A key's home is the end of the
// greedy path toward its key address, and on a tall tree (a line, a long
// chain of rooms) the keys of every node end at or next to the root: every
// lookup of the mesh, and its answer, crosses the few relays round it. On
// a line of 100 nodes, 1,000 lookups in 100 s filled those relays' send
// queues ("too many sends waiting"), lookups timed out and were asked
// again into the same queues, and 25-30 % of the pairs were never
// delivered where the root was far from the middle.
//
// So a relay keeps the records that lookup answers carried through it (and
// those its own lookups found), verified as the asker would take them, for
// a while (relayedLife), and answers a lookup that reaches it with one it
// holds, rather than passing the lookup on. The lookups of a busy
// destination then stop near their askers; the home still answers the
// first, and any that meet no relay that holds the record.
//
// A relay could always answer a lookup passing through it with any record
// of the node it had seen (the record is signed; the asker checks it as
// it checks the home's), so this gives a relay no power it lacked. It
// answers only with a record naming an address in a current epoch of its
// own (a record from before a tree renewed is left to the home, which
// the node registered with anew), and only for relayedLife. It keeps
// only records the node signed, itself or by a delegation: anyone can
// make an unvouched proxy record and route it past a relay in an answer,
// and which of those holds is for the homes to rank. A newer record
// replaces an older one; one no newer than what we hold is dropped
// before it is verified (an answer routed past us costs one signature
// check at most).

// relayedRecord is a record a lookup's answer carried through us.
type relayedRecord struct {
	rec Record
	at  time.Time
}

// relayedLife is how long a relayed record answers lookups (at least 1,000
// airtimes of a full frame): a lookup's patience. A node whose addresses
// moved registers again, and its homes answer the new record at once;
// a relay's copy outlives that by no more than this.
const relayedLife = 3 * time.Minute

// onPath handles a routed Package passing through us (not ours) before it
// is routed on: a lookup's answer is kept, and a lookup we can answer is
// answered here. It reports whether the Package was consumed.
func (r *Router) onPath(rp *routed) bool {
	if rp.Header.Error || !isControl(&rp.Inner) {
		return false
	}
	b := rp.Inner.Blob
	switch b[0] {
	case msgLookupReply:
		if len(b) > 6 && b[5] == 1 {
			var rec Record
			if rec.UnmarshalBinary(b[6:]) == nil {
				r.keepRelayed(rec)
			}
		}
	case msgLookup:
		return r.answerOnPath(rp, b)
	}
	return false
}

// keepRelayed keeps rec, if a lookup would take it, for answerOnPath.
func (r *Router) keepRelayed(rec Record) {
	now := r.clk.Now()
	if old := r.relayed[rec.ID]; old != nil && old.rec.Time >= rec.Time {
		return // (already held, or an older one: the newest answers)
	}
	if rec.Signer != rec.ID && rec.Deleg == nil {
		// Unvouched (a board's proxy record, or a forgery for a node with
		// a key): which one holds is the homes' ranking to decide (anyone
		// can make one, and route it past us in an answer), not the
		// newest's. Left to the homes.
		return
	}
	if !rec.Verify() || r.revokedRecord(&rec) || !r.live(rec) || r.futureDated(rec.Time, now) || !r.stands(&rec) {
		return
	}
	if r.relayed == nil {
		r.relayed = map[identity.NodeID]*relayedRecord{}
	}
	if r.relayed[rec.ID] == nil && len(r.relayed) >= r.cfg.Records {
		r.evictRelayed()
	}
	r.relayed[rec.ID] = &relayedRecord{rec: rec, at: now}
}

// evictRelayed forgets the oldest relayed record.
func (r *Router) evictRelayed() {
	var oldest identity.NodeID
	var at time.Time
	first := true
	for id, s := range r.relayed {
		if first || s.at.Before(at) || (s.at.Equal(at) && bytes.Compare(id[:], oldest[:]) < 0) {
			oldest, at, first = id, s.at, false
		}
	}
	delete(r.relayed, oldest)
}

// lookupHomeOnly ends a lookup that only a home may answer (the 38th
// byte): a send's refresh after the addresses it had failed, which a
// relay's copy of the record may have named.
const lookupHomeOnly = 0x01

// answerOnPath answers a lookup passing through us from a relayed record,
// and reports whether it did.
func (r *Router) answerOnPath(rp *routed, b []byte) bool {
	if len(b) != 37 {
		return false // (or one for a home only)
	}
	var id identity.NodeID
	copy(id[:], b[1:33])
	if r.records[id] != nil {
		return false // a home's copy: the home's answer (ours, if we are its end)
	}
	s := r.relayed[id]
	if s == nil {
		return false
	}
	if r.clk.Now().Sub(s.at) >= r.paced(relayedLife, 1000) || !r.inCurrent(s.rec) || r.revokedRecord(&s.rec) {
		delete(r.relayed, id)
		return false
	}
	r.stats.AnsweredOnPath++
	reply := append([]byte{msgLookupReply}, b[33:37]...)
	r.reply(rp, s.rec.AppendTo(append(reply, 1)))
	return true
}

// inCurrent reports whether rec names an address in an epoch that is the
// current one of its tree here.
func (r *Router) inCurrent(rec Record) bool {
	for _, a := range rec.Addrs {
		if p, ok := r.current(int(a.Tree)); ok && p.TreeState == a.TreeState {
			return true
		}
	}
	return false
}
