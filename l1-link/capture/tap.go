package capture

import (
	"time"

	"github.com/google/gopacket/layers"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// Framer is implemented by links whose datagrams travel inside a frame worth
// capturing whole (the ESP-NOW link's radiotap + 802.11 frame), so that a
// capture opens in Wireshark as real traffic.
type Framer interface {
	// CaptureFrame returns the on-air frame carrying payload from src to
	// dst (nil if it cannot build one).
	CaptureFrame(dst, src link.Addr, payload []byte) []byte
	// CaptureLinkType is the pcap link type of those frames.
	CaptureLinkType() layers.LinkType
}

// LinkTypeFor returns the link type to create l's capture with: the
// Framer's, else LinkTypeUser0.
func LinkTypeFor(l link.Link) layers.LinkType {
	if f, ok := l.(Framer); ok {
		return f.CaptureLinkType()
	}
	return LinkTypeUser0
}

// Tap returns a link that behaves exactly as l and writes to w every
// datagram l accepts in Send (timestamped on clk) and every datagram it
// delivers (timestamped with the frame's time). When l is a Framer whose
// link type is w's, the capture holds its frames; otherwise the datagrams
// as they are. Create w with LinkTypeFor(l). Write errors do not disturb
// the link; w.Err reports them.
//
// The returned link implements link.AirtimeEstimator (with l's estimate) and,
// when l does, link.Sleeper; Unwrap returns l.
//
// Records are written synchronously, from Send's caller and from the clock
// loop: a capture is a debugging aid, and a slow disk slows the node down
// rather than losing records.
func Tap(l link.Link, w *Writer, clk clock.Clock) link.Link {
	t := &tap{inner: l, w: w, clk: clk}
	if f, ok := l.(Framer); ok && f.CaptureLinkType() == w.LinkType() {
		t.framer = f
	}
	if s, ok := l.(link.Sleeper); ok {
		return &sleeperTap{tap: t, s: s}
	}
	return t
}

type tap struct {
	inner  link.Link
	w      *Writer
	clk    clock.Clock
	framer Framer
}

// Info returns the inner link's description.
func (t *tap) Info() link.Info { return t.inner.Info() }

// Attach attaches d to the inner link through the recorder.
func (t *tap) Attach(d link.Dispatcher) {
	if d == nil {
		t.inner.Attach(nil) // the inner link counts DropNoHandler
		return
	}
	t.inner.Attach(&tapDispatcher{t: t, d: d})
}

// Send passes the datagram on and records it once the inner link took it.
func (t *tap) Send(dst link.Addr, data []byte, tag link.Tag) error {
	err := t.inner.Send(dst, data, tag)
	if err == nil {
		t.record(t.clk.Now(), dst, t.inner.Info().Addr, data)
	}
	return err
}

// Counters returns the inner link's counters.
func (t *tap) Counters() link.Counters { return t.inner.Counters() }

// Close closes the inner link (not the Writer, which other taps may share).
func (t *tap) Close() error { return t.inner.Close() }

// Airtime returns the inner link's estimate.
func (t *tap) Airtime(n int) time.Duration { return link.Airtime(t.inner, n) }

// Unwrap returns the tapped link.
func (t *tap) Unwrap() link.Link { return t.inner }

func (t *tap) record(ts time.Time, dst, src link.Addr, payload []byte) {
	frame := payload
	if t.framer != nil {
		if frame = t.framer.CaptureFrame(dst, src, payload); frame == nil {
			return
		}
	}
	_ = t.w.Write(ts, frame) // kept in w.Err
}

type tapDispatcher struct {
	t *tap
	d link.Dispatcher
}

func (td *tapDispatcher) DeliverFrame(f link.Frame) {
	dst := td.t.inner.Info().Addr
	if f.Broadcast {
		dst = link.Broadcast
	}
	td.t.record(f.Time, dst, f.Src, f.Data)
	td.d.DeliverFrame(f)
}

func (td *tapDispatcher) TxDone(tag link.Tag, err error) { td.d.TxDone(tag, err) }

// sleeperTap is a tap of a link whose radio sleeps.
type sleeperTap struct {
	*tap
	s link.Sleeper
}

// SetAwake switches the inner link's receiver.
func (t *sleeperTap) SetAwake(on bool) { t.s.SetAwake(on) }

// Awake reports whether the inner link's receiver is on.
func (t *sleeperTap) Awake() bool { return t.s.Awake() }
