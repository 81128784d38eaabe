package stream

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// outStream is a stream being sent.
type outStream struct {
	s        *Service
	id       uint64
	to       identity.NodeID
	blob     []byte
	count    int // chunks
	next     int // the next chunk to send
	inFlight int
	acked    int // chunks confirmed
	res      *node.Result
	progress func(confirmed, total int)
	opened   bool
	asks     int
	timer    clock.Timer
	done     bool
}

// Send sends blob to application app on node to: as one plain routed
// Package when it fits a chunk, else as a stream. The Result succeeds when
// the destination confirmed the whole blob; progress (may be nil) hears
// how many bytes are confirmed so far.
func (s *Service) Send(to identity.NodeID, app packet.AppID, blob []byte, progress func(confirmed, total int)) *node.Result {
	if len(blob) == 0 {
		r := node.NewResult()
		r.Complete(ErrEmpty)
		return r
	}
	if progress == nil {
		progress = func(int, int) {}
	}
	if len(blob) <= s.cfg.Chunk {
		r := s.cfg.Router.Send(to, app, blob, nil)
		r.OnDone(func(err error) {
			if err == nil {
				progress(len(blob), len(blob))
			}
		})
		return r
	}
	o := &outStream{s: s, id: s.cfg.Rand.Uint64(), to: to, blob: blob, res: node.NewResult(), progress: progress}
	for s.out[o.id] != nil || o.id == 0 {
		o.id = s.cfg.Rand.Uint64()
	}
	o.count = (len(blob) + s.cfg.Chunk - 1) / s.cfg.Chunk
	s.out[o.id] = o
	sum := sha256.Sum256(blob)
	msg := header(msgOpen, o.id)
	msg = append(msg, app[:]...)
	msg = binary.BigEndian.AppendUint64(msg, uint64(len(blob)))
	msg = binary.BigEndian.AppendUint32(msg, uint32(s.cfg.Chunk))
	msg = append(msg, sum[:]...)
	msg = append(msg, s.cfg.Self[:]...)
	s.cfg.Logger.Debug("stream open", "stream", idString(o.id), "to", to.Short(), "bytes", len(blob), "chunks", o.count)
	s.cfg.Router.Send(to, AppID, msg, nil).OnDone(func(err error) {
		if o.done {
			return
		}
		if err != nil {
			o.fail(err)
			return
		}
		o.opened = true
		o.pump()
	})
	return o.res
}

// pump keeps Window chunks in flight.
func (o *outStream) pump() {
	s := o.s
	for !o.done && o.inFlight < s.cfg.Window && o.next < o.count {
		i := o.next
		o.next++
		o.inFlight++
		lo := i * s.cfg.Chunk
		hi := min(lo+s.cfg.Chunk, len(o.blob))
		msg := binary.BigEndian.AppendUint32(header(msgData, o.id), uint32(i))
		msg = append(msg, o.blob[lo:hi]...)
		s.cfg.Router.Send(o.to, AppID, msg, nil).OnDone(func(err error) {
			if o.done {
				return
			}
			o.inFlight--
			if err != nil {
				// The routing layer tried every tree it had: the way is gone.
				o.fail(err)
				return
			}
			o.acked++
			o.progress(min(o.acked*s.cfg.Chunk, len(o.blob)), len(o.blob))
			if o.acked == o.count {
				o.awaitResult()
				return
			}
			o.pump()
		})
	}
}

// awaitResult: every chunk is confirmed; the result is on its way (or
// came already). Ask again if it is late.
func (o *outStream) awaitResult() {
	s := o.s
	o.timer = s.cfg.Clock.AfterFunc(s.cfg.ResultWait, func() {
		o.timer = nil
		if o.done {
			return
		}
		if o.asks >= s.cfg.ResultAsks {
			o.fail(node.ErrAbandoned)
			return
		}
		o.asks++
		s.cfg.Router.Send(o.to, AppID, append(header(msgEnd, o.id), s.cfg.Self[:]...), nil)
		o.awaitResult()
	})
}

func (o *outStream) finish(err error) {
	if o.done {
		return
	}
	o.done = true
	if o.timer != nil {
		o.timer.Stop()
	}
	delete(o.s.out, o.id)
	if err == nil {
		o.s.stats.Sent++
		o.s.stats.SentBytes += uint64(len(o.blob))
		o.progress(len(o.blob), len(o.blob))
	} else {
		o.s.stats.SendFailed++
	}
	o.s.cfg.Logger.Debug("stream done", "stream", idString(o.id), "err", err)
	o.res.Complete(err)
}

// fail ends the stream with err and tells the receiver to let it go.
func (o *outStream) fail(err error) {
	if o.done {
		return
	}
	if o.opened {
		o.s.cfg.Router.Send(o.to, AppID, header(msgAbort, o.id), nil)
	}
	o.finish(err)
}

// onResult: the receiver's verdict.
func (s *Service) onResult(b []byte) {
	o := s.out[streamID(b)]
	if o == nil {
		return
	}
	if code := b[9]; code != 0 {
		o.finish(codeError(code))
		return
	}
	// Delivered and verified: the blob is there, whatever receipts are
	// still on their way.
	o.finish(nil)
}
