// Package admin is node management: a sandboxed Starlark interpreter
// (go.starlark.net) whose only way to the world is the builtins the node
// hands it — status, peers, trees, stats, an allow-listed configuration,
// ping, send, links up and down, the log level — never files, processes
// or arbitrary code. Every command runs under a step limit, is audited (who,
// what, result) in the node's log and an append-only audit file, and is
// rate-limited per operator.
//
// Who may run commands is the caller's to decide: the control socket's
// users locally, and remotely an operator key listed in the node's
// configuration, proven by a signature over a fresh nonce (remote.go).
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Host is what the builtins reach: the node, as the daemon exposes it.
// Its methods may block (a ping waits for its answer); they are called
// from the command's goroutine, never the node's loop.
type Host interface {
	Status() (map[string]any, error)
	Peers() ([]any, error)
	Trees() ([]any, error)
	Stats() (map[string]any, error)
	// ConfigGet and ConfigSet reach the allow-listed keys only (the
	// daemon's list); anything else is an error.
	ConfigGet(key string) (string, error)
	ConfigSet(key, value string) error
	Ping(target string, timeout time.Duration) (rttMS float64, err error)
	Send(target, app string, data []byte) error
	LinkUp(index int) error
	LinkDown(index int) error
	LogLevel(level string) error
}

// Config configures an Admin.
type Config struct {
	Host Host
	// Steps bounds one command's Starlark steps (default 1,000,000: a
	// fraction of a second).
	Steps uint64
	// Rate and Burst limit each operator's commands: Burst at once, then
	// Rate a minute (defaults 30 and 10).
	Rate, Burst int
	// AuditFile is the append-only audit file ("" for none: the log only).
	AuditFile string
	// MaxOutput bounds a command's printed output and result (default 64 KiB).
	MaxOutput int
	Logger    *slog.Logger
	Now       func() time.Time // default time.Now
}

// Errors.
var (
	ErrRateLimited = errors.New("admin: rate limit: too many commands")
	ErrRefused     = errors.New("admin: refused: not an operator")
	ErrSteps       = errors.New("admin: step limit reached")
)

// Admin runs commands. Safe for concurrent use.
type Admin struct {
	cfg     Config
	mu      sync.Mutex
	buckets map[string]*bucket
	audit   *os.File
}

type bucket struct {
	tokens float64
	at     time.Time
}

// New opens the audit file (append-only, 0600) and returns an Admin.
func New(c Config) (*Admin, error) {
	if c.Steps == 0 {
		c.Steps = 1_000_000
	}
	if c.Rate <= 0 {
		c.Rate = 30
	}
	if c.Burst <= 0 {
		c.Burst = 10
	}
	if c.MaxOutput <= 0 {
		c.MaxOutput = 64 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	a := &Admin{cfg: c, buckets: map[string]*bucket{}}
	if c.AuditFile != "" {
		f, err := os.OpenFile(c.AuditFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("admin audit file: %w", err)
		}
		a.audit = f
	}
	return a, nil
}

// Close closes the audit file.
func (a *Admin) Close() error {
	if a.audit != nil {
		return a.audit.Close()
	}
	return nil
}

// AuditRecord is one line of the audit file.
type AuditRecord struct {
	Time     string `json:"time"`
	Operator string `json:"operator"` // "local:UID" or the operator key in hex
	Via      string `json:"via"`      // local or remote
	Command  string `json:"command"`
	Outcome  string `json:"outcome"` // ok, error, refused, rate_limited
	Result   string `json:"result"`  // the result or error, truncated
}

// Audit records an event (a refusal the caller decided, say).
func (a *Admin) Audit(operator, via, command, outcome, result string) {
	trunc := func(s string, n int) string {
		if len(s) > n {
			return s[:n] + "…"
		}
		return s
	}
	r := AuditRecord{Time: a.cfg.Now().UTC().Format(time.RFC3339Nano), Operator: operator, Via: via,
		Command: trunc(command, 1024), Outcome: outcome, Result: trunc(result, 1024)}
	a.cfg.Logger.Info("admin command", "operator", r.Operator, "via", via, "command", r.Command, "outcome", outcome, "result", trunc(result, 200))
	if a.audit == nil {
		return
	}
	b, _ := json.Marshal(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.audit.Write(append(b, '\n')); err != nil {
		a.cfg.Logger.Error("admin audit file not written", "err", err)
	}
}

// allow takes a token from the operator's bucket.
func (a *Admin) allow(op string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	b := a.buckets[op]
	if b == nil {
		if len(a.buckets) > 10000 {
			clear(a.buckets) // bounded: forget idle operators
		}
		b = &bucket{tokens: float64(a.cfg.Burst), at: now}
		a.buckets[op] = b
	}
	b.tokens = min(float64(a.cfg.Burst), b.tokens+now.Sub(b.at).Minutes()*float64(a.cfg.Rate))
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Exec runs one command for an operator and audits it. The result is the
// expression's value (a statement's: what it printed), as Starlark prints
// it.
func (a *Admin) Exec(operator, via, src string) (string, error) {
	if !a.allow(operator) {
		a.Audit(operator, via, src, "rate_limited", "")
		return "", fmt.Errorf("%w: %d at once, %d a minute", ErrRateLimited, a.cfg.Burst, a.cfg.Rate)
	}
	out, err := a.run(src)
	if err != nil {
		a.Audit(operator, via, src, "error", err.Error())
		return out, err
	}
	a.Audit(operator, via, src, "ok", out)
	return out, nil
}

func (a *Admin) run(src string) (string, error) {
	var printed strings.Builder
	th := &starlark.Thread{Name: "admin", Print: func(_ *starlark.Thread, msg string) {
		if printed.Len() < a.cfg.MaxOutput {
			printed.WriteString(msg)
			printed.WriteByte('\n')
		}
	}}
	th.SetMaxExecutionSteps(a.cfg.Steps)
	opts := &syntax.FileOptions{While: true, TopLevelControl: true, GlobalReassign: true, Recursion: false}
	pre := a.builtins()
	var result string
	if expr, err := opts.ParseExpr("<admin>", src, 0); err == nil {
		v, err := starlark.EvalExprOptions(opts, th, expr, pre)
		if err != nil {
			return printed.String(), a.stepErr(th, err)
		}
		if v != starlark.None {
			result = v.String()
		}
	} else {
		if _, err := starlark.ExecFileOptions(opts, th, "<admin>", src, pre); err != nil {
			return printed.String(), a.stepErr(th, err)
		}
	}
	out := printed.String() + result
	if len(out) > a.cfg.MaxOutput {
		out = out[:a.cfg.MaxOutput] + "…"
	}
	return strings.TrimRight(out, "\n"), nil
}

func (a *Admin) stepErr(th *starlark.Thread, err error) error {
	if th.ExecutionSteps() >= a.cfg.Steps {
		return fmt.Errorf("%w (%d steps): %v", ErrSteps, a.cfg.Steps, err)
	}
	return err
}

// Builtins lists the names a command can use.
func (a *Admin) Builtins() []string {
	var out []string
	for k := range a.builtins() {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
