package stream

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// inStream is a stream being received.
type inStream struct {
	id    uint64
	app   packet.AppID
	from  replyTo
	sum   [sha256.Size]byte
	chunk int
	buf   []byte
	have  []bool
	left  int // chunks missing
	idle  clock.Timer
}

// doneStream remembers how a stream ended, to answer an end message again.
type doneStream struct {
	code uint8
	at   time.Time
}

// Finished streams are remembered for doneFor, at most doneMax of them.
const (
	doneFor = 10 * time.Minute
	doneMax = 256
)

// maxChunks bounds a stream's chunk count (its bitmap).
const maxChunks = 1 << 20

func (s *Service) onOpen(m node.Message) {
	b := m.Blob
	id := streamID(b)
	if s.in[id] != nil {
		return // a copy: the open's sender tried again
	}
	if d, ok := s.done[id]; ok {
		var from identity.NodeID
		copy(from[:], b[69:101])
		s.reply(replyOf(m, from), append(header(msgResult, id), d.code))
		return
	}
	var st inStream
	st.id = id
	copy(st.app[:], b[9:25])
	size := binary.BigEndian.Uint64(b[25:33])
	st.chunk = int(binary.BigEndian.Uint32(b[33:37]))
	copy(st.sum[:], b[37:69])
	var from identity.NodeID
	copy(from[:], b[69:101])
	st.from = replyOf(m, from)
	refuse := func(err error, why string) {
		s.stats.Refused++
		s.cfg.Logger.Info("stream refused", "stream", idString(id), "from", from.Short(), "bytes", size, "why", why)
		s.remember(id, resultCode(err))
		s.reply(st.from, append(header(msgResult, id), resultCode(err)))
	}
	switch {
	case size == 0 || st.chunk <= 0 || st.chunk > MaxChunk || (size+uint64(st.chunk)-1)/uint64(st.chunk) > maxChunks:
		s.stats.Malformed++
		refuse(node.ErrTooLarge, "bad size or chunk")
		return
	case size > uint64(s.cfg.MaxSize):
		refuse(node.ErrTooLarge, "larger than max_size")
		return
	case !s.cfg.Accept(st.app):
		refuse(node.ErrUnknownApp, "no such application here")
		return
	case len(s.in) >= s.cfg.MaxIncoming:
		refuse(node.ErrBusy, "too many incoming streams")
		return
	case s.held+int(size) > s.cfg.MaxBuffered:
		refuse(node.ErrNoMemory, "no room")
		return
	}
	st.buf = make([]byte, size)
	count := int((size + uint64(st.chunk) - 1) / uint64(st.chunk))
	st.have = make([]bool, count)
	st.left = count
	s.held += int(size)
	s.in[id] = &st
	s.touch(&st)
	s.cfg.Logger.Debug("stream opened", "stream", idString(id), "from", from.Short(), "bytes", size, "chunks", count)
}

// touch restarts an incoming stream's idle timer.
func (s *Service) touch(st *inStream) {
	if st.idle != nil {
		st.idle.Stop()
	}
	st.idle = s.cfg.Clock.AfterFunc(s.cfg.Idle, func() {
		if s.in[st.id] == st {
			s.stats.Refused++
			s.cfg.Logger.Info("stream dropped: idle", "stream", idString(st.id), "missing", st.left)
			s.drop(st)
		}
	})
}

func (s *Service) drop(st *inStream) {
	if st.idle != nil {
		st.idle.Stop()
	}
	delete(s.in, st.id)
	s.held -= len(st.buf)
	st.buf = nil
}

func (s *Service) onData(m node.Message) {
	b := m.Blob
	st := s.in[streamID(b)]
	if st == nil {
		return // refused, dropped, or done: the sender hears from the result
	}
	i := int(binary.BigEndian.Uint32(b[9:13]))
	data := b[dataHead:]
	lo := i * st.chunk
	if i >= len(st.have) || len(data) != min(st.chunk, len(st.buf)-lo) {
		s.stats.Malformed++
		return
	}
	s.touch(st)
	if st.have[i] {
		return
	}
	copy(st.buf[lo:], data)
	st.have[i] = true
	st.left--
	if st.left > 0 {
		return
	}
	// Complete: verify, deliver, answer.
	blob := st.buf
	s.drop(st)
	var code uint8
	if sha256.Sum256(blob) != st.sum {
		code = node.ErrBadHash.Code
		s.stats.Refused++
	} else {
		err := s.cfg.Deliver(Message{App: st.app, From: st.from.id, Blob: blob, SHA256: st.sum, Time: m.Time})
		code = resultCode(err)
		if err == nil {
			s.stats.Received++
			s.stats.ReceivedBytes += uint64(len(blob))
		} else {
			s.stats.Refused++
		}
	}
	s.cfg.Logger.Debug("stream received", "stream", idString(st.id), "bytes", len(blob), "code", code)
	s.remember(st.id, code)
	s.reply(st.from, append(header(msgResult, st.id), code))
}

// remember keeps a stream's outcome for doneFor (bounded).
func (s *Service) remember(id uint64, code uint8) {
	now := s.cfg.Clock.Now()
	for len(s.doneQ) > 0 {
		old := s.doneQ[0]
		if len(s.doneQ) < doneMax && now.Sub(s.done[old].at) < doneFor {
			break
		}
		delete(s.done, old)
		s.doneQ = s.doneQ[1:]
	}
	if _, ok := s.done[id]; !ok {
		s.doneQ = append(s.doneQ, id)
	}
	s.done[id] = doneStream{code: code, at: now}
}

// onEnd: the sender has every chunk confirmed and asks for the result
// again. A stream we know nothing of (this node restarted, or forgot)
// is answered ErrAbandoned; one still missing chunks is not answered (the
// sender asks again).
func (s *Service) onEnd(m node.Message) {
	id := streamID(m.Blob)
	var from identity.NodeID
	copy(from[:], m.Blob[9:41])
	to := replyOf(m, from)
	if d, ok := s.done[id]; ok {
		s.reply(to, append(header(msgResult, id), d.code))
		return
	}
	if s.in[id] == nil {
		s.reply(to, append(header(msgResult, id), node.ErrAbandoned.Code))
	}
}

func (s *Service) onAbort(b []byte) {
	if st := s.in[streamID(b)]; st != nil {
		s.cfg.Logger.Debug("stream aborted by its sender", "stream", idString(st.id))
		s.drop(st)
	}
}
