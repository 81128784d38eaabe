// Package lab runs real `mycelium node` processes for tests and
// measurements: it builds the binary from the tree, writes each node's
// directory with `mycelium init`, edits the configuration, starts, kills
// and restarts the processes, and polls their control APIs until a
// condition holds (never sleeping a fixed time).
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mycelium-mesh/mycelium/tools/control"
)

// Build compiles the mycelium command into dir and returns its path.
func Build(dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	tools := filepath.Dir(filepath.Dir(file))
	out := filepath.Join(dir, "mycelium")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/mycelium")
	cmd.Dir = tools
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	return out, nil
}

// FastTiming are configuration edits that make a small mesh on fast links
// converge in seconds (the defaults are for radios and hundreds of nodes):
// claims every second, beacons every 2 s, registration as soon as the
// addresses settle, gossip hellos every 5 s. A gossip Message published
// on a mesh whose neighbours all hear each other is broadcast once, with
// no relay to echo it: one lost copy is repaired by the next hello that
// lacks it (after gossip's 10 s settle), a minute away at the default.
var FastTiming = map[string]string{
	"gossip.hello_period":     `"5s"`,
	"node.beacon_period":      `"2s"`,
	"routing.claim_period":    `"1s"`,
	"routing.register_quiet":  `"500ms"`,
	"routing.register_max":    `"2s"`,
	"routing.register_spread": `"200ms"`,
	"routing.receipt_timeout": `"3s"`,
	"stream.result_wait":      `"5s"`,
}

// Node is one node's directory and, while it runs, its process.
type Node struct {
	Bin    string
	Dir    string
	Name   string
	ID     string
	Listen string // its UDP address
	// Wrap, if set, prefixes the command line (e.g. ip netns exec NS).
	Wrap []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	exit   error
	stderr bytes.Buffer
}

// Config is the node's configuration file.
func (n *Node) Config() string { return filepath.Join(n.Dir, "mycelium.toml") }

// Socket is the node's control socket.
func (n *Node) Socket() string { return filepath.Join(n.Dir, "mycelium.sock") }

// Client talks to the node's control API.
func (n *Node) Client() *control.Client { return control.NewClient(n.Socket()) }

// Init writes the node's directory: `mycelium init` with the name, the
// UDP listen address and peers.
func Init(bin, dir, name, listen string, peers []string) (*Node, error) {
	args := []string{"init", "--dir", dir, "--name", name}
	if listen != "" {
		args = append(args, "--listen", listen)
	}
	for _, p := range peers {
		args = append(args, "--peer", p)
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("mycelium init: %v: %s", err, ee.Stderr)
		}
		return nil, err
	}
	return &Node{Bin: bin, Dir: dir, Name: name, ID: strings.TrimSpace(string(out)), Listen: listen}, nil
}

// Set edits the configuration: each key ("section.key") is replaced with
// the value (TOML text) on the line that sets it in its section. A key the
// file does not set is an error.
func (n *Node) Set(kv map[string]string) error {
	b, err := os.ReadFile(n.Config())
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for k, v := range kv {
		sec, key, ok := strings.Cut(k, ".")
		if !ok {
			return fmt.Errorf("set %q: want section.key", k)
		}
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
			return fmt.Errorf("set %q: no such line in %s", k, n.Config())
		}
	}
	return os.WriteFile(n.Config(), []byte(strings.Join(lines, "\n")), 0o644)
}

// Start runs `mycelium node --config` for the node.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && n.done != nil {
		select {
		case <-n.done:
		default:
			return errors.New("already running")
		}
	}
	args := append(append([]string(nil), n.Wrap...), n.Bin, "node", "--config", n.Config())
	cmd := exec.Command(args[0], args[1:]...)
	n.stderr.Reset()
	cmd.Stderr = &lockedWriter{mu: &n.mu, b: &n.stderr}
	if err := cmd.Start(); err != nil {
		return err
	}
	n.cmd, n.done = cmd, make(chan struct{})
	done := n.done
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.exit = err
		n.mu.Unlock()
		close(done)
	}()
	return nil
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Stderr is what the running (or last) process wrote to standard error.
func (n *Node) Stderr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stderr.String()
}

// Signal sends sig to the process.
func (n *Node) Signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return errors.New("not running")
	}
	return n.cmd.Process.Signal(sig)
}

// Wait waits for the process to exit (at most d) and returns its exit
// error (nil: status 0).
func (n *Node) Wait(d time.Duration) (error, bool) {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return errors.New("never started"), true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.exit, true
	case <-t.C:
		return nil, false
	}
}

// Running reports whether the process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Pid is the running process's id (0 if none).
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Kill ends the process at once (SIGKILL) and waits for it.
func (n *Node) Kill() {
	if n.Running() {
		n.Signal(syscall.SIGKILL)
		n.Wait(10 * time.Second)
	}
}

// Poll calls cond every interval until it holds (true) or the deadline
// passes (false): the way tests wait on real processes.
func Poll(ctx context.Context, deadline time.Duration, interval time.Duration, cond func(ctx context.Context) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if cond(ctx) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// FreeUDP returns n UDP addresses on 127.0.0.1 free right now: all held
// open together while the kernel picks them, so they differ.
func FreeUDP(n int) ([]string, error) {
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var out []string
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
		out = append(out, c.LocalAddr().String())
	}
	return out, nil
}

// FreeTCP returns a TCP address on 127.0.0.1 free right now.
func FreeTCP() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Ring writes n nodes in a ring over UDP on 127.0.0.1 (each has its two
// neighbours as static peers, no group), named prefix0.., with edits
// applied to every configuration.
func Ring(bin, dir, prefix string, n int, edits map[string]string) ([]*Node, error) {
	addrs, err := FreeUDP(n)
	if err != nil {
		return nil, err
	}
	var nodes []*Node
	for i := range n {
		peers := []string{addrs[(i+n-1)%n], addrs[(i+1)%n]}
		if n == 2 {
			peers = peers[:1]
		}
		nd, err := Init(bin, filepath.Join(dir, fmt.Sprintf("%s%d", prefix, i)), fmt.Sprintf("%s%d", prefix, i), addrs[i], peers)
		if err != nil {
			return nil, err
		}
		if err := nd.Set(edits); err != nil {
			return nil, err
		}
		nodes = append(nodes, nd)
	}
	return nodes, nil
}

// Converged reports whether every node runs and has its peers, a place in every
// tree under the same roots as the others, and its records registered.
func Converged(ctx context.Context, nodes []*Node, peers, trees int) bool {
	var roots []string
	for _, n := range nodes {
		if !n.Running() {
			return false
		}
		s, err := n.Client().Status(ctx)
		if err != nil || s.Peers < peers || len(s.Trees) != trees || !s.Registered {
			return false
		}
		r := make([]string, trees)
		for _, t := range s.Trees {
			r[t.Tree] = t.Root
		}
		if roots == nil {
			roots = r
		} else if strings.Join(roots, ",") != strings.Join(r, ",") {
			return false
		}
	}
	return true
}
