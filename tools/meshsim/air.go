package meshsim

import (
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// Links of `sim route`, and what goes on their air.

// RouteLinks are the links `sim route` builds a mesh of.
var RouteLinks = []string{"espnow", "lora"}

// linkProfile is what a mesh of one link runs at: the PHY and the periods
// of the nodes' beacons and the trees' claims, scaled to what the link's
// air can carry. On ESP-NOW a claim takes 1.3 ms of air and the defaults
// (a beacon a minute, a claim every 20 s, six trees, a new term every 15
// minutes) cost well under 1 % of it. On LoRa (SF9, 125 kHz) a claim takes
// 0.84 s and a node may send 1 % of the time (36 s an hour); control may
// take a tenth of that, 3.6 s an hour, about four frames: a beacon an hour,
// one tree whose root claims once an hour, a new term every two weeks
// (failures renew it early). A root's death is then noticed in three hours
// (MissedClaims periods), a parent's in a period and a half. A term costs
// its hubs most: every child asks for an address and is answered with a
// chain, neighbours learn the new places, every record moves to a new home
// through the relays round the root; with a term a week that took the
// busiest node of 2 meshes of 10 (100 nodes) past a tenth of its budget
// (12.0 and 10.5 %), with one every two weeks none (at most 9.9 %).
type linkProfile struct {
	phy          sim.PHY
	beacon       time.Duration
	claim        time.Duration
	trees        int
	epochPeriods int
}

// profile is the link's: the periods are tree's profiles, the ones the
// daemon runs at on the same links.
func (c *RouteConfig) profile() linkProfile {
	p, phy := tree.DefaultProfile(), phys.ESPNOW()
	if c.Link == "lora" {
		p, phy = tree.LoRaProfile(), phys.LoRa(c.LoRa)
	}
	return linkProfile{phy: phy, beacon: p.Beacon, claim: p.ClaimPeriod, trees: p.Trees, epochPeriods: p.EpochPeriods}
}

// DefaultDutyCycle is a LoRa node's transmit budget: 1 % of the time (EU
// 868 MHz sub-band g1).
const DefaultDutyCycle = 0.01

// AirStats is what the live nodes put on the air over a window, as their
// radios count it: every frame (every copy a relay forwards, acks,
// beacons), with the link's headers, and the time it took.
type AirStats struct {
	WindowS          float64 `json:"window_s"`
	FramesPerNodeMin float64 `json:"frames_per_node_per_min"`
	BytesPerNodeMin  float64 `json:"bytes_per_node_per_min"`
	// AirtimeShare is the share of the window a node's radio spent
	// sending: the mean over nodes, and the busiest node's.
	AirtimeShareMean float64 `json:"airtime_share_mean"`
	AirtimeShareMax  float64 `json:"airtime_share_max"`
	// DutyShareMax (LoRa) is the busiest node's airtime over its
	// duty-cycle budget for the window.
	DutyShareMax *float64 `json:"duty_budget_share_max,omitempty"`
	// ControlBytesPerNodeMin is what the trees and the router sent as
	// messages (their blobs, once each, at the node that sent them): the
	// layers' own count, without the air's copies and headers.
	ControlBytesPerNodeMin float64 `json:"control_bytes_per_node_per_min"`
	// AirtimeByKind is the mean node's airtime share by the kind of
	// message its frames carried (airkinds.go); BusiestNode is the node of
	// AirtimeShareMax and BusiestByKind its split.
	AirtimeByKind map[string]float64 `json:"airtime_share_by_kind,omitempty"`
	BusiestNode   int                `json:"busiest_node"`
	BusiestByKind map[string]float64 `json:"busiest_airtime_share_by_kind,omitempty"`
	// BusiestDegree is the busiest node's neighbours in the graph;
	// BusiestFrames, BusiestMACRetries and BusiestLater its transmissions
	// in the window by kind (MAC retries included), of them the MAC's
	// retries, and a sequence's later packets: what its airtime is made
	// of, frame by frame.
	BusiestDegree     int               `json:"busiest_degree"`
	BusiestFrames     map[string]uint64 `json:"busiest_frames_by_kind,omitempty"`
	BusiestMACRetries map[string]uint64 `json:"busiest_mac_retries_by_kind,omitempty"`
	BusiestLater      map[string]uint64 `json:"busiest_later_packets_by_kind,omitempty"`
}

// airSnap is the radios' and layers' counters at an instant.
type airSnap struct {
	at      time.Time
	frames  []uint64
	bytes   []uint64
	airtime []time.Duration
	control uint64
	kinds   [][]time.Duration // by node, by kind (airKinds)
	frameAt [3][][]uint64     // airKinds.nodeFrames then, by counter, node, kind
}

func (m *routeMesh) airSnapshot() airSnap {
	s := airSnap{at: m.clk.Now(), frames: make([]uint64, len(m.nodes)), bytes: make([]uint64, len(m.nodes)), airtime: make([]time.Duration, len(m.nodes))}
	for i, r := range m.radios {
		c := r.Counters()
		s.frames[i], s.bytes[i], s.airtime[i] = c.TxFrames, c.TxBytes, c.TxAirtime
	}
	s.control = m.controlBytes()
	if m.kinds != nil {
		s.kinds = m.kinds.snapshot()
		for c := range s.frameAt {
			s.frameAt[c] = make([][]uint64, len(m.nodes))
			for i := range m.nodes {
				s.frameAt[c][i] = m.kinds.nodeFrameCounts(c, i)
			}
		}
	}
	return s
}

// airSince is what the live nodes sent since snapshot a.
func (m *routeMesh) airSince(a airSnap) AirStats {
	b := m.airSnapshot()
	win := b.at.Sub(a.at)
	st := AirStats{WindowS: win.Seconds()}
	live := 0
	var frames, bytes uint64
	var sum float64
	for i := range m.nodes {
		if m.dead[i] {
			continue
		}
		live++
		frames += b.frames[i] - a.frames[i]
		bytes += b.bytes[i] - a.bytes[i]
		share := float64(b.airtime[i]-a.airtime[i]) / float64(win)
		sum += share
		if share > st.AirtimeShareMax {
			st.AirtimeShareMax, st.BusiestNode = share, i
		}
	}
	if live == 0 || win <= 0 {
		return st
	}
	per := float64(live) * win.Minutes()
	st.FramesPerNodeMin = float64(frames) / per
	st.BytesPerNodeMin = float64(bytes) / per
	st.AirtimeShareMean = sum / float64(live)
	st.ControlBytesPerNodeMin = float64(b.control-a.control) / per
	if a.kinds != nil && b.kinds != nil {
		st.AirtimeByKind, st.BusiestByKind = map[string]float64{}, map[string]float64{}
		for i := range m.nodes {
			if m.dead[i] {
				continue
			}
			for id, d := range b.kinds[i] {
				if d == 0 {
					continue // a kind this node never sent
				}
				var was time.Duration
				if id < len(a.kinds[i]) {
					was = a.kinds[i][id]
				}
				kind := m.kinds.name(id)
				share := float64(d-was) / float64(win)
				st.AirtimeByKind[kind] += share / float64(live)
				if i == st.BusiestNode && share > 0 {
					st.BusiestByKind[kind] = share
				}
			}
		}
	}
	if st.BusiestNode < len(m.adj) {
		st.BusiestDegree = len(m.adj[st.BusiestNode])
	}
	if a.kinds != nil && b.kinds != nil {
		i := st.BusiestNode
		outs := [3]*map[string]uint64{&st.BusiestFrames, &st.BusiestMACRetries, &st.BusiestLater}
		for c, out := range outs {
			for id, n := range b.frameAt[c][i] {
				var was uint64
				if id < len(a.frameAt[c][i]) {
					was = a.frameAt[c][i][id]
				}
				if n > was {
					if *out == nil {
						*out = map[string]uint64{}
					}
					(*out)[m.kinds.name(id)] = n - was
				}
			}
		}
	}
	if m.cfg.Link == "lora" {
		d := st.AirtimeShareMax / m.cfg.DutyCycle
		st.DutyShareMax = &d
	}
	return st
}
