package sim

import (
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// Medium is one shared channel of one PHY: every radio on it can hear the
// radios it is connected to. A node with radios on two media (ESP-NOW and
// LoRa) is a gateway.
//
// The medium's state is guarded by one mutex; events run on the clock's
// loop, and dispatchers are called with the mutex released, so a node may
// Send from inside DeliverFrame or TxDone.
type Medium struct {
	clk clock.Clock
	phy PHY

	mu      sync.Mutex
	rng     *rand.Rand
	radios  []*Radio
	stats   MediumStats
	monitor func(at time.Time, from *Radio, dst link.Addr, data []byte)
}

// SetMonitor sets a function that sees every frame put on the air (dst nil
// for broadcast), as a monitor-mode capture would; the medium's lock is held
// during the call, so it must not call back into the medium, and it must
// copy data to keep it.
func (m *Medium) SetMonitor(f func(at time.Time, from *Radio, dst link.Addr, data []byte)) {
	m.mu.Lock()
	m.monitor = f
	m.mu.Unlock()
}

// MediumStats counts what happened on the air.
type MediumStats struct {
	Transmissions uint64        // frames put on the air
	Deliveries    uint64        // frames handed to a receiver
	Collisions    uint64        // receptions corrupted by overlap or half-duplex
	Losses        uint64        // receptions lost by the loss model
	Asleep        uint64        // receptions missed by sleeping radios
	Airtime       time.Duration // total transmit time
}

// NewMedium returns an empty medium for phy on clk whose random choices
// (loss, backoff) come from seed.
func NewMedium(clk clock.Clock, phy PHY, seed uint64) *Medium {
	return &Medium{clk: clk, phy: phy, rng: rand.New(rand.NewPCG(seed, 0x6d79636c))}
}

// PHY returns the medium's radio description.
func (m *Medium) PHY() PHY { return m.phy }

// Stats returns the medium's counters.
func (m *Medium) Stats() MediumStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Radios returns the radios in the order they were added.
func (m *Medium) Radios() []*Radio {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Radio(nil), m.radios...)
}

// Position is a place on the plane, in metres.
type Position struct{ X, Y float64 }

// Dist is the Euclidean distance.
func (p Position) Dist(q Position) float64 { return math.Hypot(p.X-q.X, p.Y-q.Y) }

// AddRadio puts a new radio on the medium at pos. Its address is the PHY's
// address for its index n (1-based).
func (m *Medium) AddRadio(pos Position) *Radio {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.radios) + 1
	port := link.NewPort(m.clk, 0)
	r := &Radio{Base: port.Base(), port: port, m: m, index: n - 1, pos: pos, awake: true, queueCap: m.phy.TxQueue, sinceAwake: m.clk.Now(), bo: -1}
	if r.queueCap <= 0 {
		r.queueCap = 8
	}
	r.addr = m.phy.Addr(n)
	m.radios = append(m.radios, r)
	return r
}

// Connect lets a and b hear each other, with loss models for each direction.
// Connecting again replaces the models.
func (m *Medium) Connect(a, b *Radio, ab, ba Loss) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a.setEdge(b, ab)
	b.setEdge(a, ba)
}

// Disconnect makes a and b unable to hear each other.
func (m *Medium) Disconnect(a, b *Radio) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a.dropEdge(b)
	b.dropEdge(a)
}

// ConnectWithin connects every pair of radios closer than radius, with the
// same loss model both ways. It returns the number of pairs connected.
func (m *Medium) ConnectWithin(radius float64, loss Loss) int {
	rs := m.Radios()
	n := 0
	for i, a := range rs {
		for _, b := range rs[i+1:] {
			if a.pos.Dist(b.pos) < radius {
				m.Connect(a, b, loss, loss)
				n++
			}
		}
	}
	return n
}

// edge is one direction of a radio link.
type edge struct {
	to   *Radio
	loss lossState
}

// transmission is one frame on the air.
type transmission struct {
	from      *Radio
	dst       link.Addr // nil: broadcast
	data      []byte
	tag       link.Tag
	start     time.Time
	end       time.Time
	receivers []*reception
}

// reception is one radio hearing one transmission.
type reception struct {
	tx        *transmission
	at        *Radio
	edge      *edge
	corrupted bool // overlapped another frame, or the receiver transmitted
	asleep    bool // the receiver slept through part of it
}

// Radio is one node's radio on a medium; it is a link.Link.
type Radio struct {
	link.Base
	port  *link.Port
	m     *Medium
	index int
	addr  link.Addr
	pos   Position
	edges []*edge

	// Guarded by m.mu.
	closed     bool
	awake      bool
	queue      []queued // pending datagrams
	queueCap   int
	txing      *transmission
	active     []*reception // receptions in progress here
	attempt    clock.Timer  // pending transmit attempt
	lastHeard  time.Time    // when the last frame r heard (not its own) ended
	lastOwn    time.Time    // when r's own last frame ended
	bo         int          // backoff slots left to count (-1: none drawn)
	boStart    time.Time    // when the current countdown's first slot began
	awakeTime  time.Duration
	sinceAwake time.Time
}

func (r *Radio) setEdge(to *Radio, l Loss) {
	for _, e := range r.edges {
		if e.to == to {
			e.loss = lossState{model: l}
			return
		}
	}
	r.edges = append(r.edges, &edge{to: to, loss: lossState{model: l}})
}

func (r *Radio) dropEdge(to *Radio) {
	for i, e := range r.edges {
		if e.to == to {
			r.edges = append(r.edges[:i], r.edges[i+1:]...)
			return
		}
	}
}

// Neighbors returns the radios r can reach.
func (r *Radio) Neighbors() []*Radio {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	out := make([]*Radio, len(r.edges))
	for i, e := range r.edges {
		out[i] = e.to
	}
	return out
}

// Addr returns the radio's link address.
func (r *Radio) Addr() link.Addr { return r.addr }

// Position returns where the radio is.
func (r *Radio) Position() Position { return r.pos }

// Info describes the radio as a link.
func (r *Radio) Info() link.Info {
	p := &r.m.phy
	return link.Info{
		Name: p.Name, Addr: r.addr, MTU: p.MTU, Bitrate: p.Bitrate, Schemas: p.Schemas,
		Caps: p.Caps, TxQueue: r.queueCap,
	}
}

// Airtime is the PHY's airtime for n bytes.
func (r *Radio) Airtime(n int) time.Duration { return r.m.phy.Airtime(n) }

// queued is a datagram waiting in a radio's transmit queue.
type queued struct {
	dst  link.Addr // nil: broadcast
	data []byte
	tag  link.Tag
}

// SetAwake switches the receiver on or off (link.Sleeper). Receptions in
// progress when it goes off are lost.
func (r *Radio) SetAwake(on bool) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if r.awake == on {
		return
	}
	now := r.m.clk.Now()
	if r.awake {
		r.awakeTime += now.Sub(r.sinceAwake)
		for _, rx := range r.active {
			rx.asleep = true
		}
	} else {
		r.sinceAwake = now
	}
	r.awake = on
}

// Awake reports whether the receiver is on.
func (r *Radio) Awake() bool {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	return r.awake
}

// AwakeTime is how long the receiver has been on in total (for energy
// accounting).
func (r *Radio) AwakeTime() time.Duration {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	t := r.awakeTime
	if r.awake {
		t += r.m.clk.Now().Sub(r.sinceAwake)
	}
	return t
}

// Send queues a datagram.
func (r *Radio) Send(dst link.Addr, data []byte, tag link.Tag) error {
	bcast, err := link.DestKind(dst, r.m.phy.Network)
	if err != nil {
		return err
	}
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.closed {
		return net.ErrClosed
	}
	if len(data) > m.phy.MTU {
		r.port.Drop(link.DropOversize)
		return link.ErrTooBig
	}
	if len(r.queue) >= r.queueCap {
		r.port.Drop(link.DropQueueFull)
		return link.ErrBusy
	}
	if bcast {
		dst = nil
	}
	r.queue = append(r.queue, queued{dst: dst, data: append([]byte(nil), data...), tag: tag})
	r.arm()
	return nil
}

// arm arranges the next transmit attempt, if r has a frame, is not on the
// air and has no attempt pending. Called with m.mu held.
//
// Carrier sense is a simplified 802.11 DCF: a radio that finds the medium
// idle for DIFS transmits at once. Otherwise it draws a backoff of 0..CW-1
// slots and counts it down only while the medium is idle (after DIFS);
// when another frame starts it freezes the count and resumes after that
// frame. After its own frame a radio draws a post-backoff of 0..PostCW-1
// slots, which is what lets a deferring neighbour in between a busy
// sender's frames.
func (r *Radio) arm() {
	if r.closed || r.txing != nil || r.attempt != nil || len(r.queue) == 0 {
		return
	}
	m := r.m
	p := &m.phy
	if !p.CSMA {
		r.attempt = m.clk.AfterFunc(0, r.try)
		return
	}
	if len(r.active) > 0 {
		// Busy: wait for the medium (finish re-arms us), with a backoff.
		if r.bo < 0 {
			r.bo = m.rng.IntN(max(p.CW, 1))
		}
		return
	}
	now := m.clk.Now()
	idle := r.lastHeard
	if r.lastOwn.After(idle) {
		idle = r.lastOwn
	}
	start := idle.Add(p.DIFS)
	if r.bo < 0 {
		if !now.Before(start) {
			r.attempt = m.clk.AfterFunc(0, r.try)
			return
		}
		r.bo = m.rng.IntN(max(p.CW, 1))
	}
	r.boStart = start
	at := start.Add(time.Duration(r.bo) * p.Slot)
	r.attempt = m.clk.AfterFunc(max(at.Sub(now), 0), r.try)
}

// freeze stops r's backoff countdown because it hears a frame start,
// keeping the slots not yet counted. Called with m.mu held.
func (r *Radio) freeze(now time.Time) {
	if r.attempt == nil {
		return
	}
	r.attempt.Stop()
	r.attempt = nil
	if r.bo > 0 && now.After(r.boStart) {
		r.bo -= int(now.Sub(r.boStart) / r.m.phy.Slot)
		if r.bo < 0 {
			r.bo = 0
		}
	}
	if r.bo < 0 {
		// It was about to go at once; it defers now, with a backoff.
		r.bo = r.m.rng.IntN(max(r.m.phy.CW, 1))
	}
}

// try starts the next transmission.
func (r *Radio) try() {
	m := r.m
	m.mu.Lock()
	r.attempt = nil
	if r.closed || r.txing != nil || len(r.queue) == 0 {
		m.mu.Unlock()
		return
	}
	p := &m.phy
	if p.CSMA && len(r.active) > 0 {
		// A frame started in the same instant: defer behind it.
		r.arm()
		m.mu.Unlock()
		return
	}
	r.bo = -1
	q := r.queue[0]
	r.queue[0] = queued{}
	r.queue = r.queue[1:]
	data, dst := q.data, q.dst
	now := m.clk.Now()
	air := p.Airtime(len(data))
	tx := &transmission{from: r, dst: dst, data: data, tag: q.tag, start: now, end: now.Add(air)}
	r.txing = tx
	// Half-duplex: whatever r was receiving is lost.
	for _, rx := range r.active {
		rx.corrupted = true
	}
	for _, e := range r.edges {
		to := e.to
		rx := &reception{tx: tx, at: to, edge: e}
		rx.corrupted = to.txing != nil
		rx.asleep = !to.awake
		if len(to.active) > 0 {
			// Overlap at this receiver: neither frame survives.
			rx.corrupted = true
			for _, other := range to.active {
				other.corrupted = true
			}
		}
		to.active = append(to.active, rx)
		tx.receivers = append(tx.receivers, rx)
		if p.CSMA {
			to.freeze(now)
		}
	}
	m.stats.Transmissions++
	m.stats.Airtime += air
	if m.monitor != nil {
		m.monitor(now, r, dst, data)
	}
	r.port.Tx(len(data), air)
	m.clk.AfterFunc(air, func() { m.finish(tx) })
	m.mu.Unlock()
}

// delivery is a frame to hand to a radio once the lock is released.
type delivery struct {
	to *Radio
	f  link.Frame
}

// finish ends a transmission: decide each reception, deliver, and tell the
// sender.
func (m *Medium) finish(tx *transmission) {
	m.mu.Lock()
	now := m.clk.Now()
	var out []delivery
	for _, rx := range tx.receivers {
		to := rx.at
		to.removeActive(rx)
		to.lastHeard = now
		intended := tx.dst == nil || tx.dst == to.addr
		if !intended || to.closed {
			continue
		}
		switch {
		case rx.asleep || !to.awake:
			m.stats.Asleep++
			to.port.Drop(link.DropAsleep)
			continue
		case rx.corrupted:
			m.stats.Collisions++
			to.port.Drop(link.DropCollision)
			continue
		}
		// The loss model steps for every frame meant for this receiver.
		if rx.edge.loss.lost(m.rng) {
			m.stats.Losses++
			to.port.Drop(link.DropLoss)
			continue
		}
		if to.port.Dispatcher() == nil {
			to.port.Drop(link.DropNoHandler)
			continue
		}
		m.stats.Deliveries++
		f := link.Frame{Src: tx.from.addr, Broadcast: tx.dst == nil, Data: tx.data, Time: now}
		if tx.from.pos != (Position{}) || to.pos != (Position{}) {
			f.HasSignal = true
			f.RSSI = rssi(tx.from.pos.Dist(to.pos))
			f.SNR = min(max(f.RSSI-m.phy.NoiseFloor, -20), m.phy.MaxSNR)
		}
		out = append(out, delivery{to, f})
	}
	from := tx.from
	from.txing = nil
	from.lastOwn = now
	if m.phy.CSMA {
		from.bo = m.rng.IntN(max(m.phy.PostCW, 1))
	}
	from.arm()
	// Radios that deferred for this frame may count down again.
	for _, rx := range tx.receivers {
		rx.at.arm()
	}
	m.mu.Unlock()
	for _, dl := range out {
		dl.to.port.Deliver(dl.f)
	}
	// The frame left, even if its radio closed meanwhile: its one
	// completion is owed either way.
	from.port.CompleteNow(tx.tag, nil)
}

func (r *Radio) removeActive(rx *reception) {
	for i, x := range r.active {
		if x == rx {
			last := len(r.active) - 1
			r.active[i] = r.active[last]
			r.active[last] = nil
			r.active = r.active[:last]
			return
		}
	}
}

// rssi is a log-distance path loss figure for display and for tests that
// want a signal: 20 dBm transmit power, 40 dB at 1 m, exponent 2.7.
func rssi(d float64) int {
	if d < 1 {
		d = 1
	}
	return int(math.Round(20 - 40 - 27*math.Log10(d)))
}

// Close takes the radio off the medium: queued frames are dropped, and it
// neither sends nor hears anything more.
func (r *Radio) Close() error {
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.closed {
		return net.ErrClosed
	}
	r.closed = true
	r.port.SetClosed()
	if r.attempt != nil {
		r.attempt.Stop()
		r.attempt = nil
	}
	// Queued frames will never be sent; their TxDone is owed.
	for _, q := range r.queue {
		r.port.Complete(q.tag, net.ErrClosed)
	}
	r.queue = nil
	return nil
}
