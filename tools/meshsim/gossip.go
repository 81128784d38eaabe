package meshsim

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/bsig"
	"github.com/mycelium-mesh/mycelium/l2-seq/hop"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l4-apps/gossip"
)

// GossipConfig is one `mycelium sim gossip` measurement: nodes of our own
// on the simulated ESP-NOW medium (the 802.11 DCF: broadcasts collide and
// are never retried), each running gossip and nothing above the node; after
// a warm-up of two hellos, Messages are published at random nodes, Rate a
// second, and the run goes on until every node has every Message or
// MaxRepair has passed.
type GossipConfig struct {
	Nodes    int
	Degree   float64
	Topology Topology
	Loss     float64
	Messages int
	Seed     uint64
	Rate     float64 // Messages a second (default 1)
	Size     int     // data bytes of a Message (default 64)
	// HelloPeriod of the nodes' gossip (default 60 s).
	HelloPeriod time.Duration
	// MaxRepair bounds the run after the last Message (default 5 hello
	// periods).
	MaxRepair time.Duration
	// Window and Enough tune the relays (gossip.Config).
	Window time.Duration
	Enough int
	// Signed makes every node sign its gossip broadcasts (node.Signing,
	// l2-seq/bsig), as the daemon does by default.
	Signed   bool
	Progress Progress
}

// GossipResult is what the measurement found. Transmissions count every
// frame gossip put on the air from the first Message on: Messages,
// Notifications, Requests, repairs and hellos, node acknowledgements and
// MAC retries (802.11 ACKs of unicast frames are counted apart).
type GossipResult struct {
	Nodes          int     `json:"nodes"`
	Edges          int     `json:"edges"`
	MeanDegree     float64 `json:"mean_degree"`
	Messages       int     `json:"messages"`
	Seed           uint64  `json:"seed"`
	Loss           float64 `json:"loss"`
	Reach          float64 `json:"reach"`     // mean over Messages of the fraction of nodes that got it
	ReachMin       float64 `json:"reach_min"` // the worst Message
	Complete       int     `json:"complete"`  // Messages every node got
	TxPerNodePerMs float64 `json:"tx_per_node_per_msg"`
	RelayFraction  float64 `json:"relay_fraction"` // relays + originals (broadcasts of Messages) per node per Message
	HelloPerNodeMs float64 `json:"hello_per_node_per_msg"`
	RepairPerNode  float64 `json:"repair_per_node_per_msg"` // the rest: pushes, Requests, acks
	MACAcks        float64 `json:"mac_acks_per_node_per_msg"`
	Late           float64 `json:"late_5s"`       // fraction of deliveries more than 5 s after publishing: those repair brought
	LatencyP50     float64 `json:"latency_p50_s"` // publish to delivery, over every (node, Message) delivered
	LatencyP95     float64 `json:"latency_p95_s"`
	LatencyMax     float64 `json:"latency_max_s"`
	WarmupFrames   float64 `json:"warmup_frames_per_node"` // hellos before the first Message
	// BytesPerNodeMs: bytes of those frames on the air (every attempt).
	BytesPerNodeMs float64 `json:"bytes_per_node_per_msg"`
	Signed         bool    `json:"signed"`
	// SignedShare: of the deliveries at nodes other than the publisher,
	// the share that came as a verified signed broadcast.
	SignedShare float64 `json:"signed_deliveries"`
	MeshTimeS   float64 `json:"mesh_time_s"`
	WallTimeS   float64 `json:"wall_time_s"`
}

// MaxGossipMessages bounds `sim gossip --messages`.
const MaxGossipMessages = 10000

// GossipTopic is the measurement's topic.
var GossipTopic = gossip.Topic("mycelium-sim gossip")

// Validate checks the configuration as given (Gossip fills defaults
// first).
func (c *GossipConfig) Validate() error {
	if err := checkInt("nodes", c.Nodes, MinNodes, MaxNodes); err != nil {
		return err
	}
	if _, err := ParseTopology(string(c.Topology)); err != nil {
		return err
	}
	if c.Topology == Random {
		if err := checkDegree(c.Degree, c.Nodes); err != nil {
			return err
		}
	}
	if err := checkInt("messages", c.Messages, 1, MaxGossipMessages); err != nil {
		return err
	}
	if c.Rate <= 0 || c.Rate > 100 {
		return settingf("rate", c.Rate, "want Messages a second in (0, 100]")
	}
	if err := checkInt("size", c.Size, 8, 4000); err != nil {
		return err
	}
	return checkProb("loss", c.Loss)
}

// Gossip runs the measurement.
func Gossip(c GossipConfig) (*GossipResult, error) {
	wall := time.Now()
	if c.Nodes == 0 {
		c.Nodes = 1000
	}
	if c.Degree == 0 {
		c.Degree = 8
	}
	if c.Topology == "" {
		c.Topology = Random
	}
	if c.Messages == 0 {
		c.Messages = 100
	}
	if c.Rate == 0 {
		c.Rate = 1
	}
	if c.Size == 0 {
		c.Size = 64
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.HelloPeriod <= 0 {
		c.HelloPeriod = 60 * time.Second
	}
	if c.MaxRepair <= 0 {
		c.MaxRepair = 5 * c.HelloPeriod
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x676f7373))
	pl := place(c.Topology, c.Nodes, c.Degree, rng)
	adj := neighbours(pl.pos, pl.radius)
	if !connectedAdj(adj) {
		return nil, fmt.Errorf("the %s graph is not connected (raise --degree)", c.Topology)
	}
	net := simnet.New()
	clk := net.Clock
	med := net.AddMedium("espnow", phys.ESPNOW(), c.Seed*2+1)
	loss := sim.Independent(c.Loss)
	edges := 0
	for i := range pl.pos {
		net.AddStation(pl.pos[i], "espnow")
	}
	for i, a := range adj {
		for _, j := range a {
			if i < j {
				net.Connect("espnow", i, j, loss, loss)
				edges++
			}
		}
	}
	n := len(pl.pos)
	res := &GossipResult{Nodes: n, Edges: edges, MeanDegree: 2 * float64(edges) / float64(n), Messages: c.Messages, Seed: c.Seed, Loss: c.Loss}
	// Deliveries: got[m][i] is when node i got Message m.
	got := make([][]time.Time, c.Messages)
	published := make([]time.Time, c.Messages)
	late, delivered, remote, signed := 0, 0, 0, 0
	index := map[gossip.MessageID]int{}
	svcs := make([]*gossip.Service, n)
	nodes := make([]*node.Node, n)
	if c.Progress != nil {
		c.Progress("building nodes", 0, n)
	}
	for i := range n {
		var seed [32]byte
		binary.BigEndian.PutUint64(seed[:], uint64(i))
		binary.BigEndian.PutUint64(seed[8:], c.Seed)
		seed[16] = 0x67
		nd, err := node.New(node.Config{Clock: clk, BeaconPeriod: BeaconPeriod, Links: net.Links(i), Identity: identity.FromSeed(seed), Seed: c.Seed<<20 + uint64(i)})
		if err != nil {
			return nil, err
		}
		var gnet gossip.Net = nd
		if c.Signed {
			gnet = node.Signing{Node: nd}
		}
		svc := gossip.New(gossip.Config{Clock: clk, Net: gnet, Self: nd.ID(), Seed: c.Seed<<20 + uint64(i), HelloPeriod: c.HelloPeriod, Window: c.Window, Enough: c.Enough})
		nd.Register(gossip.AppID, svc.Handle)
		svc.Subscribe(GossipTopic, func(d gossip.Delivery) {
			m, ok := index[d.ID]
			if !ok || !got[m][i].IsZero() {
				return
			}
			got[m][i] = d.Time
			delivered++
			if !d.Local {
				remote++
				if d.Signed {
					signed++
				}
			}
			if d.Time.Sub(published[m]) > 5*time.Second {
				late++
			}
		})
		nodes[i], svcs[i] = nd, svc
	}
	// Frames on the air, by kind.
	var hellos, bcasts, others, acks, bytes uint64
	counting := false
	var warm uint64
	med.SetAttemptLog(func(a *sim.Attempt) {
		kind := classify(a.Data)
		if kind == frameBeacon {
			return
		}
		if !counting {
			warm++
			return
		}
		switch kind {
		case frameHello:
			hellos++
		case frameMessage:
			if a.Dst == nil {
				bcasts++
			} else {
				others++
			}
		default:
			others++
		}
		if a.Acked {
			acks++
		}
		bytes += uint64(len(a.Data))
	})
	for i := range n {
		nodes[i].Start()
		svcs[i].Start()
	}
	// Warm-up: the two early hellos and a margin.
	clk.RunUntil(clk.Now().Add(10 * time.Second))
	res.WarmupFrames = float64(warm) / float64(n)
	counting = true
	start := clk.Now()
	gap := time.Duration(float64(time.Second) / c.Rate)
	data := make([]byte, c.Size)
	for m := range c.Messages {
		got[m] = make([]time.Time, n)
		clk.RunUntil(start.Add(time.Duration(m) * gap))
		o := rng.IntN(n)
		binary.BigEndian.PutUint64(data, uint64(m))
		binary.BigEndian.PutUint64(data[len(data)-8:], c.Seed)
		published[m] = clk.Now()
		index[gossip.IDOf(gossip.AppendMessage(nil, GossipTopic, data))] = m
		if _, err := svcs[o].Publish(GossipTopic, data); err != nil {
			return nil, fmt.Errorf("publish %d at node %d: %w", m, o, err)
		}
		if c.Progress != nil && m%10 == 0 {
			c.Progress("publishing", m, c.Messages)
		}
	}
	last := clk.Now()
	want := n * c.Messages
	for delivered < want && clk.Now().Sub(last) < c.MaxRepair {
		clk.RunUntil(clk.Now().Add(time.Second))
		if c.Progress != nil {
			c.Progress("repairing", delivered, want)
		}
	}
	end := clk.Now()
	res.MeshTimeS = end.Sub(start).Seconds()
	var lat []float64
	sum := 0.0
	res.ReachMin = 1
	for m := range c.Messages {
		k := 0
		for i := range n {
			if !got[m][i].IsZero() {
				k++
				lat = append(lat, got[m][i].Sub(published[m]).Seconds())
			}
		}
		r := float64(k) / float64(n)
		sum += r
		res.ReachMin = min(res.ReachMin, r)
		if k == n {
			res.Complete++
		}
	}
	res.Reach = sum / float64(c.Messages)
	per := float64(n) * float64(c.Messages)
	res.TxPerNodePerMs = float64(hellos+bcasts+others) / per
	res.RelayFraction = float64(bcasts) / per
	res.HelloPerNodeMs = float64(hellos) / per
	res.RepairPerNode = float64(others) / per
	res.MACAcks = float64(acks) / per
	res.BytesPerNodeMs = float64(bytes) / per
	res.Signed = c.Signed
	if remote > 0 {
		res.SignedShare = float64(signed) / float64(remote)
	}
	if delivered > 0 {
		res.Late = float64(late) / float64(delivered)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		res.LatencyP50 = lat[len(lat)/2]
		res.LatencyP95 = lat[min(len(lat)-1, int(0.95*float64(len(lat))))]
		res.LatencyMax = lat[len(lat)-1]
	}
	res.WallTimeS = time.Since(wall).Seconds()
	return res, nil
}

type frameKind int

const (
	frameOther frameKind = iota
	frameBeacon
	frameHello
	frameMessage
)

// classify tells a frame's kind from its bytes: the Package of a
// one-packet frame names its app; a gossip blob's first byte its type.
// Acknowledgements and sequences' later packets are "other".
func classify(b []byte) frameKind {
	var p packet.Packet
	if err := packet.Decode(hop.Packet(b), &p); err != nil || len(p.Body) < packet.PackageOverhead+1 {
		return frameOther
	}
	var app packet.AppID
	copy(app[:], p.Body)
	body := p.Body[packet.PackageOverhead:]
	if app == bsig.AppID && len(body) >= bsig.Min+1 {
		// A signed broadcast: the application and blob it carries.
		copy(app[:], body[bsig.Header:])
		body = body[bsig.Header+packet.AppIDSize:]
	}
	switch {
	case app == beacon.AppID:
		return frameBeacon
	case app != gossip.AppID:
		return frameOther
	case body[0] == gossip.TypeHello:
		return frameHello
	case body[0] == gossip.TypeMessage:
		return frameMessage
	}
	return frameOther
}
