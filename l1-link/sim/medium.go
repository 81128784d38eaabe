package sim

import (
	"math"
	"math/rand/v2"
	"net"
	"slices"
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
	clk  clock.Clock
	phy  PHY
	seed uint64
	t0   time.Time // instant 0: the clock's time when the medium was made
	// On a virtual clock that stood at its start plus vt0 when the medium
	// was made (t0 == vclk.Start().Add(vt0)), the current instant is
	// vclk.Elapsed() - vt0, read without a time.Time (now); nil otherwise.
	vclk *clock.Virtual
	vt0  time.Duration

	mu       sync.Mutex
	rng      *rand.Rand
	radios   []*Radio
	stats    MediumStats
	monitor  func(at time.Time, from *Radio, dst link.Addr, data []byte)
	attempts func(a *Attempt)
	attempt  Attempt // what attempts is passed, reused
	// Completions and deliveries owed once the lock is released.
	done []completion
	out  []delivery
	// Emptied buffers of the last flush, for the next one.
	spareOut  []delivery
	spareDone []completion
	// rxFree are the receptions of ended frames, by their count, for the
	// next frames (Medium.receivers).
	rxFree [][][]reception
}

// SetMonitor sets a function that sees every frame put on the air (dst nil
// for broadcast; 802.11 ACKs are not shown), as a monitor-mode capture
// would; the medium's lock is held during the call, so it must not call
// back into the medium, and it must copy data to keep it.
func (m *Medium) SetMonitor(f func(at time.Time, from *Radio, dst link.Addr, data []byte)) {
	m.mu.Lock()
	m.monitor = f
	m.mu.Unlock()
}

// SetAttemptLog sets a function told of every transmission of a datagram
// once its sender knows how it fared (see Attempt). The medium's lock is
// held during the call: it must not call back into the medium, and it must
// copy *a (and a.Data) to keep them: the medium reuses both.
func (m *Medium) SetAttemptLog(f func(a *Attempt)) {
	m.mu.Lock()
	m.attempts = f
	m.mu.Unlock()
}

// Attempt is one transmission of a datagram, as its sender lived it.
type Attempt struct {
	From *Radio
	Dst  link.Addr // nil: broadcast
	Data []byte    // valid only during the call
	Rate int       // kbit/s
	// Try is 1 for a datagram's first transmission, 2.. for MAC retries.
	Try int
	// Wait is the idle time the sender counted before it (the inter-frame
	// space and backoff slots of its last countdown, and the slots of the
	// countdowns the medium interrupted); zero when it went at once.
	Wait time.Duration
	// Backoff is the number of slots drawn for it, from 0..CW (zero when
	// it went at once): a retry's window has doubled.
	Backoff, CW int
	// Start and End bound the frame on the air; Done is when the sender
	// knew the outcome: the end of the ACK, or the ACK timeout (End for
	// frames that get no ACK).
	Start, End, Done time.Time
	// Delivered: the addressee of a unicast frame decoded it.
	Delivered bool
	// Acked: the sender heard the ACK (802.11 unicast only).
	Acked bool
}

// MediumStats counts what happened on the air.
type MediumStats struct {
	Transmissions uint64        // datagram frames put on the air, MAC retries included
	Deliveries    uint64        // frames handed to a receiver
	Collisions    uint64        // receptions corrupted by overlap or half-duplex
	Losses        uint64        // receptions lost by the loss model or the PHY's error rate
	Asleep        uint64        // receptions missed by sleeping radios
	Airtime       time.Duration // total transmit time, ACKs included
	Acks          uint64        // 802.11 ACKs sent
	Retries       uint64        // MAC retransmissions (a unicast frame's second and later attempts)
	NoAcks        uint64        // unicast frames given up after the retry limit
	Duplicates    uint64        // MAC retries of frames already received, acknowledged and not delivered again
}

// NewMedium returns an empty medium for phy on clk whose random choices
// (loss, backoff) come from seed.
func NewMedium(clk clock.Clock, phy PHY, seed uint64) *Medium {
	if phy.Rate == 0 && len(phy.Rates) > 0 {
		phy.Rate = phy.Rates[0]
	}
	m := &Medium{clk: clk, phy: phy, seed: seed, t0: clk.Now(), rng: rand.New(rand.NewPCG(seed, 0x6d79636c))}
	if v, ok := clk.(*clock.Virtual); ok {
		if d, ok := v.Elapsed(); ok && d >= 0 && v.Start().Add(d) == m.t0 {
			m.vclk, m.vt0 = v, d
		}
	}
	return m
}

// instant is a time on the medium: nanoseconds since its t0. The MAC's
// times are instants rather than time.Time values (24 bytes each, and a
// call for every comparison): a frame reads and writes them in every
// neighbour's radio, whose lines a large mesh no longer holds in the
// cache. Arithmetic is exact, as time.Time's is, and sub saturates as
// time.Time.Sub does.
type instant int64

// never stands for the zero time.Time the fields started at: before
// every instant of the medium.
const never instant = math.MinInt64

// add is t.Add(d).
func (t instant) add(d time.Duration) instant { return t + instant(d) }

// sub is t.Sub(u), saturating as that does.
func (t instant) sub(u instant) time.Duration {
	d := t - u
	switch {
	case u < 0 && d < t: // t - u overflowed upwards
		return math.MaxInt64
	case u > 0 && d > t:
		return math.MinInt64
	}
	return time.Duration(d)
}

// instant is t on the medium.
func (m *Medium) instant(t time.Time) instant { return instant(t.Sub(m.t0)) }

// now is the medium's current instant. On a virtual clock it is the
// clock's offset less the medium's, the same count of nanoseconds
// clk.Now().Sub(t0) gives (both times are its start plus a non-negative
// offset, so the difference is exact): a radio asks it every time a
// frame it hears ends, and the two time.Time operations were 3-4 % of a
// 2,000-node run's CPU.
func (m *Medium) now() instant {
	if v := m.vclk; v != nil {
		if d, ok := v.Elapsed(); ok {
			return instant(d - m.vt0)
		}
	}
	return m.instant(m.clk.Now())
}

// timeAt is the time of instant t.
func (m *Medium) timeAt(t instant) time.Time { return m.t0.Add(time.Duration(t)) }

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
	r := &Radio{Base: port.Base(), port: port, m: m, index: n - 1, pos: pos, awake: true, queueCap: m.phy.TxQueue, sinceAwake: m.clk.Now(), rate: m.phy.Rate}
	r.bo = -1
	r.attemptAt, r.lastHeard, r.lastOwn, r.nav = never, never, never, never
	r.segStart, r.boFloor, r.errAt = never, never, never
	r.active = r.activeBuf[:0]
	r.attempt.InitFunc(m.clk, r.try)
	if r.queueCap <= 0 {
		r.queueCap = 8
	}
	if m.phy.NewRateControl != nil {
		r.rc = m.phy.NewRateControl(m.seed*1000003 + uint64(n))
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
	// The 802.11 sequence number of the last datagram the far end (to)
	// received from this edge's radio, if seen: its duplicate filter for
	// MAC retries. It lives on the edge, which every reception reads
	// anyway, rather than in a map at the receiver: a map keyed by sender
	// cost every unicast reception a look-up in memory the cache no longer
	// held, more of them the larger the mesh. A dropped edge hands it to
	// the receiver's lastSeq, and a new edge takes it back, so that
	// disconnecting and connecting again keeps the filter as it was.
	lastSeq uint16
	seqSeen bool
	dropped bool // taken off the medium: the receiver's map holds the filter
	// slot is the far end's Frame.Slot for frames from this edge's radio.
	slot link.Slot
}

// Radio is one node's radio on a medium; it is a link.Link.
//
// The fields every frame a neighbour puts on the air reads or writes
// (put, freeze, finish, hear, arm: a frame touches each neighbour's radio
// three to five times) come first, together, and the receptions in
// progress start in activeBuf inside the radio: on a large mesh the
// neighbours' radios are no longer in the cache, and each frame paid a
// miss for every line of them it touched, more of them the larger the
// mesh (the order of the fields changes nothing else).
type Radio struct {
	m *Medium
	// Guarded by m.mu.
	txing     *transmission // r's frame on the air
	awaiting  *transmission // r's unicast frame waiting for its ACK
	cur       *macFrame     // the datagram the MAC is sending (nil: none)
	active    []*reception  // receptions in progress here
	activeBuf [2]*reception // active's first backing array
	attemptOn bool          // a transmit attempt is pending (attempt armed)
	closed    bool
	awake     bool
	attemptAt instant // when it fires
	lastHeard instant // when the last frame r heard (not its own) ended
	lastOwn   instant // when r's own last frame ended
	nav       instant // virtual carrier sense: busy until then
	dcfState
	port   *link.Port
	addr   link.Addr
	queue  []queued // datagrams waiting for the MAC
	maxLen int      // SetLimits (0: the PHY's MTU)
	pos    Position

	link.Base
	index      int
	edges      []*edge
	queueCap   int
	maxSchemas []uint8       // SetLimits (nil: the PHY's)
	ackTx      *transmission // whose alarm is r's ACK timeout (ackTimeoutStep)
	// attempt is r's transmit attempt (r.try), armed again for every
	// attempt: most are stopped by the next frame a neighbour puts on
	// the air, and one Timer each was half of what the clock allocated.
	attempt clock.Alarm
	rate    int         // the rate r sends at without rate control
	rc      RateControl // per-destination rate choice for unicast (nil: rate)
	seq     uint16      // 802.11 sequence number of r's next datagram
	// The duplicate filter of dropped edges (edge.lastSeq).
	lastSeq    map[*Radio]uint16
	awakeTime  time.Duration
	sinceAwake time.Time
	// curBuf holds cur: a radio has one datagram in the MAC's hands at a
	// time, and nothing reads a finished frame's state once its outcome
	// is settled (settle, finish) and cur cleared; one allocated for each
	// datagram was a twentieth of a route simulation's allocations.
	curBuf macFrame
	// ackBuf is r's ACK on the air: it sends one only while it sends
	// nothing else (sendAck), and once the ACK has ended (finish) nothing
	// holds it: its receptions are recycled and its alarm has fired.
	ackBuf transmission
}

// macFrame is a datagram in the MAC's hands: its attempts so far and the
// rate they go at.
type macFrame struct {
	queued
	seq   uint16
	tries int
	rate  int // of the coming attempt
	cw    int
	// The rate chain: n attempts at first, the rest at then.
	first, then, n int
}

func (r *Radio) setEdge(to *Radio, l Loss) {
	for _, e := range r.edges {
		if e.to == to {
			e.loss = lossState{model: l}
			return
		}
	}
	e := &edge{to: to, loss: lossState{model: l}}
	if seq, ok := to.lastSeq[r]; ok {
		e.lastSeq, e.seqSeen = seq, true
		delete(to.lastSeq, r)
	}
	r.edges = append(r.edges, e)
}

// setLastSeq keeps the duplicate filter of a dropped edge from from.
func (r *Radio) setLastSeq(from *Radio, seq uint16) {
	if r.lastSeq == nil {
		r.lastSeq = map[*Radio]uint16{}
	}
	r.lastSeq[from] = seq
}

func (r *Radio) dropEdge(to *Radio) {
	for i, e := range r.edges {
		if e.to == to {
			if e.seqSeen {
				to.setLastSeq(r, e.lastSeq)
			}
			e.dropped = true
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

// Index is the radio's place among the medium's radios (Radios), from 0.
func (r *Radio) Index() int { return r.index }

// Position returns where the radio is.
func (r *Radio) Position() Position { return r.pos }

// Info describes the radio as a link.
func (r *Radio) Info() link.Info {
	p := &r.m.phy
	return link.Info{
		Name: p.Name, Addr: r.addr, MTU: r.mtu(), Bitrate: p.Bitrate, Schemas: r.schemas(),
		Caps: p.Caps, TxQueue: r.queueCap,
	}
}

// SetLimits makes the radio one that sends and takes datagrams of at most
// mtu bytes, below the PHY's MTU, and carries schemas (nil: the PHY's): on
// an ESP-NOW v2 medium, a v1 device (a reference board), which drops the
// longer frames it hears (counted as link.DropOversize). Call it before
// the radio is used.
func (r *Radio) SetLimits(mtu int, schemas []uint8) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	r.maxLen, r.maxSchemas = mtu, schemas
}

// schemas are the packet schemas the radio's link carries.
func (r *Radio) schemas() []uint8 {
	if r.maxSchemas != nil {
		return r.maxSchemas
	}
	return r.m.phy.Schemas
}

// mtu is the largest datagram the radio sends and takes.
func (r *Radio) mtu() int {
	if r.maxLen > 0 && r.maxLen < r.m.phy.MTU {
		return r.maxLen
	}
	return r.m.phy.MTU
}

// Airtime is how long n bytes occupy the air at the rate the radio sends
// at (its fixed rate; with rate control, the PHY's default).
func (r *Radio) Airtime(n int) time.Duration {
	r.m.mu.Lock()
	rate := r.rate
	r.m.mu.Unlock()
	return r.m.airtime(n, rate)
}

// airtime is the PHY's airtime of n bytes at rate.
func (m *Medium) airtime(n, rate int) time.Duration {
	if m.phy.AirtimeAt == nil || len(m.phy.Rates) == 0 {
		return m.phy.Airtime(n)
	}
	return m.phy.AirtimeAt(n, rate)
}

// SetRate makes the radio send every frame at rate (kbit/s), one of the
// PHY's rates; it ends any rate control. It reports false for a rate the
// PHY does not have.
func (r *Radio) SetRate(rate int) bool {
	if !slices.Contains(r.m.phy.Rates, rate) {
		return false
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	r.rate, r.rc = rate, nil
	return true
}

// SetRateControl lets rc choose the rate of the radio's unicast frames
// (broadcasts keep the radio's rate); nil ends it.
func (r *Radio) SetRateControl(rc RateControl) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	r.rc = rc
}

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
	if len(data) > r.mtu() {
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

// rssi is a log-distance path loss figure for display and for tests that
// want a signal: 20 dBm transmit power, 40 dB at 1 m, exponent 2.7.
func rssi(d float64) int {
	if d < 1 {
		d = 1
	}
	return int(math.Round(20 - 40 - 27*math.Log10(d)))
}

// Close takes the radio off the medium: queued frames are dropped, and it
// neither sends nor hears anything more. A frame already on the air (or
// waiting for its ACK) completes when its exchange ends.
func (r *Radio) Close() error {
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.closed {
		return net.ErrClosed
	}
	r.closed = true
	r.port.SetClosed()
	r.stopAttempt()
	// Queued frames will never be sent; their TxDone is owed.
	if r.cur != nil && r.txing == nil && r.awaiting == nil {
		r.port.Complete(r.cur.tag, net.ErrClosed)
		r.cur = nil
	}
	for _, q := range r.queue {
		r.port.Complete(q.tag, net.ErrClosed)
	}
	r.queue = nil
	return nil
}
