// Package services is the service directory: a node announces the
// services it runs (a name, the application, free metadata) and every node
// keeps a directory of what the others announced, answered locally.
//
// Announcements ride gossip (l4-apps/gossip) on the topic
// "mycelium/services", signed by the announcing node, so they reach every
// node across any number of hops; a node announces when it starts, when
// its services change, and every Refresh, and an entry not refreshed for
// TTL expires. Summaries ride the node's beacons: the app_ids a neighbour
// lists there (PROTOCOL 5.2) stand in the directory too, nameless, for as
// long as the neighbour is a peer.
//
// Wire [ours], the data of an announcement Message:
//
//	version (1, = 1) ‖ node_id (32) ‖ seq (8) ‖ ttl_s (4) ‖ count (1) ‖
//	count × (name_len (1) ‖ name ‖ app_len (1) ‖ app ‖ meta_len (1) ‖ meta) ‖
//	signature (64, Ed25519 by node_id over everything before it)
//
// seq grows with every announcement of a node (a later one replaces an
// earlier); names, apps and metadata are UTF-8, at most 255 bytes each.
//
// Like every application here it runs on the node's loop.
package services

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
	"github.com/mycelium-mesh/mycelium/l4-apps/gossip"
)

// Topic carries the announcements.
var Topic = gossip.Topic("mycelium/services")

// AppID is the service directory's app_id: nodes that keep a directory
// list it in their beacons (the directory itself talks through gossip).
var AppID = packet.NewAppID("Mycelium", "services", 1)

// Service is one service a node runs.
type Service struct {
	Name string // what it is called ("weather-station")
	App  string // the application it speaks ("weather")
	Meta string // free text: "temp,humidity every 60 s"
}

// Entry is one line of the directory.
type Entry struct {
	Node identity.NodeID
	Service
	Age time.Duration // since the announcement (or beacon) it came in
	// Beacon: known from a neighbour's beacon only (Name and Meta empty;
	// App the application's name when known, else its app_id in hex).
	Beacon bool
}

// Errors.
var (
	ErrMalformed = errors.New("services: malformed announcement")
	ErrSignature = errors.New("services: bad signature")
	ErrTooMany   = errors.New("services: announcement too large")
)

// Gossip is what the directory needs of gossip (*gossip.Service).
type Gossip interface {
	Publish(topic gossip.TopicID, data []byte) (gossip.MessageID, error)
	Subscribe(topic gossip.TopicID, f func(gossip.Delivery)) (cancel func())
}

// Config configures a Directory.
type Config struct {
	Clock  clock.Clock
	Gossip Gossip
	Signer identity.Signer
	// Peers lists the node's peers (the beacons' summaries); nil: none.
	Peers func() []*peer.Peer
	// AppNames names app_ids heard in beacons; one named "" is not a
	// service (the capabilities app_id and its kind) and is left out.
	AppNames map[packet.AppID]string
	// Refresh is how often a node announces again (default 10 min), TTL
	// how long an entry lives without one (default 3 × Refresh).
	Refresh, TTL time.Duration
	// Delay is the wait before the first announcement (default 10 s: the
	// gossip hellos first).
	Delay time.Duration
	// MaxEntries bounds the directory (default 4,096 services).
	MaxEntries int
	Logger     *slog.Logger
}

// Stats counts a directory's work.
type Stats struct {
	Announced, Received, Rejected, Expired uint64
	Entries                                int
}

type nodeEntry struct {
	seq      uint64
	at       time.Time
	ttl      time.Duration
	services []Service
}

// Directory is one node's service directory and its own announcements.
type Directory struct {
	cfg    Config
	self   identity.NodeID
	own    []Service
	seq    uint64
	nodes  map[identity.NodeID]*nodeEntry
	count  int
	timer  clock.Timer
	cancel func()
	stats  Stats
}

// New returns a directory; Start it once the node and gossip run.
func New(c Config) *Directory {
	if c.Refresh <= 0 {
		c.Refresh = 10 * time.Minute
	}
	if c.TTL <= 0 {
		c.TTL = 3 * c.Refresh
	}
	if c.Delay <= 0 {
		c.Delay = 10 * time.Second
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Directory{cfg: c, nodes: map[identity.NodeID]*nodeEntry{}}
	copy(d.self[:], c.Signer.Public())
	// seq starts from the clock, so a restarted node's announcements
	// replace those it made before.
	d.seq = uint64(c.Clock.Now().UnixNano())
	return d
}

// Start subscribes and schedules the first announcement.
func (d *Directory) Start() {
	d.cancel = d.cfg.Gossip.Subscribe(Topic, d.onDelivery)
	d.schedule(d.cfg.Delay)
}

// Stop ends the announcements.
func (d *Directory) Stop() {
	clock.Stop(&d.timer)
	if d.cancel != nil {
		d.cancel()
	}
}

// Set replaces this node's services and announces them (soon, if Start
// has not run yet).
func (d *Directory) Set(s []Service) error {
	if _, err := d.encode(s); err != nil {
		return err
	}
	d.own = slices.Clone(s)
	if d.cancel != nil {
		d.announce()
	}
	return nil
}

// Own returns this node's services.
func (d *Directory) Own() []Service { return slices.Clone(d.own) }

// Stats returns the counters.
func (d *Directory) Stats() Stats {
	s := d.stats
	s.Entries = d.count
	return s
}

func (d *Directory) schedule(after time.Duration) {
	clock.Stop(&d.timer)
	d.timer = d.cfg.Clock.AfterFunc(after, func() {
		d.timer = nil
		d.announce()
	})
}

// announce publishes our services (an empty list says we run none) and
// schedules the next.
func (d *Directory) announce() {
	d.schedule(d.cfg.Refresh)
	b, err := d.encode(d.own)
	if err != nil {
		d.cfg.Logger.Warn("services not announced", "err", err)
		return
	}
	if _, err := d.cfg.Gossip.Publish(Topic, b); err != nil {
		d.cfg.Logger.Warn("services not announced", "err", err)
		return
	}
	d.stats.Announced++
}

// MaxAnnouncement bounds an announcement's data (gossip takes 4 KiB
// Messages; one packet holds about 180 bytes, beyond that it goes as a
// Notification and is fetched).
const MaxAnnouncement = 2048

const headLen = 1 + identity.NodeIDSize + 8 + 4 + 1

func (d *Directory) encode(s []Service) ([]byte, error) {
	if len(s) > 255 {
		return nil, fmt.Errorf("%w: %d services", ErrTooMany, len(s))
	}
	d.seq++
	b := []byte{1}
	b = append(b, d.self[:]...)
	b = binary.BigEndian.AppendUint64(b, d.seq)
	b = binary.BigEndian.AppendUint32(b, uint32(d.cfg.TTL/time.Second))
	b = append(b, byte(len(s)))
	for _, x := range s {
		for _, f := range []string{x.Name, x.App, x.Meta} {
			if len(f) > 255 || !utf8.ValidString(f) {
				return nil, fmt.Errorf("%w: %q: at most 255 bytes of UTF-8", ErrMalformed, f)
			}
			b = append(b, byte(len(f)))
			b = append(b, f...)
		}
	}
	if len(b)+ed25519.SignatureSize > MaxAnnouncement {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooMany, len(b)+ed25519.SignatureSize, MaxAnnouncement)
	}
	return append(b, d.cfg.Signer.Sign(b)...), nil
}

// Announcement is a decoded announcement.
type Announcement struct {
	Node     identity.NodeID
	Seq      uint64
	TTL      time.Duration
	Services []Service
}

// Decode checks an announcement's layout and signature.
func Decode(b []byte) (Announcement, error) {
	var a Announcement
	if len(b) < headLen+ed25519.SignatureSize || b[0] != 1 {
		return a, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	body, sig := b[:len(b)-ed25519.SignatureSize], b[len(b)-ed25519.SignatureSize:]
	copy(a.Node[:], b[1:])
	a.Seq = binary.BigEndian.Uint64(b[33:])
	a.TTL = time.Duration(binary.BigEndian.Uint32(b[41:])) * time.Second
	n := int(b[45])
	rest := body[headLen:]
	for range n {
		var f [3]string
		for i := range f {
			if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
				return a, fmt.Errorf("%w: truncated service", ErrMalformed)
			}
			f[i] = string(rest[1 : 1+rest[0]])
			rest = rest[1+rest[0]:]
			if !utf8.ValidString(f[i]) {
				return a, fmt.Errorf("%w: not UTF-8", ErrMalformed)
			}
		}
		a.Services = append(a.Services, Service{Name: f[0], App: f[1], Meta: f[2]})
	}
	if len(rest) != 0 {
		return a, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	if !ed25519.Verify(ed25519.PublicKey(a.Node[:]), body, sig) {
		return a, ErrSignature
	}
	return a, nil
}

func (d *Directory) onDelivery(m gossip.Delivery) {
	if m.Local {
		return
	}
	a, err := Decode(m.Data)
	if err != nil {
		d.stats.Rejected++
		d.cfg.Logger.Debug("announcement refused", "err", err)
		return
	}
	d.stats.Received++
	now := d.cfg.Clock.Now()
	d.expire(now)
	old := d.nodes[a.Node]
	if old != nil && old.seq >= a.Seq {
		return // older than what we have
	}
	oldLen := 0
	if old != nil {
		oldLen = len(old.services)
	}
	if d.count-oldLen+len(a.Services) > d.cfg.MaxEntries {
		d.stats.Rejected++
		return
	}
	d.count += len(a.Services) - oldLen
	ttl := min(a.TTL, 24*time.Hour)
	d.nodes[a.Node] = &nodeEntry{seq: a.Seq, at: now, ttl: ttl, services: a.Services}
}

func (d *Directory) expire(now time.Time) {
	for id, e := range d.nodes {
		if now.Sub(e.at) > e.ttl {
			d.count -= len(e.services)
			delete(d.nodes, id)
			d.stats.Expired++
		}
	}
}

// List returns the directory (this node's own services too), filtered by
// app when app is not empty, ordered by node and name: the announced
// services, then what neighbours' beacons summarise and no announcement
// covers.
func (d *Directory) List(app string) []Entry {
	now := d.cfg.Clock.Now()
	d.expire(now)
	var out []Entry
	for _, s := range d.own {
		if app == "" || s.App == app {
			out = append(out, Entry{Node: d.self, Service: s})
		}
	}
	for id, e := range d.nodes {
		for _, s := range e.services {
			if app == "" || s.App == app {
				out = append(out, Entry{Node: id, Service: s, Age: now.Sub(e.at)})
			}
		}
	}
	if d.cfg.Peers != nil {
		for _, p := range d.cfg.Peers() {
			for _, a := range p.Apps {
				name, ok := d.cfg.AppNames[a]
				switch {
				case ok && name == "":
					continue // the protocol's own (capabilities...)
				case !ok:
					name = fmt.Sprintf("%x", a[:])
				}
				if app != "" && name != app {
					continue
				}
				if e := d.nodes[p.ID]; e != nil && slices.ContainsFunc(e.services, func(s Service) bool { return s.App == name }) {
					continue
				}
				out = append(out, Entry{Node: p.ID, Service: Service{App: name}, Age: now.Sub(p.LastRx), Beacon: true})
			}
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := slices.Compare(a.Node[:], b.Node[:]); c != 0 {
			return c
		}
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		if a.App < b.App {
			return -1
		}
		if a.App > b.App {
			return 1
		}
		return 0
	})
	return out
}
