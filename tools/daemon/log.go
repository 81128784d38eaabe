package daemon

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// parseLevel reads log.level.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil || strings.ContainsAny(s, "+-") {
		return 0, configErr("log.level %q: debug, info, warn or error", s)
	}
	return l, nil
}

// newLogger makes the daemon's logger writing to w: text on a terminal
// (tty, where the logs end up), JSON otherwise (under systemd the journal
// keeps the fields), unless log.format says. The level can change on
// reload (level).
func newLogger(w io.Writer, tty io.Writer, cfg LogConfig, level *slog.LevelVar) *slog.Logger {
	l, _ := parseLevel(cfg.Level)
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.Format
	if format == "auto" {
		format = "json"
		if f, ok := tty.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// startGate holds the log lines of a start-up back until the node is up:
// a node that fails to start says one line (its error), not the story of
// the links it opened before the failure.
type startGate struct {
	mu   sync.Mutex
	w    io.Writer
	buf  []byte
	open bool
}

func (g *startGate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		return g.w.Write(p)
	}
	if len(g.buf) < 1<<20 {
		g.buf = append(g.buf, p...)
	}
	return len(p), nil
}

// release writes what was held and lets everything through from now on.
func (g *startGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		g.open = true
		g.w.Write(g.buf)
		g.buf = nil
	}
}
