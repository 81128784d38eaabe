// Package daemon is `mycelium node`: a mesh node on real links (UDP,
// ESP-NOW on a monitor-mode card, RYLR-998 LoRa on a serial port) with
// its trees, router and stream service, configured from a TOML file,
// answering the control API on a unix socket, exporting Prometheus
// metrics, logging with slog, and handling SIGINT/SIGTERM (goodbye, exit)
// and SIGHUP (reload).
package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/udp"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
	"github.com/mycelium-mesh/mycelium/l4-apps/stream"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// Config is the daemon's configuration file.
type Config struct {
	Node    NodeConfig    `toml:"node"`
	Control ControlConfig `toml:"control"`
	Metrics MetricsConfig `toml:"metrics"`
	Log     LogConfig     `toml:"log"`
	Routing RoutingConfig `toml:"routing"`
	Budgets BudgetConfig  `toml:"budgets"`
	Stream  StreamConfig  `toml:"stream"`
	// The applications' (apps.go).
	Gossip   GossipConfig    `toml:"gossip"`
	Services ServicesConfig  `toml:"services"`
	Service  []ServiceConfig `toml:"service"`
	Messages MessagesConfig  `toml:"messages"`
	Admin    AdminConfig     `toml:"admin"`
	Trust    TrustConfig     `toml:"trust"` // operator keys and revocations (trust.go)
	Links    []LinkConfig    `toml:"-"`     // from the [[link]] tables, by type

	// Profile names the periods the node runs at (tree.Profile): "lora"
	// when every link is a RYLR-998, "default" otherwise. It fills
	// node.beacon_period, routing.trees, routing.claim_period and
	// routing.epoch_periods where the file leaves them out; Explicit lists
	// those the file sets (they win).
	Profile  string   `toml:"-"`
	Explicit []string `toml:"-"`

	// Path is the file's path; relative paths in it are relative to its
	// directory.
	Path string `toml:"-"`
}

// NodeConfig is [node].
type NodeConfig struct {
	Name         string        `toml:"name"`
	Identity     string        `toml:"identity"`
	BeaconPeriod time.Duration `toml:"beacon_period"`
	Sleep        bool          `toml:"sleep"`
	// E2E seals what this node sends to other nodes of ours end to end
	// (l2-seq/e2e) and refuses what they send it in clear (default true).
	// A reference board next to us is always spoken to in clear: it has no
	// key. Turn it off only for a mesh of nodes that predate it. Remote
	// admin is sealed whatever this says (admin.go).
	E2E bool `toml:"e2e"`
	// SignBroadcasts signs this node's application broadcasts (gossip)
	// with its key (l2-seq/bsig, 93 bytes a broadcast), so that our
	// neighbours know them for its (default true). Reference boards
	// cannot read signed broadcasts; gossip is ours alone.
	SignBroadcasts bool `toml:"sign_broadcasts"`
	// HopAuth authenticates the unicast frames between this node and its
	// proven neighbours of ours (l2-seq/hop: a 4-byte counter and an
	// 8-byte HMAC-SHA256 tag on each, keyed by the neighbour proof), so
	// that a radio spoofing a neighbour's address is refused (default
	// true). Reference boards never get tags; a neighbour with it off
	// takes our tagged frames as plain ones (docs/security.md).
	HopAuth bool `toml:"hop_auth"`
}

// ControlConfig is [control].
type ControlConfig struct {
	Socket string `toml:"socket"`
	Group  string `toml:"group"`
}

// MetricsConfig is [metrics].
type MetricsConfig struct {
	Listen string `toml:"listen"`
	// Dashboard serves the web dashboard at http://LISTEN/ (LISTEN
	// defaults to DefaultDashboardListen, this machine only, when empty).
	Dashboard bool `toml:"dashboard"`
}

// LogConfig is [log].
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// RoutingConfig is [routing]: the trees' and the router's settings.
type RoutingConfig struct {
	Trees          int           `toml:"trees"`
	ClaimPeriod    time.Duration `toml:"claim_period"`
	MissedClaims   int           `toml:"missed_claims"`
	EpochPeriods   int           `toml:"epoch_periods"`
	MaxSkew        time.Duration `toml:"max_skew"`
	Metric         string        `toml:"metric"`
	TTL            int           `toml:"ttl"`
	ReceiptTimeout time.Duration `toml:"receipt_timeout"`
	Attempts       int           `toml:"attempts"`
	LookupTrees    int           `toml:"lookup_trees"`
	Records        int           `toml:"records"`
	RegisterQuiet  time.Duration `toml:"register_quiet"`
	RegisterMax    time.Duration `toml:"register_max"`
	RegisterSpread time.Duration `toml:"register_spread"`
}

// BudgetConfig is [budgets]: the node runtime's memory bounds.
type BudgetConfig struct {
	RxPerPeer       int `toml:"rx_per_peer"`
	RxTotal         int `toml:"rx_total"`
	RxSequences     int `toml:"rx_sequences"`
	RxPerPeerSeqs   int `toml:"rx_per_peer_sequences"`
	SendCache       int `toml:"send_cache"`
	PendingPerPeer  int `toml:"pending_per_peer"`
	ThrottleBacklog int `toml:"throttle_backlog"`
}

// StreamConfig is [stream]: large Packages.
type StreamConfig struct {
	Chunk       int           `toml:"chunk"`
	Window      int           `toml:"window"`
	MaxSize     int           `toml:"max_size"`
	MaxBuffered int           `toml:"max_buffered"`
	MaxIncoming int           `toml:"max_incoming"`
	Idle        time.Duration `toml:"idle"`
	ResultWait  time.Duration `toml:"result_wait"`
}

// LinkConfig is one [[link]] table; which fields apply depends on Type.
type LinkConfig struct {
	Type string `toml:"type"`

	// udp
	Listen        string   `toml:"listen"`
	Group         string   `toml:"group"`
	Peers         []string `toml:"peers"`
	MulticastLoop bool     `toml:"multicast_loop"`
	Hops          int      `toml:"hops"`

	// udp (multicast interface) and espnow
	Interface string `toml:"interface"`

	// espnow
	Channel int    `toml:"channel"`
	Rate    string `toml:"rate"`
	MAC     string `toml:"mac"`
	Monitor bool   `toml:"monitor"`
	Active  bool   `toml:"active"`

	// rylr998
	Port       string        `toml:"port"`
	Baud       int           `toml:"baud"`
	Address    int           `toml:"address"`
	NetworkID  int           `toml:"network_id"`
	Band       int           `toml:"band"`
	SF         int           `toml:"sf"`
	BW         int           `toml:"bw"`
	CR         int           `toml:"cr"`
	Preamble   int           `toml:"preamble"`
	Power      int           `toml:"power"`
	Password   string        `toml:"password"`
	DutyCycle  float64       `toml:"duty_cycle"`
	DutyWindow time.Duration `toml:"duty_window"`
}

// linkKeys are the keys each link type takes.
var linkKeys = map[string][]string{
	"udp":     {"type", "listen", "group", "peers", "interface", "multicast_loop", "hops"},
	"espnow":  {"type", "interface", "channel", "rate", "mac", "monitor", "active"},
	"rylr998": {"type", "port", "baud", "address", "network_id", "band", "sf", "bw", "cr", "preamble", "power", "password", "duty_cycle", "duty_window"},
}

// Defaults returns the configuration with every default filled: the
// simulator's figures for routing and budgets.
func Defaults() Config {
	p := tree.DefaultProfile()
	return Config{
		Profile: p.Name,
		Node:    NodeConfig{Identity: "identity.pem", BeaconPeriod: p.Beacon, E2E: true, SignBroadcasts: true, HopAuth: true},
		Control: ControlConfig{Socket: "mycelium.sock"},
		Log:     LogConfig{Level: "info", Format: "auto"},
		Routing: RoutingConfig{
			Trees: p.Trees, ClaimPeriod: p.ClaimPeriod, MissedClaims: 3, EpochPeriods: p.EpochPeriods,
			MaxSkew: time.Minute, Metric: "tree", TTL: 64, ReceiptTimeout: 30 * time.Second, Attempts: 4,
			Records: 4096, RegisterQuiet: 10 * time.Second, RegisterMax: time.Minute, RegisterSpread: 20 * time.Second,
		},
		Budgets: BudgetConfig{
			RxPerPeer: 128 << 10, RxTotal: 512 << 10, RxSequences: 32, RxPerPeerSeqs: 4,
			SendCache: 1 << 20, PendingPerPeer: 32, ThrottleBacklog: 64,
		},
		Stream:   StreamConfig{Chunk: 24 << 10, Window: 4, MaxSize: 64 << 20, MaxBuffered: 64 << 20, MaxIncoming: 4, Idle: 2 * time.Minute, ResultWait: 30 * time.Second},
		Gossip:   GossipConfig{HelloPeriod: appPeriodsOf(p).Hello},
		Services: ServicesConfig{Refresh: appPeriodsOf(p).Refresh},
		Messages: MessagesConfig{Key: "messages.key", TTL: 7 * 24 * time.Hour},
		Admin:    AdminConfig{AuditFile: "admin-audit.log", Steps: 1_000_000, Rate: 30, Burst: 10, Operators: []string{}},
		Trust:    TrustConfig{Operators: []string{}, Revocations: "revocations", ProxyRevocations: "proxy-revocations", MaxRevocations: revoke.DefaultMax, Republish: 6 * time.Hour, ProxyCertificates: []string{}},
	}
}

// linkDefaults are the defaults of a link of each type.
func linkDefaults(typ string) LinkConfig {
	switch typ {
	case "udp":
		return LinkConfig{Type: typ, Listen: fmt.Sprintf("0.0.0.0:%d", udp.DefaultPort), Group: udp.DefaultGroup.String(), Hops: 1}
	case "espnow":
		return LinkConfig{Type: typ, Channel: 1, Rate: "1M"}
	case "rylr998":
		return LinkConfig{Type: typ, Baud: 115200, Address: 1, NetworkID: 18, SF: lora.Default.SF, BW: lora.Default.Bandwidth / 1000, CR: lora.Default.CR, Preamble: lora.Default.Preamble}
	}
	return LinkConfig{Type: typ}
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("config")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}

// Load reads and checks a configuration file. Unknown keys, keys of
// another link type, values out of range: an error naming the key.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return Parse(string(b), abs)
}

// Parse reads a configuration from text; path is where it came from
// (relative paths in it are resolved against its directory).
func Parse(text, path string) (*Config, error) {
	var raw struct {
		Config
		Link []toml.Primitive `toml:"link"`
	}
	raw.Config = Defaults()
	md, err := toml.Decode(text, &raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrConfig, filepath.Base(path), oneLine(err.Error()))
	}
	cfg := raw.Config
	cfg.Path = path
	for i, p := range raw.Link {
		var keys map[string]any
		if err := md.PrimitiveDecode(p, &keys); err != nil {
			return nil, configErr("link %d: %v", i+1, err)
		}
		typ, _ := keys["type"].(string)
		allowed, ok := linkKeys[typ]
		if !ok {
			return nil, configErr("link %d: type %q (udp, espnow or rylr998)", i+1, typ)
		}
		for _, k := range sortedKeys(keys) {
			if !slices.Contains(allowed, k) {
				return nil, configErr("link %d (%s): unknown key %q (a %s link takes %s)", i+1, typ, k, typ, strings.Join(allowed[1:], ", "))
			}
		}
		lc := linkDefaults(typ)
		if err := md.PrimitiveDecode(p, &lc); err != nil {
			return nil, configErr("link %d (%s): %s", i+1, typ, oneLine(err.Error()))
		}
		cfg.Links = append(cfg.Links, lc)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, configErr("unknown key %q", und[0].String())
	}
	cfg.applyProfile(md.IsDefined)
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// linkProfile is the profile of a node with these links: LoRa when all
// are RYLR-998s, the default when any is faster (ESP-NOW, UDP).
func linkProfile(links []LinkConfig) tree.Profile {
	if len(links) == 0 {
		return tree.DefaultProfile()
	}
	for _, l := range links {
		if l.Type != "rylr998" {
			return tree.DefaultProfile()
		}
	}
	return tree.LoRaProfile()
}

// applyProfile fills the periods the file leaves out (defined says which
// it sets) from the links' profile: the ESP-NOW defaults would have a
// LoRa-only node send a quarter of its time in control at SF9, far past
// a 1 % duty cycle.
func (c *Config) applyProfile(defined func(key ...string) bool) {
	p := linkProfile(c.Links)
	a := appPeriodsOf(p)
	c.Profile = p.Name
	c.Explicit = nil
	for _, f := range []struct {
		sec, key string
		set      func()
	}{
		{"node", "beacon_period", func() { c.Node.BeaconPeriod = p.Beacon }},
		{"routing", "trees", func() { c.Routing.Trees = p.Trees }},
		{"routing", "claim_period", func() { c.Routing.ClaimPeriod = p.ClaimPeriod }},
		{"routing", "epoch_periods", func() { c.Routing.EpochPeriods = p.EpochPeriods }},
		{"gossip", "hello_period", func() { c.Gossip.HelloPeriod = a.Hello }},
		{"services", "refresh", func() { c.Services.Refresh = a.Refresh }},
	} {
		if defined(f.sec, f.key) {
			c.Explicit = append(c.Explicit, f.sec+"."+f.key)
		} else {
			f.set()
		}
	}
}

// appPeriods are the apps' own periodic broadcasts, which follow the
// links as the trees' periods do: gossip's hello (one broadcast a node a
// period) and the services' announcements (a flood through the whole mesh
// a node a period). At the default profile's minute a LoRa node would
// spend more than its whole 1 % duty budget on hellos alone (60 frames an
// hour at about 1.2 s each at SF9).
type appPeriods struct{ Hello, Refresh time.Duration }

// appPeriodsOf is what the apps run at on profile p: on LoRa a hello every
// two hours (neighbours forgotten after six) and services announced daily
// (an entry expires after three days without one).
func appPeriodsOf(p tree.Profile) appPeriods {
	if p.Name == tree.LoRaProfile().Name {
		return appPeriods{Hello: 2 * time.Hour, Refresh: 24 * time.Hour}
	}
	return appPeriods{Hello: time.Minute, Refresh: 10 * time.Minute}
}

// timing is the periods the node runs at, for the status.
func (c *Config) timing() *control.Timing {
	return &control.Timing{
		Profile: c.Profile, BeaconS: c.Node.BeaconPeriod.Seconds(), ClaimS: c.Routing.ClaimPeriod.Seconds(),
		Trees: c.Routing.Trees, EpochPeriods: c.Routing.EpochPeriods,
		HelloS: c.Gossip.HelloPeriod.Seconds(), RefreshS: c.Services.Refresh.Seconds(), Explicit: append([]string{}, c.Explicit...),
	}
}

// ControlShare estimates the share of the time a RYLR-998 link of this
// node spends sending its periodic control: a beacon each beacon period
// and a claim per tree each claim period and gossip's hello each hello
// period, each counted as a full frame
// (240 bytes and the module's 8: an upper bound per frame; the terms, registrations and lookups come on
// top). budget is the link's duty cycle (1 %, EU868, when it sets none).
// ok is false when the node has no RYLR-998 link.
func (c *Config) ControlShare() (share, budget float64, ok bool) {
	for _, l := range c.Links {
		if l.Type != "rylr998" {
			continue
		}
		perSec := 1/c.Node.BeaconPeriod.Seconds() + float64(c.Routing.Trees)/c.Routing.ClaimPeriod.Seconds() + 1/c.Gossip.HelloPeriod.Seconds()
		s := perSec * l.loraParams().Airtime(rylr998.MTU+rylr998.AirOverhead).Seconds()
		b := l.DutyCycle
		if b == 0 {
			b = loraDutyCycle
		}
		if !ok || s/b > share/budget {
			share, budget, ok = s, b, true
		}
	}
	return share, budget, ok
}

// loraDutyCycle is the budget ControlShare measures against when a link
// sets none: 1 % (EU 868 MHz sub-band g1).
const loraDutyCycle = 0.01

// Warnings are what the node logs at start about a configuration that
// parses but will not run well: periodic control taking more than a
// tenth of a LoRa link's duty budget (the share the LoRa profile keeps
// to, leaving the rest for traffic, terms and registrations).
func (c *Config) Warnings() []string {
	var out []string
	if share, budget, ok := c.ControlShare(); ok && share > budget/10 {
		out = append(out, fmt.Sprintf("periodic control (beacon every %v, %d trees claimed every %v, gossip hello every %v) may take %.2f %% of a LoRa link's time, %.0f %% of its %.2g %% duty budget (the LoRa profile keeps it under 10 %%): lengthen node.beacon_period, routing.claim_period or gossip.hello_period, or lower routing.trees",
			c.Node.BeaconPeriod, c.Routing.Trees, c.Routing.ClaimPeriod, c.Gossip.HelloPeriod, 100*share, 100*share/budget, 100*budget))
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Resolve makes a path from the file relative to the file's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// check validates every value; the error names the key.
func (c *Config) check() error {
	if err := c.checkApps(); err != nil {
		return err
	}
	if err := c.checkTrust(); err != nil {
		return err
	}
	if c.Node.Name != "" {
		if err := route.ValidName(c.Node.Name); err != nil {
			return configErr("node.name: %v", strings.TrimPrefix(err.Error(), "route: "))
		}
	}
	if c.Node.Identity == "" {
		return configErr("node.identity: empty (the key file's path)")
	}
	if c.Node.BeaconPeriod < time.Second {
		return configErr("node.beacon_period %v: at least 1s", c.Node.BeaconPeriod)
	}
	if c.Control.Socket == "" {
		return configErr("control.socket: empty (the control API's unix socket)")
	}
	if c.Metrics.Listen != "" {
		if _, err := netip.ParseAddrPort(c.Metrics.Listen); err != nil {
			return configErr("metrics.listen %q: want IP:port, e.g. 127.0.0.1:9477", c.Metrics.Listen)
		}
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return err
	}
	switch c.Log.Format {
	case "auto", "text", "json":
	default:
		return configErr("log.format %q: auto, text or json", c.Log.Format)
	}
	r := c.Routing
	type rng struct {
		key       string
		v, lo, hi int
	}
	for _, x := range []rng{
		{"routing.trees", r.Trees, 1, tree.MaxTrees},
		{"routing.missed_claims", r.MissedClaims, 1, 100},
		{"routing.ttl", r.TTL, 1, 254},
		{"routing.attempts", r.Attempts, 1, 100},
		{"routing.lookup_trees", r.LookupTrees, 0, tree.MaxTrees},
		{"routing.records", r.Records, 1, 1 << 20},
		{"budgets.rx_per_peer", c.Budgets.RxPerPeer, 1 << 10, 1 << 30},
		{"budgets.rx_total", c.Budgets.RxTotal, 1 << 10, 1 << 30},
		{"budgets.rx_sequences", c.Budgets.RxSequences, 1, 1 << 16},
		{"budgets.rx_per_peer_sequences", c.Budgets.RxPerPeerSeqs, 1, 1 << 16},
		{"budgets.send_cache", c.Budgets.SendCache, 1 << 10, 1 << 30},
		{"budgets.pending_per_peer", c.Budgets.PendingPerPeer, 1, 1 << 16},
		{"budgets.throttle_backlog", c.Budgets.ThrottleBacklog, 1, 1 << 16},
		{"stream.chunk", c.Stream.Chunk, 256, stream.MaxChunk},
		{"stream.window", c.Stream.Window, 1, 64},
		{"stream.max_size", c.Stream.MaxSize, 1, 1 << 30},
		{"stream.max_buffered", c.Stream.MaxBuffered, 1, 1 << 30},
		{"stream.max_incoming", c.Stream.MaxIncoming, 1, 1024},
	} {
		if x.v < x.lo || x.v > x.hi {
			return configErr("%s = %d: out of range %d..%d", x.key, x.v, x.lo, x.hi)
		}
	}
	if r.EpochPeriods == 0 || r.EpochPeriods > 1<<16 {
		return configErr("routing.epoch_periods = %d: 1..65536, or negative for never", r.EpochPeriods)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
		lo  time.Duration
	}{
		{"routing.claim_period", r.ClaimPeriod, 100 * time.Millisecond},
		{"routing.max_skew", r.MaxSkew, time.Second},
		{"routing.receipt_timeout", r.ReceiptTimeout, 100 * time.Millisecond},
		{"routing.register_quiet", r.RegisterQuiet, time.Millisecond},
		{"routing.register_max", r.RegisterMax, time.Millisecond},
		{"routing.register_spread", r.RegisterSpread, time.Millisecond},
		{"stream.idle", c.Stream.Idle, time.Second},
		{"stream.result_wait", c.Stream.ResultWait, 100 * time.Millisecond},
	} {
		if d.v < d.lo {
			return configErr("%s = %v: at least %v", d.key, d.v, d.lo)
		}
	}
	switch r.Metric {
	case "tree", "prefix":
	default:
		return configErr("routing.metric %q: tree or prefix", r.Metric)
	}
	if len(c.Links) == 0 {
		return configErr("no [[link]]: a node needs at least one link")
	}
	for i := range c.Links {
		if err := c.Links[i].check(); err != nil {
			return fmt.Errorf("%w: link %d (%s): %v", ErrConfig, i+1, c.Links[i].Type, err)
		}
	}
	for i := range c.Links {
		for j := range i {
			if a, b := c.Links[i], c.Links[j]; a.Type == b.Type && a.key() == b.key() {
				return configErr("links %d and %d are the same %s link (%s)", j+1, i+1, a.Type, a.key())
			}
		}
	}
	return nil
}

// key identifies a link's device: two links may not share one.
func (l *LinkConfig) key() string {
	switch l.Type {
	case "udp":
		return l.Listen
	case "espnow":
		return l.Interface
	}
	return l.Port
}

func (l *LinkConfig) check() error {
	switch l.Type {
	case "udp":
		if _, err := netip.ParseAddrPort(l.Listen); err != nil {
			return fmt.Errorf("listen %q: want IP:port", l.Listen)
		}
		if l.Group != "" {
			if _, err := netip.ParseAddrPort(l.Group); err != nil {
				return fmt.Errorf("group %q: want a multicast or broadcast IP:port, or \"\" for none", l.Group)
			}
		}
		for _, p := range l.Peers {
			if _, err := netip.ParseAddrPort(p); err != nil {
				return fmt.Errorf("peers: %q: want IP:port", p)
			}
		}
		if l.Group == "" && len(l.Peers) == 0 {
			return errors.New(`group "" and no peers: broadcasts (and so beacons) would reach nobody`)
		}
		if l.Hops < 1 || l.Hops > 255 {
			return fmt.Errorf("hops = %d: 1..255", l.Hops)
		}
	case "espnow":
		if l.Interface == "" {
			return errors.New("interface: empty (a monitor-mode Wi-Fi interface, e.g. wlan1)")
		}
		if l.Channel < 0 || l.Channel > 177 {
			return fmt.Errorf("channel = %d: 1..14 (2.4 GHz), 32..177 (5 GHz), or 0 to leave it", l.Channel)
		}
		if _, err := parseRate(l.Rate); err != nil {
			return fmt.Errorf("rate %q: %v", l.Rate, err)
		}
		if l.MAC != "" {
			if _, err := espnow.ParseMAC(l.MAC); err != nil {
				return fmt.Errorf("mac %q: %v", l.MAC, err)
			}
		}
		if l.Active && !l.Monitor {
			return errors.New("active = true needs monitor = true (the daemon sets active monitor mode when it sets monitor mode)")
		}
	case "rylr998":
		if l.Port == "" {
			return errors.New("port: empty (the module's serial port, e.g. /dev/serial0)")
		}
		if l.Address < 1 || l.Address > 65535 {
			return fmt.Errorf("address = %d: 1..65535", l.Address)
		}
		if !rylr998.ValidNetworkID(l.NetworkID) {
			return fmt.Errorf("network_id = %d: 3..15 or 18", l.NetworkID)
		}
		if _, err := rylr998.ParamsCode(l.loraParams(), l.NetworkID); err != nil {
			return fmt.Errorf("sf/bw/cr/preamble: %v", err)
		}
		if l.Power < 0 || l.Power > 22 {
			return fmt.Errorf("power = %d: 1..22 dBm, or 0 to leave the module's", l.Power)
		}
		if l.Password != "" && !rylr998.ValidPassword(l.Password) {
			return fmt.Errorf("password: 8 hex digits")
		}
		if l.DutyCycle < 0 || l.DutyCycle > 1 {
			return fmt.Errorf("duty_cycle = %v: 0 (none) .. 1", l.DutyCycle)
		}
		if l.DutyCycle > 0 && l.DutyWindow < time.Second {
			return fmt.Errorf("duty_window = %v: at least 1s with a duty cycle", l.DutyWindow)
		}
	}
	return nil
}

func (l *LinkConfig) loraParams() lora.Params {
	return lora.Params{SF: l.SF, Bandwidth: l.BW * 1000, CR: l.CR, Preamble: l.Preamble}
}

// parseRate reads an ESP-NOW PHY rate in Mbit/s: "1M", "5.5M", "24M" (the M
// may be left out).
func parseRate(s string) (espnow.Rate, error) {
	r, err := espnow.ParseRate(strings.TrimSuffix(strings.TrimSuffix(s, "M"), "m"))
	if err != nil {
		return 0, fmt.Errorf("want 1M, 2M, 5.5M or 11M (802.11b), or 6M..54M (OFDM)")
	}
	return r, nil
}
