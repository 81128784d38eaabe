package stream

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/cert"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

var fileApp = packet.NewAppID("file", "", 1)

// mesh is a line of nodes on the simulated ESP-NOW medium, each with
// trees, a router and a stream service; every node takes fileApp.
type mesh struct {
	t      *testing.T
	clk    *clock.Virtual
	med    *sim.Medium
	radios []*sim.Radio
	nodes  []*node.Node
	rts    []*route.Router
	svcs   []*Service
	got    [][]Message
	plain  [][]node.Message
	refuse []bool // node i's application refuses deliveries
}

func newLine(t *testing.T, n int, cfg Config, seed uint64) *mesh {
	me := &mesh{t: t, clk: clock.NewVirtual(time.Time{}), got: make([][]Message, n), plain: make([][]node.Message, n), refuse: make([]bool, n)}
	me.med = sim.NewMedium(me.clk, phys.ESPNOW(), seed)
	memo := cert.NewMemo()
	var trs []*tree.Trees
	for i := range n {
		r := me.med.AddRadio(sim.Position{X: float64(i)})
		me.radios = append(me.radios, r)
		if i > 0 {
			me.med.Connect(me.radios[i-1], r, sim.Independent(0), sim.Independent(0))
		}
		nd, err := node.New(node.Config{Clock: me.clk, Links: []link.Link{r}, Identity: identity.FromSeed([32]byte{byte(i), byte(seed), 0x57}), Seed: seed*100 + uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		rt, err := route.Attach(nd, tree.Config{Trees: 2, Memo: memo}, route.Config{})
		if err != nil {
			t.Fatal(err)
		}
		tr := rt.Trees()
		c := cfg
		c.Clock, c.Router, c.Rand, c.Self = me.clk, rt, rand.New(rand.NewPCG(seed, uint64(i))), nd.ID()
		c.Accept = func(app packet.AppID) bool { return app == fileApp }
		c.Deliver = func(m Message) error {
			if me.refuse[i] {
				return node.ErrNoMemory
			}
			me.got[i] = append(me.got[i], m)
			return nil
		}
		svc := New(c)
		nd.Register(AppID, svc.Handle)
		nd.Register(fileApp, func(m node.Message) { me.plain[i] = append(me.plain[i], m) })
		me.nodes = append(me.nodes, nd)
		me.rts = append(me.rts, rt)
		me.svcs = append(me.svcs, svc)
		trs = append(trs, tr)
	}
	for i, nd := range me.nodes {
		nd.Start()
		trs[i].Start()
	}
	if !me.run(20*time.Minute, func() bool {
		for _, rt := range me.rts {
			if !rt.Registered() {
				return false
			}
		}
		return true
	}) {
		t.Fatal("mesh did not converge and register")
	}
	return me
}

func (me *mesh) run(limit time.Duration, cond func() bool) bool {
	me.clk.RunWhile(me.clk.Now().Add(limit), func() bool { return !cond() })
	return cond()
}

func (me *mesh) wait(res *node.Result, limit time.Duration) error {
	me.t.Helper()
	if !me.run(limit, res.Finished) {
		me.t.Fatalf("send not finished after %v", limit)
	}
	return res.Err()
}

func blobOf(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// A megabyte crosses four hops as a stream: it arrives once, whole, with
// its hash; the sender's result succeeds only then; progress only grows
// and ends at the size; no stream state is left on either side.
func TestStreamMegabyte(t *testing.T) {
	me := newLine(t, 5, Config{}, 1)
	blob := blobOf(1<<20, 1)
	var prog []int
	start := me.clk.Now()
	res := me.svcs[0].Send(me.nodes[4].ID(), fileApp, blob, func(c, total int) {
		if total != len(blob) {
			t.Errorf("progress total %d", total)
		}
		prog = append(prog, c)
	})
	if err := me.wait(res, time.Hour); err != nil {
		t.Fatalf("send: %v", err)
	}
	took := me.clk.Now().Sub(start)
	if len(me.got[4]) != 1 {
		t.Fatalf("delivered %d times", len(me.got[4]))
	}
	m := me.got[4][0]
	if !bytes.Equal(m.Blob, blob) || m.SHA256 != sha256.Sum256(blob) || m.App != fileApp || m.From != me.nodes[0].ID() {
		t.Fatalf("delivered a different blob (%d bytes, from %s)", len(m.Blob), m.From.Short())
	}
	for i := 1; i < len(prog); i++ {
		if prog[i] < prog[i-1] {
			t.Fatalf("progress went back: %v", prog[i-1:i+1])
		}
	}
	if len(prog) == 0 || prog[len(prog)-1] != len(blob) {
		t.Fatalf("progress ended at %v", prog[len(prog)-1:])
	}
	if len(me.svcs[0].out) != 0 || len(me.svcs[4].in) != 0 || me.svcs[4].held != 0 {
		t.Fatalf("state left: %d out, %d in, %d bytes held", len(me.svcs[0].out), len(me.svcs[4].in), me.svcs[4].held)
	}
	st := me.svcs[0].Stats()
	if st.Sent != 1 || st.SentBytes != uint64(len(blob)) {
		t.Fatalf("sender stats %+v", st)
	}
	t.Logf("1 MiB over 4 simulated ESP-NOW hops (1 Mbit/s) in %v of mesh time: %.0f kbit/s", took, float64(len(blob))*8/took.Seconds()/1000)
}

// A blob that fits one chunk goes as a plain Package to the application.
func TestStreamSmallIsPlain(t *testing.T) {
	me := newLine(t, 3, Config{Chunk: 4096}, 2)
	blob := blobOf(4096, 2)
	if err := me.wait(me.svcs[0].Send(me.nodes[2].ID(), fileApp, blob, nil), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if len(me.plain[2]) != 1 || !bytes.Equal(me.plain[2][0].Blob, blob) || len(me.got[2]) != 0 {
		t.Fatalf("plain %d, streamed %d", len(me.plain[2]), len(me.got[2]))
	}
	if err := me.wait(me.svcs[0].Send(me.nodes[2].ID(), fileApp, nil, nil), time.Second); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty blob: %v", err)
	}
}

// The receiver's refusals reach the sender as typed errors, at once for
// what the open message tells (no such application, too large), at the
// end for what only the whole blob tells (the application refused it).
func TestStreamRefused(t *testing.T) {
	me := newLine(t, 3, Config{Chunk: 4096, MaxSize: 64 << 10}, 3)
	other := packet.NewAppID("nobody", "", 1)
	for name, tc := range map[string]struct {
		app  packet.AppID
		size int
		want error
	}{
		"unknown app": {other, 10000, node.ErrUnknownApp},
		"too large":   {fileApp, 65<<10 + 1, node.ErrTooLarge},
	} {
		res := me.svcs[0].Send(me.nodes[2].ID(), tc.app, blobOf(tc.size, 3), nil)
		if err := me.wait(res, 10*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if got := me.svcs[0].Stats(); got.SendFailed != 2 || len(me.svcs[2].in) != 0 {
		t.Fatalf("after refusals: %+v, %d streams held", got, len(me.svcs[2].in))
	}
	me.refuse[2] = true
	res := me.svcs[0].Send(me.nodes[2].ID(), fileApp, blobOf(20000, 4), nil)
	if err := me.wait(res, 10*time.Minute); !errors.Is(err, node.ErrNoMemory) {
		t.Fatalf("refused by the application: %v", err)
	}
}

// A destination that dies mid-stream: the send fails with a typed error
// (never hangs), and the sender keeps nothing.
func TestStreamDestinationDies(t *testing.T) {
	me := newLine(t, 3, Config{Chunk: 4096}, 5)
	blob := blobOf(256<<10, 5)
	res := me.svcs[0].Send(me.nodes[2].ID(), fileApp, blob, nil)
	if !me.run(10*time.Minute, func() bool {
		return len(me.svcs[2].in) == 1 && me.svcs[2].in[firstKey(me.svcs[2].in)].left < 40
	}) {
		t.Fatal("stream did not get going")
	}
	me.med.Disconnect(me.radios[1], me.radios[2])
	err := me.wait(res, 2*time.Hour)
	var ce *node.CodeError
	if err == nil || !errors.As(err, &ce) && !errors.Is(err, route.ErrNoCommonTree) && !errors.Is(err, route.ErrUnknownNode) {
		t.Fatalf("send to a dead node: %v", err)
	}
	if len(me.svcs[0].out) != 0 {
		t.Fatal("the sender kept the stream")
	}
	// The receiver, cut off, drops it when it goes idle.
	if !me.run(10*time.Minute, func() bool { return len(me.svcs[2].in) == 0 }) || me.svcs[2].held != 0 {
		t.Fatal("the receiver kept the stream")
	}
}

func firstKey(m map[uint64]*inStream) uint64 {
	for k := range m {
		return k
	}
	return 0
}
