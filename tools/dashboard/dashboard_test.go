package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mycelium-mesh/mycelium/tools/control"
)

// fakeSource counts its samples; its peers grow by one a sample.
type fakeSource struct {
	mu     sync.Mutex
	n      int
	traced []string
}

func (f *fakeSource) Sample(ctx context.Context) (*Sample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	s := &Sample{Time: time.Now(), Node: Node{ID: "ab", Name: "alpha"}, Peers: []control.Peer{}, Trees: []Tree{}, Errors: []RoutedError{}}
	for i := 1; i < f.n; i++ {
		s.Peers = append(s.Peers, control.Peer{NodeID: "cd", Name: "bravo"})
	}
	return s, nil
}

func (f *fakeSource) Trace(ctx context.Context, target string) (*TraceResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.traced = append(f.traced, target)
	if target == "nobody" {
		return nil, errors.New("unknown target")
	}
	return &TraceResult{TraceResult: control.TraceResult{Target: target, Hops: []control.Hop{{Hop: 1, NodeID: "cd"}}, Complete: true}}, nil
}

// streamRecorder is a ResponseWriter that flushes into a buffer.
type streamRecorder struct {
	mu  sync.Mutex
	h   http.Header
	buf strings.Builder
}

func (r *streamRecorder) Header() http.Header { return r.h }
func (r *streamRecorder) WriteHeader(int)     {}
func (r *streamRecorder) Flush()              {}
func (r *streamRecorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(b)
}
func (r *streamRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// events parses a stream into (name, data) pairs.
func events(s string) [][2]string {
	var out [][2]string
	for _, block := range strings.Split(s, "\n\n") {
		var name, data string
		for _, line := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				data = v
			}
		}
		if name != "" {
			out = append(out, [2]string{name, data})
		}
	}
	return out
}

// A page that connects gets the history, then one sample a second, and its
// stream ends when the server stops.
func TestEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{}
		s := New(src, Config{Interval: time.Second, History: 2})
		ctx, stop := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { s.Run(ctx); close(ran) }()
		time.Sleep(2500 * time.Millisecond) // virtual: samples at 0, 1 and 2 s
		synctest.Wait()

		rec := &streamRecorder{h: http.Header{}}
		served := make(chan struct{})
		go func() {
			s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/events", nil))
			close(served)
		}()
		time.Sleep(2 * time.Second) // samples at 3 and 4 s
		synctest.Wait()
		evs := events(rec.String())
		if len(evs) != 3 || evs[0][0] != "history" || evs[1][0] != "sample" || evs[2][0] != "sample" {
			t.Fatalf("events %v", evs)
		}
		var hist []Sample
		if err := json.Unmarshal([]byte(evs[0][1]), &hist); err != nil || len(hist) != 2 || len(hist[1].Peers) != 2 {
			t.Fatalf("history (the last 2 samples) %s: %v", evs[0][1], err)
		}
		var last Sample
		if err := json.Unmarshal([]byte(evs[2][1]), &last); err != nil || len(last.Peers) != 4 || last.Node.Name != "alpha" {
			t.Fatalf("last sample %s: %v", evs[2][1], err)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		stop()
		<-ran
		<-served // the stream ends with the server
	})
}

func TestPageAndAPI(t *testing.T) {
	src := &fakeSource{}
	h := New(src, Config{}).Handler()
	do := func(method, path, ct, origin, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	page := do(http.MethodGet, "/", "", "", "")
	if page.Code != 200 || !strings.Contains(page.Body.String(), `<script src="/assets/app.js">`) ||
		!strings.HasPrefix(page.Header().Get("Content-Type"), "text/html") || page.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("GET /: %d %v", page.Code, page.Header())
	}
	for _, a := range []string{"app.js", "mesh.js", "style.css"} {
		if r := do(http.MethodGet, "/assets/"+a, "", "", ""); r.Code != 200 || r.Body.Len() == 0 {
			t.Fatalf("GET /assets/%s: %d", a, r.Code)
		}
	}
	if r := do(http.MethodGet, "/assets/nothing.js", "", "", ""); r.Code != 404 {
		t.Fatalf("a missing asset: %d", r.Code)
	}
	if r := do(http.MethodGet, "/api/sample", "", "", ""); r.Code != 200 || !strings.Contains(r.Body.String(), `"name":"alpha"`) {
		t.Fatalf("GET /api/sample: %d %s", r.Code, r.Body)
	}
	// The ping form: JSON from this server's page only.
	if r := do(http.MethodPost, "/api/trace", "application/x-www-form-urlencoded", "", "target=bravo"); r.Code != 403 {
		t.Fatalf("a form post: %d", r.Code)
	}
	if r := do(http.MethodPost, "/api/trace", "application/json", "http://evil.example", `{"target":"bravo"}`); r.Code != 403 {
		t.Fatalf("another origin: %d", r.Code)
	}
	if r := do(http.MethodPost, "/api/trace", "application/json", "", `{"target":" "}`); r.Code != 400 {
		t.Fatalf("an empty target: %d", r.Code)
	}
	if r := do(http.MethodPost, "/api/trace", "application/json", "", `{"target":"bravo","x":1}`); r.Code != 400 {
		t.Fatalf("an unknown field: %d", r.Code)
	}
	if r := do(http.MethodPost, "/api/trace", "application/json", "", `{"target":"nobody"}`); r.Code != 502 || !strings.Contains(r.Body.String(), "unknown target") {
		t.Fatalf("a failed trace: %d %s", r.Code, r.Body)
	}
	r := do(http.MethodPost, "/api/trace", "application/json", "http://example.com", `{"target":"bravo"}`)
	if r.Code != 200 || !strings.Contains(r.Body.String(), `"complete":true`) {
		t.Fatalf("a trace: %d %s", r.Code, r.Body)
	}
	if len(src.traced) != 2 || src.traced[1] != "bravo" {
		t.Fatalf("traced %v (refused requests must not reach the node)", src.traced)
	}
}
