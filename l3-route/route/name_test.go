package route

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// namedLine is a converged line of n nodes named node-0.., with node
// dup (if >= 0) claiming node-0's name as well.
func namedLine(t *testing.T, n, dup int, seed uint64) *hmesh {
	me := newHMesh(t, tree.Config{Trees: 2}, seed)
	for i := range n {
		name := fmt.Sprintf("node-%d", i)
		if i == dup {
			name = "node-0"
		}
		me.add(hspec{rcfg: Config{Name: name}})
	}
	me.edges(line(n))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	return me
}

func (me *hmesh) lookupName(i int, name string) (identity.NodeID, error) {
	me.t.Helper()
	var id identity.NodeID
	var err error
	done := false
	me.nodes[i].rt.LookupName(name, func(got identity.NodeID, e error) { id, err, done = got, e, true })
	if !me.run(5*time.Minute, func() bool { return done }) {
		me.t.Fatalf("name lookup of %q from node %d did not finish", name, i)
	}
	return id, err
}

// A name registered at one end of a line is found from the other; a
// neighbour's name is known from its hello (NameOf); a name
// nobody has fails with ErrUnknownName; malformed names are refused
// before anything is sent.
func TestNameLookup(t *testing.T) {
	me := namedLine(t, 6, -1, 51)
	if !me.run(5*time.Minute, func() bool {
		for _, hn := range me.nodes {
			if !hn.rt.NameRegistered() {
				return false
			}
		}
		return true
	}) {
		t.Fatal("names not registered")
	}
	id, err := me.lookupName(0, "node-5")
	if err != nil || id != me.nodes[5].n.ID() {
		t.Fatalf("lookup of node-5 from node 0: %s, %v", id.Short(), err)
	}
	if name, ok := me.nodes[0].rt.NameOf(me.nodes[5].n.ID()); !ok || name != "node-5" {
		t.Fatalf("NameOf after the lookup: %q %v", name, ok)
	}
	if name, ok := me.nodes[2].rt.NameOf(me.nodes[3].n.ID()); !ok || name != "node-3" {
		t.Fatalf("a neighbour's name from its hello: %q %v", name, ok)
	}
	if id, err := me.lookupName(2, "node-3"); err != nil || id != me.nodes[3].n.ID() {
		t.Fatalf("neighbour by name: %v", err)
	}
	if _, err := me.lookupName(1, "nobody-here"); !errors.Is(err, ErrUnknownName) {
		t.Fatalf("unknown name: %v", err)
	}
	for _, bad := range []string{"", "Upper", "beef", "with space", "-dash", string(make([]byte, 64))} {
		if _, err := me.lookupName(1, bad); !errors.Is(err, ErrName) {
			t.Errorf("name %q: %v, want ErrName", bad, err)
		}
	}
	// The name leads to a node one can send to.
	res := me.nodes[0].rt.Send(id, testApp, []byte("by name"), nil)
	if err := me.wait(res, 2*time.Minute); err != nil {
		t.Fatalf("send to the looked-up node: %v", err)
	}
}

// Two nodes claim one name: every home settles it for the lower node_id,
// whichever claim came first; the other is told (NameTaken names the
// holder) and lookups from anywhere give the holder.
func TestNameTaken(t *testing.T) {
	me := namedLine(t, 5, 4, 52)
	holder, loser := 0, 4
	if bytes.Compare(idBytes(me.nodes[4].n.ID()), idBytes(me.nodes[0].n.ID())) < 0 {
		holder, loser = 4, 0
	}
	// The loser may have been first at every home; it hears at its next
	// registration (a refresh comes within a record's half life).
	// Every home confirms the holder's claim (it registers in every tree).
	if !me.run(time.Hour, func() bool {
		return me.nodes[loser].rt.NameTaken() != "" && me.nodes[holder].rt.NameRegistered()
	}) {
		t.Fatalf("the second claimant was never told the name is taken (%q), or the holder's claim never stored everywhere (%v)",
			me.nodes[loser].rt.NameTaken(), me.nodes[holder].rt.NameRegistered())
	}
	if got := me.nodes[loser].rt.NameTaken(); got != me.nodes[holder].n.ID().String() {
		t.Fatalf("taken by %s, want the holder %s", got, me.nodes[holder].n.ID())
	}
	if me.nodes[holder].rt.NameTaken() != "" {
		t.Fatalf("the holder was told its name is %s's", me.nodes[holder].rt.NameTaken())
	}
	if me.nodes[loser].rt.Stats().NameConflicts == 0 {
		t.Fatal("conflict not counted")
	}
	for _, from := range []int{1, 2, 3} {
		id, err := me.lookupName(from, "node-0")
		if err != nil || id != me.nodes[holder].n.ID() {
			t.Fatalf("lookup of the disputed name from node %d: %s %v, want the holder", from, id.Short(), err)
		}
	}
}

// A trace names every hop's node and times each report.
func TestTraceNamesHops(t *testing.T) {
	me := namedLine(t, 5, -1, 53)
	var hops []TraceHop
	var terr error
	done := false
	me.nodes[0].rt.Trace(me.dest(4), nil, func(h []TraceHop, err error) { hops, terr, done = h, err, true })
	if !me.run(time.Minute, func() bool { return done }) || terr != nil {
		t.Fatalf("trace: %v", terr)
	}
	if len(hops) != 5 {
		t.Fatalf("%d hops", len(hops))
	}
	for i, h := range hops {
		if h.ID != me.nodes[h.Hop].n.ID() {
			t.Errorf("hop %d names %s, the node there is %s", h.Hop, h.ID.Short(), me.nodes[h.Hop].n.ID().Short())
		}
		if h.RTT < 0 || (i > 0 && h.Hop > 0 && h.RTT <= 0) {
			t.Errorf("hop %d rtt %v", h.Hop, h.RTT)
		}
	}
	if hops[4].RTT <= hops[1].RTT {
		t.Errorf("the destination's report (%v) came no later than the first relay's (%v)", hops[4].RTT, hops[1].RTT)
	}
}

func TestNameRecordCodec(t *testing.T) {
	id := hid(1, 1)
	rec := NameRecord{Name: "pi-1", ID: id.ID(), Time: 42}
	rec.Sign(id)
	var got NameRecord
	if err := got.UnmarshalBinary(rec.AppendTo(nil)); err != nil || got != rec || !got.Verify() {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	b := rec.AppendTo(nil)
	for _, cut := range []int{0, 1, 5, len(b) - 1} {
		if err := got.UnmarshalBinary(b[:cut]); err == nil {
			t.Errorf("cut at %d decoded", cut)
		}
	}
	if err := got.UnmarshalBinary(append(b, 0)); err == nil {
		t.Error("trailing byte decoded")
	}
	forged := rec
	forged.ID = hid(2, 1).ID()
	if forged.Verify() {
		t.Error("a record moved to another node_id verifies")
	}
}

type revokedSet map[identity.NodeID]bool

func (r revokedSet) Revoked(id identity.NodeID) bool { return r[id] }

// Once an operator revokes a node's key, its name and address records
// are believed nowhere: a lookup that finds them refuses the answer and
// fails as for a name nobody has.
func TestRevokedRecords(t *testing.T) {
	const n = 5
	revoked := revokedSet{}
	me := newHMesh(t, tree.Config{Trees: 2}, 52)
	for i := range n {
		me.add(hspec{rcfg: Config{Name: fmt.Sprintf("node-%d", i), Revocations: revoked}})
	}
	me.edges(line(n))
	me.start()
	me.mustConverge(10 * time.Minute)
	me.mustRegister(10 * time.Minute)
	last := me.nodes[n-1].n.ID()
	if id, err := me.lookupName(0, "node-4"); err != nil || id != last {
		t.Fatalf("before the revocation: %v %v", id, err)
	}
	revoked[last] = true
	if _, err := me.lookupName(1, "node-4"); err == nil {
		t.Fatal("the name of a revoked node was believed")
	}
	var lookupErr error
	me.nodes[0].rt.Lookup(last, func(_ Destination, err error) { lookupErr = err })
	if !errors.Is(lookupErr, ErrRevoked) {
		t.Fatalf("lookup of a revoked node: %v, want ErrRevoked at once", lookupErr)
	}
	var refused uint64
	for _, hn := range me.nodes {
		refused += hn.rt.Stats().RevokedRecords
	}
	if refused == 0 {
		t.Fatal("no record counted as refused for a revocation")
	}
}
