package meshsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/refnode"
)

// Config describes one simulated mesh and what it does.
type Config struct {
	Nodes    int
	Topology Topology
	Degree   float64 // mean degree for Random
	Link     string  // "espnow", "lora" or "mixed"
	Gateways int     // mixed: nodes with both radios (0: a tenth of the nodes, at least 2)
	Loss     float64 // per-frame loss on every link, both ways
	Bursty   bool    // Gilbert–Elliott loss with the same mean, in bursts of ~5 frames
	Seed     uint64
	Duration time.Duration // mesh time
	LoRa     lora.Params
	// ReferenceNodes of the nodes, picked at random, are reference boards
	// (refnode: the MicroPython Packager, modem sleep on, each at a random
	// point of its sleep cycle) instead of our nodes. The reference has an
	// ESP-NOW interface only: in a mixed mesh they are among the ESP-NOW-only
	// nodes, and a LoRa mesh has none.
	ReferenceNodes int

	// Traffic: each node starts Transfers Packages per minute (Poisson) to a
	// random peer, sized uniformly in [MinSize, MaxSize] bytes of blob (at
	// least 4: a blob starts with its transfer's number).
	Transfers float64
	MinSize   int
	MaxSize   int

	// PcapDir, when set, receives one capture per medium (espnow.pcap with
	// radiotap frames, lora.pcap with the datagrams).
	PcapDir string
	// Progress, when set, is told the stage ("building nodes", then
	// "simulating ... of mesh time", in seconds) and how far through it the
	// run is.
	Progress Progress
}

// Progress is told, as a run goes, which stage it is in and how far
// through it: done of total steps (total 0: not known). It is called from
// the run's goroutine, often: it must be quick.
type Progress func(stage string, done, total int)

// Defaults fills what the caller left zero: the meaningful default run.
// Values out of range are left for Validate to refuse.
func (c *Config) Defaults() {
	if c.Nodes == 0 {
		c.Nodes = 25
	}
	if c.Topology == "" {
		c.Topology = Grid
	}
	if c.Degree == 0 {
		c.Degree = 6
	}
	if c.Link == "" {
		c.Link = "espnow"
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Minute
	}
	if c.LoRa.SF == 0 {
		c.LoRa = lora.Default
	}
	if c.MaxSize == 0 && c.MinSize == 0 {
		c.MinSize, c.MaxSize = 100, 20000
	}
}

// TrafficApp is the application the simulated transfers use.
var TrafficApp = packet.NewAppID("mycelium-sim", "simulated traffic", 1)

// Mesh is a built simulation.
type Mesh struct {
	Cfg   Config
	Clock *clock.Virtual
	Media map[string]*sim.Medium
	// Nodes[i] is node i when it is one of ours; where it is a reference
	// board it is nil, and Boards[i] the board.
	Nodes   []*node.Node
	Boards  []*refnode.Board
	Radios  [][]*sim.Radio // per node
	Pos     []sim.Position
	rng     *rand.Rand
	stats   TrafficStats
	pcaps   []*capture.Writer
	heap0   uint64
	setup   time.Duration
	started time.Time
}

// TrafficStats counts the application transfers.
type TrafficStats struct {
	Started         int
	Confirmed       int // the sender's result was success
	Failed          map[string]int
	Received        int // our transfers an application got (once each)
	ReceivedBytes   int
	BytesOffered    int
	LatencySum      time.Duration
	LatencyObserved int

	// Transfers by number: which of ours were confirmed, and how many
	// times each was delivered.
	confirmed []bool
	delivered []int
	fromBoard []bool
	ToBoards  struct{ Started, Confirmed, Failed int }
	// Transfers reference boards started (the reference learns nothing of
	// what becomes of them).
	BoardStarted, BoardDelivered int
}

// Build creates the mesh (nodes started, nothing run yet). Zero fields of
// cfg take the defaults; a setting out of range is an error (Validate).
func Build(cfg Config) (*Mesh, error) {
	began := time.Now()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	progress := func(done int) {
		if cfg.Progress != nil {
			cfg.Progress("building nodes", done, cfg.Nodes)
		}
	}
	progress(0)
	net := simnet.New()
	m := &Mesh{Cfg: cfg, Clock: net.Clock, Media: map[string]*sim.Medium{}, rng: rand.New(rand.NewPCG(cfg.Seed, 0x73696d))}
	m.stats.Failed = map[string]int{}
	m.heap0 = heapAlloc()
	pl := place(cfg.Topology, cfg.Nodes, cfg.Degree, m.rng)
	m.Pos = pl.pos
	hasESP := make([]bool, cfg.Nodes)
	hasLoRa := make([]bool, cfg.Nodes)
	switch cfg.Link {
	case "espnow":
		for i := range hasESP {
			hasESP[i] = true
		}
	case "lora":
		for i := range hasLoRa {
			hasLoRa[i] = true
		}
	case "mixed":
		// Gateways carry both radios; of the others a quarter are LoRa-only
		// (far sensors), the rest ESP-NOW-only.
		g := cfg.Gateways
		if g <= 0 {
			g = max(2, cfg.Nodes/10)
		}
		perm := m.rng.Perm(cfg.Nodes)
		for k, i := range perm {
			switch {
			case k < g:
				hasESP[i], hasLoRa[i] = true, true
			case k%4 == 0:
				hasLoRa[i] = true
			default:
				hasESP[i] = true
			}
		}
	}
	loss := LossModel(cfg.Loss, cfg.Bursty)
	if cfg.Link != "lora" {
		m.Media["espnow"] = net.AddMedium("espnow", phys.ESPNOW(), cfg.Seed*2+1)
	}
	if cfg.Link != "espnow" {
		m.Media["lora"] = net.AddMedium("lora", phys.LoRa(cfg.LoRa), cfg.Seed*2+2)
	}
	m.Radios = make([][]*sim.Radio, cfg.Nodes)
	var espS, loraS []int // the stations on each medium
	for i := range cfg.Nodes {
		var on []string
		if hasESP[i] {
			on = append(on, "espnow")
			espS = append(espS, i)
		}
		if hasLoRa[i] {
			on = append(on, "lora")
			loraS = append(loraS, i)
		}
		net.AddStation(pl.pos[i], on...)
		m.Radios[i] = net.Radios(i)
	}
	// Pairs within reach, found on a grid (the nested loop over all pairs,
	// which simnet.ConnectWithin is, costs minutes at 5,000 nodes), in the
	// nested loop's order.
	connect := func(medium string, st []int, radius float64) {
		pos := make([]sim.Position, len(st))
		for k, i := range st {
			pos[k] = net.Position(i)
		}
		for a, nb := range neighbours(pos, radius) {
			for _, b := range nb {
				if b > a {
					net.Connect(medium, st[a], st[b], loss, loss)
				}
			}
		}
	}
	if m.Media["espnow"] != nil {
		connect("espnow", espS, pl.radius)
	}
	if m.Media["lora"] != nil {
		// LoRa reaches far: three ESP-NOW ranges in a mixed mesh (so
		// LoRa-only sensors reach a gateway), the same graph otherwise.
		r := pl.radius
		if cfg.Link == "mixed" {
			r *= 3
		}
		connect("lora", loraS, r)
	}
	if cfg.PcapDir != "" {
		if err := m.capture(cfg.PcapDir); err != nil {
			return nil, err
		}
	}
	// Reference boards: at random among the ESP-NOW-only nodes.
	board := make([]bool, cfg.Nodes)
	if cfg.ReferenceNodes > 0 {
		var espOnly []int
		for i := range cfg.Nodes {
			if hasESP[i] && !hasLoRa[i] {
				espOnly = append(espOnly, i)
			}
		}
		if cfg.ReferenceNodes > len(espOnly) {
			return nil, fmt.Errorf("%d reference nodes: only %d nodes of this mixed mesh have ESP-NOW alone (the reference has no LoRa interface)", cfg.ReferenceNodes, len(espOnly))
		}
		for _, k := range m.rng.Perm(len(espOnly))[:cfg.ReferenceNodes] {
			board[espOnly[k]] = true
		}
	}
	m.Nodes = make([]*node.Node, cfg.Nodes)
	m.Boards = make([]*refnode.Board, cfg.Nodes)
	for i := range cfg.Nodes {
		if i%100 == 0 {
			progress(i)
		}
		links := net.Links(i)
		var seed [32]byte
		seed[0], seed[1], seed[2], seed[3] = byte(i), byte(i>>8), byte(cfg.Seed), byte(cfg.Seed>>8)
		if board[i] {
			b := refnode.New(refnode.Config{
				Clock: m.Clock, Link: m.Radios[i][0], NodeID: identity.FromSeed(seed).ID(), Seed: cfg.Seed<<20 + uint64(i),
				Sleep: true, Phase: time.Duration(m.rng.Int64N(int64(refnode.ModemSleep + refnode.ModemWake))),
			})
			b.Register(TrafficApp, func(msg refnode.Message) { m.received(msg.Blob) })
			m.Boards[i] = b
			continue
		}
		n, err := node.New(node.Config{Clock: m.Clock, Links: links, Identity: identity.FromSeed(seed), Seed: cfg.Seed<<20 + uint64(i)})
		if err != nil {
			return nil, err
		}
		n.Register(TrafficApp, func(msg node.Message) { m.received(msg.Blob) })
		m.Nodes[i] = n
	}
	for i := range cfg.Nodes {
		if m.Nodes[i] != nil {
			m.Nodes[i].Start()
		} else {
			m.Boards[i].Start()
		}
	}
	if cfg.Transfers > 0 {
		for i := range cfg.Nodes {
			m.scheduleTransfer(i)
		}
	}
	m.setup = time.Since(began)
	return m, nil
}

// capture writes every frame on each medium to DIR/<medium>.pcap.
func (m *Mesh) capture(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, med := range m.Media {
		lt := capture.LinkTypeUser0
		if rs := med.Radios(); len(rs) > 0 {
			lt = rs[0].CaptureLinkType()
		}
		w, err := capture.Create(filepath.Join(dir, name+".pcap"), lt)
		if err != nil {
			return err
		}
		m.pcaps = append(m.pcaps, w)
		med.SetMonitor(func(at time.Time, from *sim.Radio, dst link.Addr, data []byte) {
			if dst == nil {
				dst = link.Broadcast
			}
			_ = w.Write(at, from.CaptureFrame(dst, from.Addr(), data))
		})
	}
	return nil
}

// scheduleTransfer arms node i's next transfer.
func (m *Mesh) scheduleTransfer(i int) {
	mean := time.Duration(float64(time.Minute) / m.Cfg.Transfers)
	wait := time.Duration(m.rng.ExpFloat64() * float64(mean))
	m.Clock.AfterFunc(wait, func() {
		m.transfer(i)
		m.scheduleTransfer(i)
	})
}

// received counts a Package an application got, by its transfer number:
// Received counts each of our transfers once (later copies are Duplicates),
// the bytes count every copy.
func (m *Mesh) received(blob []byte) {
	m.stats.ReceivedBytes += len(blob)
	k := int(binary.BigEndian.Uint32(blob)) // every blob is at least 4 bytes
	if k >= len(m.stats.delivered) {
		return
	}
	m.stats.delivered[k]++
	if m.stats.delivered[k] > 1 {
		return
	}
	if m.stats.fromBoard[k] {
		m.stats.BoardDelivered++
	} else {
		m.stats.Received++
	}
}

func (m *Mesh) transfer(i int) {
	size := m.Cfg.MinSize
	if m.Cfg.MaxSize > m.Cfg.MinSize {
		size += m.rng.IntN(m.Cfg.MaxSize - m.Cfg.MinSize + 1)
	}
	size = max(size, 4)
	k := len(m.stats.delivered)
	blob := make([]byte, size)
	for j := range blob {
		blob[j] = byte(j*31 + i)
	}
	binary.BigEndian.PutUint32(blob, uint32(k))
	if b := m.Boards[i]; b != nil {
		peers := b.Peers()
		if len(peers) == 0 {
			return
		}
		to := peers[m.rng.IntN(len(peers))]
		m.track(true)
		if b.Send(to, TrafficApp, blob) {
			m.stats.BoardStarted++
		}
		return
	}
	n := m.Nodes[i]
	peers := n.Peers()
	if len(peers) == 0 {
		return
	}
	to := peers[m.rng.IntN(len(peers))]
	toBoard := !to.Full
	m.track(false)
	m.stats.Started++
	m.stats.BytesOffered += size
	if toBoard {
		m.stats.ToBoards.Started++
	}
	start := m.Clock.Now()
	n.Send(to.ID, TrafficApp, blob, nil).OnDone(func(err error) {
		if err == nil {
			m.stats.Confirmed++
			m.stats.confirmed[k] = true
			m.stats.LatencySum += m.Clock.Now().Sub(start)
			m.stats.LatencyObserved++
			if toBoard {
				m.stats.ToBoards.Confirmed++
			}
			return
		}
		m.stats.Failed[failName(err)]++
		if toBoard {
			m.stats.ToBoards.Failed++
		}
	})
}

// track numbers a new transfer.
func (m *Mesh) track(fromBoard bool) {
	m.stats.confirmed = append(m.stats.confirmed, false)
	m.stats.delivered = append(m.stats.delivered, 0)
	m.stats.fromBoard = append(m.stats.fromBoard, fromBoard)
}

// failName names a failure by its error's code: the coded error's own
// text, wherever it is wrapped, without what follows the name (a detail
// after a colon), so that failures of one kind — found here or reported
// by another node, "(reported by …)" — count under one key.
func failName(err error) string {
	var ce *node.CodeError
	if !errors.As(err, &ce) {
		return "other"
	}
	s := strings.TrimPrefix(ce.Error(), "mesh: ")
	if k := strings.IndexAny(s, ":("); k >= 0 {
		s = strings.TrimRight(s[:k], " ")
	}
	return s
}

// Run runs the mesh for its duration (telling Progress about a hundred
// times, in seconds of mesh time) and returns the figures.
func (m *Mesh) Run() *Result {
	m.started = time.Now()
	end := m.Clock.Now().Add(m.Cfg.Duration)
	step := max(m.Cfg.Duration/100, time.Second)
	total := int(m.Cfg.Duration / time.Second)
	stage := "simulating " + FormatDuration(m.Cfg.Duration) + " of mesh time"
	for m.Clock.Now().Before(end) {
		next := m.Clock.Now().Add(step)
		if next.After(end) {
			next = end
		}
		m.Clock.RunUntil(next)
		if m.Cfg.Progress != nil {
			m.Cfg.Progress(stage, total-int(end.Sub(m.Clock.Now())/time.Second), total)
		}
	}
	for _, w := range m.pcaps {
		_ = w.Close()
	}
	return m.result()
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Result is what a run measured.
type Result struct {
	Nodes      int     `json:"nodes"`
	Topology   string  `json:"topology"`
	Link       string  `json:"link"`
	Loss       float64 `json:"loss"`
	Seed       uint64  `json:"seed"`
	MeshTimeS  float64 `json:"mesh_time_s"`
	WallTimeS  float64 `json:"wall_time_s"`       // running the mesh
	SetupWallS float64 `json:"setup_wall_time_s"` // building it (placement, links, nodes) before

	Events     uint64         `json:"events"`
	Edges      map[string]int `json:"edges"`
	MeanPeers  float64        `json:"mean_peers"`
	Packets    Counts         `json:"packets"`
	Bytes      Counts         `json:"bytes"`
	Transfers  TransferFigs   `json:"transfers"`
	Drops      map[string]int `json:"drops"`
	Airtime    map[string]Air `json:"airtime"`
	GoodputBps float64        `json:"goodput_bps"`
	Memory     MemoryFigs     `json:"memory"`
}

// Counts is a sent/received pair.
type Counts struct {
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
}

// TransferFigs sums up the application transfers our nodes started (and,
// under Boards, those to and from reference boards).
type TransferFigs struct {
	Started   int            `json:"started"`
	Delivered int            `json:"delivered"`
	Confirmed int            `json:"confirmed"`
	Failed    map[string]int `json:"failed"`
	// Unreported counts sends confirmed to the sender that no application
	// ever got: a silent loss. It must be 0.
	Unreported int `json:"unreported"`
	// Duplicates counts deliveries beyond the first (a reference board
	// delivers a single again when its ack was lost and it came again).
	Duplicates     int        `json:"duplicates"`
	InFlight       int        `json:"in_flight"`
	BytesDelivered int        `json:"bytes_delivered"`
	MeanLatencyS   *float64   `json:"mean_latency_s"` // mesh time from send to confirmation; null when none was confirmed
	Boards         *BoardFigs `json:"reference_boards,omitempty"`
}

// BoardFigs is the traffic to and from reference boards.
type BoardFigs struct {
	Nodes int `json:"nodes"`
	// Our nodes' sends to boards (part of the figures above).
	SentTo      int `json:"sent_to"`
	ConfirmedTo int `json:"confirmed_to"`
	FailedTo    int `json:"failed_to"`
	// Sends the boards started, and of those how many arrived: the
	// reference confirms nothing, and drops what it queues for a peer it
	// has not heard lately beyond ten packets.
	SentBy      int `json:"sent_by"`
	DeliveredBy int `json:"delivered_by"`
}

// Air is one medium's use.
type Air struct {
	Transmissions uint64  `json:"transmissions"` // datagram frames, 802.11 MAC retries included
	MACRetries    uint64  `json:"mac_retries"`   // of which retries
	Acks          uint64  `json:"acks"`          // 802.11 ACKs
	AirtimeS      float64 `json:"airtime_s"`
	Utilisation   float64 `json:"utilisation"` // airtime / (mesh time × radios / mean degree+1): the busy share of an average neighbourhood
	Collisions    uint64  `json:"collisions"`  // receptions corrupted by an overlap or a half-duplex radio, counted per receiver (one frame can collide at several)
	Losses        uint64  `json:"losses"`      // receptions the loss model dropped, counted per receiver
}

// MemoryFigs is heap per node and the budgets' peaks, in bytes.
type MemoryFigs struct {
	HeapPerNodeBytes int `json:"heap_per_node_bytes"`
	PeakRxBytes      int `json:"peak_rx_bytes"`    // the most any one node held in reassembly buffers
	PeakCacheBytes   int `json:"peak_cache_bytes"` // the most any one node held in its send cache
}

func (m *Mesh) result() *Result {
	r := &Result{
		Nodes: m.Cfg.Nodes, Topology: string(m.Cfg.Topology), Link: m.Cfg.Link, Loss: m.Cfg.Loss, Seed: m.Cfg.Seed,
		MeshTimeS: m.Cfg.Duration.Seconds(), WallTimeS: time.Since(m.started).Seconds(), SetupWallS: m.setup.Seconds(), Events: m.Clock.Ran(),
		Edges: map[string]int{}, Drops: map[string]int{}, Airtime: map[string]Air{},
	}
	peers, ours := 0, 0
	for _, n := range m.Nodes {
		if n == nil {
			continue
		}
		ours++
		s := n.Stats()
		r.Packets.Sent += s.PacketsSent
		r.Packets.Received += s.PacketsRecv
		r.Bytes.Sent += s.BytesSent
		r.Bytes.Received += s.BytesRecv
		for k, v := range s.Drops {
			if v > 0 {
				r.Drops[link.DropReason(k).String()] += int(v)
			}
		}
		r.Memory.PeakRxBytes = max(r.Memory.PeakRxBytes, s.PeakRxBytes)
		r.Memory.PeakCacheBytes = max(r.Memory.PeakCacheBytes, s.PeakCacheBytes)
		peers += len(n.Peers())
	}
	r.MeanPeers = float64(peers) / float64(max(ours, 1))
	names := make([]string, 0, len(m.Media))
	for name := range m.Media {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		med := m.Media[name]
		st := med.Stats()
		edges, radios := 0, med.Radios()
		for _, rd := range radios {
			edges += len(rd.Neighbors())
		}
		r.Edges[name] = edges / 2
		deg := float64(edges) / float64(max(len(radios), 1))
		util := 0.0
		if len(radios) > 0 {
			util = st.Airtime.Seconds() * (deg + 1) / float64(len(radios)) / m.Cfg.Duration.Seconds()
		}
		r.Airtime[name] = Air{Transmissions: st.Transmissions, MACRetries: st.Retries, Acks: st.Acks, AirtimeS: st.Airtime.Seconds(), Utilisation: util, Collisions: st.Collisions, Losses: st.Losses}
	}
	t := &m.stats
	r.Transfers = TransferFigs{Started: t.Started, Delivered: t.Received, Confirmed: t.Confirmed, Failed: t.Failed, BytesDelivered: t.ReceivedBytes}
	done := t.Confirmed
	for _, v := range t.Failed {
		done += v
	}
	r.Transfers.InFlight = t.Started - done
	for k, c := range t.confirmed {
		if c && t.delivered[k] == 0 {
			r.Transfers.Unreported++
		}
		if t.delivered[k] > 1 {
			r.Transfers.Duplicates += t.delivered[k] - 1
		}
	}
	if m.Cfg.ReferenceNodes > 0 {
		r.Transfers.Boards = &BoardFigs{
			Nodes: m.Cfg.ReferenceNodes, SentTo: t.ToBoards.Started, ConfirmedTo: t.ToBoards.Confirmed, FailedTo: t.ToBoards.Failed,
			SentBy: t.BoardStarted, DeliveredBy: t.BoardDelivered,
		}
	}
	if t.LatencyObserved > 0 {
		mean := (t.LatencySum / time.Duration(t.LatencyObserved)).Seconds()
		r.Transfers.MeanLatencyS = &mean
	}
	r.GoodputBps = float64(t.ReceivedBytes) * 8 / m.Cfg.Duration.Seconds()
	h := heapAlloc()
	if h > m.heap0 {
		r.Memory.HeapPerNodeBytes = int(h-m.heap0) / len(m.Nodes)
	}
	runtime.KeepAlive(m.Nodes)
	return r
}
