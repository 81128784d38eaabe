package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// InitOptions are what `mycelium init` writes.
type InitOptions struct {
	Dir  string
	Name string
	// Listen and Peers shape the UDP link: with peers, no multicast group
	// (static neighbours only); without, the default group.
	Listen string
	Peers  []string
	// Socket is the control socket ("mycelium.sock" next to the file by
	// default); Group the group owning it (none by default); Identity
	// the key's path in the file (IdentityFile next to it by default).
	Socket, Group, Identity string
	// KeyOnly writes the identity alone (a package's post-install step:
	// the configuration comes with the package).
	KeyOnly bool
}

// ConfigFile and IdentityFile are the names init writes in its directory.
const (
	ConfigFile   = "mycelium.toml"
	IdentityFile = "identity.pem"
)

// Init writes DIR/mycelium.toml (every option present and commented, the
// defaults filled) and a new identity DIR/identity.pem (0600, atomically).
// It refuses to overwrite either, and writes neither if one exists. It
// returns the new node_id.
func Init(opt InitOptions) (identity.NodeID, error) {
	if opt.Dir == "" {
		return identity.NodeID{}, errors.New("init: --dir is required")
	}
	if opt.KeyOnly {
		return initKey(filepath.Join(opt.Dir, IdentityFile))
	}
	if opt.Name != "" {
		if err := route.ValidName(opt.Name); err != nil {
			return identity.NodeID{}, fmt.Errorf("init: --name: %v", strings.TrimPrefix(err.Error(), "route: "))
		}
	}
	text, err := Template(opt)
	if err != nil {
		return identity.NodeID{}, err
	}
	cfgPath := filepath.Join(opt.Dir, ConfigFile)
	idPath := filepath.Join(opt.Dir, IdentityFile)
	// The text must be a configuration the node accepts.
	if _, err := Parse(text, cfgPath); err != nil {
		return identity.NodeID{}, fmt.Errorf("init: %v", err)
	}
	for _, p := range []string{cfgPath, idPath} {
		if _, err := os.Lstat(p); err == nil {
			return identity.NodeID{}, fmt.Errorf("init: %s exists: not overwritten", p)
		}
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return identity.NodeID{}, fmt.Errorf("init: %v", err)
	}
	id, err := identity.Generate(nil)
	if err != nil {
		return identity.NodeID{}, err
	}
	if err := identity.Save(idPath, id); err != nil {
		return identity.NodeID{}, fmt.Errorf("init: %v", err)
	}
	if err := writeNew(cfgPath, []byte(text), 0o644); err != nil {
		os.Remove(idPath) // both or neither
		return identity.NodeID{}, fmt.Errorf("init: %v", err)
	}
	return id.ID(), nil
}

// initKey writes a new identity at path, refusing to replace one.
func initKey(path string) (identity.NodeID, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return identity.NodeID{}, fmt.Errorf("init: %v", err)
	}
	id, err := identity.Generate(nil)
	if err != nil {
		return identity.NodeID{}, err
	}
	if err := identity.Save(path, id); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return identity.NodeID{}, fmt.Errorf("init: %s exists: not overwritten", path)
		}
		return identity.NodeID{}, fmt.Errorf("init: %v", err)
	}
	return id.ID(), nil
}

// writeNew writes a file atomically (temporary file, sync, link) and never
// over an existing one.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".init-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists: not overwritten", path)
		}
		return err
	}
	return nil
}

// Template is the configuration file init writes: every option, with its
// default and a comment.
func Template(opt InitOptions) (string, error) {
	def := Defaults()
	udp := linkDefaults("udp")
	esp := linkDefaults("espnow")
	lr := linkDefaults("rylr998")
	if opt.Listen != "" {
		udp.Listen = opt.Listen
	}
	if len(opt.Peers) > 0 {
		udp.Group = ""
		udp.Peers = opt.Peers
	}
	if opt.Socket != "" {
		def.Control.Socket = opt.Socket
	}
	if opt.Group != "" {
		def.Control.Group = opt.Group
	}
	if opt.Identity != "" {
		def.Node.Identity = opt.Identity
	}
	var buf bytes.Buffer
	err := configTemplate.Execute(&buf, map[string]any{
		"Name": opt.Name, "D": def, "L": tree.LoRaProfile(), "A": appPeriodsOf(tree.LoRaProfile()), "UDP": udp, "ESP": esp, "LoRa": lr,
	})
	return buf.String(), err
}

var configTemplate = template.Must(template.New("config").Funcs(template.FuncMap{
	"q": strconv.Quote,
	"list": func(ss []string) string {
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	},
}).Parse(`# Mycelium node configuration: mycelium node --config FILE
# Every option is here, set to its default unless mycelium init was told
# otherwise. Relative paths are relative to this file's directory.
# Durations: "500ms", "20s", "1m30s". Sizes: bytes.

[node]
# This node's name in name lookup ("" for none): 1-63 of a-z 0-9 - _ .,
# starting with a letter, not only hex digits. Others can ping it by name.
name = {{q .Name}}
# The node's key (Ed25519, PKCS #8 PEM, mode 0600). Its public key is the
# node_id. Keep it: a new key is a new node.
identity = {{q .D.Node.Identity}}
# Time between beacon bursts (how neighbours find and keep us). Left out,
# it follows the links (as do routing's trees, claim_period and
# epoch_periods): {{.D.Node.BeaconPeriod}} with any ESP-NOW or UDP link, {{.L.Beacon}} when every
# link is a rylr998 (docs/lora-rylr998.md says why). Set, it wins.
# beacon_period = {{q .D.Node.BeaconPeriod.String}}
# Let links that can (LoRa) sleep between beacons (modem sleep).
sleep = {{.D.Node.Sleep}}
# Seal what we send to other nodes of ours end to end (Noise IK sessions,
# ChaCha20-Poly1305; relays see only ciphertext) and refuse what they send
# in clear. Reference boards in range are always spoken to in clear.
e2e = {{.D.Node.E2E}}
# Sign our application broadcasts (gossip) with this node's key, so that
# neighbours can tell them from forgeries and replays (93 bytes each).
sign_broadcasts = {{.D.Node.SignBroadcasts}}
# Authenticate every unicast frame to and from proven neighbours of ours
# (a 12-byte counter and tag, keyed by the neighbour proof), so that a
# radio spoofing a neighbour's address is refused. Boards never get tags.
hop_auth = {{.D.Node.HopAuth}}

[control]
# The control API (HTTP/JSON, docs/control-api.md) on a unix socket, mode
# 0660; the CLI's verbs (status, peers, ping, ...) talk to it.
socket = {{q .D.Control.Socket}}
# Group owning the socket, so its members can use the CLI ("" leaves it).
group = {{q .D.Control.Group}}

[metrics]
# Prometheus metrics at http://LISTEN/metrics, e.g. "127.0.0.1:9477";
# "" turns them off.
listen = {{q .D.Metrics.Listen}}
# The web dashboard at http://LISTEN/ (the node, its peers, trees, traffic,
# a ping form); with listen "" it is served on 127.0.0.1:9477. Anyone who
# reaches LISTEN sees it and can ping from this node: keep it on localhost
# unless the network is yours.
dashboard = {{.D.Metrics.Dashboard}}

[log]
# debug, info, warn or error.
level = {{q .D.Log.Level}}
# auto (text on a terminal, JSON otherwise: under systemd), text or json.
format = {{q .D.Log.Format}}

[routing]
# trees, claim_period and epoch_periods (and node.beacon_period) follow
# the links when left out: the values below with any ESP-NOW or UDP link;
# {{.L.Trees}} tree, claimed every {{.L.ClaimPeriod}}, a new term every {{.L.EpochPeriods}} claims when every
# link is a rylr998, so that control stays within a tenth of a 1 % duty
# cycle (docs/lora-rylr998.md). Set here, a value wins; mycelium status
# shows what the node runs at.
# Parallel spanning trees (1-16); each has its own root.
# trees = {{.D.Routing.Trees}}
# How often a root re-claims its tree; trees form about one period apart.
# claim_period = {{q .D.Routing.ClaimPeriod.String}}
# A root silent for this many periods is replaced.
missed_claims = {{.D.Routing.MissedClaims}}
# A root renews its tree (fresh addresses) every this many claims
# (negative: never).
# epoch_periods = {{.D.Routing.EpochPeriods}}
# How far a claim's time may be ahead of our clock.
max_skew = {{q .D.Routing.MaxSkew.String}}
# The metric our sends ask relays to use: tree (tree distance) or prefix
# (common-prefix distance).
metric = {{q .D.Routing.Metric}}
# Hop limit of routed Packages.
ttl = {{.D.Routing.TTL}}
# How long a send waits for the destination's receipt before trying
# again, and how many times it tries.
receipt_timeout = {{q .D.Routing.ReceiptTimeout.String}}
attempts = {{.D.Routing.Attempts}}
# Trees that hold this node's name record (0: the default, 2).
lookup_trees = {{.D.Routing.LookupTrees}}
# Name records (and names) this node stores for others, at most.
records = {{.D.Routing.Records}}
# Registration waits for our addresses to be quiet this long, at most
# register_max after the first change, plus up to register_spread.
register_quiet = {{q .D.Routing.RegisterQuiet.String}}
register_max = {{q .D.Routing.RegisterMax.String}}
register_spread = {{q .D.Routing.RegisterSpread.String}}

[budgets]
# Reassembly memory per neighbour and in all, concurrent reassemblies in
# all and per neighbour.
rx_per_peer = {{.D.Budgets.RxPerPeer}}
rx_total = {{.D.Budgets.RxTotal}}
rx_sequences = {{.D.Budgets.RxSequences}}
rx_per_peer_sequences = {{.D.Budgets.RxPerPeerSeqs}}
# Bytes of Packages being sent as sequences, held until confirmed.
send_cache = {{.D.Budgets.SendCache}}
# Sends waiting per neighbour; frames queued before we ask neighbours to
# slow down.
pending_per_peer = {{.D.Budgets.PendingPerPeer}}
throttle_backlog = {{.D.Budgets.ThrottleBacklog}}

[stream]
# Packages larger than one chunk travel as a stream of chunks, each
# confirmed end to end, the whole checked by SHA-256 at the destination.
# Every relay holds a chunk whole (at most four from one neighbour within
# budgets.rx_per_peer); each chunk takes one of the node's 256 sequence
# ids for ten seconds, so larger chunks stream faster.
chunk = {{.D.Stream.Chunk}}
# Chunks in flight.
window = {{.D.Stream.Window}}
# The largest Package this node sends or takes, the bytes of all streams
# it receives at once, and how many at once.
max_size = {{.D.Stream.MaxSize}}
max_buffered = {{.D.Stream.MaxBuffered}}
max_incoming = {{.D.Stream.MaxIncoming}}
# An incoming stream with nothing new for this long is dropped.
idle = {{q .D.Stream.Idle.String}}
# How long a sender waits for the destination's verdict after the last
# chunk before asking again (three times).
result_wait = {{q .D.Stream.ResultWait.String}}

[gossip]
# Gossip (mycelium publish / subscribe) spreads Messages to every node.
# Each node says hello to its neighbours this often (its neighbours, its
# relays, a filter of the Messages it saw): one broadcast a period. Left
# out, it follows the links: {{.D.Gossip.HelloPeriod}} with any ESP-NOW or UDP link, {{.A.Hello}} when
# every link is a rylr998 (docs/lora-rylr998.md). Set, it wins.
# hello_period = {{q .D.Gossip.HelloPeriod.String}}

[services]
# This node announces its [[service]] tables (below) to every node through
# gossip this often; an entry not refreshed for three periods expires.
# Left out, it follows the links: {{.D.Services.Refresh}} with any ESP-NOW or UDP link,
# {{.A.Refresh}} when every link is a rylr998. Set, it wins.
# refresh = {{q .D.Services.Refresh.String}}

[messages]
# Store-and-forward messages (mycelium msg send / inbox), sealed to the
# target's key: this node's X25519 key, written on first start (0600).
key = {{q .D.Messages.Key}}
# Keep messages for nodes that are away (bounded: 1,000 messages, 1 MiB)
# and deliver them when they are back.
store = {{.D.Messages.Store}}
# How long a message sent from here may wait for its target.
ttl = {{q .D.Messages.TTL.String}}

[admin]
# Node management in sandboxed Starlark (mycelium admin): local over the
# control socket, remote for the operator keys below. Every command is
# audited in the log and in this append-only file (0600).
audit_file = {{q .D.Admin.AuditFile}}
# Starlark steps one command may take (a loop that never ends is stopped).
steps = {{.D.Admin.Steps}}
# Each operator: burst commands at once, then rate a minute.
rate = {{.D.Admin.Rate}}
burst = {{.D.Admin.Burst}}
# Operator keys allowed to run commands from other nodes: Ed25519 public
# keys in hex (mycelium init --dir OP --key-only prints one).
operators = []

[trust]
# Operator keys (Ed25519 public keys in hex; mycelium keys operator new
# prints one) whose signed revocations this node honours: a revoked
# node_id is refused as a proven neighbour, as a record's signer and as an
# end-to-end peer. Empty: no revocation is honoured.
operators = []
# The revocations honoured are kept here (0600, rewritten atomically), at
# most max_revocations (137 bytes each).
revocations = {{q .D.Trust.Revocations}}
# Revoked proxy certificates (mycelium keys operator revoke-proxy) are
# kept here, the same way: at most max_revocations (177 bytes each).
proxy_revocations = {{q .D.Trust.ProxyRevocations}}
max_revocations = {{.D.Trust.MaxRevocations}}
# How often this node publishes its revocations again by gossip, for nodes
# that were away when they spread ("0s": never).
republish = {{q .D.Trust.Republish.String}}
# Files of operator certificates (mycelium keys operator certify-proxy)
# naming this node the proxy of keyless boards: the name records it
# registers for them carry them.
proxy_certificates = []
# Take a keyless board's proxy record only with a certificate by one of
# the operators above (else any proxy's counts while no certified one is
# alive).
certified_proxies = false

# Services this node runs, as [[service]] tables listed by
# mycelium services on every node; for example:
# [[service]]
# name = "wx-roof"         # what it is called
# app = "weather"          # the application it speaks
# meta = "temp, humidity"  # anything else, at most 255 bytes

# Links: one [[link]] table each; type is udp, espnow or rylr998.

[[link]]
type = "udp"
# Our address and port.
listen = {{q .UDP.Listen}}
# Where broadcasts (beacons) go: a multicast group or a subnet broadcast
# address; "" for none (then only to peers).
group = {{q .UDP.Group}}
# Static neighbours: every broadcast also goes to each (for networks
# without multicast, or a fixed set of nodes).
peers = {{list .UDP.Peers}}
# The interface multicast is joined on ("" : the route's).
interface = {{q .UDP.Interface}}
# Let our multicast reach other nodes on this host.
multicast_loop = {{.UDP.MulticastLoop}}
# Multicast TTL (1: this LAN).
hops = {{.UDP.Hops}}

# ESP-NOW on a Wi-Fi card that injects in monitor mode
# (docs/deploy-raspberry-pi.md says which).
# [[link]]
# type = "espnow"
# interface = "wlan1"
# # Wi-Fi channel (the boards' channel); 0 leaves the card's.
# channel = {{.ESP.Channel}}
# # PHY rate put in radiotap: 1M 2M 5.5M 11M (802.11b), 6M ... 54M.
# rate = {{q .ESP.Rate}}
# # Our MAC address ("": the card's).
# mac = ""
# # Put the card into monitor mode at start (nl80211; needs CAP_NET_ADMIN).
# monitor = false
# # Active monitor mode: the card ACKs frames to its MAC (drivers that can).
# active = false

# A RYLR-998 LoRa module on a serial port.
# [[link]]
# type = "rylr998"
# port = "/dev/serial0"
# baud = {{.LoRa.Baud}}
# # The module's address (1-65535) and network id (3-15, or 18).
# address = {{.LoRa.Address}}
# network_id = {{.LoRa.NetworkID}}
# # Centre frequency in Hz (0 leaves the module's), e.g. 868100000.
# band = 0
# # Spreading factor, bandwidth (kHz), coding rate (1-4: 4/5..4/8), preamble.
# sf = {{.LoRa.SF}}
# bw = {{.LoRa.BW}}
# cr = {{.LoRa.CR}}
# preamble = {{.LoRa.Preamble}}
# # Output power in dBm (1-22; 0 leaves the module's).
# power = 0
# # The module's domain password, 8 hex digits ("" leaves it).
# password = ""
# # Duty-cycle budget: a fraction of each window (0: none). EU868 g1: 0.01, 1h.
# duty_cycle = 0.0
# duty_window = "1h0m0s"
`))
