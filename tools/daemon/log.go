package daemon

import (
	"io"
	"log/slog"
	"os"
	"strings"

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

// newLogger makes the daemon's logger: text on a terminal, JSON otherwise
// (under systemd the journal keeps the fields), unless log.format says.
// The level can change on reload (level).
func newLogger(w io.Writer, cfg LogConfig, level *slog.LevelVar) *slog.Logger {
	l, _ := parseLevel(cfg.Level)
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
