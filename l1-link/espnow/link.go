package espnow

import (
	"bytes"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/minstrel"
)

// MTU is the largest datagram the link carries (with Config.V2,
// MaxBodyV2).
const MTU = MaxBody

// ethPAll is ETH_P_ALL: the socket receives every protocol (802.11 frames
// on a monitor interface have no Ethernet protocol number).
const ethPAll = 0x0003

// DefaultTxQueue is the transmit queue capacity when Config.TxQueue is 0.
const DefaultTxQueue = 16

// readBuf is the receive buffer: an ESP-NOW v1 frame with a generous
// radiotap header is under 400 bytes, and the 1470-byte payloads of
// ESP-NOW v2 still fit (they are then refused by Parse, not cut).
const readBuf = 4096

// readRetry is how long the reader waits after a socket error that is not
// Close (the interface went down, say) before reading again. Real I/O
// timing, on the link's clock.
const readRetry = 100 * time.Millisecond

// Config configures Open.
type Config struct {
	// Interface is the monitor-mode interface, e.g. "mon0" (see
	// docs/espnow-linux.md for setting one up).
	Interface string
	// MAC is the link's own address, the source of every frame it sends
	// and the destination it accepts unicast frames for. Zero means the
	// interface's address. A card in active monitor mode ACKs only frames
	// for its interface address, so keep the two equal on real radios.
	MAC MAC
	// Channel is the Wi-Fi channel to tune to (the reference boards use
	// 14); 0 leaves the interface's channel as it is.
	Channel int
	// SetChannel tunes the interface; nil means SetChannelIW. Tests on
	// interfaces without a radio (veth) leave Channel 0 instead.
	SetChannel func(iface string, channel int) error
	// Rate is the transmit PHY rate; 0 means 1 Mbit/s (802.11b, long
	// preamble), what ESP32s use for ESP-NOW unless told otherwise. On
	// channel 14 only the 802.11b rates are allowed.
	Rate Rate
	// NoAck asks the driver not to wait for ACKs (nor retry) on unicast
	// frames. Without active monitor mode nobody ACKs for us anyway, but
	// the boards do ACK our unicast frames; leave it false to let the
	// driver retry when a board's ACK is missing.
	NoAck bool
	// ActiveMonitor declares that the interface was put in active monitor
	// mode (`iw dev mon0 set monitor active`, interface down, on drivers
	// that support it), so the card ACKs unicast frames addressed to its
	// MAC and boards stop retrying them. Open does not change the mode; the
	// flag adds link.CapUnicastAck to the link's capabilities.
	ActiveMonitor bool
	// V2 lets the link send ESP-NOW v2 frames: datagrams of up to
	// MaxBodyV2 bytes (Info.MTU). Send more than MaxBody bytes only to
	// peers that said they accept them: v1 devices, the reference boards
	// among them, drop such frames.
	V2 bool
	// Adapt makes the link choose the rate of each unicast frame per
	// destination from the card's transmit status reports (package
	// minstrel), starting from Rate; broadcasts, and every frame until
	// the card is seen to report status, go at Rate. On channel 14 it
	// keeps to the 802.11b rates.
	Adapt bool
	// Clock is the clock whose loop the link calls its Dispatcher on.
	Clock clock.Clock
	// TxQueue is the transmit queue capacity in datagrams; 0 means
	// DefaultTxQueue.
	TxQueue int
	// RxBacklog bounds the received frames waiting for the clock's loop
	// (0: link.DefaultRxBacklog); past it frames are dropped and counted.
	RxBacklog int
	// StatusWait is how long a sent datagram waits for the card's transmit
	// status report before it completes without one (0: DefaultStatusWait).
	StatusWait time.Duration
}

// SetChannelIW tunes iface to a channel with `iw dev IFACE set channel N`.
func SetChannelIW(iface string, channel int) error {
	out, err := exec.Command("iw", "dev", iface, "set", "channel", strconv.Itoa(channel)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("espnow: iw dev %s set channel %d: %w: %s", iface, channel, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// conn is the part of *packet.Conn the link uses; tests substitute a fake.
type conn interface {
	ReadFrom(b []byte) (int, net.Addr, error)
	WriteTo(b []byte, addr net.Addr) (int, error)
	Close() error
}

// Link is an ESP-NOW link on a monitor-mode interface. It implements
// link.Link, link.AirtimeEstimator and capture's Framer.
//
// Transmit completions: where the card reports transmit status (mac80211
// hands every frame we send back to monitor interfaces with radiotap TX
// flags once the card is done with it), a datagram's TxDone waits for that
// report, and a unicast the receiver never acknowledged completes with
// link.ErrNoAck. Until the first report is seen, and on cards that send
// none, a datagram completes when the socket took it.
type Link struct {
	link.Base
	port  *link.Port
	info  link.Info
	mac   MAC
	txopt TxOptions
	ch    int
	clk   clock.Clock
	conn  conn

	echoes  atomic.Uint64
	readErr atomic.Uint64
	status  txStatus

	mu     sync.Mutex // guards the send side of txq against Close
	closed bool

	txq  chan txItem
	free chan []byte
	done chan struct{}
	wg   sync.WaitGroup
	rng  *rand.Rand // owned by the writer goroutine

	rcMu sync.Mutex // the writer chooses, the reader reports
	rc   *minstrel.Minstrel
}

type txItem struct {
	dst MAC
	buf []byte // from free, cap MTU
	n   int
	tag link.Tag
	// rate, when set, is the rate of a sample's fallback: the datagram
	// again, all its attempts at the best rate.
	rate Rate
}

// Open opens the link on cfg.Interface: tunes the channel if asked, opens an
// AF_PACKET raw socket bound to the interface with the ESP-NOW filter
// attached before bind (so no other frame is ever queued on it), and starts
// the reader and writer goroutines. It needs CAP_NET_RAW (and CAP_NET_ADMIN
// for iw).
func Open(cfg Config) (*Link, error) {
	if cfg.Interface == "" {
		return nil, errors.New("espnow: no interface given")
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("espnow: %w", err)
	}
	if cfg.MAC == (MAC{}) {
		if len(ifi.HardwareAddr) != 6 {
			return nil, fmt.Errorf("espnow: interface %s has no 6-byte MAC address; set Config.MAC", cfg.Interface)
		}
		copy(cfg.MAC[:], ifi.HardwareAddr)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Channel != 0 {
		set := cfg.SetChannel
		if set == nil {
			set = SetChannelIW
		}
		if err := set(cfg.Interface, cfg.Channel); err != nil {
			return nil, err
		}
	}
	prog, err := bpf.Assemble(Filter())
	if err != nil {
		return nil, fmt.Errorf("espnow: filter: %w", err)
	}
	c, err := packet.Listen(ifi, packet.Raw, ethPAll, &packet.Config{Filter: prog})
	if err != nil {
		return nil, fmt.Errorf("espnow: %s: %w", cfg.Interface, err)
	}
	return newLink(cfg, c), nil
}

func (cfg *Config) check() error {
	if cfg.Clock == nil {
		return errors.New("espnow: no clock")
	}
	if cfg.Rate == 0 {
		cfg.Rate = Rate1M
	}
	if !cfg.Rate.Valid() {
		return fmt.Errorf("%w: %d kbit/s", ErrRate, cfg.Rate)
	}
	if cfg.TxQueue == 0 {
		cfg.TxQueue = DefaultTxQueue
	}
	if cfg.StatusWait <= 0 {
		cfg.StatusWait = DefaultStatusWait
	}
	if cfg.TxQueue < 0 {
		return fmt.Errorf("espnow: transmit queue %d", cfg.TxQueue)
	}
	if cfg.Channel < 0 || cfg.Channel > 233 {
		return fmt.Errorf("espnow: channel %d", cfg.Channel)
	}
	if cfg.Channel == 14 && !cfg.Rate.DSSS() {
		// Channel 14 (Japan) allows 802.11b only: OFDM there is illegal
		// and neither the regulatory database nor the boards allow it.
		return fmt.Errorf("%w: channel 14 allows only 802.11b rates (1, 2, 5.5, 11 Mbit/s), not %v", ErrRate, cfg.Rate)
	}
	if cfg.MAC[0]&1 != 0 {
		return fmt.Errorf("espnow: own address %v is a group address", cfg.MAC)
	}
	return nil
}

// newLink starts a link on an open socket; cfg is checked.
func newLink(cfg Config, c conn) *Link {
	caps := link.CapBroadcast
	if cfg.ActiveMonitor {
		caps |= link.CapUnicastAck
	}
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails on Linux; zero seed would still work
	port := link.NewPort(cfg.Clock, cfg.RxBacklog)
	mtu, schemas := MTU, link.SchemasESPNOW
	if cfg.V2 {
		mtu, schemas = MaxBodyV2, link.SchemasESPNOWV2
	}
	l := &Link{
		Base: port.Base(), port: port,
		info: link.Info{
			Name: "espnow", Addr: cfg.MAC, MTU: mtu, Bitrate: Bitrate,
			Schemas: schemas, Caps: caps, TxQueue: cfg.TxQueue,
		},
		mac:   cfg.MAC,
		txopt: TxOptions{Rate: cfg.Rate, NoAck: cfg.NoAck},
		ch:    cfg.Channel,
		clk:   cfg.Clock,
		conn:  c,
		txq:   make(chan txItem, cfg.TxQueue),
		free:  make(chan []byte, cfg.TxQueue),
		done:  make(chan struct{}),
		rng:   rand.New(rand.NewChaCha8(seed)),
	}
	l.status.pending = map[statusKey]*pendingTx{}
	l.status.wait = cfg.StatusWait
	for range cfg.TxQueue {
		l.free <- make([]byte, mtu)
	}
	if cfg.Adapt {
		rates := []int{1000, 2000, 5500, 6000, 9000, 11000, 12000, 18000, 24000, 36000, 48000, 54000}
		if cfg.Channel == 14 {
			rates = []int{1000, 2000, 5500, 11000}
		}
		l.rc = minstrel.New(minstrel.Config{
			Rates: rates, Start: int(cfg.Rate), Seed: uint64(l.rng.Uint64()),
			Cost: func(r int) time.Duration { return ExchangeTime(MaxBody, Rate(r)) },
		})
	}
	l.wg.Add(2)
	go l.readLoop()
	go l.writeLoop()
	return l
}

// Info describes the link.
func (l *Link) Info() link.Info { return l.info }

// Send queues data for dst (a MAC, or link.Broadcast).
func (l *Link) Send(dst link.Addr, data []byte, tag link.Tag) error {
	to, bcast, err := link.Dest[MAC](dst)
	if err != nil {
		return err
	}
	if bcast {
		to = BroadcastMAC
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return net.ErrClosed
	}
	if len(data) > l.info.MTU {
		l.port.Drop(link.DropOversize)
		return link.ErrTooBig
	}
	var buf []byte
	select {
	case buf = <-l.free:
	default:
		l.port.Drop(link.DropQueueFull)
		return link.ErrBusy
	}
	n := copy(buf, data)
	l.txq <- txItem{dst: to, buf: buf, n: n, tag: tag} // never blocks: one slot per buffer
	return nil
}

// Echoes returns how many frames with the link's own source address were
// received. On a mac80211 monitor interface every frame the link sends
// comes back once (the TX status report, which completes the datagram);
// anything more means another station uses our MAC.
func (l *Link) Echoes() uint64 { return l.echoes.Load() }

// ReadErrors returns how many socket reads failed (while the interface was
// down, say).
func (l *Link) ReadErrors() uint64 { return l.readErr.Load() }

// Airtime is how long a datagram of n bytes occupies the air at the
// configured rate.
func (l *Link) Airtime(n int) time.Duration { return Airtime(n, int(l.txopt.Rate)) }

// CaptureFrame builds the radiotap frame for payload from src to dst as the
// link would send it (with zero random bytes and sequence number, which
// the capture cannot know), for pcap captures.
func (l *Link) CaptureFrame(dst, src link.Addr, payload []byte) []byte {
	f := Frame{Dst: macOf(dst), Src: macOf(src), Body: payload}
	b, err := AppendFrame(nil, &f, l.txopt)
	if err != nil {
		return nil
	}
	return b
}

// CaptureLinkType is LINKTYPE_IEEE802_11_RADIO: captures hold radiotap +
// 802.11 frames.
func (l *Link) CaptureLinkType() layers.LinkType { return layers.LinkTypeIEEE80211Radio }

func macOf(a link.Addr) MAC {
	if m, ok := a.(MAC); ok {
		return m
	}
	if a != nil && a.IsBroadcast() {
		return BroadcastMAC
	}
	return MAC{}
}

// Close stops the goroutines and closes the socket. Datagrams still queued
// are answered with TxDone(net.ErrClosed); those sent and still waiting for
// their status report with TxDone(nil).
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return net.ErrClosed
	}
	l.closed = true
	l.port.SetClosed()
	close(l.done)
	l.mu.Unlock()
	err := l.conn.Close()
	l.wg.Wait()
	// A sample's fallback the reader queued as the writer left.
	for len(l.txq) > 0 {
		it := <-l.txq
		l.port.Complete(it.tag, net.ErrClosed)
	}
	l.status.drain(l.port)
	return err
}

func (l *Link) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *Link) writeLoop() {
	defer l.wg.Done()
	buf := make([]byte, 0, MaxFrameLenV2)
	to := &packet.Addr{HardwareAddr: net.HardwareAddr(BroadcastMAC[:])} // unused by SOCK_RAW, required by WriteTo
	var seq uint16
	for {
		select {
		case <-l.done:
			for {
				select {
				case it := <-l.txq:
					l.free <- it.buf
					l.port.Complete(it.tag, net.ErrClosed)
				default:
					return
				}
			}
		case it := <-l.txq:
			f := Frame{Dst: it.dst, Src: l.mac, Seq: seq, Body: it.buf[:it.n]}
			seq = (seq + 1) & 0xfff
			binary.LittleEndian.PutUint32(f.Random[:], l.rng.Uint32())
			key := statusKey{seq: f.Seq, random: f.Random}
			acked := it.dst != BroadcastMAC && !l.txopt.NoAck
			opt, p := l.txopt, &pendingTx{tag: it.tag, acked: acked}
			if acked && l.rc != nil && l.status.seen.Load() {
				l.chooseRate(&it, &opt, p)
			}
			// Waiting for the status report is arranged before the write:
			// the report may come back before WriteTo returns.
			waits := l.status.await(key, p, l)
			// A sample's buffer belongs to its pending report from here (the
			// report may come before WriteTo returns).
			kept := waits && p.buf != nil
			frame, err := AppendFrame(buf[:0], &f, opt)
			if err == nil {
				_, err = l.conn.WriteTo(frame, to)
			}
			n := it.n
			if !kept {
				l.free <- it.buf
			}
			if err != nil {
				if waits && l.status.forget(key) && kept {
					l.free <- it.buf
				}
				if l.isClosed() {
					err = net.ErrClosed
				} else {
					l.port.Drop(link.DropTxError)
				}
				l.port.Complete(it.tag, err)
				continue
			}
			l.port.Tx(n, Airtime(n, int(opt.Rate)))
			if !waits {
				l.port.Complete(it.tag, nil)
			}
		}
	}
}

func (l *Link) readLoop() {
	defer l.wg.Done()
	buf := make([]byte, readBuf)
	var f Frame
	var dd dedup
	for {
		n, _, err := l.conn.ReadFrom(buf)
		if err != nil {
			if l.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			l.readErr.Add(1)
			wake := make(chan struct{})
			t := l.clk.AfterFunc(readRetry, func() { close(wake) })
			select {
			case <-l.done:
				t.Stop()
				return
			case <-wake:
			}
			continue
		}
		l.receive(buf[:n], &f, &dd)
	}
}

// receive handles one frame from the socket, on the reader goroutine.
func (l *Link) receive(b []byte, f *Frame, dd *dedup) {
	if err := Parse(b, f); err != nil {
		l.port.Drop(link.DropMalformed)
		return
	}
	if f.Src == l.mac {
		l.echoes.Add(1)
		if f.TxStatus {
			l.status.report(statusKey{seq: f.Seq, random: f.Random}, f, l)
		}
		return
	}
	bcast := f.Dst == BroadcastMAC
	if !bcast && f.Dst != l.mac {
		l.port.Drop(link.DropNotForUs)
		return
	}
	if dd.seen(keyOf(f)) {
		l.port.Drop(link.DropDuplicate)
		return
	}
	lf := link.Frame{
		Src: f.Src, Broadcast: bcast, Data: bytes.Clone(f.Body), Time: l.clk.Now(),
		HasSignal: f.HasSignal, RSSI: f.RSSI, Channel: f.Channel,
	}
	if !f.HasChannel {
		lf.Channel = l.ch
	}
	l.port.HandUp(lf)
}

// chooseRate sets the rate of unicast datagram it from the rate control
// (or, for a sample's fallback, the rate it carries), and notes in p what
// the status report must tell it. A sample keeps its buffer until its
// report: if the attempt at the sampled rate fails, the datagram goes
// again at the best rate before it completes.
func (l *Link) chooseRate(it *txItem, opt *TxOptions, p *pendingTx) {
	p.dst = it.dst
	if it.rate != 0 {
		opt.Rate, p.rate = it.rate, it.rate
		return
	}
	l.rcMu.Lock()
	first, n, then := l.rc.Rate(it.dst)
	l.rcMu.Unlock()
	opt.Rate, p.rate = Rate(first), Rate(first)
	if n > 0 {
		opt.Tries, p.tries, p.then = n, n, Rate(then)
		p.buf, p.n = it.buf, it.n
	}
}

// Rate is the rate the link sends unicast frames to dst at now (with
// Config.Adapt, its rate control's choice; else Config.Rate).
func (l *Link) Rate(dst MAC) Rate {
	if l.rc == nil {
		return l.txopt.Rate
	}
	l.rcMu.Lock()
	defer l.rcMu.Unlock()
	return Rate(l.rc.Best(dst))
}
