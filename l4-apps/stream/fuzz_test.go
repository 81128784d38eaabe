package stream

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
)

// fakeRouter records what a service sends and confirms it at once.
type fakeRouter struct{ sent [][]byte }

func (f *fakeRouter) Send(_ identity.NodeID, _ packet.AppID, blob []byte, _ *route.Options) *node.Result {
	f.sent = append(f.sent, blob)
	r := node.NewResult()
	r.Complete(nil)
	return r
}

func (f *fakeRouter) SendTo(d route.Destination, app packet.AppID, blob []byte, opt *route.Options) *node.Result {
	return f.Send(d.ID, app, blob, opt)
}

func openMsg(id uint64, app packet.AppID, size, chunk int, sum [32]byte) []byte {
	b := header(msgOpen, id)
	b = append(b, app[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint32(b, uint32(chunk))
	b = append(b, sum[:]...)
	return append(b, make([]byte, 32)...)
}

func dataMsg(id uint64, i int, data []byte) []byte {
	return append(binary.BigEndian.AppendUint32(header(msgData, id), uint32(i)), data...)
}

// FuzzHandle feeds any sequence of messages (split from the input) to a
// receiving service: nothing panics, memory stays within the budgets, and
// a blob is delivered only when its hash is the one opened with.
func FuzzHandle(f *testing.F) {
	blob := []byte("0123456789abcdefghij")
	sum := sha256.Sum256(blob)
	join := func(ms ...[]byte) []byte {
		var out []byte
		for _, m := range ms {
			out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
			out = append(out, m...)
		}
		return out
	}
	f.Add(join(openMsg(1, fileApp, 20, 8, sum), dataMsg(1, 0, blob[:8]), dataMsg(1, 1, blob[8:16]), dataMsg(1, 2, blob[16:])))
	f.Add(join(openMsg(1, fileApp, 20, 8, sum), dataMsg(1, 2, blob[16:]), dataMsg(1, 2, blob[16:]), dataMsg(1, 0, blob[:8]), dataMsg(1, 1, blob[8:16])))
	f.Add(join(openMsg(1, fileApp, 1<<40, 8, sum)))
	f.Add(join(openMsg(1, fileApp, 20, 0, sum), dataMsg(1, 0, nil)))
	f.Add(join(openMsg(2, fileApp, 20, 8, sum), dataMsg(2, 3, blob[:4]), append(header(msgEnd, 2), make([]byte, 32)...), header(msgAbort, 2)))
	f.Add(join(header(msgResult, 1), []byte{msgData}, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		clk := clock.NewVirtual(time.Time{})
		fr := &fakeRouter{}
		var got []Message
		s := New(Config{Clock: clk, Router: fr, Rand: rand.New(rand.NewPCG(1, 2)), MaxSize: 1 << 16, MaxBuffered: 1 << 17, MaxIncoming: 2,
			Accept: func(app packet.AppID) bool { return app == fileApp },
			Deliver: func(m Message) error {
				got = append(got, m)
				return nil
			}})
		for len(in) >= 2 {
			n := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			if n > len(in) {
				n = len(in)
			}
			s.Handle(node.Message{App: AppID, Blob: slices.Clone(in[:n]), Route: &node.RouteHeader{}})
			in = in[n:]
			if s.held > s.cfg.MaxBuffered || len(s.in) > s.cfg.MaxIncoming || len(s.done) > doneMax {
				t.Fatalf("budgets broken: %d bytes, %d streams, %d remembered", s.held, len(s.in), len(s.done))
			}
			clk.RunFor(time.Second)
		}
		for _, m := range got {
			if sha256.Sum256(m.Blob) != m.SHA256 || m.App != fileApp {
				t.Fatalf("delivered a blob that does not match its hash")
			}
		}
	})
}
