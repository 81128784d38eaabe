package node

import (
	"bytes"
	"encoding/hex"
	"net"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// fakeLink is a scripted link: the test injects frames and reads what the
// node sent, with a fixed airtime per datagram.
type fakeLink struct {
	clk  *clock.Virtual
	info link.Info
	d    link.Dispatcher
	sent []sentFrame
	air  time.Duration
	// slow: how much longer than its airtime each datagram holds the
	// link (a busy air: the node's other neighbours' turns, collisions).
	slow   time.Duration
	busy   time.Time
	closed bool
	stats  link.Stats
}

type sentFrame struct {
	dst    link.Addr
	data   []byte
	at     time.Time // when it went on the air
	handed time.Time // when the node handed it over
}

func newFakeLink(clk *clock.Virtual, name string, addr link.Addr, schemas []uint8, bitrate int, air time.Duration, caps link.Caps) *fakeLink {
	return &fakeLink{clk: clk, air: air, info: link.Info{Name: name, Addr: addr, MTU: 250, Bitrate: bitrate, Schemas: schemas, Caps: caps, TxQueue: 8}}
}

func (f *fakeLink) Info() link.Info                   { return f.info }
func (f *fakeLink) Attach(d link.Dispatcher)          { f.d = d }
func (f *fakeLink) Counters() link.Counters           { return f.stats.Snapshot() }
func (f *fakeLink) Airtime(n int) time.Duration       { return f.air }
func (f *fakeLink) Close() error                      { f.closed = true; return nil }
func (f *fakeLink) deliver(src link.Addr, b []byte)   { f.deliverAt(src, b, false) }
func (f *fakeLink) broadcast(src link.Addr, b []byte) { f.deliverAt(src, b, true) }

func (f *fakeLink) deliverAt(src link.Addr, b []byte, bcast bool) {
	if f.d != nil {
		f.d.DeliverFrame(link.Frame{Src: src, Data: b, Broadcast: bcast, Time: f.clk.Now()})
	}
}

func (f *fakeLink) Send(dst link.Addr, data []byte, tag link.Tag) error {
	if f.closed {
		return net.ErrClosed
	}
	if len(data) > f.info.MTU {
		return link.ErrTooBig
	}
	now := f.clk.Now()
	start := now
	if f.busy.After(start) {
		start = f.busy
	}
	f.busy = start.Add(f.air + f.slow)
	f.sent = append(f.sent, sentFrame{dst: dst, data: bytes.Clone(data), at: start, handed: now})
	f.clk.AfterFunc(f.busy.Sub(now), func() {
		if f.d != nil {
			f.d.TxDone(tag, nil)
		}
	})
	return nil
}

// take returns and forgets what was sent.
func (f *fakeLink) take() []sentFrame {
	s := f.sent
	f.sent = nil
	return s
}

// decoded parses a sent frame.
func (s sentFrame) decoded() packet.Packet {
	var p packet.Packet
	if err := p.UnmarshalBinary(s.data); err != nil {
		panic(err)
	}
	return p
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
