package espnow

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
)

// statusOf turns a frame the link wrote into the transmit status report
// mac80211 hands back on the monitor interface: the same frame, its TX
// flags now saying whether the card got an acknowledgement.
func statusOf(sent []byte, failed bool) []byte {
	b := append([]byte(nil), sent...)
	b[10], b[11] = 0, 0
	if failed {
		b[10] = rtTxFail
	}
	return b
}

func TestParseTxStatus(t *testing.T) {
	sent := mustBuild(t, &Frame{Dst: macB, Src: macA, Seq: 7, Random: [4]byte{9}, Body: []byte("x")}, TxOptions{})
	var f Frame
	if err := Parse(sent, &f); err != nil || !f.TxStatus || f.TxFailed {
		t.Fatalf("our own injection header: %v %+v", err, f)
	}
	if err := Parse(statusOf(sent, true), &f); err != nil || !f.TxStatus || !f.TxFailed || f.Seq != 7 || f.Random != [4]byte{9} {
		t.Fatalf("failed report: %v %+v", err, f)
	}
	// A received frame (no TX flags) is no report.
	if err := Parse(cat(rtChanSignal, dot11Of(sent)), &f); err != nil || f.TxStatus {
		t.Fatalf("received frame: %v %+v", err, f)
	}
}

// TestLinkTxStatus: once the card is seen to report transmit status, each
// datagram completes on its report, a unicast the receiver never
// acknowledged with link.ErrNoAck, and one whose report never comes after
// StatusWait with nil.
func TestLinkTxStatus(t *testing.T) {
	l, c, loop := newFakeLink(t, Config{StatusWait: 20 * time.Millisecond})
	var r linktest.Recorder
	l.Attach(&r)
	send := func(dst link.Addr, body string) (link.Tag, []byte) {
		t.Helper()
		tag, err := r.Send(l, dst, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case b := <-c.out:
			return tag, b
		case <-time.After(patience):
			t.Fatal("nothing written")
		}
		return 0, nil
	}
	done := func(tag link.Tag) (bool, error) {
		flushLoop(t, loop)
		return r.Done(tag)
	}
	// Before any report: completion when the socket took it.
	tag, b := send(macB, "first")
	if !waitFor(func() bool { ok, _ := done(tag); return ok }) {
		t.Fatal("first datagram not completed")
	}
	c.in <- statusOf(b, true) // its late report teaches the link that reports come
	if !waitFor(func() bool { return l.TxStatus().Reports == 1 }) {
		t.Fatal("report not seen")
	}

	// A unicast nobody acknowledged.
	tag, b = send(macB, "unheard")
	if ok, _ := done(tag); ok {
		t.Fatal("completed before its report")
	}
	c.in <- statusOf(b, true)
	if !waitFor(func() bool { ok, _ := done(tag); return ok }) {
		t.Fatal("not completed on its report")
	}
	if _, err := done(tag); !errors.Is(err, link.ErrNoAck) {
		t.Fatalf("unacknowledged unicast: %v, want ErrNoAck", err)
	}

	// Two datagrams whose reports come back in the other order.
	t1, b1 := send(macB, "one")
	t2, b2 := send(BroadcastMAC, "two")
	c.in <- statusOf(b2, true) // a broadcast expects no acknowledgement
	c.in <- statusOf(b1, false)
	if !waitFor(func() bool { a, _ := done(t1); b, _ := done(t2); return a && b }) {
		t.Fatal("not completed")
	}
	if _, err := done(t1); err != nil {
		t.Fatalf("acknowledged unicast: %v", err)
	}
	if _, err := done(t2); err != nil {
		t.Fatalf("broadcast: %v", err)
	}

	// A report that never comes.
	tag, _ = send(macB, "lost report")
	if !waitFor(func() bool { ok, _ := done(tag); return ok }) {
		t.Fatal("not completed without its report")
	}
	if _, err := done(tag); err != nil {
		t.Fatalf("missing report: %v", err)
	}
	st := l.TxStatus()
	if st.Reports != 4 || st.NoAcks != 1 || st.Missing != 1 {
		t.Fatalf("status counters %+v", st)
	}
	r.Check(t)
}

// With Config.Adapt the link learns, from the card's status reports, the
// rate of best throughput toward a peer: here one that hears every frame
// sent at up to 11 Mbit/s and none faster (9 Mbit/s OFDM is the best of
// those). Samples go with one try and, failing, again at the best rate
// under the same tag: every datagram completes once.
func TestLinkAdaptsRate(t *testing.T) {
	l, c, loop := newFakeLink(t, Config{Adapt: true, StatusWait: time.Minute, TxQueue: 4})
	var r linktest.Recorder
	l.Attach(&r)
	// The card: reports each frame, failed above 11 Mbit/s.
	samples := 0
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case b := <-c.out:
				var f Frame
				if err := Parse(bytes.Clone(b), &f); err != nil || f.Dst == BroadcastMAC {
					continue
				}
				rate := Rate(int(b[8]) * 500)
				if b[2] == TxRadiotapLen+1 && b[12] == 0 {
					samples++ // one try at a sampled rate
				}
				c.in <- statusOf(b, rate > Rate11M)
			case <-stop:
				return
			}
		}
	}()
	var tags []link.Tag
	for i := range 3000 {
		for {
			tag, err := r.Send(l, macB, []byte{byte(i), byte(i >> 8)})
			if err == nil {
				tags = append(tags, tag)
				break
			}
			if !errors.Is(err, link.ErrBusy) {
				t.Fatal(err)
			}
			flushLoop(t, loop)
		}
	}
	if !waitFor(func() bool { flushLoop(t, loop); return r.TxDoneCount() == len(tags) }) {
		t.Fatalf("%d of %d completed", r.TxDoneCount(), len(tags))
	}
	if got := l.Rate(macB); got != Rate9M {
		t.Fatalf("settled at %v, want 9 Mbit/s", got)
	}
	if samples == 0 {
		t.Fatal("no samples")
	}
	r.Check(t)
	t.Logf("settled at %v after %d samples", l.Rate(macB), samples)
}
