package messages

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l4-apps/gossip"
)

// net is the mesh as messages see it: a routed send reaches a node that is
// up (on the clock's loop, as the router would complete it), fails for
// one that is down; gossip reaches every node that is up.
type net struct {
	clk   *clock.Virtual
	nodes map[identity.NodeID]*Service
	up    map[identity.NodeID]bool
	subs  map[identity.NodeID]func(gossip.Delivery)
	wire  [][]byte // every Package sent, for the store-cannot-read check
}

type port struct {
	n    *net
	self identity.NodeID
}

func (p *port) Send(to identity.NodeID, app packet.AppID, blob []byte, _ *route.Options) *node.Result {
	r := node.NewResult()
	p.n.wire = append(p.n.wire, append([]byte(nil), blob...))
	blob = append([]byte(nil), blob...)
	p.n.clk.AfterFunc(10*time.Millisecond, func() {
		if !p.n.up[to] || !p.n.up[p.self] {
			r.Complete(node.ErrNoRoute)
			return
		}
		p.n.nodes[to].Handle(node.Message{App: app, Blob: blob})
		r.Complete(nil)
	})
	return r
}

func (p *port) Publish(t gossip.TopicID, data []byte) (gossip.MessageID, error) {
	for id, f := range p.n.subs {
		if id != p.self && p.n.up[id] && p.n.up[p.self] {
			f(gossip.Delivery{Topic: t, Data: append([]byte(nil), data...)})
		}
	}
	return gossip.MessageID{}, nil
}

func (p *port) Subscribe(t gossip.TopicID, f func(gossip.Delivery)) func() {
	p.n.subs[p.self] = f
	return func() {}
}

func newNet(t *testing.T, n int, stores ...int) (*net, []*Service) {
	t.Helper()
	nt := &net{clk: clock.NewVirtual(time.Unix(1e9, 0)), nodes: map[identity.NodeID]*Service{}, up: map[identity.NodeID]bool{}, subs: map[identity.NodeID]func(gossip.Delivery){}}
	var out []*Service
	for i := range n {
		id := identity.FromSeed([32]byte{byte(i), 0x4d})
		key, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{byte(i) + 1}, 32))
		if err != nil {
			t.Fatal(err)
		}
		p := &port{n: nt, self: id.ID()}
		isStore := false
		for _, s := range stores {
			isStore = isStore || s == i
		}
		s := New(Config{Clock: nt.clk, Router: p, Gossip: p, Signer: id, Key: key, Rand: rand.New(rand.NewPCG(uint64(i), 1)), Store: isStore, Refresh: time.Minute})
		nt.nodes[id.ID()], nt.up[id.ID()] = s, true
		s.Start()
		out = append(out, s)
	}
	nt.clk.RunUntil(nt.clk.Now().Add(15 * time.Second)) // keys announced
	return nt, out
}

func (n *net) run(d time.Duration) { n.clk.RunUntil(n.clk.Now().Add(d)) }

func TestDirect(t *testing.T) {
	nt, s := newNet(t, 2)
	id, err := s[0].Send(s[1].self, "hello bravo")
	if err != nil {
		t.Fatal(err)
	}
	nt.run(time.Second)
	in := s[1].Inbox()
	if len(in) != 1 || in[0].Text != "hello bravo" || in[0].From != s[0].self || in[0].ID != id {
		t.Fatalf("inbox %+v", in)
	}
	if o := s[0].Outbox(); len(o) != 1 || o[0].State != Delivered {
		t.Fatalf("outbox %+v", o)
	}
}

// The case: the target is down; a store keeps the message (and
// cannot read it); the target comes back, announces itself, gets it; the
// sender sees "delivered" only then.
func TestStoreAndForward(t *testing.T) {
	nt, s := newNet(t, 3, 2) // node 2 offers storage
	a, b, store := s[0], s[1], s[2]
	var states []State
	a.OnState(func(x Sent) { states = append(states, x.State) })
	nt.up[b.self] = false
	text := "meet at the north ridge at dawn"
	if _, err := a.Send(b.self, text); err != nil {
		t.Fatal(err)
	}
	nt.run(5 * time.Second)
	if o := a.Outbox()[0]; o.State != Stored || o.Stores != 1 {
		t.Fatalf("with the target down: %+v", o)
	}
	if store.Held() != 1 {
		t.Fatalf("the store holds %d", store.Held())
	}
	for _, w := range nt.wire {
		if bytes.Contains(w, []byte(text)) {
			t.Fatal("the text went over the wire in clear")
		}
	}
	if _, err := store.held[a.Outbox()[0].ID].env.open(store.cfg.Key); err == nil {
		t.Fatal("the store opened the message")
	}
	// An hour later the target is back and announces its key.
	nt.run(time.Hour)
	if a.Outbox()[0].State != Stored {
		t.Fatal("delivered while the target was down")
	}
	nt.up[b.self] = true
	b.announce()
	nt.run(5 * time.Second)
	if in := b.Inbox(); len(in) != 1 || in[0].Text != text {
		t.Fatalf("inbox after coming back: %+v", in)
	}
	if o := a.Outbox()[0]; o.State != Delivered {
		t.Fatalf("outbox: %+v", o)
	}
	if store.Held() != 0 {
		t.Errorf("the store still holds %d", store.Held())
	}
	if want := []State{Waiting, Stored, Delivered}; !equalStates(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}
	// The copy the sender also retried does not show twice.
	nt.run(time.Minute)
	if len(b.Inbox()) != 1 {
		t.Errorf("inbox holds %d", len(b.Inbox()))
	}
}

func equalStates(a, b []State) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The sender itself holds a message no store took, and the receipt the
// target could not send goes when the sender is back.
func TestNoStoreAndLateReceipt(t *testing.T) {
	nt, s := newNet(t, 2)
	a, b := s[0], s[1]
	nt.up[b.self] = false
	a.Send(b.self, "x")
	nt.run(time.Second)
	if o := a.Outbox()[0]; o.State != Waiting {
		t.Fatalf("%+v", o)
	}
	nt.up[b.self] = true
	b.announce()
	nt.run(time.Second)
	if len(b.Inbox()) != 1 || a.Outbox()[0].State != Delivered {
		t.Fatalf("inbox %d, outbox %+v", len(b.Inbox()), a.Outbox()[0])
	}
}

// A message no store took when its target failed (the store was not
// reached, or not known yet) is handed to a store when one announces
// itself: it used to stay "waiting", held by the sender alone, until the
// target came back.
func TestWaitingGoesToALaterStore(t *testing.T) {
	nt, s := newNet(t, 4, 2, 3) // nodes 2 and 3 offer storage
	a, b, st2, st3 := s[0], s[1], s[2], s[3]
	nt.up[b.self], nt.up[st2.self] = false, false // st2 cannot be reached
	delete(a.keys, st3.self)                      // st3 is not known yet
	if _, err := a.Send(b.self, "later"); err != nil {
		t.Fatal(err)
	}
	nt.run(time.Second)
	if o := a.Outbox()[0]; o.State != Waiting || o.Stores != 0 {
		t.Fatalf("no store reached: %+v", o)
	}
	st3.announce()
	nt.run(time.Second)
	if o := a.Outbox()[0]; o.State != Stored || o.Stores != 1 || st3.Held() != 1 {
		t.Fatalf("after a store announced itself: %+v, it holds %d", o, st3.Held())
	}
	// Again from the same store, or from the other once it is back: each
	// store counts once, and a message stored goes to no other.
	st3.announce()
	nt.up[st2.self] = true
	st2.announce()
	nt.run(time.Second)
	if o := a.Outbox()[0]; o.Stores != 1 || st2.Held() != 0 {
		t.Fatalf("after more announcements: %+v, the other store holds %d", o, st2.Held())
	}
	// The target back, the store delivers it.
	nt.up[b.self] = true
	b.announce()
	nt.run(5 * time.Second)
	if in := b.Inbox(); len(in) != 1 || in[0].Text != "later" || a.Outbox()[0].State != Delivered {
		t.Fatalf("inbox %+v, outbox %+v", in, a.Outbox()[0])
	}
}

func TestExpires(t *testing.T) {
	nt, s := newNet(t, 3, 2)
	s[0].cfg.TTL = time.Hour
	nt.up[s[1].self] = false
	s[0].Send(s[1].self, "late")
	nt.run(2 * time.Hour)
	if o := s[0].Outbox()[0]; o.State != Expired {
		t.Fatalf("%+v", o)
	}
	if s[2].Held() != 0 {
		t.Error("the store holds an expired message")
	}
}

func TestRefusals(t *testing.T) {
	nt, s := newNet(t, 3, 2)
	if _, err := s[0].Send(identity.FromSeed([32]byte{99}).ID(), "who"); !errors.Is(err, ErrNoKey) {
		t.Errorf("unknown target: %v", err)
	}
	if _, err := s[0].Send(s[1].self, string(make([]byte, MaxText+1))); !errors.Is(err, ErrTooLong) {
		t.Errorf("long: %v", err)
	}
	env, err := seal(ID{1}, s[0].cfg.Signer, s[1].self, s[1].cfg.Key.PublicKey(), []byte("hi"), nt.clk.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A flipped byte of the ciphertext breaks the sender's signature.
	bad := append([]byte{typeEnvelope}, env.raw...)
	bad[envHead+5] ^= 1
	s[1].Handle(node.Message{Blob: bad})
	// An envelope for node 1 handed to node 0 is refused.
	s[0].Handle(node.Message{Blob: append([]byte{typeEnvelope}, env.raw...)})
	// A non-store refuses deposits.
	s[0].Handle(node.Message{Blob: append([]byte{typeDeposit}, env.raw...)})
	if len(s[1].Inbox()) != 0 || len(s[0].Inbox()) != 0 || s[0].Held() != 0 {
		t.Fatal("something bad was taken")
	}
	if s[1].Stats().Malformed != 1 || s[0].Stats().Refused != 2 {
		t.Errorf("stats %+v %+v", s[1].Stats(), s[0].Stats())
	}
}

// A store keeps within its bounds, dropping the oldest.
func TestStoreBounds(t *testing.T) {
	nt, s := newNet(t, 3, 2)
	s[2].cfg.MaxHeld = 5
	nt.up[s[1].self] = false
	for range 20 {
		s[0].Send(s[1].self, "m")
	}
	nt.run(time.Second)
	if s[2].Held() != 5 || s[2].Stats().HeldDropped != 15 {
		t.Fatalf("held %d, dropped %d", s[2].Held(), s[2].Stats().HeldDropped)
	}
}

func FuzzDecode(f *testing.F) {
	id := identity.FromSeed([32]byte{1})
	key, _ := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{3}, 32))
	env, _ := seal(ID{2}, id, id.ID(), key.PublicKey(), []byte("x"), time.Unix(1e9, 0), time.Hour)
	f.Add(env.raw)
	f.Add(appendKeyAnn(nil, id, key.PublicKey(), 1, true))
	f.Add(appendReceipt(nil, ID{}, id, id.ID())[1:])
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeEnvelope(b)
		decodeKeyAnn(b)
		decodeReceipt(b)
	})
}
