// Package dashboard serves a node's live web dashboard: its identity and
// links, the peer table, each tree drawn (root, the path to it, children),
// traffic per link over time, recent routed errors, and a ping/traceroute
// form that draws the path. The page and its script are embedded (no
// network at build or run time); updates reach the browser as server-sent
// events, one sample a second for every open page, not one poll per page
// per panel.
//
// The dashboard reads the node through a Source, which the daemon
// implements; it knows nothing of the layers below.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mycelium-mesh/mycelium/tools/control"
)

//go:embed assets
var assets embed.FS

// Source is what the dashboard shows: a node, read on demand.
type Source interface {
	// Sample reads the node's state now.
	Sample(ctx context.Context) (*Sample, error)
	// Trace pings target (a name or node_id) once and traces the route
	// to it.
	Trace(ctx context.Context, target string) (*TraceResult, error)
}

// Sample is the node's state at one moment, as the page draws it.
type Sample struct {
	Time   time.Time      `json:"time"`
	Node   Node           `json:"node"`
	Links  []Link         `json:"links"`
	Peers  []control.Peer `json:"peers"`
	Trees  []Tree         `json:"trees"`
	Errors []RoutedError  `json:"errors"` // the most recent last
}

// Node is the node's identity.
type Node struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Version    string  `json:"version"`
	UptimeS    float64 `json:"uptime_s"`
	Registered bool    `json:"registered"`
}

// Link is one link's counters (cumulative: the page plots their rates):
// the control API's view of it, and more.
type Link struct {
	control.Link
	AirtimeS      float64           `json:"airtime_s"`       // time spent transmitting, where the link knows
	DropsByReason map[string]uint64 `json:"drops_by_reason"` // non-zero only
}

// Tree is this node's place in one tree.
type Tree struct {
	Tree      int    `json:"tree"`
	TreeState int    `json:"tree_state"`
	Address   string `json:"address"`
	Depth     int    `json:"depth"`
	IsRoot    bool   `json:"is_root"`
	// Path runs from the root to this node (both included).
	Path []Member `json:"path"`
	// Children are the neighbours placed under this node.
	Children []Member `json:"children"`
	// Neighbors are the other neighbours with a verified place.
	Neighbors []Member `json:"neighbors"`
}

// Member is a node with a place in a tree.
type Member struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
}

// RoutedError is one routing error this node saw.
type RoutedError struct {
	Time time.Time `json:"time"`
	What string    `json:"what"`
}

// TraceResult answers the page's ping form: the trace (as the control
// API's), and the ping's round trip.
type TraceResult struct {
	control.TraceResult
	RTTms *float64 `json:"rtt_ms,omitempty"` // the ping's round trip, if it came back
	Error string   `json:"error,omitempty"`  // why the ping or the trace failed
}

// Config sets the server's pace.
type Config struct {
	// Interval between samples (default 1 s).
	Interval time.Duration
	// History is how many samples a new page gets (default 300).
	History int
	// TraceTimeout bounds a ping/traceroute (default 60 s).
	TraceTimeout time.Duration
}

// Server samples a Source and serves the page and its events.
type Server struct {
	src   Source
	cfg   Config
	sub   chan chan []byte
	unsub chan chan []byte
	done  chan struct{}
}

// New returns a server for src; Run must run for events to flow.
func New(src Source, cfg Config) *Server {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.History <= 0 {
		cfg.History = 300
	}
	if cfg.TraceTimeout <= 0 {
		cfg.TraceTimeout = time.Minute
	}
	return &Server{src: src, cfg: cfg, sub: make(chan chan []byte), unsub: make(chan chan []byte), done: make(chan struct{})}
}

// subBuffer is how many events a page may fall behind before it is cut
// off (its browser reconnects and gets the history again).
const subBuffer = 32

// Run samples the source every Interval and sends each sample to every
// open page, until ctx ends; then every page's stream ends. It owns the
// history and the subscribers.
func (s *Server) Run(ctx context.Context) {
	defer close(s.done)
	subs := map[chan []byte]bool{}
	defer func() {
		for c := range subs {
			close(c)
		}
	}()
	var history []json.RawMessage
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	take := func() {
		sctx, cancel := context.WithTimeout(ctx, s.cfg.Interval*5)
		smp, err := s.src.Sample(sctx)
		cancel()
		if err != nil {
			return // the node is busy or stopping: the page keeps its last sample
		}
		b, err := json.Marshal(smp)
		if err != nil {
			return
		}
		history = append(history, b)
		if len(history) > s.cfg.History {
			history = history[len(history)-s.cfg.History:]
		}
		ev := event("sample", b)
		for c := range subs {
			select {
			case c <- ev:
			default:
				delete(subs, c)
				close(c)
			}
		}
	}
	take()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			take()
		case c := <-s.sub:
			b, _ := json.Marshal(history)
			c <- event("history", b) // c is new and empty
			subs[c] = true
		case c := <-s.unsub:
			if subs[c] {
				delete(subs, c)
				close(c)
			}
		}
	}
}

func event(name string, data []byte) []byte {
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", name, data)
}

// Handler serves the page (/), its assets, the event stream (/events),
// the latest sample (/api/sample) and the ping form (POST /api/trace).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { serveAsset(w, static, "index.html") })
	mux.HandleFunc("GET /assets/{file}", func(w http.ResponseWriter, r *http.Request) { serveAsset(w, static, r.PathValue("file")) })
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /api/sample", s.sample)
	mux.HandleFunc("POST /api/trace", s.trace)
	return mux
}

func serveAsset(w http.ResponseWriter, static fs.FS, name string) {
	b, err := fs.ReadFile(static, name)
	if err != nil {
		http.NotFound(w, nil)
		return
	}
	ct := mime.TypeByExtension(name[strings.LastIndexByte(name, '.'):])
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// The page loads only its own script and style, and talks only to
	// this server.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
	w.Write(b)
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	c := make(chan []byte, subBuffer)
	select {
	case s.sub <- c:
	case <-s.done:
		http.Error(w, "the node is shutting down", http.StatusServiceUnavailable)
		return
	case <-r.Context().Done():
		return
	}
	defer func() {
		select {
		case s.unsub <- c:
		case <-s.done:
		}
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	for {
		select {
		case b, ok := <-c:
			if !ok {
				return
			}
			if _, err := w.Write(b); err != nil {
				return
			}
			fl.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) sample(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	smp, err := s.src.Sample(ctx)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, control.Error{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, smp)
}

// errForbidden: a request that did not come from the page.
var errForbidden = errors.New("dashboard: the ping form takes JSON from the dashboard's own page")

// sameOrigin refuses what another site's page could send: a form post
// (not JSON: a cross-site script cannot send JSON without a preflight we
// never answer) or a request whose Origin is not this server.
func sameOrigin(r *http.Request) error {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return errForbidden
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return errForbidden
		}
	}
	return nil
}

func (s *Server) trace(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		writeJSON(w, http.StatusForbidden, control.Error{Error: err.Error()})
		return
	}
	var req struct {
		Target string `json:"target"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, control.Error{Error: "request body: " + err.Error()})
		return
	}
	if req.Target = strings.TrimSpace(req.Target); req.Target == "" {
		writeJSON(w, http.StatusBadRequest, control.Error{Error: "target: empty (a name or node_id)"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.TraceTimeout)
	defer cancel()
	res, err := s.src.Trace(ctx, req.Target)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, control.Error{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
