package daemon

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// PingApp is the application pings are sent to: every node registers it
// and does nothing with what arrives; the routing layer's end-to-end
// receipt is the echo.
var PingApp = packet.NewAppID("Mycelium", "ping", 1)

// Bounds of a ping request.
const (
	maxPings        = 1000
	defaultPings    = 3
	defaultPingWait = 5 * time.Second
	defaultInterval = time.Second
	maxWait         = 10 * time.Minute
)

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequestf("request body: %v", err)
	}
	return nil
}

func millis(v int, def time.Duration, what string) (time.Duration, error) {
	switch {
	case v == 0:
		return def, nil
	case v < 0 || time.Duration(v)*time.Millisecond > maxWait:
		return 0, badRequestf("%s %d ms: 1..%d", what, v, maxWait.Milliseconds())
	}
	return time.Duration(v) * time.Millisecond, nil
}

func (d *daemon) handlePing(w http.ResponseWriter, r *http.Request) {
	var req control.PingRequest
	if err := decodeJSON(r, &req); err != nil {
		failure(w, err)
		return
	}
	if req.Count == 0 {
		req.Count = defaultPings
	}
	if req.Count < 0 || req.Count > maxPings {
		failure(w, badRequestf("count %d: 1..%d", req.Count, maxPings))
		return
	}
	wait, err := millis(req.TimeoutMS, defaultPingWait, "timeout")
	if err != nil {
		failure(w, err)
		return
	}
	interval, err := millis(req.IntervalMS, defaultInterval, "interval")
	if err != nil {
		failure(w, err)
		return
	}
	ctx := r.Context()
	id, _, err := d.find(ctx, req.Target)
	if err != nil {
		failure(w, err)
		return
	}
	res := control.PingResult{Target: req.Target, NodeID: id.String(), RTTms: []float64{}}
	var nonce [8]byte
	binary.BigEndian.PutUint64(nonce[:], uint64(time.Now().UnixNano()))
	for i := range req.Count {
		if i > 0 {
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				failure(w, ctx.Err())
				return
			}
		}
		blob := binary.BigEndian.AppendUint32(append([]byte("ping"), nonce[:]...), uint32(i))
		rtt, err := d.pingOnce(ctx, id, blob, wait)
		res.Sent++
		if err != nil {
			if errors.Is(err, errStopped) {
				failure(w, err)
				return
			}
			res.Errors = append(res.Errors, err.Error())
			continue
		}
		res.Received++
		res.RTTms = append(res.RTTms, float64(rtt.Microseconds())/1000)
	}
	d.noteID(id)
	writeJSON(w, res)
}

// pingOnce sends one echo request and times its receipt.
func (d *daemon) pingOnce(ctx context.Context, id [32]byte, blob []byte, wait time.Duration) (time.Duration, error) {
	type answer struct {
		rtt time.Duration
		err error
	}
	ch := make(chan answer, 1)
	err := d.st.do(ctx, func() {
		start := d.st.loop.Now()
		d.st.router.Send(id, PingApp, blob, &route.Options{Mode: d.st.mode}).OnDone(func(err error) {
			ch <- answer{d.st.loop.Now().Sub(start), err}
		})
	})
	if err != nil {
		return 0, err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case a := <-ch:
		return a.rtt, a.err
	case <-t.C:
		return 0, fmt.Errorf("no echo within %v", wait)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (d *daemon) handleTrace(w http.ResponseWriter, r *http.Request) {
	var req control.TraceRequest
	if err := decodeJSON(r, &req); err != nil {
		failure(w, err)
		return
	}
	wait, err := millis(req.TimeoutMS, 30*time.Second, "timeout")
	if err != nil {
		failure(w, err)
		return
	}
	id, dst, err := d.find(r.Context(), req.Target)
	if err != nil {
		failure(w, err)
		return
	}
	type answer struct {
		hops []route.TraceHop
		err  error
	}
	ch := make(chan answer, 1)
	if err := d.st.do(r.Context(), func() {
		d.st.router.Trace(dst, &route.Options{Mode: d.st.mode}, func(h []route.TraceHop, err error) { ch <- answer{h, err} })
	}); err != nil {
		failure(w, err)
		return
	}
	var a answer
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case a = <-ch:
	case <-t.C:
		a.err = route.ErrTraceIncomplete // the router's own timeout reports what came; ours is the caller's
	case <-r.Context().Done():
		return
	}
	if a.err != nil && !errors.Is(a.err, route.ErrTraceIncomplete) {
		failure(w, a.err)
		return
	}
	res := control.TraceResult{Target: req.Target, NodeID: id.String(), Hops: []control.Hop{}, Complete: a.err == nil}
	_ = d.st.do(r.Context(), func() {
		for _, h := range a.hops {
			hop := control.Hop{Hop: h.Hop, NodeID: h.ID.String(), Address: h.Addr.String(), RTTms: float64(h.RTT.Microseconds()) / 1000, Link: h.Link}
			hop.Name, _ = d.st.router.NameOf(h.ID)
			res.Hops = append(res.Hops, hop)
		}
	})
	d.noteID(id)
	writeJSON(w, res)
}
