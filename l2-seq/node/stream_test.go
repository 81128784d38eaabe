package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// pattern is a reader of n bytes that holds nothing: byte i is a function
// of i, so a receiver can check every byte it gets.
type pattern struct{ off, n int64 }

func patternByte(i int64) byte { return byte(i*131 + i>>8) }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(b)), p.n-p.off))
	for j := range k {
		b[j] = patternByte(p.off + int64(j))
	}
	p.off += int64(k)
	return k, nil
}

// A Package larger than a segment goes as a stream, and arrives whole,
// once, at 0 and 10 % loss; the sender's and receiver's memory stay within
// a few segments whatever the size.
func TestLargeSendStreams(t *testing.T) {
	for _, loss := range []float64{0, 0.1} {
		me := newMesh(t, 2, phys.ESPNOW(), sim.Independent(loss), 3, nil)
		me.start()
		me.discover()
		a, b := me.nodes[0], me.nodes[1]
		data := blob(1<<20, 9)
		r := a.Send(b.ID(), testApp, data, nil)
		if err := me.wait(r, time.Hour); err != nil {
			t.Fatalf("loss %.1f: %v", loss, err)
		}
		if len(me.got[1]) != 1 || !bytes.Equal(me.got[1][0].Blob, data) || me.got[1][0].From != a.ID() {
			t.Fatalf("loss %.1f: delivered %d", loss, len(me.got[1]))
		}
		sa, sb := a.Stats(), b.Stats()
		seg := a.segCap(a.bestEndpoint(a.Peer(b.ID())))
		if sa.Streams != 1 || sa.PeakCacheBytes > 2*(seg+200) || sb.PeakRxBytes > b.bud.RxPerPeer {
			t.Fatalf("loss %.1f: %d streams, sender cache peak %d (segment %d), receiver reassembly peak %d", loss, sa.Streams, sa.PeakCacheBytes, seg, sb.PeakRxBytes)
		}
		if loss == 0 && sa.Retransmits != 0 {
			t.Fatalf("%d retransmissions at zero loss", sa.Retransmits)
		}
		if b.assembly != 0 || len(b.eps[me.nodes[1].bestEndpoint(b.Peer(a.ID())).key].streams) != 0 {
			t.Fatalf("receiver still holds the stream: %d bytes reserved", b.assembly)
		}
		t.Logf("loss %.1f: 1 MiB in %v; cache peak %d B, reassembly peak %d B, %d retransmissions", loss, me.clk.Now(), sa.PeakCacheBytes, sb.PeakRxBytes, sa.Retransmits)
	}
}

// SendStream takes any size from a reader; a StreamHandler gets it in
// order, chunk by chunk, the last one saying the whole matched. Neither end
// holds more than a few segments.
func TestSendStreamChunks(t *testing.T) {
	me := newMesh(t, 2, phys.ESPNOWAt(24000), sim.Loss{}, 4, nil)
	me.start()
	me.discover()
	a, b := me.nodes[0], me.nodes[1]
	const size = 5<<20 + 123
	var next int64
	ends := 0
	var bad error
	b.RegisterStream(testApp, func(c StreamChunk) {
		if c.Offset != next || c.Total != size || !c.FromKnown || c.From != a.ID() {
			bad = errors.New("chunk out of order or mislabelled")
		}
		for j, x := range c.Data {
			if x != patternByte(c.Offset+int64(j)) {
				bad = errors.New("wrong byte")
				break
			}
		}
		next += int64(len(c.Data))
		if c.End {
			ends++
			if c.Err != nil || next != size {
				bad = c.Err
			}
		}
	})
	r := a.SendStream(b.ID(), testApp, &pattern{n: size}, size, nil)
	if err := me.wait(r, time.Hour); err != nil || bad != nil || ends != 1 || next != size {
		t.Fatalf("send %v, receiver %v, %d ends, %d of %d bytes", err, bad, ends, next, size)
	}
	if len(me.got[1]) != 0 {
		t.Fatal("the whole-Message handler got the stream too")
	}
	if a.Stats().PeakCacheBytes > 64<<10 || b.Stats().PeakRxBytes > b.bud.RxPerPeer {
		t.Fatalf("memory: cache %d, reassembly %d", a.Stats().PeakCacheBytes, b.Stats().PeakRxBytes)
	}
	// An empty stream is a stream too.
	r = a.SendStream(b.ID(), testApp, &pattern{}, 0, nil)
	if err := me.wait(r, time.Minute); err != nil || ends != 2 {
		t.Fatalf("empty stream: %v, %d ends", err, ends)
	}
}

// Failures are typed and reach the sender: a reader that ends early
// (ErrSource), a stream too large for a whole-Message application
// (ErrTooLarge), a receiver that lost the stream midway (ErrStreamLost),
// and a reference node (ErrTooLarge: it takes no streams).
func TestStreamErrors(t *testing.T) {
	me := newMesh(t, 2, phys.ESPNOWAt(24000), sim.Loss{}, 5, func(i int, c *Config) {
		c.Budgets.Assembly = 200 << 10
	})
	me.start()
	me.discover()
	a, b := me.nodes[0], me.nodes[1]
	if err := me.wait(a.SendStream(b.ID(), testApp, &pattern{n: 1000}, 100000, nil), time.Minute); !errors.Is(err, ErrSource) {
		t.Fatalf("short reader: %v", err)
	}
	if err := me.wait(a.Send(b.ID(), testApp, blob(300<<10, 1), nil), time.Minute); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the assembly budget: %v", err)
	}
	// The receiver forgets the stream (as a restart would) once a few
	// segments are across.
	r := a.Send(b.ID(), testApp, blob(150<<10, 2), nil)
	me.clk.RunWhile(me.clk.Now().Add(time.Minute), func() bool {
		return b.Stats().DeliveredBytes == 0 && len(b.eps) > 0 && b.assembly < 0 || streamBytes(b) < 60<<10
	})
	for _, ep := range b.eps {
		ep.freeRx()
	}
	if err := me.wait(r, time.Minute); !errors.Is(err, ErrStreamLost) {
		t.Fatalf("receiver lost the stream: %v", err)
	}
	if b.assembly != 0 {
		t.Fatalf("%d bytes still reserved", b.assembly)
	}
	if len(me.got[1]) != 0 {
		t.Fatal("delivered")
	}
}

// streamBytes is what n has assembled of streams so far.
func streamBytes(n *Node) int {
	k := 0
	for _, ep := range n.eps {
		for _, st := range ep.streams {
			k += int(st.next)
		}
	}
	return k
}

// segment builds a stream segment's blob.
func segment(app packet.AppID, id uint32, off, total int64, flags byte, digest, data []byte) []byte {
	b := make([]byte, segHeader)
	copy(b, app[:])
	binary.BigEndian.PutUint32(b[16:], id)
	binary.BigEndian.PutUint64(b[20:], uint64(off))
	binary.BigEndian.PutUint64(b[28:], uint64(total))
	b[36] = flags
	b = append(b, digest...)
	return append(b, data...)
}

// The receiver checks what segments claim: lengths and offsets that do not
// add up are malformed; a stream whose bytes do not match the digest of
// its last segment is ErrBadHash, to the sender and to the application;
// segments that come ahead are kept (within the budget) and delivered in
// order; copies are answered and not delivered twice.
func TestReceiveSegment(t *testing.T) {
	me := newMesh(t, 2, phys.ESPNOW(), sim.Loss{}, 6, nil)
	me.start()
	me.discover()
	b := me.nodes[1]
	key := b.bestEndpoint(b.Peer(me.nodes[0].ID())).key
	now := me.clk.Now()
	var got []StreamChunk
	b.RegisterStream(testApp, func(c StreamChunk) { c.Data = bytes.Clone(c.Data); got = append(got, c) })
	for _, seg := range [][]byte{
		nil, {1, 2, 3},
		segment(testApp, 1, 0, 10, 0, nil, make([]byte, 11)),                   // past the total
		segment(testApp, 1, 5, 10, 0, nil, make([]byte, 5)),                    // reaches the end, not flagged last
		segment(testApp, 1, 0, 10, segLast, make([]byte, 16), make([]byte, 4)), // flagged last, short of the end
		segment(testApp, 1, 0, -1, 0, nil, nil),
		segment(testApp, 1, 0, MaxStream+1, 0, nil, nil),
		segment(testApp, 1, 0, 10, segLast, make([]byte, 3), nil), // no room for the digest
	} {
		if err := b.receiveSegment(key, seg, now); err == nil {
			t.Fatalf("accepted %x", seg)
		}
	}
	data := []byte("0123456789")
	sum := sha256.Sum256(data)
	// Second half first, then a copy of it, then the first half.
	if err := b.receiveSegment(key, segment(testApp, 2, 5, 10, segLast, sum[:16], data[5:]), now); err != nil {
		t.Fatal(err)
	}
	if err := b.receiveSegment(key, segment(testApp, 2, 5, 10, segLast, sum[:16], data[5:]), now); err != nil || len(got) != 0 {
		t.Fatalf("copy: %v, %d chunks", err, len(got))
	}
	if err := b.receiveSegment(key, segment(testApp, 2, 0, 10, 0, nil, data[:5]), now); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0].Data)+string(got[1].Data) != string(data) || !got[1].End || got[1].Err != nil {
		t.Fatalf("chunks %+v", got)
	}
	// A late copy after the end: answered, nothing delivered.
	if err := b.receiveSegment(key, segment(testApp, 2, 0, 10, 0, nil, data[:5]), now); err != nil || len(got) != 2 {
		t.Fatalf("late copy: %v", err)
	}
	// A wrong digest.
	got = nil
	if err := b.receiveSegment(key, segment(testApp, 3, 0, 10, segLast, make([]byte, 16), data), now); !errors.Is(err, ErrBadHash) || len(got) != 1 || !errors.Is(got[0].Err, ErrBadHash) {
		t.Fatalf("bad digest: %v, %+v", err, got)
	}
	// Unknown application; a stream lost midway.
	other := packet.NewAppID("nobody", "", 0)
	if err := b.receiveSegment(key, segment(other, 4, 0, 10, 0, nil, data[:5]), now); !errors.Is(err, ErrUnknownApp) {
		t.Fatalf("unknown app: %v", err)
	}
	if err := b.receiveSegment(key, segment(testApp, 5, 5, 10, segBaseOK|segLast, sum[:16], data[5:]), now); !errors.Is(err, ErrStreamLost) {
		t.Fatalf("lost stream: %v", err)
	}
}

// FuzzSegment feeds a node arbitrary stream segments (a run of records:
// length (2 bytes), then the segment) from one neighbour: nothing may
// panic it, and what it holds stays within its budgets.
func FuzzSegment(f *testing.F) {
	data := []byte("0123456789")
	sum := sha256.Sum256(data)
	rec := func(segs ...[]byte) []byte {
		var b []byte
		for _, s := range segs {
			b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
			b = append(b, s...)
		}
		return b
	}
	f.Add(rec(segment(testApp, 1, 0, 10, segLast, sum[:16], data)))
	f.Add(rec(segment(testApp, 2, 5, 10, segLast, sum[:16], data[5:]), segment(testApp, 2, 0, 10, 0, nil, data[:5])))
	f.Add(rec(segment(testApp, 3, 0, 1<<40, 0, nil, data), segment(testApp, 3, 1<<39, 1<<40, 0, nil, data)))
	f.Add(rec(segment(testApp, 4, 3, 10, segBaseOK, nil, data[:3]), []byte{1, 2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		me := newMesh(t, 2, phys.ESPNOW(), sim.Loss{}, 7, func(i int, c *Config) {
			c.BeaconPeriod = -1
			c.Budgets.RxPerPeer = 16 << 10
			c.Budgets.Assembly = 64 << 10
		})
		n := me.nodes[1]
		key := n.links[0].info.Addr
		ep := peer.Endpoint{Addr: key}
		n.RegisterStream(testApp, func(StreamChunk) {})
		now := me.clk.Now()
		for len(b) >= 2 {
			l := int(binary.BigEndian.Uint16(b))
			b = b[2:]
			if l > len(b) {
				l = len(b)
			}
			_ = n.receiveSegment(ep, b[:l], now)
			b = b[l:]
			now = now.Add(time.Second)
		}
		for _, e := range n.eps {
			if len(e.streams) > maxStreams || e.inBytes+e.pendingBytes() > n.bud.RxPerPeer {
				t.Fatalf("%d streams, %d bytes held ahead", len(e.streams), e.pendingBytes())
			}
			for _, st := range e.streams {
				if st.pendLen > n.bud.RxPerPeer || st.next > st.total {
					t.Fatalf("stream holds %d bytes ahead, %d of %d taken", st.pendLen, st.next, st.total)
				}
			}
		}
		if n.assembly > n.bud.Assembly || n.assembly < 0 {
			t.Fatalf("assembly %d", n.assembly)
		}
	})
}

// On an ESP-NOW v2 medium our nodes that announce v2 frames send each
// other the v2 schemas (datagrams up to 1,470 bytes), and v1 frames to a
// node whose radio takes only those; every Package arrives.
func TestESPNOWV2PerPeer(t *testing.T) {
	me := emptyMesh(t, phys.ESPNOWV2(phys.ESPNOWAt(24000)), 8)
	for i := range 3 {
		me.add(sim.Position{}, Config{Identity: identity.FromSeed([32]byte{byte(i + 1), 8}), Seed: uint64(i)}, func(*Config) {
			if i == 2 {
				me.radios[i].SetLimits(250, link.SchemasESPNOW) // a v1 device
			}
		})
	}
	me.connect(0, 1, sim.Loss{})
	me.connect(0, 2, sim.Loss{})
	var longest [3]int
	schemas := map[uint8]bool{}
	me.m.SetMonitor(func(_ time.Time, from *sim.Radio, dst link.Addr, data []byte) {
		if from == me.radios[0] && dst != nil {
			for i, r := range me.radios {
				if dst == r.Addr() {
					longest[i] = max(longest[i], len(data))
				}
			}
			schemas[data[2]] = true
		}
	})
	me.start()
	me.discover()
	a := me.nodes[0]
	for i := 1; i <= 2; i++ {
		data := blob(100000, byte(i))
		if err := me.wait(a.Send(me.nodes[i].ID(), testApp, data, nil), time.Minute); err != nil || len(me.got[i]) != 1 || !bytes.Equal(me.got[i][0].Blob, data) {
			t.Fatalf("to node %d: %v, %d delivered", i, err, len(me.got[i]))
		}
	}
	if longest[1] <= 250 || longest[1] > 1470 || longest[2] > 250 || !schemas[42] || !schemas[2] {
		t.Fatalf("longest frame to the v2 node %d, to the v1 node %d; schemas %v", longest[1], longest[2], schemas)
	}
}
