// Package bletest is an in-memory Bluetooth LE "air" for testing the BLE
// link without radios: Radios (ble.Transports) advertise, scan, connect as
// central or peripheral, negotiate an ATT MTU per connection (the smaller of
// the two sides' offers), carry writes and notifications in order with a
// small delay, and can be disconnected or kept apart at will. Everything
// happens on a clock.Clock, so under clock.Virtual a run is deterministic and
// needs no goroutines.
package bletest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/ble"
	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// Timing of the air.
const (
	// DefaultAdvInterval is how often a peripheral's advertisement is seen.
	DefaultAdvInterval = 100 * time.Millisecond
	// ConnectDelay is how long a connection attempt takes.
	ConnectDelay = 5 * time.Millisecond
	// PacketDelay is the fixed part of a packet's trip (about one
	// connection interval); each byte adds 8 µs, as on the LE 1M PHY.
	PacketDelay = 1 * time.Millisecond
)

// Errors the air reports.
var (
	ErrUnreachable = errors.New("bletest: peer not in range")
	ErrBusy        = errors.New("bletest: peripheral accepts no more centrals")
	ErrClosed      = errors.New("bletest: radio closed")
)

// Air connects Radios.
type Air struct {
	clk     clock.Clock
	mu      sync.Mutex
	radios  map[ble.Addr]*Radio
	conns   []*conn
	blocked map[[2]ble.Addr]bool
}

// NewAir returns an empty air whose events happen on clk.
func NewAir(clk clock.Clock) *Air {
	return &Air{clk: clk, radios: map[ble.Addr]*Radio{}, blocked: map[[2]ble.Addr]bool{}}
}

// RadioConfig describes one radio.
type RadioConfig struct {
	Addr       ble.Addr
	Central    bool // scans and dials
	Peripheral bool // advertises and accepts centrals
	// MTU is the ATT MTU this side offers (0: ble.MaxATTMTU); a
	// connection gets the smaller of its two sides' offers.
	MTU int
	// MaxCentrals limits how many centrals a peripheral serves at once
	// (0: no limit).
	MaxCentrals int
	// AdvInterval is the advertising period (0: DefaultAdvInterval).
	AdvInterval time.Duration
}

// Radio is one device on the air; it implements ble.Transport.
type Radio struct {
	air     *Air
	cfg     RadioConfig
	h       ble.Handler
	started bool
	closed  bool
	adv     clock.Timer
}

var _ ble.Transport = (*Radio)(nil)

// NewRadio adds a radio to the air.
func (a *Air) NewRadio(cfg RadioConfig) *Radio {
	if cfg.MTU == 0 {
		cfg.MTU = ble.MaxATTMTU
	}
	if cfg.AdvInterval <= 0 {
		cfg.AdvInterval = DefaultAdvInterval
	}
	r := &Radio{air: a, cfg: cfg}
	a.mu.Lock()
	a.radios[cfg.Addr] = r
	a.mu.Unlock()
	return r
}

// Addr returns the radio's address.
func (r *Radio) Addr() ble.Addr { return r.cfg.Addr }

// Start begins advertising (peripheral) and scanning (central).
func (r *Radio) Start(h ble.Handler) error {
	a := r.air
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.started {
		return errors.New("bletest: already started")
	}
	r.h, r.started = h, true
	if r.cfg.Peripheral {
		r.adv = a.clk.AfterFunc(0, r.advertise)
	}
	return nil
}

// advertise shows r to every scanning central in range, then repeats.
func (r *Radio) advertise() {
	a := r.air
	a.mu.Lock()
	if r.closed {
		a.mu.Unlock()
		return
	}
	var hs []ble.Handler
	for _, o := range a.sortedRadios() {
		if o != r && o.started && !o.closed && o.cfg.Central && !a.isBlocked(r.cfg.Addr, o.cfg.Addr) {
			hs = append(hs, o.h)
		}
	}
	r.adv = a.clk.AfterFunc(r.cfg.AdvInterval, r.advertise)
	a.mu.Unlock()
	for _, h := range hs {
		h.Found(r.cfg.Addr)
	}
}

func (a *Air) sortedRadios() []*Radio {
	rs := make([]*Radio, 0, len(a.radios))
	for _, r := range a.radios {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(x, y *Radio) int {
		return slices.Compare(x.cfg.Addr[:], y.cfg.Addr[:])
	})
	return rs
}

// Dial connects r, as central, to the peripheral at addr after ConnectDelay.
func (r *Radio) Dial(addr ble.Addr) {
	a := r.air
	a.clk.AfterFunc(ConnectDelay, func() {
		a.mu.Lock()
		p := a.radios[addr]
		var err error
		switch {
		case r.closed:
			a.mu.Unlock()
			return
		case p == nil || !p.started || p.closed || !p.cfg.Peripheral || !r.cfg.Central || a.isBlocked(r.cfg.Addr, addr):
			err = fmt.Errorf("%w: %v", ErrUnreachable, addr)
		case p.cfg.MaxCentrals > 0 && a.centralsOf(p) >= p.cfg.MaxCentrals:
			err = fmt.Errorf("%w: %v", ErrBusy, addr)
		}
		if err != nil {
			a.mu.Unlock()
			r.h.DialFailed(addr, err)
			return
		}
		c := &conn{air: a, mtu: min(r.cfg.MTU, p.cfg.MTU), alive: true}
		c.ends[0] = &End{c: c, r: r, peer: p.cfg.Addr, central: true}
		c.ends[1] = &End{c: c, r: p, peer: r.cfg.Addr}
		a.conns = append(a.conns, c)
		a.mu.Unlock()
		p.h.Connected(c.ends[1])
		r.h.Connected(c.ends[0])
	})
}

func (a *Air) centralsOf(p *Radio) int {
	n := 0
	for _, c := range a.conns {
		if c.alive && c.ends[1].r == p {
			n++
		}
	}
	return n
}

// Close disconnects all of r's connections and stops its roles.
func (r *Radio) Close() error {
	a := r.air
	a.mu.Lock()
	if r.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	r.closed = true
	if r.adv != nil {
		r.adv.Stop()
	}
	var dead []*conn
	for _, c := range a.conns {
		if c.alive && (c.ends[0].r == r || c.ends[1].r == r) {
			dead = append(dead, c)
		}
	}
	a.mu.Unlock()
	for _, c := range dead {
		c.kill(ErrClosed)
	}
	return nil
}

func pair(x, y ble.Addr) [2]ble.Addr {
	if slices.Compare(x[:], y[:]) > 0 {
		x, y = y, x
	}
	return [2]ble.Addr{x, y}
}

func (a *Air) isBlocked(x, y ble.Addr) bool { return a.blocked[pair(x, y)] }

// SetInRange puts x and y in or out of each other's range: out of range,
// they neither see each other's advertisements nor connect. Existing
// connections are not touched (use Disconnect).
func (a *Air) SetInRange(x, y ble.Addr, in bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if in {
		delete(a.blocked, pair(x, y))
	} else {
		a.blocked[pair(x, y)] = true
	}
}

// Disconnect drops every connection between x and y, as a radio fading out
// would; both sides see Disconnected. It reports how many it dropped.
func (a *Air) Disconnect(x, y ble.Addr) int {
	a.mu.Lock()
	var dead []*conn
	for _, c := range a.conns {
		if c.alive && pair(c.ends[0].r.cfg.Addr, c.ends[1].r.cfg.Addr) == pair(x, y) {
			dead = append(dead, c)
		}
	}
	a.mu.Unlock()
	for _, c := range dead {
		c.kill(errors.New("bletest: connection lost"))
	}
	return len(dead)
}

// ConnInfo describes a live connection.
type ConnInfo struct {
	Central, Peripheral ble.Addr
	MTU                 int
}

// Conns lists the live connections between x and y.
func (a *Air) Conns(x, y ble.Addr) []ConnInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	var cs []ConnInfo
	for _, c := range a.conns {
		if c.alive && pair(c.ends[0].r.cfg.Addr, c.ends[1].r.cfg.Addr) == pair(x, y) {
			cs = append(cs, ConnInfo{Central: c.ends[0].r.cfg.Addr, Peripheral: c.ends[1].r.cfg.Addr, MTU: c.mtu})
		}
	}
	return cs
}

// Inject makes from send p to to over their connection, bypassing every
// check (a misbehaving peer or stack: oversize, empty...). It reports
// whether a connection existed.
func (a *Air) Inject(from, to ble.Addr, p []byte, bcast bool) bool {
	a.mu.Lock()
	var dst *End
	for _, c := range a.conns {
		if c.alive && c.ends[0].r.cfg.Addr == from && c.ends[1].r.cfg.Addr == to {
			dst = c.ends[1]
		} else if c.alive && c.ends[1].r.cfg.Addr == from && c.ends[0].r.cfg.Addr == to {
			dst = c.ends[0]
		}
	}
	a.mu.Unlock()
	if dst == nil {
		return false
	}
	buf := slices.Clone(p)
	a.clk.AfterFunc(PacketDelay, func() {
		if dst.c.isAlive() {
			dst.r.h.Received(dst, buf, bcast)
		}
	})
	return true
}

// conn is one connection; ends[0] is the central's side.
type conn struct {
	air      *Air
	mtu      int
	alive    bool
	ends     [2]*End
	nextFree [2]time.Time // per direction: when the previous packet lands
}

func (c *conn) isAlive() bool {
	c.air.mu.Lock()
	defer c.air.mu.Unlock()
	return c.alive
}

// kill ends the connection; both sides hear of it.
func (c *conn) kill(err error) {
	a := c.air
	a.mu.Lock()
	if !c.alive {
		a.mu.Unlock()
		return
	}
	c.alive = false
	a.conns = slices.DeleteFunc(a.conns, func(x *conn) bool { return x == c })
	a.mu.Unlock()
	for _, e := range c.ends {
		a.clk.AfterFunc(0, func() {
			if e.r.h != nil {
				e.r.h.Disconnected(e, err)
			}
		})
	}
}

// End is one side of a connection; it implements ble.Conn.
type End struct {
	c       *conn
	r       *Radio
	peer    ble.Addr
	central bool
}

var _ ble.Conn = (*End)(nil)

// Peer returns the other side's address.
func (e *End) Peer() ble.Addr { return e.peer }

// Central reports whether this side is the central.
func (e *End) Central() bool { return e.central }

// MTU returns the connection's ATT MTU.
func (e *End) MTU() int { return e.c.mtu }

// Send carries p to the other side, after the packets before it.
func (e *End) Send(p []byte, bcast bool, done func(error)) {
	c, a := e.c, e.c.air
	if len(p) > ble.Payload(c.mtu) {
		a.clk.AfterFunc(0, func() {
			done(fmt.Errorf("%w: %d bytes on a %d-byte connection", link.ErrTooBig, len(p), ble.Payload(c.mtu)))
		})
		return
	}
	dir := 0
	if !e.central {
		dir = 1
	}
	to := c.ends[1-dir]
	buf := slices.Clone(p)
	a.mu.Lock()
	now := a.clk.Now()
	at := now
	if c.nextFree[dir].After(now) {
		at = c.nextFree[dir]
	}
	at = at.Add(PacketDelay + time.Duration(len(p))*8*time.Microsecond)
	c.nextFree[dir] = at
	a.mu.Unlock()
	a.clk.AfterFunc(at.Sub(now), func() {
		if !c.isAlive() {
			done(ble.ErrNotConnected)
			return
		}
		to.r.h.Received(to, buf, bcast)
		done(nil)
	})
}

// Close disconnects.
func (e *End) Close() { e.c.kill(errors.New("bletest: closed by " + e.r.cfg.Addr.String())) }
