package espnow

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// DefaultStatusWait is how long a sent datagram waits for its transmit
// status report once the card is known to send them; past it the datagram
// completes without one (counted in TxStatus.Missing). An 802.11b frame
// with every retry of its retry limit is done in tens of milliseconds.
const DefaultStatusWait = 250 * time.Millisecond

// statusKey identifies one frame we sent: the 802.11 sequence number we
// gave it (kept by the driver: rtTxNoSeq) and its random bytes.
type statusKey struct {
	seq    uint16
	random [4]byte
}

type pendingTx struct {
	tag   link.Tag
	acked bool // a unicast the receiver must acknowledge
	timer clock.Timer
	// With rate control: where it went, at what rate; for a sample, the
	// attempts allowed, the fallback rate, and the datagram to send again.
	dst   MAC
	rate  Rate
	tries int
	then  Rate
	buf   []byte
	n     int
}

// txStatus matches transmit status reports to the datagrams they complete.
// The writer registers, the reader reports, timers expire; one mutex.
type txStatus struct {
	seen atomic.Bool // the card sends status reports
	wait time.Duration

	mu      sync.Mutex
	pending map[statusKey]*pendingTx

	reports, noAcks, missing atomic.Uint64
}

// await arranges for the datagram sent as key to complete on its status
// report, if the card sends them; it reports whether it will (else the
// writer completes the datagram itself).
func (s *txStatus) await(key statusKey, p *pendingTx, l *Link) bool {
	if !s.seen.Load() {
		p.buf = nil
		return false
	}
	tag := p.tag
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[key] = p
	// Set under the lock: report and forget read it (the callback runs
	// later, on the loop, never inside AfterFunc).
	p.timer = l.clk.AfterFunc(s.wait, func() {
		if s.take(key, p) {
			s.missing.Add(1)
			l.release(p)
			l.port.CompleteNow(tag, nil)
		}
	})
	return true
}

// take removes key's entry if it is still p.
func (s *txStatus) take(key statusKey, p *pendingTx) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[key] != p {
		return false
	}
	delete(s.pending, key)
	return true
}

// forget drops key's entry (the write failed; the writer completes it);
// false if a report or the timer took it first.
func (s *txStatus) forget(key statusKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[key]
	if p == nil {
		return false
	}
	delete(s.pending, key)
	p.timer.Stop()
	return true
}

// report completes the datagram a status report is about, after telling
// the rate control how it fared; a failed sample goes again at the best
// rate instead.
func (s *txStatus) report(key statusKey, f *Frame, l *Link) {
	s.seen.Store(true)
	s.reports.Add(1)
	s.mu.Lock()
	p := s.pending[key]
	delete(s.pending, key)
	if p != nil {
		p.timer.Stop()
	}
	s.mu.Unlock()
	if p == nil {
		return // sent before the first report was seen, or already timed out
	}
	failed := f.TxFailed
	if p.rate != 0 && l.rc != nil {
		attempts := 1
		switch {
		case f.HasTxRetries:
			attempts = f.TxRetries + 1
		case failed && p.tries > 0:
			attempts = p.tries
		case failed:
			attempts = RetryLimit
		}
		l.rcMu.Lock()
		l.rc.Report(p.dst, int(p.rate), attempts, !failed)
		l.rcMu.Unlock()
	}
	if failed && p.acked && p.buf != nil && !l.isClosed() {
		// The sampled rate did not get through: the same datagram at the
		// best rate (its buffer is out of the pool, so txq has its slot).
		l.txq <- txItem{dst: p.dst, buf: p.buf, n: p.n, tag: p.tag, rate: p.then}
		return
	}
	l.release(p)
	var err error
	if failed && p.acked {
		s.noAcks.Add(1)
		l.port.Drop(link.DropTxError)
		err = link.ErrNoAck
	}
	l.port.Complete(p.tag, err)
}

// release returns a sample's buffer to the pool.
func (l *Link) release(p *pendingTx) {
	if p.buf != nil {
		l.free <- p.buf
		p.buf = nil
	}
}

// drain completes whatever still waits (at Close: the frames left).
func (s *txStatus) drain(port *link.Port) {
	s.mu.Lock()
	ps := s.pending
	s.pending = map[statusKey]*pendingTx{}
	for _, p := range ps {
		p.timer.Stop()
	}
	s.mu.Unlock()
	for _, p := range ps {
		p.buf = nil // the pool is done with
		port.Complete(p.tag, nil)
	}
}

// TxStatus counts the card's transmit status reports.
type TxStatus struct {
	Reports uint64 // status reports received
	NoAcks  uint64 // unicasts the receiver never acknowledged (TxDone said link.ErrNoAck)
	Missing uint64 // datagrams whose report never came within Config.StatusWait
}

// TxStatus returns the transmit status counters.
func (l *Link) TxStatus() TxStatus {
	return TxStatus{Reports: l.status.reports.Load(), NoAcks: l.status.noAcks.Load(), Missing: l.status.missing.Load()}
}
