package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l4-apps/admin"
	"github.com/mycelium-mesh/mycelium/l4-apps/gossip"
	"github.com/mycelium-mesh/mycelium/l4-apps/messages"
	"github.com/mycelium-mesh/mycelium/l4-apps/services"
	"github.com/mycelium-mesh/mycelium/l4-apps/stream"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// sendPatience bounds one send from the request to the destination's
// confirmation.
const sendPatience = time.Hour

func (d *daemon) handleSend(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	target, appArg := q.Get("target"), q.Get("app")
	if target == "" || appArg == "" {
		failure(w, badRequestf("send: target and app are required (?target=NAME|NODE_ID&app=NAME|HEX)"))
		return
	}
	app, err := control.ParseApp(appArg)
	if err != nil {
		failure(w, badRequestf("%v", err))
		return
	}
	limit := d.cfg.Stream.MaxSize
	if s := q.Get("size"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err != nil || n < 0 || n > int64(limit) {
			failure(w, badRequestf("send: %s bytes: at most stream.max_size = %d", s, limit))
			return
		}
	}
	blob, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		failure(w, badRequestf("send: reading the data: %v", err))
		return
	}
	switch {
	case len(blob) > limit:
		failure(w, badRequestf("send: more than stream.max_size = %d bytes", limit))
		return
	case len(blob) == 0:
		failure(w, badRequestf("send: nothing to send (empty input)"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), sendPatience)
	defer cancel()
	id, _, err := d.find(ctx, target)
	if err != nil {
		failure(w, err)
		return
	}
	// From here the answer is a stream of lines: progress, then the end.
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	emit := func(ev control.SendEvent) {
		enc.Encode(ev)
		if flusher != nil {
			flusher.Flush()
		}
	}
	var (
		mu        sync.Mutex
		confirmed int
	)
	notify := make(chan struct{}, 1)
	done := make(chan error, 1)
	var start, end time.Time
	err = d.st.do(ctx, func() {
		start = d.st.loop.Now()
		d.st.streams.Send(id, app, blob, func(c, _ int) {
			mu.Lock()
			confirmed = c
			mu.Unlock()
			select {
			case notify <- struct{}{}:
			default:
			}
		}).OnDone(func(err error) {
			end = d.st.loop.Now()
			done <- err
		})
	})
	if err != nil {
		emit(control.SendEvent{Error: &control.Error{Error: err.Error(), Code: errorCode(err)}})
		return
	}
	for {
		select {
		case <-notify:
			mu.Lock()
			c := confirmed
			mu.Unlock()
			emit(control.SendEvent{Progress: &control.SendProgress{Confirmed: c, Total: len(blob)}})
		case err := <-done:
			if err != nil {
				d.log.Info("send failed", "target", target, "bytes", len(blob), "err", err)
				emit(control.SendEvent{Error: &control.Error{Error: err.Error(), Code: errorCode(err)}})
				return
			}
			sum := sha256.Sum256(blob)
			secs := end.Sub(start).Seconds()
			res := control.SendResult{
				Target: target, NodeID: id.String(), App: hex.EncodeToString(app[:]), Bytes: len(blob),
				SHA256: hex.EncodeToString(sum[:]), Seconds: secs, Streamed: len(blob) > d.st.streams.Chunk(),
			}
			if secs > 0 {
				res.GoodputBps = float64(len(blob)) * 8 / secs
			}
			d.noteID(id)
			d.log.Info("send confirmed", "target", target, "bytes", len(blob), "seconds", secs, "goodput_bps", res.GoodputBps)
			emit(control.SendEvent{Result: &res})
			return
		case <-ctx.Done():
			emit(control.SendEvent{Error: &control.Error{Error: fmt.Sprintf("send: %v", ctx.Err()), Code: errorCode(ctx.Err())}})
			return
		}
	}
}

// listeners hold the applications local clients listen to; Packages for
// an application nobody listens to are refused (node.ErrUnknownApp goes
// back to the sender).
type listeners struct {
	mu   sync.Mutex
	apps map[packet.AppID]map[*listener]bool
}

// listener is one client of GET /v1/listen.
type listener struct {
	ch      chan control.Received
	dropped int // deliveries lost because the client read too slowly
}

// listenerBacklog bounds the Packages waiting for one slow client.
const listenerBacklog = 64

func (ls *listeners) has(app packet.AppID) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.apps[app]) > 0
}

// add registers a listener; first reports whether it is the app's first.
func (ls *listeners) add(app packet.AppID, l *listener) (first bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.apps == nil {
		ls.apps = map[packet.AppID]map[*listener]bool{}
	}
	if ls.apps[app] == nil {
		ls.apps[app] = map[*listener]bool{}
		first = true
	}
	ls.apps[app][l] = true
	return first
}

// remove drops a listener; last reports whether the app has none left.
func (ls *listeners) remove(app packet.AppID, l *listener) (last bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	delete(ls.apps[app], l)
	if len(ls.apps[app]) == 0 {
		delete(ls.apps, app)
		return true
	}
	return false
}

// deliver hands a Package to every listener of its app (never blocking:
// the loop calls it); ErrUnknownApp if there are none.
func (ls *listeners) deliver(app packet.AppID, r control.Received) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(ls.apps[app]) == 0 {
		return node.ErrUnknownApp
	}
	for l := range ls.apps[app] {
		select {
		case l.ch <- r:
		default:
			l.dropped++
		}
	}
	return nil
}

func received(app packet.AppID, from string, blob []byte, at time.Time) control.Received {
	sum := sha256.Sum256(blob)
	return control.Received{App: hex.EncodeToString(app[:]), From: from, Size: len(blob), SHA256: hex.EncodeToString(sum[:]), Time: at.UTC().Format(time.RFC3339Nano), Data: blob}
}

// onPlain is the node handler of a listened application: a Package in one
// piece (on the loop).
func (d *daemon) onPlain(m node.Message) {
	// A routed Package does not say who sent it (From is the neighbour
	// that handed it over); one from a neighbour, one hop, does.
	from := ""
	direct := m.Route == nil && m.FromKnown
	if direct {
		from = m.From.String()
	}
	r := received(m.App, from, m.Blob, m.Time)
	if direct {
		r.FromName, _ = d.st.router.NameOf(m.From)
	}
	d.lis.deliver(m.App, r)
}

// onStream is the stream service's delivery (on the loop).
func (d *daemon) onStream(m stream.Message) error {
	r := received(m.App, m.From.String(), m.Blob, m.Time)
	r.FromName, _ = d.st.router.NameOf(m.From)
	d.noteID(m.From)
	return d.lis.deliver(m.App, r)
}

func (d *daemon) handleListen(w http.ResponseWriter, r *http.Request) {
	app, err := control.ParseApp(r.URL.Query().Get("app"))
	if err != nil {
		failure(w, badRequestf("%v", err))
		return
	}
	switch app {
	case stream.AppID, PingApp, gossip.AppID, services.AppID, messages.AppID, admin.AppID:
		failure(w, badRequestf("listen: %x is the node's own application", app[:]))
		return
	}
	l := &listener{ch: make(chan control.Received, listenerBacklog)}
	if d.lis.add(app, l) {
		if err := d.st.do(r.Context(), func() { d.st.node.Register(app, d.onPlain) }); err != nil {
			d.lis.remove(app, l)
			failure(w, err)
			return
		}
	}
	defer func() {
		if d.lis.remove(app, l) {
			// The loop may be gone (shutdown): nothing to unregister then.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = d.st.do(ctx, func() {
				if !d.lis.has(app) {
					d.st.node.Unregister(app)
				}
			})
			cancel()
		}
	}()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush() // the client knows it listens from here on
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case rcv := <-l.ch:
			if err := enc.Encode(rcv); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-r.Context().Done():
			return
		}
	}
}
