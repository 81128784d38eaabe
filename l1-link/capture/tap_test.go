package capture_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
	"github.com/mycelium-mesh/mycelium/l1-link/loopback"
)

func virtualEnv(clk *clock.Virtual, links []link.Link) *linktest.Env {
	return linktest.Virtual(clk, time.Minute, time.Second, links...)
}

// TestTapConformance: a tapped link is still a link.
func TestTapConformance(t *testing.T) {
	linktest.Run(t, func(t *testing.T) *linktest.Env {
		clk := clock.NewVirtual(time.Time{})
		hub := loopback.NewHub(clk)
		w, err := capture.NewWriter(io.Discard, capture.LinkTypeUser0)
		if err != nil {
			t.Fatal(err)
		}
		var ls []link.Link
		for range 3 {
			ls = append(ls, capture.Tap(hub.NewLink(), w, clk))
		}
		return virtualEnv(clk, ls)
	})
}

type rec struct {
	ts   time.Time
	data []byte
}

func readBack(t *testing.T, buf *bytes.Buffer, lt layers.LinkType) []rec {
	t.Helper()
	r, err := capture.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != lt {
		t.Fatalf("link type %v, want %v", r.LinkType(), lt)
	}
	var out []rec
	for {
		ts, b, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec{ts, bytes.Clone(b)})
	}
}

// TestTapRecords checks that the capture holds exactly what was sent and
// received, with the right timestamps.
func TestTapRecords(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	hub := loopback.NewHub(clk)
	var bufA, bufB bytes.Buffer
	wa, _ := capture.NewWriter(&bufA, capture.LinkTypeUser0)
	wb, _ := capture.NewWriter(&bufB, capture.LinkTypeUser0)
	a := capture.Tap(hub.NewLink(), wa, clk)
	b := capture.Tap(hub.NewLink(), wb, clk)
	ra, rb := &linktest.Recorder{}, &linktest.Recorder{}
	a.Attach(ra)
	b.Attach(rb)

	clk.RunFor(time.Second)
	t1 := clk.Now()
	if err := a.Send(b.Info().Addr, []byte("one"), 0); err != nil {
		t.Fatal(err)
	}
	clk.RunFor(time.Second)
	t2 := clk.Now()
	if err := a.Send(link.Broadcast, []byte("two"), 0); err != nil {
		t.Fatal(err)
	}
	// Refused datagrams are not recorded.
	if err := a.Send(b.Info().Addr, make([]byte, loopback.MTU+1), 0); err == nil {
		t.Fatal("oversize accepted")
	}
	clk.RunFor(time.Second)
	if err := b.Send(a.Info().Addr, []byte("three"), 0); err != nil {
		t.Fatal(err)
	}
	t3 := clk.Now()
	clk.RunFor(time.Second)
	if len(rb.Frames()) != 2 || len(ra.Frames()) != 1 || ra.TxDoneCount() != 2 {
		t.Fatalf("traffic: a %v, b %v", ra.Frames(), rb.Frames())
	}

	// a's capture: sent one, sent two, received three.
	want := []rec{{t1, []byte("one")}, {t2, []byte("two")}, {ra.Frames()[0].Time, []byte("three")}}
	got := readBack(t, &bufA, capture.LinkTypeUser0)
	// b's capture: received one, received two, sent three.
	fb := rb.Frames()
	wantB := []rec{{fb[0].Time, []byte("one")}, {fb[1].Time, []byte("two")}, {t3, []byte("three")}}
	gotB := readBack(t, &bufB, capture.LinkTypeUser0)
	for name, c := range map[string][2][]rec{"a": {got, want}, "b": {gotB, wantB}} {
		g, w := c[0], c[1]
		if len(g) != len(w) {
			t.Fatalf("%s: %d records, want %d", name, len(g), len(w))
		}
		for i := range w {
			if !g[i].ts.Equal(w[i].ts) || !bytes.Equal(g[i].data, w[i].data) {
				t.Errorf("%s: record %d = %v %q, want %v %q", name, i, g[i].ts, g[i].data, w[i].ts, w[i].data)
			}
		}
	}
	if wa.Err() != nil || wb.Err() != nil {
		t.Fatal(wa.Err(), wb.Err())
	}
}

// framerLink is a loopback endpoint that frames its datagrams as ESP-NOW
// frames for captures, with MAC 02:00:00:00:00:NN for endpoint NN.
type framerLink struct {
	*loopback.Link
}

func macFor(a link.Addr) espnow.MAC {
	if a.IsBroadcast() {
		return espnow.BroadcastMAC
	}
	return espnow.MAC{2, 0, 0, 0, 0, byte(a.(loopback.Addr))}
}

func (f framerLink) CaptureFrame(dst, src link.Addr, payload []byte) []byte {
	b, err := espnow.AppendFrame(nil, &espnow.Frame{Dst: macFor(dst), Src: macFor(src), Body: payload}, espnow.TxOptions{})
	if err != nil {
		return nil
	}
	return b
}

func (f framerLink) CaptureLinkType() layers.LinkType { return layers.LinkTypeIEEE80211Radio }

func TestTapFramer(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	hub := loopback.NewHub(clk)
	a, b := framerLink{hub.NewLink()}, framerLink{hub.NewLink()}
	if capture.LinkTypeFor(a) != capture.LinkTypeRadiotap || capture.LinkTypeFor(a.Link) != capture.LinkTypeUser0 {
		t.Fatal("LinkTypeFor")
	}
	var buf, raw bytes.Buffer
	w, _ := capture.NewWriter(&buf, capture.LinkTypeFor(a))
	ta := capture.Tap(a, w, clk)
	tb := capture.Tap(b, w, clk)
	// A Framer tapped into a USER0 capture records bare datagrams.
	wraw, _ := capture.NewWriter(&raw, capture.LinkTypeUser0)
	tr := capture.Tap(framerLink{hub.NewLink()}, wraw, clk)
	for _, l := range []link.Link{ta, tb, tr} {
		l.Attach(&linktest.Recorder{})
	}
	if err := ta.Send(tb.Info().Addr, []byte("uni"), 0); err != nil {
		t.Fatal(err)
	}
	if err := tb.Send(link.Broadcast, []byte("bcast"), 0); err != nil {
		t.Fatal(err)
	}
	clk.RunFor(time.Second)

	recs := readBack(t, &buf, capture.LinkTypeRadiotap)
	macA, macB := espnow.MAC{2, 0, 0, 0, 0, 1}, espnow.MAC{2, 0, 0, 0, 0, 2}
	type seen struct {
		src, dst espnow.MAC
		body     string
	}
	var got []seen
	for _, r := range recs {
		var f espnow.Frame
		if err := espnow.Parse(r.data, &f); err != nil {
			t.Fatal(err)
		}
		got = append(got, seen{f.Src, f.Dst, string(f.Body)})
	}
	want := []seen{
		{macA, macB, "uni"},                  // a sent
		{macB, espnow.BroadcastMAC, "bcast"}, // b sent
		{macA, macB, "uni"},                  // b received
		{macB, espnow.BroadcastMAC, "bcast"}, // a received
	}
	// Order: sends are recorded in Send, receptions when the clock runs.
	if len(got) != len(want) {
		t.Fatalf("records %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	rawRecs := readBack(t, &raw, capture.LinkTypeUser0)
	if len(rawRecs) != 1 || string(rawRecs[0].data) != "bcast" {
		t.Fatalf("raw capture %v", rawRecs)
	}
}

type estimatorLink struct{ *loopback.Link }

func (estimatorLink) Airtime(n int) time.Duration { return time.Duration(n) * time.Millisecond }

type sleeperLink struct {
	*loopback.Link
	awake bool
}

func (s *sleeperLink) SetAwake(on bool) { s.awake = on }
func (s *sleeperLink) Awake() bool      { return s.awake }

func TestTapForwardsInterfaces(t *testing.T) {
	clk := clock.NewVirtual(time.Time{})
	hub := loopback.NewHub(clk)
	w, _ := capture.NewWriter(io.Discard, capture.LinkTypeUser0)

	plain := hub.NewLink()
	tp := capture.Tap(plain, w, clk)
	if link.Airtime(tp, 1000) != link.Airtime(plain, 1000) || link.Airtime(tp, 1000) == 0 {
		t.Fatalf("airtime %v, inner %v", link.Airtime(tp, 1000), link.Airtime(plain, 1000))
	}
	if _, ok := tp.(link.Sleeper); ok {
		t.Fatal("tap of a link without sleep is a Sleeper")
	}
	if u, ok := tp.(interface{ Unwrap() link.Link }); !ok || u.Unwrap() != plain {
		t.Fatal("Unwrap")
	}

	est := capture.Tap(estimatorLink{hub.NewLink()}, w, clk)
	if got := link.Airtime(est, 7); got != 7*time.Millisecond {
		t.Fatalf("estimator not forwarded: %v", got)
	}

	sl := &sleeperLink{Link: hub.NewLink(), awake: true}
	ts := capture.Tap(sl, w, clk)
	s, ok := ts.(link.Sleeper)
	if !ok {
		t.Fatal("Sleeper not forwarded")
	}
	s.SetAwake(false)
	if sl.awake || s.Awake() {
		t.Fatal("SetAwake not forwarded")
	}
	if link.Airtime(ts, 10) != link.Airtime(sl, 10) {
		t.Fatal("sleeper tap airtime")
	}
}
