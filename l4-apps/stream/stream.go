// Package stream carries a blob of any size — a file of megabytes — from
// one node to an application on another, as a stream of routed Packages,
// and confirms it end to end. One routed Package is reassembled whole at
// every relay (l3-route), so its size is bounded by the relays' memory
// budgets (128 KiB per neighbour by default); a stream cuts the blob into
// chunks well under that, keeps a window of them in flight, and counts a
// chunk done when the routing layer's end-to-end receipt for it comes back.
// The receiver checks the whole blob against the SHA-256 the stream opened
// with, hands it to the application, and answers with a result message:
// the sender's Result succeeds only on that answer.
//
// A blob that fits one chunk is sent as one plain routed Package to the
// application (its receipt is the confirmation), so small sends reach any
// node of ours, whether or not it runs this package.
//
// Wire [ours], the blobs of the stream application's Packages (AppID):
//
//	0x01 open    ‖ stream(8) ‖ app(16) ‖ size(8) ‖ chunk(4) ‖ sha256(32) ‖ sender node_id(32)
//	0x02 data    ‖ stream(8) ‖ index(4) ‖ bytes (chunk bytes; the last one the rest)
//	0x03 end     ‖ stream(8) ‖ sender node_id(32): every chunk was confirmed; the result, please (again)
//	0x04 result  ‖ stream(8) ‖ code(1): 0 delivered, else a node error code
//	0x05 abort   ‖ stream(8): the sender gave up; free the stream
//
// Like every application here it runs on the node's loop: Send, the
// handler and the callbacks are called there.
package stream

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// AppID is the stream application's app_id.
var AppID = packet.NewAppID("Mycelium", "stream", 1)

// Message types (the first byte of a stream Package's blob).
const (
	msgOpen   = 0x01
	msgData   = 0x02
	msgEnd    = 0x03
	msgResult = 0x04
	msgAbort  = 0x05
)

const (
	openLen   = 1 + 8 + packet.AppIDSize + 8 + 4 + sha256.Size + identity.NodeIDSize
	dataHead  = 1 + 8 + 4
	endLen    = 1 + 8 + identity.NodeIDSize
	abortLen  = 1 + 8
	resultLen = 1 + 8 + 1
)

// MaxChunk bounds a chunk: a receiver refuses streams cut larger (each
// chunk is reassembled whole at every relay).
const MaxChunk = 64 << 10

// Router is what a stream needs of the routing layer (*route.Router).
type Router interface {
	Send(to identity.NodeID, app packet.AppID, blob []byte, opt *route.Options) *node.Result
	SendTo(d route.Destination, app packet.AppID, blob []byte, opt *route.Options) *node.Result
}

// Config configures a Service.
type Config struct {
	Clock  clock.Clock
	Router Router
	Rand   *rand.Rand // stream ids (the node's seeded source)
	Self   identity.NodeID
	// Chunk is the blob bytes per chunk (default 24 KiB, at most MaxChunk);
	// Window the chunks in flight (default 4). A relay reassembles at most
	// four sequences from one neighbour in 128 KiB (the node's default
	// budgets), so four chunks of 24 KiB go through with room to spare;
	// and every chunk takes one of a node's 256 sequence ids for ten
	// seconds at each hop, so the larger the chunk the more a node can
	// stream before the ids run out (about 25 chunks a second sustained).
	Chunk, Window int
	// MaxSize is the largest blob a receiver takes (default 64 MiB);
	// MaxBuffered bounds the bytes of all streams being received together
	// (default 64 MiB), MaxIncoming their number (default 4).
	MaxSize, MaxBuffered, MaxIncoming int
	// Idle drops an incoming stream that brought nothing new for that long
	// (default 2 min).
	Idle time.Duration
	// ResultWait is how long a sender waits for the result once every
	// chunk is confirmed before asking again (default 30 s); it asks
	// ResultAsks times (default 3), then fails with node.ErrAbandoned.
	ResultWait time.Duration
	ResultAsks int
	// Accept reports whether a local application takes Packages (a stream
	// for one that does not is refused at once with node.ErrUnknownApp).
	Accept func(app packet.AppID) bool
	// Deliver hands a completed, verified blob to its application; an
	// error (with a node error code, else ErrUnknownApp) goes back to the
	// sender.
	Deliver func(m Message) error
	Logger  *slog.Logger
}

func (c *Config) fill() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Chunk, 24<<10)
	c.Chunk = min(c.Chunk, MaxChunk)
	def(&c.Window, 4)
	def(&c.MaxSize, 64<<20)
	def(&c.MaxBuffered, 64<<20)
	def(&c.MaxIncoming, 4)
	def(&c.ResultAsks, 3)
	if c.Idle <= 0 {
		c.Idle = 2 * time.Minute
	}
	if c.ResultWait <= 0 {
		c.ResultWait = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Accept == nil {
		c.Accept = func(packet.AppID) bool { return false }
	}
	if c.Deliver == nil {
		c.Deliver = func(Message) error { return node.ErrUnknownApp }
	}
}

// Message is a blob a stream delivered.
type Message struct {
	App    packet.AppID
	From   identity.NodeID // as the sender said in its open message
	Blob   []byte
	SHA256 [sha256.Size]byte
	Time   time.Time
}

// Stats counts a service's streams.
type Stats struct {
	Sent, SentBytes         uint64 // streams (and their bytes) confirmed by the receiver
	SendFailed              uint64
	Received, ReceivedBytes uint64 // streams delivered here
	Refused                 uint64 // streams refused or dropped here (size, memory, app, hash, idle)
	Malformed               uint64
}

// Service sends and receives streams for one node.
type Service struct {
	cfg   Config
	out   map[uint64]*outStream
	in    map[uint64]*inStream
	done  map[uint64]doneStream
	doneQ []uint64
	held  int // bytes of incoming streams
	stats Stats
}

// New returns a service; register its Handle with the node for AppID.
func New(cfg Config) *Service {
	cfg.fill()
	return &Service{cfg: cfg, out: map[uint64]*outStream{}, in: map[uint64]*inStream{}, done: map[uint64]doneStream{}}
}

// Stats returns the counters.
func (s *Service) Stats() Stats { return s.stats }

// Chunk is the chunk size in use: a blob up to this size goes as one
// plain Package.
func (s *Service) Chunk() int { return s.cfg.Chunk }

// Errors a send reports besides the routing layer's.
var (
	// ErrEmpty: nothing to send.
	ErrEmpty = errors.New("stream: empty blob")
)

// Handle is the stream application's handler (node.Handler).
func (s *Service) Handle(m node.Message) {
	b := m.Blob
	if m.Route == nil || len(b) == 0 {
		s.stats.Malformed++
		return
	}
	switch {
	case b[0] == msgOpen && len(b) == openLen:
		s.onOpen(m)
	case b[0] == msgData && len(b) > dataHead:
		s.onData(m)
	case b[0] == msgEnd && len(b) == endLen:
		s.onEnd(m)
	case b[0] == msgResult && len(b) == resultLen:
		s.onResult(b)
	case b[0] == msgAbort && len(b) == abortLen:
		s.onAbort(b)
	default:
		s.stats.Malformed++
	}
}

func streamID(b []byte) uint64 { return binary.BigEndian.Uint64(b[1:9]) }

func header(typ byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{typ}, id)
}

// replyTo is where answers to a stream's sender go: the address its open
// came from (no lookup needed), the sender's node_id for a lookup if that
// fails (the trees moved on).
type replyTo struct {
	id identity.NodeID
	d  route.Destination
}

func replyOf(m node.Message, id identity.NodeID) replyTo {
	h := m.Route
	if h.From == [16]byte{} {
		// The router could not say where the sender is (its address is
		// deeper than a header holds; or it is a root): the lookup finds it.
		return replyTo{id: id, d: route.Destination{ID: id}}
	}
	return replyTo{id: id, d: route.Destination{ID: id, Addrs: []route.TreeAddr{{Tree: uint8(tree.TreeOf(h.TreeState)), TreeState: h.TreeState, Addr: addr.Address(h.From).Long()}}}}
}

func (s *Service) reply(to replyTo, msg []byte) {
	s.cfg.Router.SendTo(to.d, AppID, msg, nil).OnDone(func(err error) {
		if err != nil {
			s.cfg.Router.Send(to.id, AppID, msg, nil)
		}
	})
}

// codeError is the node error a result code names.
func codeError(code uint8) error {
	return &node.RemoteError{Err: node.ErrorForCode(code), From: "the stream's receiver"}
}

// resultCode is the code a delivery error travels back as.
func resultCode(err error) uint8 {
	if err == nil {
		return 0
	}
	if c := node.CodeOf(err); c != 0 {
		return c
	}
	return node.ErrUnknownApp.Code
}

// String names a stream for logs.
func idString(id uint64) string { return fmt.Sprintf("%016x", id) }
