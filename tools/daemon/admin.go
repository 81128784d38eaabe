package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l4-apps/admin"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// AdminConfig is [admin].
type AdminConfig struct {
	// AuditFile is the append-only audit of every command (0600).
	AuditFile string `toml:"audit_file"`
	// Steps bounds one command's Starlark steps.
	Steps int `toml:"steps"`
	// Rate and Burst limit each operator: Burst commands at once, then
	// Rate a minute.
	Rate  int `toml:"rate"`
	Burst int `toml:"burst"`
	// Operators are the Ed25519 public keys (hex) allowed to run commands
	// from other nodes (mycelium admin TARGET --key FILE).
	Operators []string `toml:"operators"`
}

func (c *Config) checkAdmin() error {
	a := c.Admin
	if a.AuditFile == "" {
		return configErr("admin.audit_file: empty (every command is audited)")
	}
	if a.Steps < 1000 || a.Steps > 1e9 {
		return configErr("admin.steps %d: 1,000..1,000,000,000", a.Steps)
	}
	if a.Rate < 1 || a.Rate > 6000 || a.Burst < 1 || a.Burst > 1000 {
		return configErr("admin.rate %d, admin.burst %d: 1..6,000 a minute, 1..1,000 at once", a.Rate, a.Burst)
	}
	for i, k := range a.Operators {
		if b, err := hex.DecodeString(k); err != nil || len(b) != ed25519.PublicKeySize {
			return configErr("admin.operators[%d] %q: want an Ed25519 public key, 64 hex digits (a node_id: mycelium init --key-only writes one)", i, k)
		}
	}
	return nil
}

// adminConfigKeys are what config_get reads; adminSettable what
// config_set may change (while the node runs).
var (
	adminConfigKeys = []string{"node.name", "node.beacon_period", "log.level", "routing.trees", "routing.metric",
		"gossip.hello_period", "services.refresh", "messages.store"}
	adminSettable = []string{"log.level"}
)

// adminState is admin on this node.
type adminState struct {
	adm       *admin.Admin
	nonces    *admin.Nonces
	operators [][32]byte
	api       http.Handler

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan []byte // remote requests from here, by req
	targets map[uint64]identity.NodeID
}

// startAdmin builds admin once the stack runs.
func (d *daemon) startAdmin() error {
	c := d.cfg.Admin
	st := &adminState{api: d.routes(), waiting: map[uint64]chan []byte{}, targets: map[uint64]identity.NodeID{},
		nonces: &admin.Nonces{TTL: 30 * time.Second, Max: 1024, Now: time.Now}}
	for _, k := range c.Operators {
		var op [32]byte
		b, _ := hex.DecodeString(k)
		copy(op[:], b)
		st.operators = append(st.operators, op)
	}
	adm, err := admin.New(admin.Config{Host: &adminHost{d: d, st: st}, Steps: uint64(c.Steps), Rate: c.Rate, Burst: c.Burst,
		AuditFile: d.cfg.Resolve(c.AuditFile), Logger: d.log.With("layer", "admin")})
	if err != nil {
		return err
	}
	st.adm = adm
	d.admin = st
	return d.st.do(context.Background(), func() {
		d.st.node.Register(admin.AppID, sealedStrict(d.onAdmin, &d.st.clearRefused))
	})
}

// adminHost is the node as Starlark's builtins reach it: through the
// control API in process (the same answers as the CLI's), and the gates.
type adminHost struct {
	d  *daemon
	st *adminState
}

func (h *adminHost) call(method, path string, in, out any) error {
	var body bytes.Buffer
	if in != nil {
		if err := json.NewEncoder(&body).Encode(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequest(method, "http://node"+path, &body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := &recorder{h: http.Header{}, status: http.StatusOK}
	h.st.api.ServeHTTP(rec, req.WithContext(ctx))
	if rec.status != http.StatusOK {
		var e control.Error
		if json.Unmarshal(rec.body.Bytes(), &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("status %d", rec.status)
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(&rec.body)
	dec.UseNumber() // integers stay integers in Starlark
	return dec.Decode(out)
}

func (h *adminHost) Status() (m map[string]any, err error) {
	err = h.call(http.MethodGet, "/v1/status", nil, &m)
	return m, err
}
func (h *adminHost) Peers() (l []any, err error) {
	err = h.call(http.MethodGet, "/v1/peers", nil, &l)
	return l, err
}
func (h *adminHost) Trees() (l []any, err error) {
	err = h.call(http.MethodGet, "/v1/tree", nil, &l)
	return l, err
}
func (h *adminHost) Stats() (m map[string]any, err error) {
	err = h.call(http.MethodGet, "/v1/stats", nil, &m)
	return m, err
}

func (h *adminHost) ConfigGet(key string) (string, error) {
	c := h.d.cfg
	switch key {
	case "node.name":
		return c.Node.Name, nil
	case "node.beacon_period":
		return c.Node.BeaconPeriod.String(), nil
	case "log.level":
		return h.d.level.Level().String(), nil
	case "routing.trees":
		return fmt.Sprint(c.Routing.Trees), nil
	case "routing.metric":
		return c.Routing.Metric, nil
	case "gossip.hello_period":
		return c.Gossip.HelloPeriod.String(), nil
	case "services.refresh":
		return c.Services.Refresh.String(), nil
	case "messages.store":
		return fmt.Sprint(c.Messages.Store), nil
	}
	return "", fmt.Errorf("%q is not one of %s", key, strings.Join(adminConfigKeys, ", "))
}

func (h *adminHost) ConfigSet(key, value string) error {
	if key != "log.level" {
		return fmt.Errorf("%q cannot be set (settable: %s)", key, strings.Join(adminSettable, ", "))
	}
	return h.LogLevel(value)
}

func (h *adminHost) LogLevel(level string) error {
	l, err := parseLevel(level)
	if err != nil {
		return err
	}
	h.d.level.Set(l)
	return nil
}

func (h *adminHost) Ping(target string, timeout time.Duration) (float64, error) {
	var res control.PingResult
	if err := h.call(http.MethodPost, "/v1/ping", control.PingRequest{Target: target, Count: 1, TimeoutMS: int(timeout.Milliseconds())}, &res); err != nil {
		return 0, err
	}
	if res.Received == 0 || len(res.RTTms) == 0 {
		return 0, fmt.Errorf("%s: no answer within %v", target, timeout)
	}
	return res.RTTms[0], nil
}

func (h *adminHost) Send(target, app string, data []byte) error {
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://node/v1/send?target=%s&app=%s&size=%d", target, app, len(data)), bytes.NewReader(data))
	if err != nil {
		return err
	}
	rec := &recorder{h: http.Header{}, status: http.StatusOK}
	h.st.api.ServeHTTP(rec, req)
	for _, line := range bytes.Split(rec.body.Bytes(), []byte("\n")) {
		var ev control.SendEvent
		if json.Unmarshal(line, &ev) == nil {
			if ev.Error != nil {
				return errors.New(ev.Error.Error)
			}
			if ev.Result != nil {
				return nil
			}
		}
	}
	if rec.status != http.StatusOK {
		var e control.Error
		if json.Unmarshal(rec.body.Bytes(), &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
	}
	return fmt.Errorf("no result (status %d)", rec.status)
}

func (h *adminHost) link(i int, down bool) error {
	if i < 0 || i >= len(h.d.st.gates) {
		return fmt.Errorf("link %d: the node has links 0..%d", i, len(h.d.st.gates)-1)
	}
	h.d.st.gates[i].down.Store(down)
	h.d.log.Warn("link switched by admin", "link", i, "down", down)
	return nil
}

func (h *adminHost) LinkUp(i int) error   { return h.link(i, false) }
func (h *adminHost) LinkDown(i int) error { return h.link(i, true) }

// Remote commands travel as routed Packages of admin.AppID, sealed end to
// end (l2-seq/e2e) in both directions: relays see only ciphertext, and m.From
// is the sender's authenticated node_id. Only sealed Packages, or our own,
// reach onAdmin (sealedStrict).

// onAdmin is the node handing us an admin Package (on the loop).
func (d *daemon) onAdmin(m node.Message) {
	st := d.admin
	b := m.Blob
	if len(b) < 9 {
		return
	}
	req := binary.BigEndian.Uint64(b[1:])
	from := m.From // sealed: authenticated by the session
	if own(m) {
		from = d.st.node.ID()
	}
	switch b[0] {
	case admin.MsgNonceRequest:
		var to identity.NodeID
		if len(b) != 9+32 || copy(to[:], b[9:]) != 32 || to != from {
			return // the reply goes to the session's peer, who must be who it claims
		}
		n := st.nonces.Issue()
		out := append([]byte{admin.MsgNonce}, b[1:9]...)
		d.st.seal.sendSealed(to, admin.AppID, append(out, n[:]...))
	case admin.MsgCommand:
		c, err := admin.DecodeCommand(b)
		if err != nil || identity.NodeID(c.ReplyTo) != from {
			return
		}
		var self [32]byte
		id := d.st.node.ID()
		copy(self[:], id[:])
		go func() {
			outcome, text := st.adm.Remote(self, st.operators, st.nonces, c)
			ans := append([]byte{admin.MsgAnswer}, b[1:9]...)
			ans = append(ans, outcome)
			ans = append(ans, text...)
			ans = append(ans, d.st.node.Signer().Sign(admin.AnswerBytes(c.Req, outcome, text))...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = d.st.do(ctx, func() { d.st.seal.sendSealed(c.ReplyTo, admin.AppID, ans) })
		}()
	case admin.MsgNonce, admin.MsgAnswer:
		st.mu.Lock()
		ch, target := st.waiting[req], st.targets[req]
		st.mu.Unlock()
		if ch != nil && target == from { // only the node we asked answers
			select {
			case ch <- append([]byte(nil), b...):
			default:
			}
		}
	}
}

// roundTrip sends an admin message to target and waits for its answer.
func (d *daemon) adminRoundTrip(ctx context.Context, target identity.NodeID, build func(req uint64) []byte) ([]byte, uint64, error) {
	st := d.admin
	st.mu.Lock()
	st.next++
	req := st.next ^ uint64(time.Now().UnixNano())<<20
	ch := make(chan []byte, 1)
	st.waiting[req] = ch
	st.targets[req] = target
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		delete(st.waiting, req)
		delete(st.targets, req)
		st.mu.Unlock()
	}()
	msg := build(req)
	var sendErr error
	done := make(chan struct{})
	if err := d.st.do(ctx, func() {
		d.st.seal.sendSealed(target, admin.AppID, msg).OnDone(func(err error) { sendErr = err; close(done) })
	}); err != nil {
		return nil, req, err
	}
	select {
	case <-done:
		if sendErr != nil {
			return nil, req, sendErr
		}
	case <-ctx.Done():
		return nil, req, ctx.Err()
	}
	select {
	case b := <-ch:
		return b, req, nil
	case <-ctx.Done():
		return nil, req, ctx.Err()
	}
}

func (d *daemon) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/admin/exec", d.handleAdminExec)
	mux.HandleFunc("POST /v1/admin/nonce", d.handleAdminNonce)
	mux.HandleFunc("POST /v1/admin/remote", d.handleAdminRemote)
}

func (d *daemon) handleAdminExec(w http.ResponseWriter, r *http.Request) {
	var req control.AdminExec
	if err := decodeJSON(r, &req); err != nil {
		failure(w, err)
		return
	}
	if len(req.Command) > admin.MaxCommand {
		failure(w, badRequestf("admin: command of %d bytes, at most %d", len(req.Command), admin.MaxCommand))
		return
	}
	out, err := d.admin.adm.Exec("local", "local", req.Command)
	res := control.AdminResult{Outcome: "ok", Result: out}
	if err != nil {
		res.Outcome, res.Result = "error", err.Error()
		if errors.Is(err, admin.ErrRateLimited) {
			res.Outcome = "rate_limited"
		}
	}
	writeJSON(w, res)
}

func (d *daemon) handleAdminNonce(w http.ResponseWriter, r *http.Request) {
	var req control.AdminNonceRequest
	if err := decodeJSON(r, &req); err != nil {
		failure(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	target, err := d.resolve(ctx, req.Target)
	if err != nil {
		failure(w, err)
		return
	}
	self := d.st.node.ID()
	b, _, err := d.adminRoundTrip(ctx, target, func(rq uint64) []byte {
		out := []byte{admin.MsgNonceRequest}
		out = binary.BigEndian.AppendUint64(out, rq)
		return append(out, self[:]...)
	})
	if err != nil {
		failure(w, err)
		return
	}
	if len(b) != 9+admin.NonceSize || b[0] != admin.MsgNonce {
		failure(w, errors.New("admin: the target answered with something else than a nonce"))
		return
	}
	writeJSON(w, control.AdminNonce{NodeID: target.String(), Nonce: hex.EncodeToString(b[9:])})
}

func (d *daemon) handleAdminRemote(w http.ResponseWriter, r *http.Request) {
	var req control.AdminRemote
	if err := decodeJSON(r, &req); err != nil {
		failure(w, err)
		return
	}
	var c admin.Command
	tb, err1 := hex.DecodeString(req.NodeID)
	ob, err2 := hex.DecodeString(req.Operator)
	nb, err3 := hex.DecodeString(req.Nonce)
	sb, err4 := hex.DecodeString(req.Signature)
	if err := errors.Join(err1, err2, err3, err4); err != nil || len(tb) != 32 || len(ob) != 32 || len(nb) != admin.NonceSize || len(sb) != ed25519.SignatureSize || len(req.Command) > admin.MaxCommand {
		failure(w, badRequestf("admin remote: node_id, operator (32 bytes), nonce (16), signature (64) in hex, a command of at most %d bytes", admin.MaxCommand))
		return
	}
	var target identity.NodeID
	copy(target[:], tb)
	copy(c.Operator[:], ob)
	copy(c.Nonce[:], nb)
	c.Sig, c.Text = sb, req.Command
	self := d.st.node.ID()
	copy(c.ReplyTo[:], self[:])
	ctx, cancel := context.WithTimeout(r.Context(), 90*time.Second)
	defer cancel()
	b, rq, err := d.adminRoundTrip(ctx, target, func(rq uint64) []byte {
		c.Req = rq
		return admin.AppendCommand(nil, &c)
	})
	if err != nil {
		failure(w, err)
		return
	}
	if len(b) < 10+ed25519.SignatureSize || b[0] != admin.MsgAnswer {
		failure(w, errors.New("admin: malformed answer"))
		return
	}
	outcome := b[9]
	text := string(b[10 : len(b)-ed25519.SignatureSize])
	if !ed25519.Verify(ed25519.PublicKey(target[:]), admin.AnswerBytes(rq, outcome, text), b[len(b)-ed25519.SignatureSize:]) {
		failure(w, errors.New("admin: the answer is not signed by the target"))
		return
	}
	names := map[byte]string{admin.OutcomeOK: "ok", admin.OutcomeError: "error", admin.OutcomeRefused: "refused", admin.OutcomeRateLimited: "rate_limited"}
	writeJSON(w, control.AdminResult{Outcome: names[outcome], Result: text})
}
