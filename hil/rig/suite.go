package rig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mycelium-mesh/mycelium/hil/air"
)

// Result is one test's outcome.
type Result struct {
	Name    string  `json:"name"`
	OK      bool    `json:"ok"`
	Seconds float64 `json:"seconds"`
	Skipped bool    `json:"skipped,omitempty"`
	Error   string  `json:"error,omitempty"`
	// Frames the virtual air carried during the test.
	Frames *air.Counts `json:"frames,omitempty"`
}

// Report is the suite's outcome, as `mycelium hil run --json` prints it.
type Report struct {
	Rack    string   `json:"rack"`
	Passed  int      `json:"passed"`
	Failed  int      `json:"failed"`
	Skipped int      `json:"skipped"`
	Tests   []Result `json:"tests"`
	// Memory is each board's gc.mem_alloc() after a collection, in bytes:
	// idle (between tests, the lowest) and its peak during transfers
	// (sampled every 64 loop steps while one is in progress).
	Memory map[string]BoardMemory `json:"memory,omitempty"`
}

// BoardMemory are a board's heap figures.
type BoardMemory struct {
	Idle int `json:"idle"`
	Peak int `json:"peak"`
}

// Test is one test of the suite.
type Test struct {
	Name string
	// Needs says what the rack must have (boards, nodes, virtual power);
	// a rack without it skips the test, saying why.
	Needs func(e *Env) string
	Run   func(ctx context.Context, e *Env) error
}

// Run runs the tests whose names contain filter ("" for all) and reports.
func Run(ctx context.Context, e *Env, tests []Test, filter string, progress io.Writer) Report {
	rep := Report{Rack: e.Rack.Name}
	for _, t := range tests {
		if filter != "" && !strings.Contains(t.Name, filter) {
			continue
		}
		r := Result{Name: t.Name}
		if t.Needs != nil {
			if why := t.Needs(e); why != "" {
				r.Skipped, r.Error = true, why
				rep.Skipped++
				rep.Tests = append(rep.Tests, r)
				fmt.Fprintf(progress, "SKIP %s: %s\n", t.Name, why)
				continue
			}
		}
		var before air.Counts
		if e.Air != nil {
			before = e.Air.Counts()
		}
		tctx, cancel := context.WithTimeout(ctx, e.Rack.Suite.Timeout.Duration)
		start := time.Now()
		err := t.Run(tctx, e)
		cancel()
		r.Seconds = time.Since(start).Seconds()
		if e.Air != nil {
			after := e.Air.Counts()
			r.Frames = &air.Counts{BoardTx: after.BoardTx - before.BoardTx, ToBoards: after.ToBoards - before.ToBoards,
				NodeFrames: after.NodeFrames - before.NodeFrames, Dropped: after.Dropped - before.Dropped, Other: after.Other - before.Other}
		}
		if err != nil {
			r.Error = err.Error()
			rep.Failed++
			fmt.Fprintf(progress, "FAIL %s (%.1f s): %v\n", t.Name, r.Seconds, err)
		} else {
			r.OK = true
			rep.Passed++
			fmt.Fprintf(progress, "ok   %s (%.1f s)\n", t.Name, r.Seconds)
		}
		rep.Tests = append(rep.Tests, r)
		rep.memory(ctx, e)
	}
	return rep
}

// memory records each board's idle heap (the lowest seen between tests)
// and its peak during transfers (the highest), over every boot.
func (rep *Report) memory(ctx context.Context, e *Env) {
	if rep.Memory == nil {
		rep.Memory = map[string]BoardMemory{}
	}
	for _, b := range slices.Concat(e.Boards, e.LoRaBoards) {
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := b.Agent.Do(mctx, map[string]any{"cmd": "stats"})
		cancel()
		if err != nil {
			continue
		}
		s, _ := st["stats"].(map[string]any)
		idle, _ := s["mem_alloc"].(float64)
		peak, _ := s["mem_peak"].(float64)
		m, seen := rep.Memory[b.Name]
		if !seen || int(idle) < m.Idle {
			m.Idle = int(idle)
		}
		m.Peak = max(m.Peak, int(peak))
		rep.Memory[b.Name] = m
	}
}

// JUnit writes the report as a JUnit XML file (what CI systems read).
func (rep Report) JUnit(w io.Writer) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type skipped struct {
		Message string `xml:"message,attr"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      string   `xml:"time,attr"`
		Failure   *failure `xml:"failure,omitempty"`
		Skipped   *skipped `xml:"skipped,omitempty"`
	}
	type testsuite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Skipped  int        `xml:"skipped,attr"`
		Time     string     `xml:"time,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	type testsuites struct {
		XMLName xml.Name    `xml:"testsuites"`
		Suites  []testsuite `xml:"testsuite"`
	}
	s := testsuite{Name: "hil." + rep.Rack, Tests: len(rep.Tests), Failures: rep.Failed, Skipped: rep.Skipped}
	var total float64
	for _, t := range rep.Tests {
		total += t.Seconds
		c := testcase{Name: t.Name, Classname: "hil." + rep.Rack, Time: fmt.Sprintf("%.3f", t.Seconds)}
		switch {
		case t.Skipped:
			c.Skipped = &skipped{Message: t.Error}
		case !t.OK:
			c.Failure = &failure{Message: t.Error, Text: t.Error}
		}
		s.Cases = append(s.Cases, c)
	}
	s.Time = fmt.Sprintf("%.3f", total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(testsuites{Suites: []testsuite{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteJUnit writes the JUnit file at path.
func (rep Report) WriteJUnit(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.JUnit(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ---- helpers the tests share ----

// poll calls cond until it holds, it fails for good, or ctx ends; it says
// what it was waiting for.
func poll(ctx context.Context, what string, cond func(ctx context.Context) (bool, error)) error {
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond): // polling real processes
		}
	}
}

// Blob is the suite's test data of n bytes: byte i = (7i + 3) mod 256, what
// the agent generates for {"size": n}.
func Blob(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// boardPeers returns a board's neighbours by node_id.
func boardPeers(ctx context.Context, b *Board) (map[string]map[string]any, error) {
	r, err := b.Agent.Do(ctx, map[string]any{"cmd": "peers"})
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]any{}
	ps, _ := r["peers"].([]any)
	for _, p := range ps {
		m, _ := p.(map[string]any)
		id, _ := m["node_id"].(string)
		out[id] = m
	}
	return out, nil
}

func boardStat(ctx context.Context, b *Board, key string) (int, error) {
	r, err := b.Agent.Do(ctx, map[string]any{"cmd": "stats"})
	if err != nil {
		return 0, err
	}
	m, _ := r["stats"].(map[string]any)
	v, ok := m[key].(float64)
	if !ok {
		return 0, fmt.Errorf("stats: no %s", key)
	}
	return int(v), nil
}

// boardSend starts a send on board from and returns its request id; the
// "sent" event with that id ends it.
func boardSend(ctx context.Context, from *Board, to string, size int, extra map[string]any) (int, error) {
	req := map[string]any{"cmd": "send", "to": to, "app": TestApp, "size": size}
	for k, v := range extra {
		req[k] = v
	}
	if _, err := from.Agent.Do(ctx, req); err != nil {
		return 0, err
	}
	return from.Agent.LastID(), nil
}

// boardSent waits for the end of send id on board b.
func boardSent(ctx context.Context, b *Board, id int) (ok bool, code string, err error) {
	ev, err := b.Agent.Wait(ctx, Event("sent", id))
	if err != nil {
		return false, "", fmt.Errorf("%s: no end of send %d: %w", b.Name, id, err)
	}
	ok, _ = ev["ok"].(bool)
	code = fmt.Sprint(ev["error"])
	return ok, code, nil
}

// boardGot waits until board b has received a Package of the test app with
// that SHA-256.
func boardGot(ctx context.Context, b *Board, sum string) error {
	return poll(ctx, b.Name+" receives the Package", func(ctx context.Context) (bool, error) {
		r, err := b.Agent.Do(ctx, map[string]any{"cmd": "received"})
		if err != nil {
			return false, err
		}
		rs, _ := r["received"].([]any)
		for _, x := range rs {
			m, _ := x.(map[string]any)
			if m["sha256"] == sum {
				return true, nil
			}
		}
		return false, nil
	})
}
