// Package air is the virtual rack's radio: a network namespace with a
// bridge, one veth per Go node (its ESP-NOW link opens a raw socket on it,
// as on a monitor-mode card) and one for the rig, which plays the virtual
// boards' Wi-Fi driver: what a board's espnow stand-in sends becomes a real
// ESP-NOW frame (radiotap + 802.11 vendor action frame, l1-link/espnow)
// on the bridge, and frames on the bridge for a board (or broadcast) reach
// it. Frames between boards go through the same frame bytes. A board whose
// radio is off (modem sleep) or that is powered off hears nothing.
package air

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
)

// Station is a Go node's place on the air: the veth its link opens.
type Station struct {
	Iface string
	MAC   espnow.MAC
}

// Hearer is a board's radio as the air sees it.
type Hearer interface {
	Hear(src [6]byte, data []byte)
}

// Counts are the frames the air carried.
type Counts struct {
	BoardTx    uint64 `json:"board_tx"`    // frames boards sent
	ToBoards   uint64 `json:"to_boards"`   // frames handed to boards
	NodeFrames uint64 `json:"node_frames"` // ESP-NOW frames from Go nodes read off the bridge
	Dropped    uint64 `json:"dropped"`     // frames for a board whose radio was off (modem sleep, power cut)
	Other      uint64 `json:"other"`       // frames on the bridge that were not ESP-NOW (the kernel's IPv6 neighbour discovery)
}

// Air is a running virtual air.
type cutter struct {
	left int
	fn   func()
}

type Air struct {
	NS string

	sock *packet.Conn

	mu     sync.Mutex
	boards map[espnow.MAC]Hearer
	off    map[espnow.MAC]bool
	seq    uint16
	cut    map[espnow.MAC]*cutter

	boardTx, toBoards, nodeFrames, dropped, bad atomic.Uint64
	done                                        chan struct{}
}

// ErrNeedsRoot: the air builds a network namespace.
var ErrNeedsRoot = errors.New("air: the virtual air needs root and iproute2 (ip) to build a network namespace")

// New builds the namespace: a bridge, a veth pair per station (the station
// end carries its MAC) and the rig's own veth, with a raw socket on it.
func New(name string, stations []Station) (*Air, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNeedsRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, ErrNeedsRoot
	}
	a := &Air{NS: name, boards: map[espnow.MAC]Hearer{}, off: map[espnow.MAC]bool{}, cut: map[espnow.MAC]*cutter{}, done: make(chan struct{})}
	exec.Command("ip", "netns", "del", name).Run() // a namespace left by a killed run
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("air: ip netns add %s: %v: %s", name, err, out)
	}
	var sb strings.Builder
	sb.WriteString("link set lo up\nlink add br0 type bridge ageing_time 0 stp_state 0\nlink set br0 up\n")
	ifaces := []string{"rig0"}
	ports := []string{"prig0"}
	sb.WriteString("link add rig0 address 02:00:00:00:00:fe type veth peer name prig0\nlink set prig0 master br0\nlink set prig0 up\nlink set rig0 up\n")
	for i, s := range stations {
		p := fmt.Sprintf("p%d", i)
		fmt.Fprintf(&sb, "link add %s address %s type veth peer name %s\nlink set %s master br0\nlink set %s up\nlink set %s up\n",
			s.Iface, s.MAC, p, p, p, s.Iface)
		ifaces, ports = append(ifaces, s.Iface), append(ports, p)
	}
	cmd := exec.Command("ip", "-n", name, "-batch", "-")
	cmd.Stdin = strings.NewReader(sb.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		a.deleteNS()
		return nil, fmt.Errorf("air: ip -batch: %v: %s", err, out)
	}
	if err := a.waitForwarding(ifaces, ports); err != nil {
		a.deleteNS()
		return nil, err
	}
	err := a.inNS(func() error {
		ifi, err := net.InterfaceByName("rig0")
		if err != nil {
			return err
		}
		a.sock, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	})
	if err != nil {
		a.deleteNS()
		return nil, fmt.Errorf("air: raw socket: %w", err)
	}
	go a.read()
	return a, nil
}

// Wrap is the command prefix that runs a process inside the air's
// namespace.
func (a *Air) Wrap() []string { return []string{"ip", "netns", "exec", a.NS} }

func (a *Air) deleteNS() {
	exec.Command("ip", "netns", "del", a.NS).Run()
}

// waitForwarding polls until the veths are up and the bridge forwards on
// every port (the bridge's learning states take a moment).
func (a *Air) waitForwarding(ifaces, ports []string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", a.NS, "-d", "-j", "link", "show").Output()
		if err == nil {
			var links []struct {
				Name      string `json:"ifname"`
				OperState string `json:"operstate"`
				Info      struct {
					Slave struct {
						State string `json:"state"`
					} `json:"info_slave_data"`
				} `json:"linkinfo"`
			}
			if json.Unmarshal(out, &links) == nil {
				ok := 0
				for _, l := range links {
					for _, n := range ifaces {
						if l.Name == n && l.OperState == "UP" {
							ok++
						}
					}
					for _, n := range ports {
						if l.Name == n && l.Info.Slave.State == "forwarding" {
							ok++
						}
					}
				}
				if ok == len(ifaces)+len(ports) {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("air: veths in %s not forwarding after 15 s", a.NS)
		}
		time.Sleep(50 * time.Millisecond) // polling the kernel's state: real time
	}
}

// inNS runs fn on an OS thread switched into the namespace: sockets it
// makes stay there.
func (a *Air) inNS(fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + a.NS)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked: the runtime ends it with the goroutine.
		return errors.Join(ferr, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// Attach puts a board on the air.
func (a *Air) Attach(mac espnow.MAC, h Hearer) {
	a.mu.Lock()
	a.boards[mac] = h
	delete(a.off, mac)
	delete(a.cut, mac)
	a.mu.Unlock()
}

// CutAfter calls fn (in its own goroutine) once n more frames have reached
// the board at mac, and from then on hands it nothing: the rig's way to cut
// a board's power at a known point of a transfer.
func (a *Air) CutAfter(mac espnow.MAC, n int, fn func()) {
	a.mu.Lock()
	a.cut[mac] = &cutter{left: n, fn: fn}
	a.mu.Unlock()
}

// Detach takes a board off the air (powered off).
func (a *Air) Detach(mac espnow.MAC) {
	a.mu.Lock()
	delete(a.boards, mac)
	a.mu.Unlock()
}

// FromBoard is what a board's radio sent ('T' dst+data, 'O' on/off), as
// vboard.Config.OnFrame delivers it.
func (a *Air) FromBoard(src espnow.MAC, kind byte, b []byte) {
	switch kind {
	case 'O':
		if len(b) == 1 {
			a.mu.Lock()
			a.off[src] = b[0] == 0
			a.mu.Unlock()
		}
	case 'T':
		if len(b) < 6 || len(b)-6 > espnow.MaxBody {
			a.bad.Add(1)
			return
		}
		a.mu.Lock()
		a.seq = (a.seq + 1) & 0xfff
		f := espnow.Frame{Dst: espnow.MAC(b[:6]), Src: src, Seq: a.seq, Body: b[6:]}
		a.mu.Unlock()
		raw, err := espnow.AppendFrame(nil, &f, espnow.TxOptions{})
		if err != nil {
			a.bad.Add(1)
			return
		}
		a.boardTx.Add(1)
		// On the bridge for the Go nodes (the kernel hands it to every
		// other port)...
		a.sock.WriteTo(raw, &packet.Addr{HardwareAddr: net.HardwareAddr(f.Dst[:])})
		// ...and to the other boards, from the very same bytes.
		a.deliver(raw)
	}
}

// deliver parses frame bytes and hands the payload to the boards it is for.
func (a *Air) deliver(raw []byte) {
	var f espnow.Frame
	if err := espnow.Parse(raw, &f); err != nil {
		a.bad.Add(1)
		return
	}
	a.mu.Lock()
	var to []Hearer
	for mac, h := range a.boards {
		if mac == f.Src || !(f.Dst == mac || f.Dst.IsBroadcast()) {
			continue
		}
		if a.off[mac] {
			a.dropped.Add(1)
			continue
		}
		if c := a.cut[mac]; c != nil {
			if c.left <= 0 {
				continue
			}
			if c.left--; c.left == 0 {
				delete(a.cut, mac)
				a.off[mac] = true
				go c.fn()
			}
		}
		to = append(to, h)
	}
	a.mu.Unlock()
	for _, h := range to {
		a.toBoards.Add(1)
		h.Hear(f.Src, f.Body)
	}
}

func (a *Air) read() {
	defer close(a.done)
	buf := make([]byte, 4096)
	for {
		n, _, err := a.sock.ReadFrom(buf)
		if err != nil {
			return
		}
		var f espnow.Frame
		if espnow.Parse(buf[:n], &f) != nil {
			a.bad.Add(1)
			continue
		}
		a.mu.Lock()
		_, fromBoard := a.boards[f.Src]
		a.mu.Unlock()
		if fromBoard {
			continue // our own write, seen going out: delivered already
		}
		a.nodeFrames.Add(1)
		a.deliver(buf[:n])
	}
}

// Counts returns the frame counters so far.
func (a *Air) Counts() Counts {
	return Counts{BoardTx: a.boardTx.Load(), ToBoards: a.toBoards.Load(), NodeFrames: a.nodeFrames.Load(),
		Dropped: a.dropped.Load(), Other: a.bad.Load()}
}

// Close closes the socket and deletes the namespace.
func (a *Air) Close() error {
	err := a.sock.Close()
	<-a.done
	a.deleteNS()
	return err
}
