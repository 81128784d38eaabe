package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l2-seq/e2e"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// TestE2ELab is issue 11's end-to-end check on real processes and real
// ESP-NOW frames: A and B reach each other only through relay R, each
// radio cell a bridge in a network namespace:
//
//	A =X= R =Y= [mitm] = B
//
// The test captures every frame on R's two bridge ports (what the relay
// sends and receives, written to a pcap through l1-link/capture), and sits
// on the air between R and B as a man in the middle: it forwards every
// frame between cell Y's bridge and B's veth unchanged (so both link
// addresses stay what the neighbour proof saw) and can change one byte of
// a frame or inject captured frames again. With e2e on (the daemon's
// default):
//   - 1 MiB of recognisable ASCII sent from A to B arrives intact, and the
//     capture holds no 16-byte window of it;
//   - every frame R sent B during that send, injected again, delivers
//     nothing a second time;
//   - one byte changed in one frame from R to B makes the send fail with a
//     typed error, and B's listener gets nothing.
func TestE2ELab(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes in a network namespace")
	}
	bin := binary(t)
	ns := newLabNet(t)
	ns.ip(`link set lo up
link add brX type bridge ageing_time 0 stp_state 0
link set brX up
link add brY type bridge ageing_time 0 stp_state 0
link set brY up
link add nAX address 02:e5:90:0a:58:01 type veth peer name pAX
link add nRX address 02:e5:90:0b:58:01 type veth peer name pRX
link add nRY address 02:e5:90:0b:59:01 type veth peer name pRY
link add nBY address 02:e5:90:0c:59:01 type veth peer name pBY
link add mY type veth peer name mYp
link set pAX master brX
link set pRX master brX
link set pRY master brY
link set mYp master brY
link set nAX up
link set nRX up
link set nRY up
link set nBY up
link set pAX up
link set pRX up
link set pRY up
link set pBY up
link set mY up
link set mYp up
`)
	ns.forwarding([]string{"nAX", "nRX", "nRY", "nBY", "pBY", "mY"}, []string{"pAX", "pRX", "pRY", "mYp"})

	dir := t.TempDir()
	radios := map[string][]string{"A": {"nAX"}, "R": {"nRX", "nRY"}, "B": {"nBY"}}
	var nodes []*Node
	for _, name := range []string{"A", "R", "B"} {
		n, err := Init(bin, filepath.Join(dir, name), "e2e-"+strings.ToLower(name), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		n.Wrap = []string{"ip", "netns", "exec", ns.name}
		var links strings.Builder
		espnowLinks(&links, radios[name])
		replaceLinks(t, n, links.String())
		if err := n.Set(FastTiming); err != nil {
			t.Fatal(err)
		}
		// What end-to-end sealing catches on its own: with authenticated
		// hops (the default) B refuses the man in the middle's frames
		// one hop earlier (their hop tags fail), and the typed errors
		// this test expects from e2e never come.
		if err := n.Set(map[string]string{"node.hop_auth": "false"}); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(n.Config()); err != nil || !strings.Contains(string(b), "\ne2e = true") {
			t.Fatalf("%s: the default configuration does not turn e2e on (%v)", name, err)
		}
		nodes = append(nodes, n)
	}
	a, b := nodes[0], nodes[2]

	// The relay's capture and the man in the middle run from the start, so
	// the handshake is captured too.
	pcap := filepath.Join(dir, "relay.pcap")
	w, err := capture.Create(pcap, layers.LinkTypeIEEE80211Radio)
	if err != nil {
		t.Fatal(err)
	}
	socks := map[string]*rawSocket{}
	for _, ifn := range []string{"pRX", "pRY", "mY", "pBY"} {
		s, err := openRaw(ns.name, ifn)
		if err != nil {
			t.Fatalf("packet socket on %s: %v", ifn, err)
		}
		socks[ifn] = s
	}
	var (
		stop      atomic.Bool
		wg        sync.WaitGroup
		wmu       sync.Mutex
		recording atomic.Bool
		recorded  [][]byte // frames R sent B while recording
		tamper    atomic.Int32
		tampered  atomic.Int32
		forge     atomic.Int32
		forged    atomic.Int32
	)
	// The capture: every frame through R's two bridge ports.
	for _, ifn := range []string{"pRX", "pRY"} {
		s := socks[ifn]
		wg.Go(func() {
			buf := make([]byte, 4096)
			for !stop.Load() {
				f, _, ok, err := s.read(buf)
				if err != nil {
					t.Errorf("capture on %s: %v", ifn, err)
					return
				}
				if !ok {
					continue
				}
				wmu.Lock()
				w.Write(time.Now(), f)
				wmu.Unlock()
			}
		})
	}
	// The man in the middle: cell Y <-> B, one goroutine per direction.
	forward := func(from, to *rawSocket, toB bool) {
		buf := make([]byte, 4096)
		for !stop.Load() {
			f, out, ok, err := from.read(buf)
			if err != nil {
				t.Errorf("man in the middle: %v", err)
				return
			}
			if !ok || out {
				continue // our own writes come back as outgoing
			}
			if toB {
				if recording.Load() {
					wmu.Lock()
					recorded = append(recorded, bytes.Clone(f))
					wmu.Unlock()
				}
				// A full data frame: change its last byte (inside the sealed
				// Package; no FCS on a veth to catch it).
				if len(f) >= 200 && tamper.Load() > 0 && tamper.Add(-1) >= 0 {
					f[len(f)-1] ^= 0x5a
					tampered.Add(1)
				}
				if forge.Load() > 0 && reseal(f) {
					forge.Add(-1)
					forged.Add(1)
				}
			}
			if err := to.write(f); err != nil {
				t.Errorf("man in the middle: write: %v", err)
				return
			}
		}
	}
	wg.Go(func() { forward(socks["mY"], socks["pBY"], true) })
	wg.Go(func() { forward(socks["pBY"], socks["mY"], false) })
	stopTaps := sync.OnceFunc(func() {
		stop.Store(true)
		wg.Wait()
		for _, s := range socks {
			s.close()
		}
		if err := w.Close(); err != nil {
			t.Errorf("pcap: %v", err)
		}
	})
	t.Cleanup(stopTaps)

	start := time.Now()
	startAll(t, nodes)
	took := mustPoll(t, 90*time.Second, "lab converged", func(ctx context.Context) bool { return Converged(ctx, nodes, 1, 6) })
	t.Logf("converged %.1f s after start", took.Seconds())

	ctx := context.Background()
	c := a.Client()
	pattern := []byte("Mycelium plaintext that no relay may read. ")
	blob := bytes.Repeat(pattern, (1<<20)/len(pattern)+1)[:1<<20]
	sum := sha256.Sum256(blob)
	got := listen(t, b, "files")

	// 1. The 1 MiB send arrives intact, sealed end to end; the relay
	// carried it.
	b0 := stats(t, b)
	recording.Store(true)
	res, err := c.Send(ctx, b.Name, "files", bytes.NewReader(blob), int64(len(blob)), nil)
	recording.Store(false)
	if err != nil || res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("1 MiB from A to B over R: %+v %v", res, err)
	}
	select {
	case r := <-got:
		if sha256.Sum256(r.Data) != sum {
			t.Fatal("B got other bytes")
		}
		if r.From != a.ID {
			t.Fatalf("B got it from %s, want %s", r.From, a.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B got nothing")
	}
	wmu.Lock()
	replay := recorded
	wmu.Unlock()
	t.Logf("1 MiB from A to B over R: %.1f s, %.0f kbit/s; %d frames from R to B", res.Seconds, res.GoodputBps/1000, len(replay))
	if len(replay) < (1<<20)/250 {
		t.Fatalf("only %d frames from R to B for 1 MiB: the relay did not carry it", len(replay))
	}
	b1 := stats(t, b)
	opened := b1.E2E["opened"] - b0.E2E["opened"]
	if opened == 0 {
		t.Fatal("B unsealed nothing: the send was not sealed end to end")
	}

	// 2. Replay: every frame R sent B during the send, injected again
	// towards B. Then a fresh small send is the barrier: once it is
	// delivered, B has handled the replay before it, and must have
	// delivered nothing else.
	// In batches that B's socket buffer holds, each taken in (its link's
	// counters say so) before the next.
	for i := 0; i < len(replay); i += 100 {
		before := rxFrames(stats(t, b))
		batch := replay[i:min(i+100, len(replay))]
		for _, f := range batch {
			if err := socks["pBY"].write(f); err != nil {
				t.Fatalf("replay: %v", err)
			}
		}
		if !Poll(ctx, 10*time.Second, 10*time.Millisecond, func(ctx context.Context) bool {
			s, err := b.Client().Stats(ctx)
			return err == nil && rxFrames(s)-before >= uint64(len(batch))
		}) {
			t.Fatalf("B's link never took in replayed frames %d..%d", i, i+len(batch))
		}
	}
	barrier := []byte("barrier after the replay")
	if _, err := c.Send(ctx, b.Name, "files", bytes.NewReader(barrier), int64(len(barrier)), nil); err != nil {
		t.Fatalf("send after the replay: %v", err)
	}
	select {
	case r := <-got:
		if !bytes.Equal(r.Data, barrier) {
			t.Fatalf("after the replay B delivered %d bytes (sha %x) before the barrier: a replay was delivered", len(r.Data), sha256.Sum256(r.Data))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the barrier never arrived")
	}
	b2 := stats(t, b)
	if d := rxFrames(b2) - rxFrames(b1); d < uint64(len(replay)) {
		t.Fatalf("B's link received %d frames since the send, fewer than the %d replayed: the replay did not reach it", d, len(replay))
	}
	if d := b2.E2E["opened"] - b1.E2E["opened"]; d != 1 {
		t.Fatalf("B unsealed %d Packages after the replay and the barrier, want 1 (the barrier)", d)
	}
	t.Logf("replayed %d frames: nothing delivered twice (B: send unsealed %d, after replay+barrier e2e %v, drops %v, node %v)", len(replay), opened, diff(b1.E2E, b2.E2E), diff(b1.Drops, b2.Drops), diff(b1.Node, b2.Node))

	// 3. Tamper. One byte of one full frame from R to B: B refuses the
	// Package (bad_hash) and R reports it in its own name, which the
	// sender takes as one relay's word that one way failed
	// (l3-route/route/signed.go) and tries again. The data arrives intact
	// or the send fails with a typed error: never garbage.
	tamper.Store(1)
	res, err = c.Send(ctx, b.Name, "files", bytes.NewReader(blob), int64(len(blob)), nil)
	if tampered.Load() != 1 {
		t.Fatalf("tampered with %d frames, want 1", tampered.Load())
	}
	var apiErr *control.APIError
	switch {
	case err == nil:
		select {
		case r := <-got:
			if sha256.Sum256(r.Data) != sum {
				t.Fatalf("B delivered %d bytes of a send tampered once, not the data sent", len(r.Data))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the send tampered once was confirmed, B got nothing")
		}
	case !errors.As(err, &apiErr) || apiErr.Code == "":
		t.Fatalf("a send with one byte changed on the way: want the data or a typed error, got %+v %v", res, err)
	}
	t.Logf("send tampered once: %v (then the data intact)", err)
	b2 = stats(t, b)

	// Every full frame from R to B changed: every try fails, the send ends
	// with a typed error, and B delivers and unseals nothing.
	tampered.Store(0)
	tamper.Store(1 << 20)
	res, err = c.Send(ctx, b.Name, "files", bytes.NewReader(blob), int64(len(blob)), nil)
	tamper.Store(0)
	if tampered.Load() == 0 {
		t.Fatal("no full frame went from R to B")
	}
	if !errors.As(err, &apiErr) || apiErr.Code == "" {
		t.Fatalf("a send with every frame changed on the way: want a typed error, got %+v %v", res, err)
	}
	select {
	case r := <-got:
		t.Fatalf("B delivered %d bytes of a tampered send (intact: %v)", len(r.Data), sha256.Sum256(r.Data) == sum)
	default:
	}
	b3 := stats(t, b)
	if d := b3.E2E["opened"] - b2.E2E["opened"]; d != 0 {
		t.Fatalf("B unsealed %d Packages of the tampered send", d)
	}
	t.Logf("tampered send (%d frames changed): typed error %q (%s); B: drops %v, e2e unauthenticated +%d", tampered.Load(), apiErr.Code, apiErr.Message, diff(b2.Drops, b3.Drops), b3.E2E["unauthenticated"]-b2.E2E["unauthenticated"])

	// 4. A relay that recomputes what has no key: one byte of every sealed
	// message to B changed, the Package's hash and the packet's CRC made to
	// match. Only the end-to-end tag can tell. B refuses each; the router's
	// report names the Package by the hash the forger wrote, which the
	// sender does not know, but B's notice inside the e2e session names it
	// by its counter: the sender's send ends with "unauthenticated".
	forge.Store(1 << 20)
	// Small enough that the sealed message, in its path header (route.PathApp),
	// still goes in a single frame.
	small := blob[:16]
	res, err = c.Send(ctx, b.Name, "files", bytes.NewReader(small), int64(len(small)), nil)
	forge.Store(0)
	if forged.Load() == 0 {
		t.Fatal("no sealed message went from R to B")
	}
	if !errors.As(err, &apiErr) || apiErr.Code != "unauthenticated" {
		t.Fatalf("sealed messages changed on the way, hashes recomputed: want the typed error unauthenticated, got %+v %v", res, err)
	}
	select {
	case r := <-got:
		t.Fatalf("B delivered %d bytes of a forged message", len(r.Data))
	default:
	}
	b4 := stats(t, b)
	// Every forged frame is refused by B's end-to-end layer, or is a copy
	// of one it refused: R's hop sends a frame again when B's ack comes
	// late (a loaded machine), the man in the middle forges the copy the
	// same way, and B drops it as a duplicate before it reaches e2e.
	refused, dups := b4.E2E["unauthenticated"]-b3.E2E["unauthenticated"], b4.Drops["duplicate"]-b3.Drops["duplicate"]
	if f := uint64(forged.Load()); refused == 0 || refused > f || refused+dups < f {
		t.Fatalf("B's end-to-end layer refused %d messages as unauthenticated and dropped %d duplicates; %d frames were forged", refused, dups, f)
	}
	if d := b4.E2E["opened"] - b3.E2E["opened"]; d != 0 {
		t.Fatalf("B unsealed %d forged Packages", d)
	}
	t.Logf("%d forged sealed frames: %d refused by B's e2e layer, the rest copies dropped as duplicates; typed error %q (%s)", forged.Load(), refused, apiErr.Code, apiErr.Message)

	// 5. The capture: nothing of the plaintext.
	stopTaps()
	pc, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	if len(pc) < 1<<20 {
		t.Fatalf("the relay's capture holds %d bytes: it missed the send", len(pc))
	}
	for i := range pattern {
		win := bytes.Repeat(pattern, 2)[i : i+16]
		if j := bytes.Index(pc, win); j >= 0 {
			t.Fatalf("the relay's capture holds plaintext %q at byte %d", win, j)
		}
	}
	t.Logf("relay capture: %d bytes, no 16-byte window of the plaintext; whole test %.1f s", len(pc), time.Since(start).Seconds())
}

func stats(t *testing.T, n *Node) control.Stats {
	t.Helper()
	s, err := n.Client().Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.E2E == nil {
		t.Fatalf("%s reports no e2e counters: end-to-end sealing is off", n.Name)
	}
	return s
}

func rxFrames(s control.Stats) uint64 {
	var n uint64
	for _, l := range s.Links {
		n += l.RxFrames
	}
	return n
}

// diff is what grew from a to b.
func diff(a, b map[string]uint64) map[string]uint64 {
	d := map[string]uint64{}
	for k, v := range b {
		if v > a[k] {
			d[k] = v - a[k]
		}
	}
	return d
}

// reseal changes one byte of the sealed data message a single-packet
// ESP-NOW frame carries (in place) and recomputes the Package's hash and
// the packet's checksum, as a compromised relay could: none of them has a
// key. A routed message may travel inside a path header (route.PathApp):
// then the carried Package's hash and the outer one are both recomputed.
// It reports whether the frame was such a message.
func reseal(frame []byte) bool {
	var f espnow.Frame
	if espnow.Parse(frame, &f) != nil {
		return false
	}
	var p packet.Packet
	if p.UnmarshalBinary(f.Body) != nil || p.SeqSize != 0 || p.Flags.Error() || len(p.Body) < packet.PackageOverhead+30 {
		return false
	}
	var pkg packet.Package
	if pkg.UnmarshalBinary(p.Body) != nil {
		return false
	}
	var inner []byte // the sealed Package's bytes within pkg.Blob, when wrapped
	switch pkg.AppID {
	case e2e.AppID:
	case route.PathApp:
		// The carried Package ends the path header's blob; its app_id is
		// 16 bytes no address list can be mistaken for in practice, and
		// its hash confirms the find.
		for o := 10; o+packet.PackageOverhead < len(pkg.Blob); o++ {
			var c packet.Package
			if c.UnmarshalBinary(pkg.Blob[o:]) == nil && c.AppID == e2e.AppID && c.Verify() == nil {
				inner = pkg.Blob[o:]
				break
			}
		}
		if inner == nil {
			return false
		}
	default:
		return false
	}
	target := p.Body
	if inner != nil {
		target = inner
	}
	var sealed packet.Package
	if sealed.UnmarshalBinary(target) != nil || len(sealed.Blob) < 21 || sealed.Blob[0] != 0x03 {
		return false
	}
	sealed.Blob[20] ^= 0x01 // the first bytes of the ciphertext
	h := packet.HalfSHA256(sealed.Blob)
	copy(target[packet.AppIDSize:], h[:])
	if inner != nil {
		h := packet.HalfSHA256(pkg.Blob)
		copy(p.Body[packet.AppIDSize:], h[:])
	}
	out, err := p.AppendSealed(nil)
	if err != nil || len(out) != len(f.Body) {
		return false
	}
	copy(f.Body, out)
	return true
}
