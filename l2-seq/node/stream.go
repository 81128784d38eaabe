package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"io"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// Streams [ours]: a transfer larger than one segment goes to one of our
// neighbours (one hop; l4-apps/stream carries blobs end to end over routes)
// as consecutive sequences (segments of segBytes of reassembly
// at most), each a Package of SegmentAppID whose blob is a segment:
//
//	app_id (16) ‖ stream_id (4) ‖ offset (8) ‖ total (8) ‖ flags (1) ‖ [digest (16)] ‖ data
//
// app_id is the application the stream is for; stream_id names the stream
// among the sender's; offset is where data starts in it, total its length;
// flags bit 0 marks the last segment, which carries the first 16 bytes of
// SHA-256 of the whole stream; bit 1 says the segment at offset 0 was
// confirmed before this one went, so that a receiver that lost the stream
// (a restart) answers ErrStreamLost instead of starting it again from the
// middle. Each segment is checked by its own Package's hash; the digest
// checks the whole, in order.
//
// The sender keeps streamWindow segments in flight and reads the next one
// only when one is confirmed: its memory holds two segments whatever the
// stream's size, and the receiver never holds more than two segments' worth
// of reassembly for it (its per-neighbour budget takes four). The receiver hands each segment's data to the
// application in order as it comes (RegisterStream), or, for an
// application that takes whole Messages, assembles the stream up to
// Budgets.MaxMessage and delivers it once, checked.

// SegmentAppID is the app_id of stream segments, ("Mycelium", "segment",
// 1). (l4-apps/stream's routed, end-to-end streams are another thing, with
// an app_id of their own.)
var SegmentAppID = packet.NewAppID("Mycelium", "segment", 1)

const (
	// segBytes is the reassembly a segment costs its receiver at most, and
	// segPackets the packets it fills at most: four segments' worth fit a
	// receiver's default per-neighbour budget of 128 KiB (96 ESP-NOW
	// packets of 243 bytes, or 19 of ESP-NOW v2's 1,463).
	segBytes   = 29 << 10
	segPackets = 96
	// streamWindow is how many segments of one stream are in flight.
	streamWindow = 2
	segHeader    = packet.AppIDSize + 4 + 8 + 8 + 1
	segDigest    = 16
	// Segment flags: the last segment; the first one was confirmed before
	// this one went (a receiver that knows nothing of the stream then
	// lost it, and must not start it afresh).
	segLast   = 1
	segBaseOK = 2
	// maxStreams bounds the streams a node receives from one neighbour at
	// once; streamIdle is how long one may go without a segment.
	maxStreams = 4
	streamIdle = 2 * time.Minute
	// MaxStream is the largest stream: 1 TiB.
	MaxStream = int64(1) << 40
)

// StreamChunk is a piece of a stream, handed to the application in order.
type StreamChunk struct {
	App       packet.AppID
	From      identity.NodeID // the sender, when a known peer
	FromKnown bool
	Via       peer.Endpoint
	Stream    uint32 // the sender's stream_id
	Offset    int64  // where Data starts in the stream
	Total     int64  // the stream's length
	// Data is valid only during the call.
	Data []byte
	// End marks the last chunk; Err then says whether the whole stream
	// matched its digest (nil) or not (ErrBadHash: discard what came).
	End  bool
	Err  error
	Time time.Time
}

// StreamHandler receives a stream's chunks, in order.
type StreamHandler func(c StreamChunk)

// RegisterStream adds an application that takes streams chunk by chunk (it
// may take whole Packages too, with Register); its app_id is announced in
// beacons.
func (n *Node) RegisterStream(id packet.AppID, h StreamHandler) {
	if n.app(id) == nil {
		if _, ok := n.streamApps[id]; !ok {
			n.appOrder = append(n.appOrder, id)
		}
	}
	if n.streamApps == nil {
		n.streamApps = map[packet.AppID]StreamHandler{}
	}
	n.streamApps[id] = h
}

// segCap is the data a segment carries to ep: as many packets of the
// largest-bodied schema a sequence to it may use as segBytes of reassembly
// hold (at most segPackets), less the headers.
func (n *Node) segCap(ep *endpoint) int {
	s, err := chooseSchema(ep.tl.info.Schemas, func(s *packet.Schema) bool { return !s.Routed() && s.Sequenced() && ep.takes(s) }, 0, ep.room())
	if err != nil {
		return 0
	}
	k := min(segPackets, max(2, segBytes/(s.MaxBody+chunkOverhead)))
	return k*s.MaxBody - 1 - ep.room() - packet.PackageOverhead - segHeader - segDigest
}

// SendStream sends size bytes read from r to application app on the peer
// to, as a stream: any size up to MaxStream, with two segments' worth of
// memory at each end. The Result completes when the receiver has every
// byte and the whole matched its digest, or with the first error (a
// segment's, or ErrSource when r fails or ends early). r is read on the
// node's loop, a segment at a time: give it data at hand (memory, a local
// file), not a reader that blocks. Only our nodes take streams: to a
// reference node it is ErrTooLarge.
func (n *Node) SendStream(to identity.NodeID, app packet.AppID, r io.Reader, size int64, opt *SendOptions) *Result {
	ep, fail := n.peerEndpoint(to)
	if fail != nil {
		return fail
	}
	return n.sendStream(ep, app, r, size, opt)
}

func (n *Node) sendStream(ep *endpoint, app packet.AppID, r io.Reader, size int64, opt *SendOptions) *Result {
	if !ep.peerFull() || size > MaxStream || size < 0 {
		return n.fail(ErrTooLarge)
	}
	capa := n.segCap(ep)
	if capa <= 0 {
		return n.fail(ErrNoSchema)
	}
	n.streamID++
	s := &outStream{n: n, ep: ep, res: newResult(), app: app, id: n.streamID, r: r, total: size, cap: capa, hash: sha256.New()}
	if opt != nil {
		s.opt = *opt
	}
	n.stats.Streams++
	s.fill()
	return s.res
}

// outStream is a stream being sent.
type outStream struct {
	n        *Node
	ep       *endpoint
	res      *Result
	app      packet.AppID
	id       uint32
	r        io.Reader
	total    int64
	read     int64 // bytes read and handed to segments
	cap      int
	hash     hash.Hash
	inflight int
	started  bool // the first segment went (a 0-byte stream has one, empty)
	baseOK   bool // the first segment was confirmed
	done     bool
	opt      SendOptions
}

// fill starts segments while the window has room.
func (s *outStream) fill() {
	for !s.done && s.inflight < streamWindow && (s.read < s.total || !s.started) {
		k := int(min(int64(s.cap), s.total-s.read))
		last := s.read+int64(k) == s.total
		blob := make([]byte, segHeader, segHeader+segDigest+k)
		copy(blob, s.app[:])
		binary.BigEndian.PutUint32(blob[16:], s.id)
		binary.BigEndian.PutUint64(blob[20:], uint64(s.read))
		binary.BigEndian.PutUint64(blob[28:], uint64(s.total))
		data := make([]byte, k)
		if _, err := io.ReadFull(s.r, data); err != nil {
			s.finish(ErrSource)
			return
		}
		s.hash.Write(data)
		if s.baseOK {
			blob[36] |= segBaseOK
		}
		if last {
			blob[36] |= segLast
			blob = s.hash.Sum(blob)[:segHeader+segDigest]
		}
		blob = append(blob, data...)
		first := s.read == 0
		s.read += int64(k)
		s.started = true
		s.inflight++
		pkg := packet.NewPackage(SegmentAppID, blob)
		res := s.n.sendPackage(s.ep, pkg.AppendTo(make([]byte, 0, pkg.Len())), nil, &s.opt)
		res.OnDone(func(err error) {
			// After the send that finished has unwound.
			s.n.clk.AfterFunc(0, func() {
				if first && err == nil {
					s.baseOK = true
				}
				s.segmentDone(err)
			})
		})
	}
}

// segmentDone is a segment confirmed or failed.
func (s *outStream) segmentDone(err error) {
	s.inflight--
	if s.done {
		return
	}
	if err != nil {
		s.finish(err)
		return
	}
	if s.read == s.total && s.inflight == 0 {
		s.finish(nil)
		return
	}
	s.fill()
}

func (s *outStream) finish(err error) {
	if s.done {
		return
	}
	s.done = true
	s.n.finishSend(s.res, err)
}

// inStream is a stream being received from one neighbour.
type inStream struct {
	n        *Node
	id       uint32
	app      packet.AppID
	total    int64
	next     int64 // bytes delivered
	hash     hash.Hash
	digest   []byte           // from the last segment, once it came
	pending  map[int64][]byte // segments ahead of next, by offset
	pendLen  int              // their bytes
	whole    []byte           // assembled for an application of whole Messages
	reserved int              // of Budgets.Assembly, for it
	stream   StreamHandler    // else chunk by chunk
	lastAt   time.Time
	timer    interface{ Stop() bool }
}

// receiveSegment handles a stream segment from ep's neighbour; the error
// goes back to the sender as the segment's answer.
func (n *Node) receiveSegment(key peer.Endpoint, blob []byte, now time.Time) error {
	if len(blob) < segHeader {
		n.drop(DropMalformed)
		return ErrBadHash
	}
	var app packet.AppID
	copy(app[:], blob)
	id := binary.BigEndian.Uint32(blob[16:])
	off := int64(binary.BigEndian.Uint64(blob[20:]))
	total := int64(binary.BigEndian.Uint64(blob[28:]))
	last := blob[36]&segLast != 0
	data := blob[segHeader:]
	var digest []byte
	if last {
		if len(data) < segDigest {
			n.drop(DropMalformed)
			return ErrBadHash
		}
		digest, data = data[:segDigest], data[segDigest:]
	}
	end := off + int64(len(data))
	if total < 0 || total > MaxStream || off < 0 || end > total || last != (end == total) {
		n.drop(DropMalformed)
		return ErrBadHash
	}
	ep := n.endpointFor(key)
	if ep.doneStreams[id] {
		return nil // a late copy of a segment of a stream already whole
	}
	st := ep.streams[id]
	if st == nil {
		if blob[36]&segBaseOK != 0 {
			// The sender had the first segment confirmed, and we know
			// nothing of the stream: we lost it (a restart, or it went idle
			// too long). What came before is gone; say so.
			return ErrStreamLost
		}
		var err error
		if st, err = n.openStream(ep, id, app, total, now); err != nil {
			return err
		}
	}
	if st.app != app || st.total != total {
		n.drop(DropMalformed)
		return ErrBadHash
	}
	st.lastAt = now
	if digest != nil {
		st.digest = bytes.Clone(digest)
	}
	switch {
	case end < st.next || (end == st.next && len(data) > 0):
		return nil // delivered already
	case off > st.next:
		// Ahead of a segment still on its way: kept until it comes, within
		// the neighbour's reassembly budget.
		if _, ok := st.pending[off]; !ok {
			if ep.inBytes+ep.pendingBytes()+len(data) > n.bud.RxPerPeer {
				n.drop(DropBudget)
				return ErrNoMemory
			}
			st.pending[off] = bytes.Clone(data)
			st.pendLen += len(data)
		}
		return nil
	case off < st.next:
		data = data[st.next-off:] // overlaps what came: the rest only
		off = st.next
	}
	if err := n.consume(ep, st, off, data, now); err != nil {
		return err
	}
	for {
		d, ok := st.pending[st.next]
		if !ok {
			break
		}
		delete(st.pending, st.next)
		st.pendLen -= len(d)
		if err := n.consume(ep, st, st.next, d, now); err != nil {
			return err
		}
	}
	return nil
}

// pendingBytes is what ep's streams hold ahead of their next byte.
func (ep *endpoint) pendingBytes() int {
	k := 0
	for _, st := range ep.streams {
		k += st.pendLen
	}
	return k
}

// openStream starts receiving stream id for app.
func (n *Node) openStream(ep *endpoint, id uint32, app packet.AppID, total int64, now time.Time) (*inStream, error) {
	h, stream := n.app(app), n.streamApps[app]
	switch {
	case h == nil && stream == nil:
		n.drop(DropUnknownApp)
		return nil, ErrUnknownApp
	case stream == nil && total > int64(n.bud.Assembly):
		n.drop(DropBudget)
		return nil, ErrTooLarge
	case stream == nil && int64(n.assembly)+total > int64(n.bud.Assembly):
		n.drop(DropBudget)
		return nil, ErrNoMemory
	}
	// Make room: a stream idle past streamIdle goes; past maxStreams the
	// newcomer is refused.
	for sid, s := range ep.streams {
		if now.Sub(s.lastAt) >= streamIdle {
			ep.dropStream(sid)
		}
	}
	if len(ep.streams) >= maxStreams {
		n.drop(DropBudget)
		return nil, ErrNoMemory
	}
	st := &inStream{n: n, id: id, app: app, total: total, hash: sha256.New(), pending: map[int64][]byte{}, stream: stream, lastAt: now}
	if stream == nil {
		st.reserved = int(total)
		n.assembly += st.reserved
	}
	if ep.streams == nil {
		ep.streams = map[uint32]*inStream{}
	}
	ep.streams[id] = st
	st.timer = n.clk.AfterFunc(streamIdle, func() { n.streamIdle(ep, st) })
	return st, nil
}

// streamIdle drops a stream that got no segment for streamIdle.
func (n *Node) streamIdle(ep *endpoint, st *inStream) {
	if ep.streams[st.id] != st {
		return
	}
	if wait := streamIdle - n.clk.Now().Sub(st.lastAt); wait > 0 {
		st.timer = n.clk.AfterFunc(wait, func() { n.streamIdle(ep, st) })
		return
	}
	ep.dropStream(st.id)
}

func (ep *endpoint) dropStream(id uint32) {
	if st := ep.streams[id]; st != nil {
		if st.timer != nil {
			st.timer.Stop()
		}
		st.n.assembly -= st.reserved
		st.reserved, st.whole, st.pending = 0, nil, nil
		delete(ep.streams, id)
	}
}

// consume takes the stream's next bytes, at off == st.next.
func (n *Node) consume(ep *endpoint, st *inStream, off int64, data []byte, now time.Time) error {
	st.hash.Write(data)
	st.next += int64(len(data))
	end := st.next == st.total
	var err error
	if end {
		if sum := st.hash.Sum(nil); st.digest == nil || !bytes.Equal(sum[:segDigest], st.digest) {
			n.drop(DropHash)
			err = ErrBadHash
		}
	}
	if st.stream != nil {
		c := StreamChunk{App: st.app, Via: ep.key, Stream: st.id, Offset: off, Total: st.total, Data: data, End: end, Err: err, Time: now}
		if pr := n.peers.ByEndpoint(ep.key); pr != nil {
			c.From, c.FromKnown = pr.ID, true
		}
		n.stats.DeliveredBytes += uint64(len(data))
		st.stream(c)
	} else {
		st.whole = append(st.whole, data...)
	}
	if !end {
		return nil
	}
	whole := st.whole
	ep.dropStream(st.id)
	if ep.doneStreams == nil {
		ep.doneStreams = map[uint32]bool{}
	}
	ep.doneStreams[st.id] = true
	id := st.id
	n.clk.AfterFunc(streamIdle, func() { delete(ep.doneStreams, id) })
	switch {
	case err != nil:
		return err
	case st.stream != nil:
		n.stats.Delivered++
		return nil
	}
	return n.deliverApp(Message{App: st.app, Blob: whole, Via: ep.key, Time: now})
}
