package rig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mycelium-mesh/mycelium/hil/air"
	"github.com/mycelium-mesh/mycelium/hil/rack"
	"github.com/mycelium-mesh/mycelium/hil/vboard"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
)

// TestApp is the application the suite's Packages go to: ("hil", "", 1),
// what `--app hil` names.
const TestApp = "hil"

// Board is a board of the rack as the suite drives it.
type Board struct {
	Name   string
	MAC    espnow.MAC
	NodeID string
	Agent  *Agent

	vb  *vboard.Board // nil on a real rack
	air *air.Air
}

// Virtual reports whether the rig can power the board off and on.
func (b *Board) Virtual() bool { return b.vb != nil }

// CutAfter arms the air to cut the board's power once n more frames have
// reached it: a power loss at a known point of a transfer.
func (b *Board) CutAfter(n int) error {
	if b.vb == nil {
		return errors.New("power control needs a virtual board")
	}
	b.air.CutAfter(b.MAC, n, func() {
		b.air.Detach(b.MAC)
		b.vb.PowerOff()
	})
	return nil
}

// PowerOff cuts the board's power (virtual boards).
func (b *Board) PowerOff() error {
	if b.vb == nil {
		return errors.New("power control needs a virtual board (or a switchable USB hub, not supported yet)")
	}
	b.air.Detach(b.MAC)
	b.vb.PowerOff()
	return nil
}

// PowerOn powers the board and waits for its agent's boot event.
func (b *Board) PowerOn(ctx context.Context) error {
	if b.vb == nil {
		return errors.New("power control needs a virtual board")
	}
	if b.vb.Running() {
		return nil
	}
	b.Agent.Forget()
	b.Agent.Conn().Drain()
	b.air.Attach(b.MAC, b.vb)
	if err := b.vb.PowerOn(); err != nil {
		return err
	}
	_, err := b.Agent.Wait(ctx, Event("boot", 0))
	return err
}

// Node is a Linux node of the rack.
type Node struct {
	Name   string
	NodeID string
	API    *NodeAPI

	dir    string
	cmd    *exec.Cmd
	stderr *lockedBuf
	exit   chan struct{}
}

// Env is a rack ready for the suite.
type Env struct {
	Rack   *rack.Rack
	Boards []*Board // the boards on ESP-NOW
	Nodes  []*Node  // the nodes with an ESP-NOW link
	// LoRaBoards and LoRaNodes are on the rack's LoRa channel (RYLR-998
	// modules; on a virtual rack, emulated ones on one simulated medium).
	LoRaBoards []*Board
	LoRaNodes  []*Node
	Air        *air.Air
	Log        io.Writer

	lora *loraChannel

	closers []func()
}

// NodeIDFromMAC is a board's node_id when the rack does not give one:
// SHA-256(SHA-256(unique id)) as the reference derives it (the ESP32's
// unique id is its MAC), hashed again until it is no Ed25519 point [ours]:
// our boards hold no key, and a keyless node_id is what tells a node with
// end-to-end sealing on to speak to them in clear (a node_id that is a
// point might be a keyed node's, and is never given a clear Package).
func NodeIDFromMAC(mac []byte) string {
	h := sha256.Sum256(mac)
	h = sha256.Sum256(h[:])
	for {
		if _, err := identity.X25519Public(identity.NodeID(h)); err != nil {
			return hex.EncodeToString(h[:])
		}
		h = sha256.Sum256(h[:])
	}
}

// Fast routing timing for a small rack: trees and name records settle in
// seconds (the defaults are for radios and hundreds of nodes).
var fastRouting = map[string]string{
	"routing.claim_period":    `"1s"`,
	"routing.register_quiet":  `"500ms"`,
	"routing.register_max":    `"2s"`,
	"routing.register_spread": `"200ms"`,
	"routing.receipt_timeout": `"3s"`,
	"stream.result_wait":      `"5s"`,
}

// Setup builds a virtual rack (air, Go nodes from bin, virtual boards with
// the firmware flashed and provisioned) or opens a real one (boards on
// their ports, flashed and provisioned beforehand; nodes running).
func Setup(ctx context.Context, r *rack.Rack, bin, work string, log io.Writer) (*Env, error) {
	e := &Env{Rack: r, Log: log}
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	if r.Virtual {
		if err := e.setupVirtual(ctx, bin, work); err != nil {
			return nil, err
		}
	} else {
		for _, rb := range r.Boards {
			c, err := Open(rb.Port, rb.Baud)
			if err != nil {
				return nil, err
			}
			e.closers = append(e.closers, func() { c.Close() })
			mac, _ := net.ParseMAC(rb.MAC)
			b := &Board{Name: rb.Name, MAC: espnow.MAC(mac), Agent: NewAgent(c)}
			// An empty line ends whatever half line the agent holds (the
			// agent ignores empty lines). Boards come from `hil provision`,
			// which leaves them running the agent.
			c.Write([]byte("\n"))
			e.Boards = append(e.Boards, b)
		}
		for _, rn := range r.Nodes {
			e.Nodes = append(e.Nodes, &Node{Name: rn.Name, API: NewNodeAPI(rn.Socket)})
		}
	}
	for _, b := range slices.Concat(e.Boards, e.LoRaBoards) {
		info, err := b.Agent.Do(ctx, map[string]any{"cmd": "info"})
		if err != nil {
			return nil, fmt.Errorf("board %s: %w", b.Name, err)
		}
		b.NodeID, _ = info["node_id"].(string)
		if _, err := b.Agent.Do(ctx, map[string]any{"cmd": "listen", "app": TestApp}); err != nil {
			return nil, fmt.Errorf("board %s: %w", b.Name, err)
		}
	}
	for _, n := range slices.Concat(e.Nodes, e.LoRaNodes) {
		st, err := n.API.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		n.NodeID = st.NodeID
	}
	ok = true
	return e, nil
}

func (e *Env) setupVirtual(ctx context.Context, bin, work string) error {
	r := e.Rack
	fw := r.Path(r.Firmware)
	host := filepath.Join(fw, "host")
	if err := vboard.EnsureRuntime(host); err != nil {
		return err
	}
	var stations []air.Station
	iface := map[string]string{}
	for i, n := range r.Nodes {
		if !slices.Contains(n.Links, "espnow") {
			continue
		}
		mac, _ := net.ParseMAC(n.MAC)
		iface[n.Name] = fmt.Sprintf("s%d", i)
		stations = append(stations, air.Station{Iface: iface[n.Name], MAC: espnow.MAC(mac)})
	}
	a, err := air.New(fmt.Sprintf("myc-hil-%d", os.Getpid()), stations)
	if err != nil {
		return err
	}
	e.Air = a
	e.closers = append(e.closers, func() { a.Close() })

	for i, rn := range r.Nodes {
		var links []string
		if f, ok := iface[rn.Name]; ok {
			// No radio behind a veth: channel 0 leaves it be.
			links = append(links, fmt.Sprintf("[[link]]\ntype = \"espnow\"\ninterface = %q\nchannel = 0\nrate = \"1M\"\n", f))
		}
		if slices.Contains(rn.Links, "lora") {
			m, err := e.loraModule(nodeLoRaAddress(i))
			if err != nil {
				return err
			}
			links = append(links, loraLinkTOML(m.Path(), nodeLoRaAddress(i)))
		}
		if len(links) == 0 {
			return fmt.Errorf("node %s: a virtual node has espnow or lora links", rn.Name)
		}
		var slow map[string]string
		if _, ok := iface[rn.Name]; !ok {
			slow = loraRouting
		}
		n, err := e.startNode(bin, filepath.Join(work, rn.Name), rn.Name, strings.Join(links, "\n"), slow)
		if err != nil {
			return err
		}
		if _, ok := iface[rn.Name]; ok {
			e.Nodes = append(e.Nodes, n)
		}
		if slices.Contains(rn.Links, "lora") {
			e.LoRaNodes = append(e.LoRaNodes, n)
		}
	}
	for i, rb := range r.Boards {
		mac, _ := net.ParseMAC(rb.MAC)
		m := espnow.MAC(mac)
		onLoRa := slices.Contains(rb.Radios, "lora")
		if onLoRa && slices.Contains(rb.Radios, "espnow") {
			return fmt.Errorf("board %s: the firmware runs one radio, espnow or lora", rb.Name)
		}
		var uart *loraUART
		if onLoRa {
			var err error
			if uart, err = e.loraUART(boardLoRaAddress(i)); err != nil {
				return err
			}
		}
		vb, err := vboard.Start(vboard.Config{Host: host, Flash: filepath.Join(work, rb.Name), MAC: m,
			OnFrame: func(kind byte, b []byte) {
				if kind == 'U' {
					if uart != nil {
						uart.write(b)
					}
					return
				}
				a.FromBoard(m, kind, b)
			}, Stderr: e.Log})
		if err != nil {
			return err
		}
		e.closers = append(e.closers, func() { vb.Close() })
		if uart != nil {
			uart.attach(vb)
		} else {
			a.Attach(m, vb)
		}
		c, err := Open(vb.Port(), rb.Baud)
		if err != nil {
			return err
		}
		e.closers = append(e.closers, func() { c.Close() })
		nid := rb.NodeID
		if nid == "" {
			nid = NodeIDFromMAC(mac)
		}
		if err := Upload(ctx, c, fw); err != nil {
			return fmt.Errorf("board %s: flash: %w", rb.Name, err)
		}
		p := Provisioning{NodeID: nid, Channel: r.Channel, BeaconMS: int(r.Suite.BeaconPeriod.Milliseconds()),
			GiveUpMS: int(r.Suite.GiveUp.Milliseconds()), RxBudget: 16384}
		if onLoRa {
			p.LoRa = &LoRaProvisioning{Address: int(boardLoRaAddress(i)), NetworkID: 18, Params: loraParamsAT}
		}
		if err := Provision(ctx, c, p); err != nil {
			return fmt.Errorf("board %s: provision: %w", rb.Name, err)
		}
		b := &Board{Name: rb.Name, MAC: m, NodeID: nid, Agent: NewAgent(c), vb: vb, air: a}
		if _, err := b.Agent.Wait(ctx, Event("boot", 0)); err != nil {
			return fmt.Errorf("board %s: no boot after provisioning: %w", rb.Name, err)
		}
		if onLoRa {
			e.LoRaBoards = append(e.LoRaBoards, b)
		} else {
			e.Boards = append(e.Boards, b)
		}
	}
	return nil
}

// startNode writes a node's directory with `mycelium init`, gives it the
// links (TOML [[link]] tables: ESP-NOW on its veth, RYLR-998 on an
// emulated module's pty), and starts it inside the air's namespace.
func (e *Env) startNode(bin, dir, name, links string, over map[string]string) (*Node, error) {
	os.RemoveAll(dir)
	out, err := exec.Command(bin, "init", "--dir", dir, "--name", name).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("mycelium init: %v: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("mycelium init: %w", err)
	}
	cfgPath := filepath.Join(dir, "mycelium.toml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.Index(s, "\n[[link]]\n")
	if i < 0 {
		return nil, fmt.Errorf("%s: no [[link]]", cfgPath)
	}
	s = s[:i+1] + links
	// Debug logs: the node says when a peer timed out, which is what a
	// failed test's node.log is read for (a few lines a test).
	kv := map[string]string{"node.beacon_period": fmt.Sprintf("%q", e.Rack.Suite.BeaconPeriod.String()), "log.level": `"debug"`}
	for k, v := range fastRouting {
		kv[k] = v
	}
	for k, v := range over {
		kv[k] = v
	}
	if s, err = setKeys(s, kv); err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
		return nil, err
	}
	n := &Node{Name: name, NodeID: strings.TrimSpace(string(out)), dir: dir,
		API: NewNodeAPI(filepath.Join(dir, "mycelium.sock")), stderr: &lockedBuf{}, exit: make(chan struct{})}
	args := append(e.Air.Wrap(), bin, "node", "--config", cfgPath)
	n.cmd = exec.Command(args[0], args[1:]...)
	n.cmd.Stderr = n.stderr
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		n.cmd.Wait()
		close(n.exit)
	}()
	e.closers = append(e.closers, func() {
		// What the node counted (/v1/stats) and logged, kept in its
		// directory (mycelium hil run --work DIR keeps them): a failed
		// test's story is there, not in the suite's one line.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if st, err := n.API.Stats(ctx); err == nil {
			os.WriteFile(filepath.Join(dir, "stats.json"), st, 0o644)
		}
		cancel()
		n.cmd.Process.Signal(os.Interrupt)
		select {
		case <-n.exit:
		case <-time.After(10 * time.Second):
			n.cmd.Process.Kill()
			<-n.exit
		}
		os.WriteFile(filepath.Join(dir, "node.log"), []byte(n.stderr.String()), 0o644)
	})
	// Up when its control socket answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := n.API.Status(ctx)
		cancel()
		if err == nil {
			return n, nil
		}
		select {
		case <-n.exit:
			return nil, fmt.Errorf("node %s exited: %s", name, n.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("node %s: control socket not answering: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond) // polling a real process
	}
}

// setKeys replaces "key = value" lines in their [section].
func setKeys(s string, kv map[string]string) (string, error) {
	lines := strings.Split(s, "\n")
	for k, v := range kv {
		sec, key, _ := strings.Cut(k, ".")
		cur, done := "", false
		for i, l := range lines {
			t := strings.TrimSpace(l)
			if strings.HasPrefix(t, "[") {
				cur = strings.Trim(t, "[]")
				continue
			}
			// A key mycelium init writes commented out (it follows the
			// links unless set) is set in its place.
			if cur == sec && (strings.HasPrefix(t, key+" =") || strings.HasPrefix(t, "# "+key+" =")) {
				lines[i] = key + " = " + v
				done = true
				break
			}
		}
		if !done {
			return "", fmt.Errorf("no line for %s", k)
		}
	}
	return strings.Join(lines, "\n"), nil
}

// Close stops everything Setup started, in reverse order.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// NodeLog is a virtual node's error output so far.
func (n *Node) NodeLog() string {
	if n.stderr == nil {
		return ""
	}
	return n.stderr.String()
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		l.b.Reset()
	}
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
