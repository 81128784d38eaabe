package rig

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/mycelium-mesh/mycelium/hil/repl"
)

// Agent drives the control agent of a board (boards/esp32/agent.py): one
// JSON object a line each way; replies carry "re", the request's "id";
// events ("boot", "sent", "received") come between them.
type Agent struct {
	c *repl.Conn

	mu     sync.Mutex
	id     int
	events []map[string]any
}

// NewAgent talks to the agent on c.
func NewAgent(c *repl.Conn) *Agent { return &Agent{c: c} }

// Conn is the board's port.
func (a *Agent) Conn() *repl.Conn { return a.c }

// readLine reads the next JSON line; other output (a boot banner) is
// skipped. Called with a.mu held.
func (a *Agent) readLine(ctx context.Context) (map[string]any, error) {
	for {
		b, err := a.c.Until(ctx, []byte("\n"))
		if err != nil {
			return nil, err
		}
		s := strings.TrimSpace(string(b))
		if os.Getenv("HIL_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "agent< %q\n", s)
		}
		if !strings.HasPrefix(s, "{") {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			continue
		}
		return m, nil
	}
}

// Do sends a request and waits for its reply; a reply with ok false is an
// error.
func (a *Agent) Do(ctx context.Context, req map[string]any) (map[string]any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.id++
	id := a.id
	req["id"] = id
	b, _ := json.Marshal(req)
	if err := a.c.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	for {
		m, err := a.readLine(ctx)
		if err != nil {
			return nil, fmt.Errorf("agent %v: %w", req["cmd"], err)
		}
		if _, ok := m["event"]; ok {
			a.events = append(a.events, m)
			continue
		}
		if re, ok := m["re"].(float64); ok && int(re) == id {
			if ok, _ := m["ok"].(bool); !ok {
				return m, fmt.Errorf("agent %v: %v", req["cmd"], m["error"])
			}
			return m, nil
		}
	}
}

// Wait returns the first event (seen before, or read now) that match
// accepts, and forgets it.
func (a *Agent) Wait(ctx context.Context, match func(map[string]any) bool) (map[string]any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, e := range a.events {
		if match(e) {
			a.events = append(a.events[:i], a.events[i+1:]...)
			return e, nil
		}
	}
	for {
		m, err := a.readLine(ctx)
		if err != nil {
			return nil, err
		}
		if _, ok := m["event"]; !ok {
			continue
		}
		if match(m) {
			return m, nil
		}
		a.events = append(a.events, m)
		if len(a.events) > 256 {
			a.events = a.events[1:]
		}
	}
}

// Forget drops the events seen so far.
func (a *Agent) Forget() {
	a.mu.Lock()
	a.events = nil
	a.mu.Unlock()
}

// Event matches an event by name (and, if id > 0, its request id).
func Event(name string, id int) func(map[string]any) bool {
	return func(m map[string]any) bool {
		if m["event"] != name {
			return false
		}
		if id > 0 {
			v, _ := m["id"].(float64)
			return int(v) == id
		}
		return true
	}
}

// LastID is the id of the latest request.
func (a *Agent) LastID() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id
}
