//go:build linux

package ble

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"tinygo.org/x/bluetooth"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// BlueZConfig configures the BlueZ transport.
type BlueZConfig struct {
	// Adapter is the BlueZ adapter id (empty: "hci0").
	Adapter string
	// Central and Peripheral choose the roles; both false means both.
	Central, Peripheral bool
	// Name is the local name advertised (empty: "mycelium").
	Name string
	// PeripheralMTU is the ATT MTU assumed for a central connected to us:
	// BlueZ knows it, but tinygo v0.16.0 does not pass it on (0:
	// DefaultMinMTU, i.e. the central is trusted to have negotiated enough;
	// Linux and Android centrals negotiate 517).
	PeripheralMTU int
	// Poll is how often a central connection's liveness is checked: tinygo
	// reports no remote disconnect to a central on Linux, so the transport
	// asks BlueZ (0: one second). Wall-clock by nature.
	Poll time.Duration
}

// BlueZ is the Transport for Linux: tinygo.org/x/bluetooth over BlueZ's
// D-Bus API.
//
// What tinygo v0.16.0 allows on Linux shapes it:
//   - As central it is complete: scan for ServiceUUID, connect, discover
//     both characteristics, subscribe to notifications, write without
//     response, read the negotiated MTU. Disconnects are found by polling.
//   - As peripheral BlueZ does not say which central wrote a value, and a
//     notification goes to every subscribed central. So the peripheral role
//     serves one central at a time (a second is disconnected): that keeps
//     the source of every packet and the destination of every notification
//     exact. Two Linux nodes pair up fine (one is central of the pair); a
//     phone can connect to a node that has no other central.
type BlueZ struct {
	cfg     BlueZConfig
	adapter *bluetooth.Adapter
	addr    Addr

	h       Handler
	pktChar bluetooth.Characteristic // our service's characteristics (peripheral)
	bcChar  bluetooth.Characteristic
	svc     *bluetooth.Service
	adv     *bluetooth.Advertisement
	echo    atomic.Pointer[byte] // the notification being sent: tinygo echoes it to WriteEvent

	mu      sync.Mutex
	closed  bool
	dialing map[Addr]bool
	central map[Addr]*bluezConn // connections we dialed
	served  *bluezConn          // the central connected to us
	stop    chan struct{}
}

// NewBlueZ enables the adapter and reads its address. Where there is no
// Bluetooth (no system bus, no BlueZ, no adapter) it returns an error; a
// system bus that does not answer is bounded by ctx. tinygo's calls cannot
// be cancelled, so on ctx expiry a goroutine is left waiting for D-Bus.
func NewBlueZ(ctx context.Context, cfg BlueZConfig) (*BlueZ, error) {
	if cfg.Adapter == "" {
		cfg.Adapter = "hci0"
	}
	if !cfg.Central && !cfg.Peripheral {
		cfg.Central, cfg.Peripheral = true, true
	}
	if cfg.Name == "" {
		cfg.Name = "mycelium"
	}
	if cfg.PeripheralMTU == 0 {
		cfg.PeripheralMTU = DefaultMinMTU
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	b := &BlueZ{
		cfg: cfg, adapter: bluetooth.NewAdapter(cfg.Adapter),
		dialing: map[Addr]bool{}, central: map[Addr]*bluezConn{}, stop: make(chan struct{}),
	}
	err := within(ctx, func() error {
		if err := b.adapter.Enable(); err != nil {
			return err
		}
		mac, err := b.adapter.Address()
		if err != nil {
			return err
		}
		b.addr = fromMAC(mac.MAC)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ble: bluetooth adapter %s: %w", cfg.Adapter, err)
	}
	return b, nil
}

// within runs f, giving up when ctx is done (f then finishes on its own).
func within(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer from BlueZ: %w", ctx.Err())
	}
}

// fromMAC converts tinygo's little-endian MAC to the order addresses are
// written in.
func fromMAC(m bluetooth.MAC) Addr { return Addr(m.Address()) }

func toAddress(a Addr) bluetooth.Address {
	var m bluetooth.MAC
	for i := range 6 {
		m[i] = a[5-i]
	}
	return bluetooth.Address{MACAddress: bluetooth.MACAddress{MAC: m}}
}

func tinyUUID(u UUID) bluetooth.UUID { return bluetooth.NewUUID(u) }

// Addr returns the adapter's address. With LE privacy on, peers see a
// resolvable random address instead; the mesh then knows us by that.
func (b *BlueZ) Addr() Addr { return b.addr }

// Start registers the GATT service and advertises it (peripheral) and scans
// (central).
func (b *BlueZ) Start(h Handler) error {
	b.h = h
	if b.cfg.Peripheral {
		// Before advertising: tinygo only watches connections if a
		// handler is set when the advertisement starts.
		b.adapter.SetConnectHandler(b.connectEvent)
		perms := bluetooth.CharacteristicWriteWithoutResponsePermission | bluetooth.CharacteristicNotifyPermission
		b.svc = &bluetooth.Service{
			UUID: tinyUUID(ServiceUUID),
			Characteristics: []bluetooth.CharacteristicConfig{
				{Handle: &b.pktChar, UUID: tinyUUID(PacketUUID), Flags: perms, WriteEvent: b.writeEvent(false)},
				{Handle: &b.bcChar, UUID: tinyUUID(BroadcastUUID), Flags: perms, WriteEvent: b.writeEvent(true)},
			},
		}
		if err := b.adapter.AddService(b.svc); err != nil {
			return fmt.Errorf("register GATT service: %w", err)
		}
		b.adv = b.adapter.DefaultAdvertisement()
		if err := b.adv.Configure(bluetooth.AdvertisementOptions{
			LocalName: b.cfg.Name, ServiceUUIDs: []bluetooth.UUID{tinyUUID(ServiceUUID)},
		}); err != nil {
			return fmt.Errorf("configure advertisement: %w", err)
		}
		if err := b.adv.Start(); err != nil {
			return fmt.Errorf("advertise: %w", err)
		}
	}
	if b.cfg.Central {
		go b.scan()
	}
	return nil
}

// scan reports peers advertising the mesh service until Close, restarting
// the scan if BlueZ stops it (adapter powered off and on, say).
func (b *BlueZ) scan() {
	svc := tinyUUID(ServiceUUID)
	for {
		err := busGone(func() error {
			return b.adapter.Scan(func(a *bluetooth.Adapter, r bluetooth.ScanResult) {
				defer ours() // a panic of our handler's is not the bus's
				select {
				case <-b.stop:
					a.StopScan() // Close may have come before the scan started
					return
				default:
				}
				if r.AdvertisementPayload != nil && r.HasServiceUUID(svc) {
					b.h.Found(fromMAC(r.Address.MAC))
				}
			})
		})
		_ = err // nowhere to report it; the link sees no Found and waits
		select {
		case <-b.stop:
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// Dial connects to addr in a goroutine: tinygo's Connect blocks (without a
// limit of its own; the link gives up on it after its DialTimeout).
func (b *BlueZ) Dial(addr Addr) {
	b.mu.Lock()
	if b.closed || b.dialing[addr] || b.central[addr] != nil {
		b.mu.Unlock()
		go b.h.DialFailed(addr, errors.New("ble: already connecting or connected"))
		return
	}
	b.dialing[addr] = true
	b.mu.Unlock()
	go b.dial(addr)
}

func (b *BlueZ) dial(addr Addr) {
	c, err := b.connect(addr)
	b.mu.Lock()
	delete(b.dialing, addr)
	if err == nil && b.closed {
		err = net.ErrClosed
	}
	if err == nil {
		b.central[addr] = c
	}
	b.mu.Unlock()
	if err != nil {
		if c != nil {
			c.dev.Disconnect()
		}
		b.h.DialFailed(addr, err)
		return
	}
	b.h.Connected(c)
	if err := c.enableNotify(); err != nil {
		c.fail(err)
		return
	}
	go c.writer()
	go c.watch(b.cfg.Poll)
}

// enableNotify turns the peer's notifications on, unless the connection
// has ended meanwhile (fail, under the same lock, turns them off).
func (c *bluezConn) enableNotify() error {
	c.notify.Lock()
	defer c.notify.Unlock()
	for _, ch := range []struct {
		c     *bluetooth.DeviceCharacteristic
		bcast bool
	}{{&c.pkt, false}, {&c.bc, true}} {
		select {
		case <-c.gone:
			return net.ErrClosed
		default:
		}
		bcast := ch.bcast
		if err := ch.c.EnableNotifications(func(p []byte) { c.b.h.Received(c, p, bcast) }); err != nil {
			return fmt.Errorf("enable notifications: %w", err)
		}
	}
	return nil
}

// connect does the blocking part of a dial.
func (b *BlueZ) connect(addr Addr) (*bluezConn, error) {
	dev, err := b.adapter.Connect(toAddress(addr), bluetooth.ConnectionParams{})
	if err != nil {
		return nil, err
	}
	c := newConn(b, addr, true)
	c.dev = dev
	svcs, err := dev.DiscoverServices([]bluetooth.UUID{tinyUUID(ServiceUUID)})
	if err != nil {
		return c, fmt.Errorf("discover mesh service: %w", err)
	}
	chars, err := svcs[0].DiscoverCharacteristics([]bluetooth.UUID{tinyUUID(PacketUUID), tinyUUID(BroadcastUUID)})
	if err != nil {
		return c, fmt.Errorf("discover mesh characteristics: %w", err)
	}
	c.pkt, c.bc = chars[0], chars[1]
	mtu, err := c.pkt.GetMTU()
	if err != nil {
		return c, fmt.Errorf("read MTU: %w", err)
	}
	c.mtu = int(mtu)
	return c, nil
}

// connectEvent is tinygo's connect handler. It fires for every device whose
// connection state changes, the ones we dialed included.
func (b *BlueZ) connectEvent(dev bluetooth.Device, connected bool) {
	addr := fromMAC(dev.Address.MAC)
	b.mu.Lock()
	if b.dialing[addr] {
		b.mu.Unlock()
		return
	}
	if c := b.central[addr]; c != nil {
		b.mu.Unlock()
		if !connected {
			c.fail(errors.New("ble: peer disconnected"))
		}
		return
	}
	if !connected {
		c := b.served
		if c != nil && c.peer == addr {
			b.served = nil
		} else {
			c = nil
		}
		b.mu.Unlock()
		if c != nil {
			c.fail(errors.New("ble: central disconnected"))
		}
		return
	}
	if b.closed || b.served != nil {
		// One central at a time: see the type's documentation.
		b.mu.Unlock()
		dev.Disconnect()
		return
	}
	c := newConn(b, addr, false)
	c.dev = dev
	c.mtu = b.cfg.PeripheralMTU
	b.served = c
	b.mu.Unlock()
	b.h.Connected(c)
	go c.writer()
}

// writeEvent receives a central's write on one of our characteristics.
func (b *BlueZ) writeEvent(bcast bool) bluetooth.WriteEvent {
	return func(_ bluetooth.Connection, offset int, value []byte) {
		if len(value) > 0 && b.echo.Load() == &value[0] {
			return // our own notification, echoed by tinygo
		}
		b.mu.Lock()
		c := b.served
		b.mu.Unlock()
		if c == nil || offset != 0 {
			// A write we cannot attribute, or a long write (we never
			// make one): no packet of ours.
			return
		}
		b.h.Received(c, value, bcast)
	}
}

// Close stops scanning and advertising and disconnects everything.
func (b *BlueZ) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return net.ErrClosed
	}
	b.closed = true
	close(b.stop)
	conns := make([]*bluezConn, 0, len(b.central)+1)
	for _, c := range b.central {
		conns = append(conns, c)
	}
	if b.served != nil {
		conns = append(conns, b.served)
	}
	b.mu.Unlock()
	if b.cfg.Central {
		b.adapter.StopScan()
	}
	var err error
	if b.adv != nil {
		err = b.adv.Stop()
	}
	if b.svc != nil {
		err = errors.Join(err, b.adapter.RemoveService(b.svc))
	}
	for _, c := range conns {
		c.Close()
	}
	// Each connection's teardown (BlueZ's Disconnect, notifications off,
	// the handler told) ends before Close returns: the caller may close
	// the bus next, and nothing of ours may still be talking on it.
	for _, c := range conns {
		<-c.ended
	}
	return err
}

// bluezConn is one connection, in either role.
type bluezConn struct {
	b       *BlueZ
	peer    Addr
	central bool
	mtu     int
	dev     bluetooth.Device
	pkt, bc bluetooth.DeviceCharacteristic // the peer's (central role)
	q       chan bluezTx
	gone    chan struct{}
	ended   chan struct{} // closed once fail has run to its end (BlueZ.Close waits for it)
	once    sync.Once
	// notify orders the calls that turn pkt's and bc's notifications on
	// (dial) and off (fail): tinygo's EnableNotifications keeps its state
	// in the characteristic unguarded, and a connection may end (Close,
	// the peer gone) while dial still turns them on.
	notify sync.Mutex
}

type bluezTx struct {
	p     []byte
	bcast bool
	done  func(error)
}

// connQueue holds writes waiting for D-Bus; the link never has more than
// its TxQueue in flight, so this only overflows if a link is misconfigured.
const connQueue = 256

func newConn(b *BlueZ, peer Addr, central bool) *bluezConn {
	return &bluezConn{b: b, peer: peer, central: central, q: make(chan bluezTx, connQueue), gone: make(chan struct{}), ended: make(chan struct{})}
}

func (c *bluezConn) Peer() Addr    { return c.peer }
func (c *bluezConn) Central() bool { return c.central }
func (c *bluezConn) MTU() int      { return c.mtu }

// Send queues p for the connection's writer goroutine.
func (c *bluezConn) Send(p []byte, bcast bool, done func(error)) {
	select {
	case <-c.gone:
		done(ErrNotConnected)
		return
	default:
	}
	select {
	case c.q <- bluezTx{p: p, bcast: bcast, done: done}:
	default:
		done(link.ErrBusy)
	}
}

// writer performs the writes (blocking D-Bus calls), in order.
func (c *bluezConn) writer() {
	for {
		select {
		case <-c.gone:
			for {
				select {
				case tx := <-c.q:
					tx.done(ErrNotConnected)
				default:
					return
				}
			}
		case tx := <-c.q:
			tx.done(c.write(tx.p, tx.bcast))
		}
	}
}

func (c *bluezConn) write(p []byte, bcast bool) error {
	if len(p) == 0 {
		return nil
	}
	if c.central {
		ch := &c.pkt
		if bcast {
			ch = &c.bc
		}
		_, err := ch.WriteWithoutResponse(p)
		return err
	}
	ch := &c.b.pktChar
	if bcast {
		ch = &c.b.bcChar
	}
	// tinygo hands a local Write to our own WriteEvent first; mark the
	// buffer so writeEvent can tell the echo from a central's write.
	c.b.echo.Store(&p[0])
	_, err := ch.Write(p)
	c.b.echo.Store(nil)
	return err
}

// watch polls BlueZ for the end of a central connection.
func (c *bluezConn) watch(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.gone:
			return
		case <-t.C:
			if ok, err := c.dev.Connected(); err != nil || !ok {
				c.fail(fmt.Errorf("ble: connection to %v lost", c.peer))
				return
			}
		}
	}
}

// fail ends the connection once and tells the handler.
func (c *bluezConn) fail(err error) {
	c.once.Do(func() {
		close(c.gone)
		b := c.b
		b.mu.Lock()
		if c.central && b.central[c.peer] == c {
			delete(b.central, c.peer)
		}
		if b.served == c {
			b.served = nil
		}
		b.mu.Unlock()
		if c.central {
			c.notify.Lock()
			stopNotify(&c.pkt)
			stopNotify(&c.bc)
			c.notify.Unlock()
		}
		b.h.Disconnected(c, err)
		close(c.ended)
	})
}

// stopNotify turns a characteristic's notifications off (its error is
// nowhere to go: the connection is ending).
func stopNotify(ch *bluetooth.DeviceCharacteristic) {
	_ = busGone(func() error { return ch.EnableNotifications(nil) })
}

// busGone runs a call into tinygo's BlueZ code and turns the runtime
// panics it raises when the system bus connection has ended into an
// error. godbus closes every signal channel when its connection ends (the
// system bus restarted, or went away under a closing link), and tinygo
// v0.16.0 does not expect it: turning notifications off closes the
// channel a second time, and a scan reads the closed channel's nil signal
// (both seen: the first in CI, where a test's bus is killed as it ends).
// A panic of another kind is not ours to swallow, nor one of our own code
// called back from tinygo's (ours).
func busGone(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(runtime.Error); !ok {
				panic(r)
			}
			err = fmt.Errorf("ble: BlueZ call failed, the system bus gone: %v", r)
		}
	}()
	return f()
}

// ownPanic carries a panic raised in our code that tinygo called back,
// past busGone.
type ownPanic struct{ v any }

// ours, deferred in a callback we hand tinygo, marks a panic there as
// ours, so that busGone does not take it for the bus's.
func ours() {
	if r := recover(); r != nil {
		panic(ownPanic{r})
	}
}

// Close disconnects.
func (c *bluezConn) Close() {
	go func() {
		c.dev.Disconnect()
		c.fail(errors.New("ble: disconnected by us"))
	}()
}
