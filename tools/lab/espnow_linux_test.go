package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/tools/control"
)

// The ESP-NOW lab: `mycelium node` processes in a network namespace, their
// ESP-NOW links on veth pairs that carry real radiotap + 802.11 frames
// through a bridge per radio cell (a bridge floods every frame to every
// port, so the stations of one cell share a medium), and UDP links between
// some of them. Eight nodes in a ring whose one cell holds three stations:
//
//	0 =A= 1 =B= 2 -udp- 3 =C= 4
//	|              C\      |
//	E                5 ====C (3, 4, 5 share cell C)
//	|                 =D= 6 -udp- 7 =E= 0
//
// Node 4 is four hops from node 0 either way round: 0-1-2-3-4 and
// 0-7-6-5-4.

var labSeq atomic.Uint32

type labNet struct {
	t    *testing.T
	name string
}

func newLabNet(t *testing.T) *labNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip (CI installs it)")
	}
	n := &labNet{t: t, name: fmt.Sprintf("myc-lab-%d-%d", os.Getpid(), labSeq.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del: %v: %s", err, out)
		}
	})
	return n
}

func (n *labNet) ip(script string) {
	n.t.Helper()
	cmd := exec.Command("ip", "-n", n.name, "-batch", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("ip -batch: %v: %s\n%s", err, out, script)
	}
}

// forwarding waits until every named station is up and every bridge port
// forwards.
func (n *labNet) forwarding(stations, ports []string) {
	n.t.Helper()
	mustPoll(n.t, 10*time.Second, "veths forwarding", func(context.Context) bool {
		out, err := exec.Command("ip", "-n", n.name, "-d", "-j", "link", "show").Output()
		if err != nil {
			return false
		}
		var links []struct {
			Name      string `json:"ifname"`
			OperState string `json:"operstate"`
			Info      struct {
				Slave struct {
					State string `json:"state"`
				} `json:"info_slave_data"`
			} `json:"linkinfo"`
		}
		if json.Unmarshal(out, &links) != nil {
			return false
		}
		ok := 0
		for _, l := range links {
			if slices.Contains(stations, l.Name) && l.OperState == "UP" || slices.Contains(ports, l.Name) && l.Info.Slave.State == "forwarding" {
				ok++
			}
		}
		return ok == len(stations)+len(ports)
	})
}

// espnowLinks writes an ESP-NOW [[link]] table for each veth station.
func espnowLinks(w *strings.Builder, stations []string) {
	for _, s := range stations {
		// No radio behind a veth: channel 0 leaves it be.
		fmt.Fprintf(w, "[[link]]\ntype = \"espnow\"\ninterface = %q\nchannel = 0\nrate = \"1M\"\n\n", s)
	}
}

// replaceLinks swaps the [[link]] tables of a node's configuration.
func replaceLinks(t *testing.T, n *Node, links string) {
	t.Helper()
	b, err := os.ReadFile(n.Config())
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n[[link]]\n")
	if i < 0 {
		t.Fatal("no [[link]] in " + n.Config())
	}
	if err := os.WriteFile(n.Config(), []byte(s[:i+1]+links), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestESPNOWLab(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes in a network namespace: a minute or two of wall time")
	}
	bin := binary(t)
	ns := newLabNet(t)
	cells := map[string][]int{"A": {0, 1}, "B": {1, 2}, "C": {3, 4, 5}, "D": {5, 6}, "E": {7, 0}}
	udpPairs := [][2]int{{2, 3}, {6, 7}}
	var script strings.Builder
	script.WriteString("link set lo up\n")
	radios := make([][]string, 8) // station interfaces per node
	var stations, ports []string
	for _, c := range []string{"A", "B", "C", "D", "E"} {
		fmt.Fprintf(&script, "link add br%s type bridge ageing_time 0 stp_state 0\nlink set br%s up\n", c, c)
		for _, i := range cells[c] {
			s, p := fmt.Sprintf("n%d%s", i, c), fmt.Sprintf("p%d%s", i, c)
			mac := fmt.Sprintf("02:e5:90:%02x:%02x:01", i, c[0])
			fmt.Fprintf(&script, "link add %s address %s type veth peer name %s\n", s, mac, p)
			fmt.Fprintf(&script, "link set %s master br%s\nlink set %s up\nlink set %s up\n", p, c, p, s)
			radios[i] = append(radios[i], s)
			stations, ports = append(stations, s), append(ports, p)
		}
	}
	ns.ip(script.String())
	ns.forwarding(stations, ports)

	dir := t.TempDir()
	nodes := make([]*Node, 8)
	udpAddr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", 7100+i) }
	for i := range nodes {
		n, err := Init(bin, filepath.Join(dir, fmt.Sprintf("lab%d", i)), fmt.Sprintf("lab%d", i), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		n.Wrap = []string{"ip", "netns", "exec", ns.name}
		var links strings.Builder
		espnowLinks(&links, radios[i])
		for _, p := range udpPairs {
			if p[0] == i || p[1] == i {
				other := p[0] + p[1] - i
				fmt.Fprintf(&links, "[[link]]\ntype = \"udp\"\nlisten = %q\ngroup = \"\"\npeers = [%q]\n\n", udpAddr(i), udpAddr(other))
			}
		}
		replaceLinks(t, n, links.String())
		if err := n.Set(FastTiming); err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
	}
	startAll(t, nodes)
	took := mustPoll(t, 3*time.Minute, "lab converged", func(ctx context.Context) bool { return Converged(ctx, nodes, 1, 6) })
	t.Logf("converged %.1f s after start", took.Seconds())
	for i, n := range nodes {
		s, err := n.Client().Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := len(radios[i])
		for _, p := range udpPairs {
			if p[0] == i || p[1] == i {
				want++
			}
		}
		if len(s.Links) != want {
			t.Fatalf("node %d has %d links, want %d", i, len(s.Links), want)
		}
		for _, l := range s.Links {
			if l.Type == "espnow" && (l.RxFrames == 0 || l.TxFrames == 0) {
				t.Fatalf("node %d: an ESP-NOW link carried nothing: %+v", i, l)
			}
		}
	}

	ctx := context.Background()
	src, far := nodes[0], nodes[4]
	c := src.Client()
	ping, err := c.Ping(ctx, control.PingRequest{Target: far.Name, Count: 3, IntervalMS: 100})
	if err != nil || ping.Received == 0 {
		t.Fatalf("ping over 4 hops: %+v %v", ping, err)
	}
	tr, err := c.Traceroute(ctx, control.TraceRequest{Target: far.Name})
	if err != nil || !tr.Complete || len(tr.Hops) != 5 {
		t.Fatalf("traceroute over 4 hops: %+v %v", tr, err)
	}
	links := map[string]bool{}
	for _, h := range tr.Hops[:4] {
		links[h.Link] = true
	}
	if !links["espnow"] || !links["udp"] {
		t.Fatalf("the path does not cross both kinds of link: %+v", tr.Hops)
	}
	t.Logf("ping rtt %v ms; path %v", ping.RTTms, hopNames(tr.Hops))

	blob := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range blob {
		blob[i] = byte(r.Uint32())
	}
	sum := sha256.Sum256(blob)
	got := listen(t, far, "files")
	res, err := c.Send(ctx, far.Name, "files", bytes.NewReader(blob), int64(len(blob)), nil)
	if err != nil || res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("1 MiB over 4 hops: %+v %v", res, err)
	}
	select {
	case rcv := <-got:
		if sha256.Sum256(rcv.Data) != sum {
			t.Fatal("the far side got other bytes")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the far side got nothing")
	}
	t.Logf("1 MiB over 4 hops (ESP-NOW on veths and UDP): %.1f s, %.0f kbit/s", res.Seconds, res.GoodputBps/1000)

	// Kill the first relay of that path; traffic flows the other way.
	relay := indexOf(nodes, tr.Hops[1].NodeID)
	nodes[relay].Kill()
	killed := time.Now()
	mustPoll(t, 3*time.Minute, "ping around the killed relay", func(ctx context.Context) bool {
		p, err := c.Ping(ctx, control.PingRequest{Target: far.Name, Count: 1, TimeoutMS: 3000})
		return err == nil && p.Received == 1
	})
	t.Logf("traffic flowed again %.1f s after SIGKILL of node %d", time.Since(killed).Seconds(), relay)

	// It comes back with its identity and rejoins.
	if err := nodes[relay].Start(); err != nil {
		t.Fatal(err)
	}
	mustPoll(t, 3*time.Minute, "the restarted node rejoins", func(ctx context.Context) bool {
		s, err := nodes[relay].Client().Status(ctx)
		if err != nil || s.NodeID != nodes[relay].ID || len(s.Trees) != 6 {
			return false
		}
		p, err := c.Ping(ctx, control.PingRequest{Target: nodes[relay].Name, Count: 1, TimeoutMS: 3000})
		return err == nil && p.Received == 1
	})
}

func hopNames(hs []control.Hop) string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name+"("+h.Link+")")
	}
	return strings.Join(out, " ")
}
