package meshsim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// Limits of one run. A run is single-threaded and keeps every node in
// memory; the bounds keep the largest run a 2-core, 24 GiB machine can take
// within minutes to an hour of wall time and a few GB (the figures behind
// them are in the README), and refuse anything beyond before any work.
const (
	// MinNodes: a mesh needs two nodes.
	MinNodes = 2
	// MaxNodes bounds `sim`: about 25 KB of heap per node; 10 minutes of a
	// 10,000-node mesh with its transfers took 54 to 224 s of wall time.
	MaxNodes = 10000
	// MaxRouteNodes bounds `sim route`: six trees and a router per node,
	// about 0.25 MB each at 1,000 nodes (more as the trees deepen), and a
	// few microseconds per event (the README has the measured curve).
	MaxRouteNodes = 10000
	// MaxDegree bounds the mean degree of a random topology.
	MaxDegree = 50
	// MaxDuration bounds the mesh time of `sim`.
	MaxDuration = 24 * time.Hour
	// MaxTransfersPerMin bounds the transfers each node starts per minute.
	MaxTransfersPerMin = 60
	// MaxTransferSize bounds a simulated transfer's blob.
	MaxTransferSize = 1000000
	// MaxOfferedBytes bounds the application bytes a `sim` run is expected
	// to offer (nodes × transfers per minute × minutes × mean size): the
	// simulator moved 1 GB of them in 26 s alone on one core, in 149 s with
	// the machine's two cores shared by several jobs, so the largest run
	// takes between 2 and 13 minutes.
	MaxOfferedBytes = 5e9
	// MaxRuns bounds `bench transfer`.
	MaxRuns = 10000
	// MaxPairs bounds the probes of `sim route`.
	MaxPairs = 10000
	// MaxTrees bounds the parallel trees.
	MaxTrees = 16
	// MaxGraphEdges bounds a graph file (its nodes are bounded by
	// MaxRouteNodes).
	MaxGraphEdges = 1000000
)

// SettingError reports a setting out of what a run accepts. Name is the
// setting as the command line spells its flag (without dashes), so that the
// command can name the flag.
type SettingError struct {
	Name  string
	Value string
	Want  string
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("%s %s: %s", e.Name, e.Value, e.Want)
}

// FormatDuration writes a duration as a person would: 24h, 90m, 1m30s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func settingf(name string, v any, format string, a ...any) error {
	var val string
	switch x := v.(type) {
	case float64:
		val = strconv.FormatFloat(x, 'g', -1, 64)
	case time.Duration:
		val = FormatDuration(x)
	default:
		val = fmt.Sprint(x)
	}
	return &SettingError{Name: name, Value: val, Want: fmt.Sprintf(format, a...)}
}

// Group formats n with thousands separators, as limits are written in
// messages and help.
func Group(n int) string {
	s := strconv.Itoa(max(n, -n))
	var b strings.Builder
	if n < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func checkInt(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return settingf(name, v, "want %s..%s", Group(lo), Group(hi))
	}
	return nil
}

// checkProb checks a loss probability: [0, 1), NaN refused.
func checkProb(name string, v float64) error {
	if math.IsNaN(v) || v < 0 || v >= 1 {
		return settingf(name, v, "want a probability at least 0 and below 1")
	}
	return nil
}

func checkDegree(v float64, nodes int) error {
	hi := float64(min(MaxDegree, nodes-1))
	if math.IsNaN(v) || v <= 0 || v > hi {
		return settingf("degree", v, "want above 0 and at most %s (%s nodes)", strconv.FormatFloat(hi, 'g', -1, 64), Group(nodes))
	}
	return nil
}

// Validate checks the configuration as given, without filling defaults
// (Build fills them first): everything a run could choke on is refused
// here, before any work.
func (c *Config) Validate() error {
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
	switch c.Link {
	case "espnow", "lora", "mixed":
	default:
		return settingf("link", fmt.Sprintf("%q", c.Link), "want espnow, lora or mixed")
	}
	if c.Link != "espnow" {
		if err := c.LoRa.Validate(); err != nil {
			return err
		}
	}
	if c.Link == "mixed" && c.Gateways != 0 {
		if err := checkInt("gateways", c.Gateways, 1, c.Nodes); err != nil {
			return err
		}
	} else if c.Gateways != 0 {
		return settingf("gateways", c.Gateways, "only a mixed mesh has gateways")
	}
	if err := c.checkReferenceNodes(); err != nil {
		return err
	}
	if err := checkProb("loss", c.Loss); err != nil {
		return err
	}
	if c.Duration < time.Second || c.Duration > MaxDuration {
		return settingf("duration", c.Duration, "want 1s..%s of mesh time", FormatDuration(MaxDuration))
	}
	if math.IsNaN(c.Transfers) || c.Transfers < 0 || c.Transfers > MaxTransfersPerMin {
		return settingf("transfers", c.Transfers, "want 0..%d per node per minute", MaxTransfersPerMin)
	}
	if err := checkInt("max-size", c.MaxSize, 1, MaxTransferSize); err != nil {
		return err
	}
	if err := checkInt("min-size", c.MinSize, 0, c.MaxSize); err != nil {
		return &SettingError{Name: "min-size", Value: strconv.Itoa(c.MinSize), Want: fmt.Sprintf("want 0..%s (--max-size)", Group(c.MaxSize))}
	}
	if off := c.Offered(); off > MaxOfferedBytes {
		return &SettingError{Name: "transfers", Value: strconv.FormatFloat(c.Transfers, 'g', -1, 64),
			Want: fmt.Sprintf("%s nodes × %g per minute × %g minutes × %s bytes on average offer %.3g GB; at most %g GB (fewer nodes, transfers, minutes or bytes)",
				Group(c.Nodes), c.Transfers, c.Duration.Minutes(), Group((c.MinSize+c.MaxSize)/2), off/1e9, MaxOfferedBytes/1e9)}
	}
	return nil
}

// checkReferenceNodes: reference boards have an ESP-NOW interface only, so
// they are among the nodes with ESP-NOW alone.
func (c *Config) checkReferenceNodes() error {
	n := c.ReferenceNodes
	switch {
	case n < 0:
		return settingf("reference-nodes", n, "want 0..%s", Group(c.Nodes))
	case n == 0:
		return nil
	case c.Link == "lora":
		return settingf("reference-nodes", n, "a LoRa mesh has none: the reference implements an ESP-NOW interface only")
	case c.Link == "mixed":
		if hi := espOnly(c.Nodes, c.Gateways); n > hi {
			return settingf("reference-nodes", n, "want 0..%s: the nodes of this mixed mesh with ESP-NOW alone (the reference has no LoRa interface)", Group(hi))
		}
		return nil
	}
	return checkInt("reference-nodes", n, 0, c.Nodes)
}

// espOnly counts the nodes of a mixed mesh with ESP-NOW alone, by Build's
// rule: gateways (default a tenth, at least 2) carry both radios, and of
// the others every fourth LoRa alone.
func espOnly(nodes, gateways int) int {
	g := gateways
	if g <= 0 {
		g = max(2, nodes/10)
	}
	n := 0
	for k := g; k < nodes; k++ {
		if k%4 != 0 {
			n++
		}
	}
	return n
}

// Offered is the application bytes the run is expected to offer.
func (c *Config) Offered() float64 {
	return float64(c.Nodes) * c.Transfers * c.Duration.Minutes() * float64(c.MinSize+c.MaxSize) / 2
}

// Validate checks the configuration as given, without filling defaults
// (Route fills them first). A graph file's size and --fail-root's need of
// three nodes are checked when Route reads the file, before building.
func (c *RouteConfig) Validate() error {
	if c.Graph == "" {
		if err := checkInt("nodes", c.Nodes, MinNodes, MaxRouteNodes); err != nil {
			return err
		}
		if c.FailRoot && c.Nodes < 3 {
			return settingf("nodes", c.Nodes, "--fail-root needs at least 3 nodes (one dies, two route)")
		}
		if _, err := ParseRouteTopology(string(c.Topology)); err != nil {
			return err
		}
		if c.Topology.HasDegree() {
			if err := checkDegree(c.Degree, c.Nodes); err != nil {
				return err
			}
		}
	}
	if err := checkInt("pairs", c.Pairs, 1, MaxPairs); err != nil {
		return err
	}
	if c.Trees != 0 { // 0: the link's
		if err := checkInt("trees", c.Trees, 1, MaxTrees); err != nil {
			return err
		}
	}
	if c.Steady != 0 && (c.Steady < MinSteady || c.Steady > MaxSteady) {
		return settingf("steady", c.Steady, "want %s..%s of mesh time", FormatDuration(MinSteady), FormatDuration(MaxSteady))
	}
	if math.IsNaN(c.Kill) || c.Kill < 0 || c.Kill > MaxKill {
		return settingf("kill", c.Kill, "want a share of the nodes, 0..%g", MaxKill)
	}
	if c.Kill > 0 && c.FailRoot {
		return settingf("kill", c.Kill, "one failure a run: --kill or --fail-root")
	}
	switch c.Link {
	case "", "espnow":
	case "lora":
		if err := c.LoRa.Validate(); c.LoRa.SF != 0 && err != nil {
			return err
		}
		if c.DutyCycle != 0 && (math.IsNaN(c.DutyCycle) || c.DutyCycle <= 0 || c.DutyCycle > 1) {
			return settingf("duty-cycle", c.DutyCycle, "want a share of the time above 0, at most 1")
		}
	default:
		return settingf("link", fmt.Sprintf("%q", c.Link), "want espnow or lora")
	}
	return checkProb("loss", c.Loss)
}

// MinSteady and MaxSteady bound a steady window set (--steady): a
// second, and 31 days (LoRa's default window, an epoch cycle of two weeks,
// fits twice; on ESP-NOW a day of mesh time costs about a hundred times
// the default 15 minutes' CPU).
const (
	MinSteady = time.Second
	MaxSteady = 31 * 24 * time.Hour
)

// MaxKill bounds --kill: half the nodes.
const MaxKill = 0.5

// checkGraph checks a graph read from a file (ReadGraph bounds its size)
// against what the run needs.
func (c *RouteConfig) checkGraph(n int) error {
	if c.FailRoot && n < 3 {
		return fmt.Errorf("%d nodes: --fail-root needs at least 3 (one dies, two route)", n)
	}
	return nil
}

// Validate checks the configuration as given, without filling defaults
// (Transfer fills them first).
func (c *TransferConfig) Validate() error {
	switch c.Link {
	case "espnow":
	case "lora":
		if err := c.LoRa.Validate(); err != nil {
			return err
		}
	default:
		return settingf("link", fmt.Sprintf("%q", c.Link), "want espnow or lora")
	}
	if c.Reference && c.Link != "espnow" {
		return settingf("reference", "on "+c.Link, "the reference implements an ESP-NOW interface only")
	}
	if c.E2E && c.Reference {
		return settingf("e2e", "with --reference", "a reference board has no key to seal to")
	}
	if c.E2E && c.Size > streamFrom {
		return settingf("e2e", fmt.Sprintf("with --size %d", c.Size), "sealed sends go up to %d bytes (no sealed streams)", streamFrom)
	}
	switch {
	case c.Link == "lora" && c.Rate != 0:
		return settingf("rate", c.Rate, "LoRa's rate is its modulation (sf, bw)")
	case c.Link == "lora" && c.Adapt:
		return settingf("adapt", "on lora", "rate control is for ESP-NOW radios")
	case c.Link == "lora" && c.V2:
		return settingf("v2", "on lora", "ESP-NOW v2 is an ESP-NOW radio")
	case c.Link == "espnow" && c.Rate != 0 && !c.Rate.Valid():
		return settingf("rate", c.Rate, "want an 802.11b/g rate: 1, 2, 5.5, 11, 6, 9, 12, 18, 24, 36, 48 or 54 Mbit/s")
	}
	if c.Size < packet.PackageOverhead {
		return settingf("size", c.Size, "a Package is at least %d bytes (app_id and hash)", packet.PackageOverhead)
	}
	if c.Size > MaxTransfer {
		return settingf("size", c.Size, "the bench sends at most %s bytes (256 MiB; the node streams up to 1 TiB)", Group(MaxTransfer))
	}
	if c.Reference && c.V2 {
		return settingf("v2", "to a reference board", "the boards speak ESP-NOW v1")
	}
	if ref := packet.MustLookup(2).MaxPackage(); c.Reference && c.Size > ref {
		return settingf("size", c.Size, "larger than a reference board takes (%s bytes, schemas 0 and 2)", Group(ref))
	}
	if err := checkProb("loss", c.Loss); err != nil {
		return err
	}
	return checkInt("runs", c.Runs, 1, MaxRuns)
}
