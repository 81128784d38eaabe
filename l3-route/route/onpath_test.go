package route

import (
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// lookupHash starts a lookup of id at node src and returns the hash of
// the Package it sent (the nonce is the router's), and a flag set when
// it completes.
func lookupHash(t *testing.T, me *hmesh, src int, id identity.NodeID) ([16]byte, *bool, *error) {
	t.Helper()
	done, lerr := new(bool), new(error)
	r := me.nodes[src].rt
	r.Lookup(id, func(_ Destination, err error) { *done, *lerr = true, err })
	for nonce, q := range r.lookups {
		if q.id == id {
			b := append([]byte{msgLookup}, id[:]...)
			b = append(b, byte(nonce>>24), byte(nonce>>16), byte(nonce>>8), byte(nonce))
			return packet.NewPackage(ControlApp, b).Hash, done, lerr
		}
	}
	t.Fatalf("node %d: no lookup of the id on its way", src)
	return [16]byte{}, nil, nil
}

// askersLine is a line of n nodes with the first asker of the on-path
// tests: the end farther from tree 0's root (the homes sit by it), and the
// step from it toward the root (the second asker, then its next relay).
func askersLine(t *testing.T, n int) (me *hmesh, far, step int) {
	t.Helper()
	me = lineMesh(t, n, 2, 5)
	root := -1
	for i := range n {
		if me.pos(i, 0).Root {
			root = i
		}
	}
	far, step = 0, 1
	if root < n/2 {
		far, step = n-1, -1
	}
	return me, far, step
}

// TestLookupAnsweredOnPath: on a line, a lookup's answer passes back
// through the relays between the key's home and the asker; a later lookup
// of the same node by one of them is answered by the next relay on its
// way, and goes no further toward the home. (On a line every key's home
// sits by the root, and every lookup of the mesh, crossing the same few
// relays, filled their queues: 25-30 % of pairs failed on a line of 100.)
func TestLookupAnsweredOnPath(t *testing.T) {
	const n = 10
	me, far, step := askersLine(t, n)
	near := far + step
	tried := 0
	for dst := range n {
		if abs(dst-far) <= 1 || abs(dst-near) <= 1 {
			continue // a neighbour is found without a lookup
		}
		id := me.nodes[dst].n.ID()
		h1, done, lerr := lookupHash(t, me, far, id)
		if !me.run(time.Minute, func() bool { return *done }) || *lerr != nil {
			t.Fatalf("lookup of node %d by node %d: done %v, %v", dst, far, *done, *lerr)
		}
		p1, _ := me.path(h1)
		home := p1[len(p1)-1]
		if abs(home-near) < 2 {
			continue // the second asker's next relay would be the home
		}
		tried++
		relay := near + step
		before := me.nodes[relay].rt.Stats().AnsweredOnPath
		h2, done, lerr := lookupHash(t, me, near, id)
		if !me.run(time.Minute, func() bool { return *done }) || *lerr != nil {
			t.Fatalf("lookup of node %d by node %d: done %v, %v", dst, near, *done, *lerr)
		}
		p2, _ := me.path(h2)
		t.Logf("node %d (home %d): first lookup %v, second %v", dst, home, p1, p2)
		if len(p2) != 1 || p2[0] != near {
			t.Errorf("node %d's second lookup went %v; want it answered by node %d, which carried the first's answer, not by the home %d", dst, p2, relay, home)
		}
		if got := me.nodes[relay].rt.Stats().AnsweredOnPath - before; got != 1 {
			t.Errorf("node %d answered %d lookups on the path, want 1", relay, got)
		}
	}
	if tried == 0 {
		t.Fatal("no destination whose home leaves room for the second asker")
	}
}

func abs(x int) int { return max(x, -x) }

// TestNoReceiptError: a send whose receipts never come back (here: they
// are signed by the node at the addresses, not by the node the sender
// meant, and refused) ends with ErrNoReceipt once its attempts are spent,
// told apart from a hop's abandoned sequence, and still errors.Is
// node.ErrAbandoned (what tested for that still does).
func TestNoReceiptError(t *testing.T) {
	me := lineMesh(t, 4, 1, 7)
	d := me.dest(3)
	// Not the holder of those addresses: its receipt will not do. Sent as
	// to a board behind a proxy (a record no delegation vouches for): its
	// path header names no destination, so the holder takes the Package (a
	// tagged one it would pass on: TestOnlyTheDestinationTakesIt).
	d.ID, d.Unvouched = me.nodes[2].n.ID(), true
	res := me.nodes[0].rt.SendTo(d, testApp, []byte("receipt refused"), nil)
	err := me.wait(res, 10*time.Minute)
	if !errors.Is(err, ErrNoReceipt) || !errors.Is(err, node.ErrAbandoned) {
		t.Fatalf("send: %v; want ErrNoReceipt, wrapping node.ErrAbandoned", err)
	}
	if got := me.nodes[0].rt.Stats().ReceiptsRefused; got == 0 {
		t.Errorf("no receipt refused: the test did not lose them as it meant to")
	}
}

// TestRefreshAskedOfHome: a send's refresh lookup (the addresses it had
// failed) passes the relay that holds a copy of the record and is
// answered by the home: the relay's copy may be the stale one that failed.
func TestRefreshAskedOfHome(t *testing.T) {
	const n = 10
	me, far, step := askersLine(t, n)
	near := far + step
	relay := near + step
	tried := 0
	for dst := range n {
		if abs(dst-far) <= 1 || abs(dst-near) <= 1 {
			continue
		}
		id := me.nodes[dst].n.ID()
		h1, done, lerr := lookupHash(t, me, far, id)
		if !me.run(time.Minute, func() bool { return *done }) || *lerr != nil {
			t.Fatalf("lookup of node %d by node %d: done %v, %v", dst, far, *done, *lerr)
		}
		p1, _ := me.path(h1)
		home := p1[len(p1)-1]
		if abs(home-near) < 2 {
			continue
		}
		tried++
		before := me.nodes[relay].rt.Stats().AnsweredOnPath
		r := me.nodes[near].rt
		*done = false
		r.refreshLookup(id, nil, func(_ Destination, err error) { *done, *lerr = true, err })
		var h2 [16]byte
		for nonce, q := range r.lookups {
			if q.id == id {
				b := append([]byte{msgLookup}, id[:]...)
				b = append(b, byte(nonce>>24), byte(nonce>>16), byte(nonce>>8), byte(nonce), lookupHomeOnly)
				h2 = packet.NewPackage(ControlApp, b).Hash
			}
		}
		if !me.run(time.Minute, func() bool { return *done }) || *lerr != nil {
			t.Fatalf("refresh of node %d by node %d: done %v, %v", dst, near, *done, *lerr)
		}
		p2, _ := me.path(h2)
		if len(p2) == 0 || p2[len(p2)-1] != home {
			t.Errorf("node %d's refresh went %v; want it answered by the home %d", dst, p2, home)
		}
		if got := me.nodes[relay].rt.Stats().AnsweredOnPath - before; got != 0 {
			t.Errorf("node %d answered a refresh from its copy (%d)", relay, got)
		}
	}
	if tried == 0 {
		t.Fatal("no destination whose home leaves room for the relay")
	}
}
