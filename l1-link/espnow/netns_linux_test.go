package espnow

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
)

// The socket path runs for real: a fresh network namespace holds a bridge
// and one veth pair per station; each link opens its AF_PACKET socket on a
// veth end and writes radiotap + 802.11 frames as raw bytes, which the veth
// and bridge carry like any Ethernet frame (the bridge floods them: the
// "destination" it sees is bytes 0..5 of the radiotap header, never
// learned). Everything but the radio is real: socket, kernel BPF filter,
// outgoing-packet rejection, reader and writer goroutines.

var nsSeq atomic.Uint32

// netns is a network namespace made with `ip netns add`.
type netns struct{ name string }

func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip to create network namespaces (CI installs it)")
	}
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	needNetns(t)
	n := &netns{name: fmt.Sprintf("myc-espnow-%d-%d", os.Getpid(), nsSeq.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.name, err, out)
		}
	})
	return n
}

// ip runs ip commands (one per line) inside the namespace.
func (n *netns) ip(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("ip", "-n", n.name, "-batch", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s\n%s", err, out, script)
	}
}

// waitForwarding waits until the n station veths (s0..) are up and their
// bridge ports (p0..) forward.
func (n *netns) waitForwarding(t *testing.T, count int) {
	t.Helper()
	var last string
	ok := waitFor(func() bool {
		out, err := exec.Command("ip", "-n", n.name, "-d", "-j", "link", "show").Output()
		if err != nil {
			last = err.Error()
			return false
		}
		last = string(out)
		var links []struct {
			Name      string `json:"ifname"`
			OperState string `json:"operstate"`
			Info      struct {
				Slave struct {
					State string `json:"state"`
				} `json:"info_slave_data"`
			} `json:"linkinfo"`
		}
		if err := json.Unmarshal(out, &links); err != nil {
			return false
		}
		ready := 0
		for _, l := range links {
			for i := range count {
				if l.Name == fmt.Sprintf("s%d", i) && l.OperState == "UP" || l.Name == fmt.Sprintf("p%d", i) && l.Info.Slave.State == "forwarding" {
					ready++
				}
			}
		}
		return ready == 2*count
	})
	if !ok {
		t.Fatalf("veths not forwarding: %s", last)
	}
}

// do runs fn with the calling OS thread switched into the namespace, so
// sockets fn creates belong to it (they stay there afterwards).
func (n *netns) do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + n.name) // where iproute2 keeps them
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime ends it with the goroutine
		// rather than reuse a thread in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("setns back: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// station is one veth end with its link and a send-only probe socket that
// injects hand-made frames onto the same wire.
type station struct {
	mac   MAC
	link  *Link
	probe *packet.Conn
}

// inject writes a raw frame from the station's wire.
func (s *station) inject(t *testing.T, b []byte) {
	t.Helper()
	if _, err := s.probe.WriteTo(b, &packet.Addr{HardwareAddr: net.HardwareAddr(BroadcastMAC[:])}); err != nil {
		t.Fatal(err)
	}
}

// veths is a namespace with n stations on a bridge, links open.
type veths struct {
	ns       *netns
	loop     *clock.Loop
	stations []*station
	barrier  uint32
}

func newVeths(t *testing.T, n int) *veths {
	t.Helper()
	ns := newNetns(t)
	var sb strings.Builder
	// ageing_time 0: the bridge forgets addresses at once and floods
	// everything, like the shared medium it stands in for.
	sb.WriteString("link set lo up\nlink add br0 type bridge ageing_time 0 stp_state 0\nlink set br0 up\n")
	v := &veths{ns: ns, loop: runLoop(t)}
	for i := range n {
		mac := MAC{0x02, 0xe5, 0x90, 0x00, 0x00, byte(i + 1)}
		fmt.Fprintf(&sb, "link add s%d address %v type veth peer name p%d\n", i, mac, i)
		fmt.Fprintf(&sb, "link set p%d master br0\nlink set p%d up\nlink set s%d up\n", i, i, i)
		v.stations = append(v.stations, &station{mac: mac})
	}
	ns.ip(t, sb.String())
	for i, s := range v.stations {
		err := ns.do(func() error {
			ifi, err := net.InterfaceByName(fmt.Sprintf("s%d", i))
			if err != nil {
				return err
			}
			// Protocol 0: the probe only sends, it receives nothing.
			if s.probe, err = packet.Listen(ifi, packet.Raw, 0, nil); err != nil {
				return err
			}
			s.link, err = Open(Config{Interface: ifi.Name, Clock: v.loop})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if s.link.Info().Addr != s.mac {
			t.Fatalf("link address %v, want the interface's %v", s.link.Info().Addr, s.mac)
		}
		t.Cleanup(func() {
			_ = s.link.Close() // linktest's Close subtest may have closed it already
			_ = s.probe.Close()
		})
	}
	// A bridge port forwards once its veth has carrier, which the kernel
	// reports asynchronously: wait for every port, so no frame is lost.
	ns.waitForwarding(t, n)
	v.settle(t)
	return v
}

// nobody is a unicast address no station has.
var nobody = MAC{0x02, 0xe5, 0x90, 0xff, 0xff, 0xff}

// settle makes sure that every frame already written has been handled: each
// station injects a barrier frame for nobody, which every other station
// must count as DropNotForUs; frames travel one wire in order, so what was
// sent before has arrived, and a last pass over the loop delivers it.
func (v *veths) settle(t *testing.T) {
	t.Helper()
	for _, s := range v.stations {
		before := make([]uint64, len(v.stations))
		for j, o := range v.stations {
			before[j] = o.link.Counters().Drops[link.DropNotForUs]
		}
		v.barrier++
		f := Frame{Dst: nobody, Src: s.mac, Body: []byte("barrier")}
		f.Random[0], f.Random[1] = byte(v.barrier), byte(v.barrier>>8)
		s.inject(t, mustBuild(t, &f, TxOptions{NoAck: true}))
		ok := waitFor(func() bool {
			for j, o := range v.stations {
				if o != s && !o.link.isClosed() && o.link.Counters().Drops[link.DropNotForUs] <= before[j] {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("barrier from %v never arrived", s.mac)
		}
	}
	flushLoop(t, v.loop)
}

func (v *veths) links() []link.Link {
	var ls []link.Link
	for _, s := range v.stations {
		ls = append(ls, s.link)
	}
	return ls
}

func TestConformanceVeth(t *testing.T) {
	needNetns(t)
	linktest.Run(t, func(t *testing.T) *linktest.Env {
		v := newVeths(t, 3)
		return &linktest.Env{
			Links:  v.links(),
			Wait:   waitFor,
			Settle: func() { v.settle(t) },
		}
	})
}

// TestVethFiltering checks the receive path through the kernel: the BPF
// filter keeps non-ESP-NOW frames out of the process, the link drops frames
// for another station and duplicates, and frames from the host's own
// socket never come back.
func TestVethFiltering(t *testing.T) {
	v := newVeths(t, 2)
	a, b := v.stations[0], v.stations[1]
	r := &errRecorder{}
	b.link.Attach(r)
	base := b.link.Counters()

	d := dot11Of(mustBuild(t, &Frame{Dst: b.mac, Src: a.mac, Random: [4]byte{7}, Body: []byte("x")}, TxOptions{}))
	beacon := cat(rtMinimal, []byte{0x80, 0}, d[2:])
	otherOUI := cat(rtMinimal, d)
	otherOUI[len(rtMinimal)+HeaderLen+1] = 0x00
	ipv4 := []byte("\xff\xff\xff\xff\xff\xff\x02\xe5\x90\x00\x00\x01\x08\x00E\x00\x00\x14........")
	// Passes the filter (category, OUI, element, type all right) but its
	// element length is wrong: it reaches Parse and is counted.
	badLen := cat(rtMinimal, d)
	badLen[len(rtMinimal)+HeaderLen+9]++

	for _, f := range [][]byte{beacon, otherOUI, ipv4} {
		a.inject(t, f)
	}
	a.inject(t, badLen)
	dup := mustBuild(t, &Frame{Dst: BroadcastMAC, Src: a.mac, Random: [4]byte{1, 2, 3, 4}, Body: []byte("once")}, TxOptions{})
	a.inject(t, dup)
	a.inject(t, dup)
	a.inject(t, mustBuild(t, &Frame{Dst: nobody, Src: a.mac, Body: []byte("not for b")}, TxOptions{}))
	// The link's own transmissions do not come back to it.
	if err := b.link.Send(link.Broadcast, []byte("from b"), 0); err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool { return r.TxDoneCount() == 1 }) {
		t.Fatal("no TxDone")
	}
	v.settle(t)

	got := b.link.Counters()
	if n := got.Drops[link.DropMalformed] - base.Drops[link.DropMalformed]; n != 1 {
		t.Errorf("%d malformed drops, want 1 (only the frame that passes the filter reaches Parse)", n)
	}
	if n := got.Drops[link.DropDuplicate] - base.Drops[link.DropDuplicate]; n != 1 {
		t.Errorf("%d duplicate drops, want 1", n)
	}
	// The frame for nobody, plus one settle barrier.
	if n := got.Drops[link.DropNotForUs] - base.Drops[link.DropNotForUs]; n != 2 {
		t.Errorf("%d not-for-us drops, want 2", n)
	}
	if b.link.Echoes() != 0 {
		t.Errorf("%d echoes: outgoing frames reached the socket", b.link.Echoes())
	}
	frames := r.Frames()
	if len(frames) != 1 || string(frames[0].Data) != "once" || frames[0].Src != a.mac || !frames[0].Broadcast {
		t.Fatalf("delivered %+v", frames)
	}
}
