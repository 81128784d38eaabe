// Package control is the node daemon's control API: the JSON shapes that
// `mycelium node` serves over HTTP on a unix socket, and the client the
// CLI's verbs (status, peers, ping, ...) call it with. docs/control-api.md
// is its reference; the shapes here are a contract (scripts parse them).
package control

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// DefaultSocket is where the CLI looks for the daemon when neither
// --socket nor $MYCELIUM_SOCKET says otherwise: the systemd unit's
// runtime directory.
const DefaultSocket = "/run/mycelium/mycelium.sock"

// EnvSocket names the environment variable that overrides DefaultSocket.
const EnvSocket = "MYCELIUM_SOCKET"

// Status is GET /v1/status.
type Status struct {
	NodeID  string  `json:"node_id"`
	Name    string  `json:"name"`
	Version string  `json:"version"`
	UptimeS float64 `json:"uptime_s"`
	Links   []Link  `json:"links"`
	Peers   int     `json:"peers"`
	// Trees is this node's place in each tree it has one in.
	Trees []TreePos `json:"trees"`
	// Registered: the node's address record (and name, if it has one) is
	// stored and confirmed in the name lookup.
	Registered bool `json:"registered"`
	// NameTaken is the node_id another node holds our name for ("" if none).
	NameTaken string `json:"name_taken,omitempty"`
	// Timing is the periods the node runs at.
	Timing *Timing `json:"timing,omitempty"`
}

// Timing is the periods a node runs at: its links' profile ("lora" when
// every link is a RYLR-998, "default" otherwise) with what the
// configuration sets explicitly in its place (Explicit names those keys).
type Timing struct {
	Profile      string   `json:"profile"`
	BeaconS      float64  `json:"beacon_period_s"`
	ClaimS       float64  `json:"claim_period_s"`
	Trees        int      `json:"trees"`
	EpochPeriods int      `json:"epoch_periods"`
	HelloS       float64  `json:"hello_period_s"`     // gossip's hello
	RefreshS     float64  `json:"services_refresh_s"` // the services' announcements
	Explicit     []string `json:"explicit"`
}

// Link is one of the node's links.
type Link struct {
	Index    int    `json:"index"`
	Type     string `json:"type"`
	Addr     string `json:"addr"`
	MTU      int    `json:"mtu"`
	Bitrate  int    `json:"bitrate"`
	TxFrames uint64 `json:"tx_frames"`
	RxFrames uint64 `json:"rx_frames"`
	TxBytes  uint64 `json:"tx_bytes"`
	RxBytes  uint64 `json:"rx_bytes"`
	Drops    uint64 `json:"drops"`
	// DutyUsed is the fraction of the duty-cycle budget used in the
	// current window (links with a budget only).
	DutyUsed *float64 `json:"duty_used,omitempty"`
}

// TreePos is this node's place in one tree (GET /v1/tree, and Status).
type TreePos struct {
	Tree      int    `json:"tree"`
	TreeState int    `json:"tree_state"`
	Root      string `json:"root"`    // the root's node_id
	Address   string `json:"address"` // coordinates, "3,1" ("" at the root)
	Depth     int    `json:"depth"`
	IsRoot    bool   `json:"is_root"`
	// Neighbors counts the neighbours with a verified place in this epoch.
	Neighbors int `json:"neighbors"`
}

// Peer is a neighbour (GET /v1/peers).
type Peer struct {
	NodeID     string  `json:"node_id"`
	Name       string  `json:"name"`
	Link       string  `json:"link"` // the type of the link it was heard on
	LinkIndex  int     `json:"link_index"`
	Addr       string  `json:"addr"`
	LastHeardS float64 `json:"last_heard_s"`
	// Reference: a node of the reference implementation (no routing; its
	// beacons lack our capabilities app_id).
	Reference bool `json:"reference"`
	// Sleeps: its beacons say it modem-sleeps; sends to it wake it first
	// (RNS) when it has not been heard within its on-window.
	Sleeps bool `json:"sleeps"`
}

// PingRequest is POST /v1/ping.
type PingRequest struct {
	Target     string `json:"target"`
	Count      int    `json:"count"`       // default 3
	TimeoutMS  int    `json:"timeout_ms"`  // per ping, default 5000
	IntervalMS int    `json:"interval_ms"` // between pings, default 1000
}

// PingResult answers a ping: RTTms has one entry per reply.
type PingResult struct {
	Target   string    `json:"target"`
	NodeID   string    `json:"node_id"`
	Sent     int       `json:"sent"`
	Received int       `json:"received"`
	RTTms    []float64 `json:"rtt_ms"`
	// Errors are the typed errors of the pings that failed, in order.
	Errors []string `json:"errors,omitempty"`
}

// TraceRequest is POST /v1/traceroute.
type TraceRequest struct {
	Target    string `json:"target"`
	TimeoutMS int    `json:"timeout_ms"` // default 30000
}

// TraceResult lists the path, this node first and the target last.
type TraceResult struct {
	Target   string `json:"target"`
	NodeID   string `json:"node_id"`
	Hops     []Hop  `json:"hops"`
	Complete bool   `json:"complete"` // the target's own report came back
}

// Hop is one node on a traced path.
type Hop struct {
	Hop     int     `json:"hop"`
	NodeID  string  `json:"node_id"`
	Name    string  `json:"name,omitempty"`
	Address string  `json:"address"`
	RTTms   float64 `json:"rtt_ms"`
	Link    string  `json:"link,omitempty"` // the link it passed the probe on
}

// LookupResult is GET /v1/lookup?target=...
type LookupResult struct {
	Target string     `json:"target"`
	NodeID string     `json:"node_id"`
	Name   string     `json:"name,omitempty"`
	Addrs  []TreeAddr `json:"addrs"`
}

// TreeAddr is one address of a node.
type TreeAddr struct {
	Tree      int    `json:"tree"`
	TreeState int    `json:"tree_state"`
	Address   string `json:"address"`
}

// SendEvent is one line of POST /v1/send's answer (NDJSON): progress as
// the destination confirms chunks, then the result or an error.
type SendEvent struct {
	Progress *SendProgress `json:"progress,omitempty"`
	Result   *SendResult   `json:"result,omitempty"`
	Error    *Error        `json:"error,omitempty"`
}

// SendProgress counts confirmed bytes.
type SendProgress struct {
	Confirmed int `json:"confirmed"`
	Total     int `json:"total"`
}

// SendResult reports a send the destination confirmed.
type SendResult struct {
	Target     string  `json:"target"`
	NodeID     string  `json:"node_id"`
	App        string  `json:"app"`
	Bytes      int     `json:"bytes"`
	SHA256     string  `json:"sha256"`
	Seconds    float64 `json:"seconds"`
	GoodputBps float64 `json:"goodput_bps"` // blob bits per second, end to end
	Streamed   bool    `json:"streamed"`    // carried as a stream of chunks (larger than one)
}

// Received is one line of GET /v1/listen (NDJSON): a Package delivered to
// the application listened to.
type Received struct {
	App      string `json:"app"`
	From     string `json:"from"`      // the sender's node_id ("" when not known)
	FromName string `json:"from_name"` // its name, when known
	Size     int    `json:"size"`
	SHA256   string `json:"sha256"`
	Time     string `json:"time"` // RFC 3339, nanoseconds
	Data     []byte `json:"data"` // base64 in JSON
}

// Stats is GET /v1/stats: the counters of every layer.
type Stats struct {
	Node   map[string]uint64 `json:"node"`
	Drops  map[string]uint64 `json:"drops"`
	Route  map[string]uint64 `json:"route"`
	Trees  map[string]uint64 `json:"trees"`
	Stream map[string]uint64 `json:"stream"`
	// E2E are the end-to-end layer's counters (absent with [node] e2e off).
	E2E   map[string]uint64 `json:"e2e,omitempty"`
	Links []Link            `json:"links"`
}

// Error is the body of every failed request.
type Error struct {
	Error string `json:"error"`
	// Code names a typed error where there is one: a node error code's
	// name ("no_route", "unknown_app", ...), "unknown_target", "bad_request".
	Code string `json:"code,omitempty"`
}

// ParseApp reads an application as the CLI's --app takes it: 32 hex
// digits are an app_id; anything else is a name, whose app_id is
// NewAppID(name, "", 1) (`mycelium appid --name NAME --description ""
// --version 1` prints it).
func ParseApp(s string) (packet.AppID, error) {
	var id packet.AppID
	if len(s) == 2*packet.AppIDSize {
		if b, err := hex.DecodeString(s); err == nil {
			copy(id[:], b)
			return id, nil
		}
	}
	if strings.TrimSpace(s) == "" {
		return id, fmt.Errorf("app: empty (a name, or an app_id of 32 hex digits)")
	}
	return packet.NewAppID(s, "", 1), nil
}
