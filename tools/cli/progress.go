package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

// progressModes are the values of --progress.
var progressModes = []string{"auto", "bar", "lines", "never"}

const progressHelp = "progress on stderr: auto (a bar when stderr is a terminal, else lines), bar, lines (a line per stage), never"

// Redraw and line intervals: a bar at most ten times a second; in line
// mode, a percentage line when a stage has run this long since the last.
const (
	barEvery  = 100 * time.Millisecond
	lineEvery = 10 * time.Second
)

// progress shows a long run's stage on stderr. On a terminal it is one
// line, redrawn, with the stage and its percentage; otherwise (a pipe, a
// file) it writes a line when a stage begins, and a percentage line every
// lineEvery within a long stage, so a log shows the run is alive.
type progress struct {
	w      io.Writer
	bar    bool
	now    func() time.Time
	prefix string // what the stage belongs to ("500 nodes, mode 1: ")
	stage  string
	pct    int
	last   time.Time
	drawn  bool
}

// newProgress returns the progress for mode (one of progressModes), or nil
// for none. A nil *progress accepts every call and shows nothing.
func newProgress(mode string, w io.Writer) *progress {
	p := &progress{w: w, now: time.Now, pct: -1}
	switch mode {
	case "never":
		return nil
	case "bar":
		p.bar = true
	case "lines":
	default:
		f, ok := w.(*os.File)
		p.bar = ok && term.IsTerminal(int(f.Fd()))
	}
	return p
}

// fn returns the progress as a meshsim.Progress (nil for none, so that the
// simulator skips counting).
func (p *progress) fn() meshsim.Progress {
	if p == nil {
		return nil
	}
	return p.report
}

// report is a meshsim.Progress: stage, and done of total (total 0: no
// percentage).
func (p *progress) report(stage string, done, total int) {
	if p == nil {
		return
	}
	pct := -1
	if total > 0 {
		pct = min(100, max(0, 100*done/total))
	}
	now := p.now()
	name := p.prefix + stage
	switch {
	case name != p.stage:
		p.stage, p.pct, p.last = name, pct, now
		p.show(!p.bar) // a line names the stage; its percentages follow

	case pct == p.pct:
	case p.bar && now.Sub(p.last) >= barEvery, !p.bar && now.Sub(p.last) >= lineEvery:
		p.pct, p.last = pct, now
		p.show(false)
	}
}

func (p *progress) show(nameOnly bool) {
	if p.bar {
		if p.pct >= 0 {
			fmt.Fprintf(p.w, "\r\x1b[K%s %3d%%", p.stage, p.pct)
		} else {
			fmt.Fprintf(p.w, "\r\x1b[K%s", p.stage)
		}
		p.drawn = true
		return
	}
	if !nameOnly && p.pct >= 0 {
		fmt.Fprintf(p.w, "%s: %d%%\n", p.stage, p.pct)
	} else {
		fmt.Fprintf(p.w, "%s\n", p.stage)
	}
}

// finish clears the bar (so that the result, or an error, starts on a
// clean line).
func (p *progress) finish() {
	if p != nil && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}
