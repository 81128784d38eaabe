package route

import (
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// homeOf is the node other than i that stores node i's record (-1: none).
func (me *hmesh) homeOf(i int) int {
	for j, hn := range me.nodes {
		if j != i && hn.rt.HasRecord(me.nodes[i].n.ID()) {
			return j
		}
	}
	return -1
}

// TestRegistrationRoundsGoOn: a registration whose round of tries all went
// unconfirmed is not given up: the node does not count as registered, and
// a claim period or so later a new round stores the record at its home.
// (Given up, the record was stored nowhere until the node's addresses next
// changed, two weeks on LoRa, while Registered said yes.)
func TestRegistrationRoundsGoOn(t *testing.T) {
	me := lineMesh(t, 6, 1, 41)
	i := 5
	h := me.homeOf(i)
	if h < 0 {
		t.Fatal("nobody stores node 5's record")
	}
	r := me.nodes[i].rt
	delete(me.nodes[h].rt.records, r.self) // the home lost it
	rec := Record{ID: r.self, Signer: r.self, Time: me.clk.Now().UnixNano(), Addrs: r.Addrs()}
	rec.Sign(r.b.Signer())
	key := regKey{id: r.self, tree: 0}
	st := &regState{rec: rec, tries: registerTries} // a round spent in vain
	r.regs[key] = st
	r.sendRegister(key, st)
	if r.Registered() {
		t.Fatal("registered with no home holding the record")
	}
	if !me.run(4*r.registerPause(1), func() bool { return r.Registered() }) {
		t.Fatalf("not registered again %v after a round went unconfirmed", 4*r.registerPause(1))
	}
	if !me.nodes[h].rt.HasRecord(r.self) {
		t.Fatalf("node %d, the home, does not hold the record again", h)
	}
}

// TestNoHomeShortOfTheKey: a registration or lookup that can go no further
// only because its hop toward the key failed here has not reached the end
// of its greedy path; one that was never turned back has.
func TestNoHomeShortOfTheKey(t *testing.T) {
	var id identity.NodeID
	for _, typ := range []byte{msgRegister, msgLookup, msgNameRegister, msgNameLookup} {
		rp := &routed{Inner: packet.NewPackage(ControlApp, append([]byte{typ}, id[:]...))}
		if !endsHere(rp) {
			t.Errorf("type %#x: not ended at the end of its greedy path", typ)
		}
		rp.avoid = []peer.Endpoint{{}}
		if endsHere(rp) {
			t.Errorf("type %#x: taken as home after a hop toward the key failed", typ)
		}
	}
	if endsHere(&routed{Inner: packet.NewPackage(testApp, []byte("data"))}) {
		t.Error("a data Package taken as a name's home")
	}
}

// TestHandOffToNearerHome: a home whose neighbour takes a place nearer a
// stored record's key than any other passes the record on; a neighbour no
// nearer moves nothing, nor does one nearer the key of a record another
// epoch's greedy path brought (its node registers in this one itself).
func TestHandOffToNearerHome(t *testing.T) {
	me := lineMesh(t, 6, 1, 41)
	i := 5
	h := me.homeOf(i)
	if h < 0 {
		t.Fatal("nobody stores node 5's record")
	}
	hr := me.nodes[h].rt
	self, _ := hr.t.Current(0)
	s := hr.records[me.nodes[i].n.ID()]
	if s.ts != self.TreeState {
		t.Fatalf("record stored in epoch %d, current %d", s.ts, self.TreeState)
	}
	via := hr.t.Neighbors(0, self.TreeState)[0].Via
	key := keyAddr(me.nodes[i].n.ID(), 0)
	before := hr.Stats().HandOffs
	hr.handOff(0, tree.Neighbor{Via: via, Addr: self.Addr}) // no nearer than we are
	if n := hr.Stats().HandOffs - before; n != 0 {
		t.Fatalf("%d records passed on to a neighbour no nearer their keys", n)
	}
	s.ts++
	hr.handOff(0, tree.Neighbor{Via: via, Addr: key})
	if n := hr.Stats().HandOffs - before; n != 0 {
		t.Fatalf("%d records of another epoch passed on", n)
	}
	s.ts--
	hr.handOff(0, tree.Neighbor{Via: via, Addr: key}) // at the key itself
	if n := hr.Stats().HandOffs - before; n < 1 {
		t.Fatal("the record was not passed on to a neighbour nearer its key")
	}
}
