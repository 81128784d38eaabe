package daemon

// Trusted-operator keys and revocation [ours] (docs/security.md): an
// operator keeps an Ed25519 key offline and lists its public half in
// [trust] operators; a revocation it signs (mycelium keys operator
// revoke) makes every node that lists it refuse the revoked node_id as a
// proven neighbour, a record's signer and an end-to-end peer. The node
// keeps the revocations it honours in a private file, and spreads them by
// gossip: on the topic below when it first takes one, and again every
// [trust] republish for nodes that were away. A revocation of a proxy
// certificate (mycelium keys operator revoke-proxy) goes the same way, on
// its own topic and in its own file: the router drops and refuses the
// records resting on the certificate.

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
	"github.com/mycelium-mesh/mycelium/l4-apps/gossip"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// TrustConfig is [trust].
type TrustConfig struct {
	// Operators are the operator keys (Ed25519 public keys, 64 hex
	// digits: `mycelium keys operator new` prints one) whose revocations
	// this node honours. Empty: it honours none.
	Operators []string `toml:"operators"`
	// Revocations is the file the honoured revocations are kept in (mode
	// 0600, rewritten atomically).
	Revocations string `toml:"revocations"`
	// ProxyRevocations is the file the honoured revocations of proxy
	// certificates are kept in, as Revocations.
	ProxyRevocations string `toml:"proxy_revocations"`
	// MaxRevocations bounds them (137 bytes each, in memory and on disk),
	// and the proxy revocations apart (177 bytes each).
	MaxRevocations int `toml:"max_revocations"`
	// Republish is how often the node publishes its revocations again by
	// gossip, for nodes that were away when they spread (0: never).
	Republish time.Duration `toml:"republish"`
	// ProxyCertificates are files, each an operator's certificate (PEM:
	// mycelium keys operator certify-proxy) naming this node the proxy of
	// a keyless board: the name records it registers for that board carry
	// it. Read at start; one that does not verify, or names another
	// proxy, stops the node.
	ProxyCertificates []string `toml:"proxy_certificates"`
	// CertifiedProxies takes a keyless board's proxy record only with a
	// certificate by one of Operators (in storing it and in lookups).
	// Off, a certified record still stands over uncertified ones.
	CertifiedProxies bool `toml:"certified_proxies"`
}

// RevocationTopic is the gossip topic revocations travel on;
// ProxyRevocationTopic, revocations of proxy certificates.
const (
	RevocationTopic      = "mycelium/revocations/v1"
	ProxyRevocationTopic = "mycelium/proxy-revocations/v1"
)

func (c *Config) checkTrust() error {
	t := c.Trust
	for i, k := range t.Operators {
		if _, err := revoke.ParseOperator(k); err != nil {
			return configErr("trust.operators[%d] %q: want an Ed25519 public key, 64 hex digits (mycelium keys operator new prints one)", i, k)
		}
	}
	if t.Revocations == "" {
		return configErr("trust.revocations: empty (the file revocations are kept in)")
	}
	if t.ProxyRevocations == "" {
		return configErr("trust.proxy_revocations: empty (the file revoked proxy certificates are kept in)")
	}
	if t.MaxRevocations < 1 || t.MaxRevocations > 100_000 {
		return configErr("trust.max_revocations %d: 1..100,000", t.MaxRevocations)
	}
	if t.Republish != 0 && (t.Republish < 10*time.Minute || t.Republish > 30*24*time.Hour) {
		return configErr("trust.republish %v: 0 (never) or 10m..720h", t.Republish)
	}
	if t.CertifiedProxies && len(t.Operators) == 0 {
		return configErr("trust.certified_proxies: no trust.operators to certify a proxy")
	}
	for i, p := range t.ProxyCertificates {
		if p == "" {
			return configErr("trust.proxy_certificates[%d]: empty", i)
		}
	}
	return nil
}

// maxProxyCertFile bounds a certificate file read at start (a PEM block
// of 169 bytes and its headers).
const maxProxyCertFile = 4096

// readProxyCerts reads [trust] proxy_certificates: each must verify and
// name self as the proxy.
func readProxyCerts(cfg *Config, self identity.NodeID) ([]revoke.ProxyCert, error) {
	var out []revoke.ProxyCert
	for _, p := range cfg.Trust.ProxyCertificates {
		path := cfg.Resolve(p)
		f, err := os.Open(path)
		if err != nil {
			return nil, configErr("trust.proxy_certificates: %v", err)
		}
		b, err := io.ReadAll(io.LimitReader(f, maxProxyCertFile+1))
		f.Close()
		if err != nil {
			return nil, configErr("trust.proxy_certificates: %s: %v", path, err)
		}
		if len(b) > maxProxyCertFile {
			return nil, configErr("trust.proxy_certificates: %s: over %d bytes: not a certificate", path, maxProxyCertFile)
		}
		c, err := revoke.ParseProxyPEM(b)
		if err == nil {
			err = c.Verify()
		}
		if err != nil {
			return nil, configErr("trust.proxy_certificates: %s: %v", path, err)
		}
		if c.Proxy != self {
			return nil, configErr("trust.proxy_certificates: %s names %s as the proxy, not this node (%s)", path, c.Proxy, self)
		}
		out = append(out, c)
	}
	return out, nil
}

// trustState is the revocations on a running node.
type trustState struct {
	set *revoke.Set
	ops []identity.NodeID
	max int
	log *slog.Logger
	// heard is when each revocation last went round (published here or
	// delivered by gossip), on the loop: a node republishes only what the
	// mesh has not passed round for a period, so one flood a period
	// serves every node, not one flood per node.
	heard map[identity.NodeID]time.Time
	// heardProxy is the same for the proxy revocations.
	heardProxy map[proxyKey]time.Time
	// certs are this node's own proxy certificates ([trust]
	// proxy_certificates): a revocation of one is logged as an error.
	certs []revoke.ProxyCert
}

// proxyKey names a proxy revocation (one certificate, or every one of a
// board's for a proxy).
type proxyKey struct {
	board, proxy identity.NodeID
	until        int64
}

func proxyKeyOf(r revoke.ProxyRevocation) proxyKey { return proxyKey{r.Board, r.Proxy, r.Until} }

// openTrust reads the revocations file (refusing one that is not ours and
// private).
func openTrust(cfg *Config, log *slog.Logger) (*trustState, error) {
	t := &trustState{max: cfg.Trust.MaxRevocations, log: log, heard: map[identity.NodeID]time.Time{}, heardProxy: map[proxyKey]time.Time{}}
	for _, k := range cfg.Trust.Operators {
		op, _ := revoke.ParseOperator(k) // checked with the configuration
		t.ops = append(t.ops, op)
	}
	set, err := revoke.Open(revoke.Config{Operators: t.ops, Max: t.max, Path: cfg.Resolve(cfg.Trust.Revocations),
		ProxyPath: cfg.Resolve(cfg.Trust.ProxyRevocations)})
	if err != nil {
		return nil, err
	}
	t.set = set
	if n, np := len(set.List()), len(set.ListProxy()); n+np > 0 {
		log.Info("revocations honoured", "keys", n, "proxy_certificates", np)
	}
	return t, nil
}

// operators is the operator keys listed.
func (t *trustState) operators() []identity.NodeID { return t.ops }

// revocations is what the layers ask (nil, asking nothing, without
// operator keys).
func (t *trustState) revocations() identity.Revocations {
	if len(t.ops) == 0 {
		return nil
	}
	return t.set
}

// certRevocations is what the router asks (nil without operator keys).
func (t *trustState) certRevocations() revoke.CertRevocations {
	if len(t.ops) == 0 {
		return nil
	}
	return t.set
}

// takeRevocation honours a revocation, on the loop: a new one drops the neighbour
// it names and is passed on (publish: nil when it came by gossip, which
// relays it itself).
func (s *stack) takeRevocation(r revoke.Revocation, publish bool) (bool, error) {
	_, added, err := s.trust.set.AddRevocation(r)
	if !added {
		return false, err
	}
	if err != nil {
		s.trust.log.Error("revocation honoured but not saved", "err", err)
	}
	if r.Node == s.node.ID() {
		// Our neighbours that list the operator will no longer take us.
		s.trust.log.Error("this node's own key is revoked by its operator: give it a new one (mycelium keys rotate) and restart")
	}
	s.trust.log.Warn("node revoked by its operator", "node", r.Node.String(), "operator", r.Operator.Short(),
		"date", time.Unix(r.Date, 0).UTC().Format(time.RFC3339), "neighbours_dropped", s.node.DropRevoked(),
		"records_dropped", s.router.DropRevoked())
	if publish {
		s.publishRevocation(r)
	}
	return true, nil
}

// takeProxyRevocation honours a proxy certificate's revocation, on the
// loop: the router drops the records and lookups resting on it, and it is
// passed on as takeRevocation passes a key's.
func (s *stack) takeProxyRevocation(r revoke.ProxyRevocation, publish bool) (bool, error) {
	_, added, err := s.trust.set.AddProxyRevocation(r)
	if !added {
		return false, err
	}
	if err != nil {
		s.trust.log.Error("proxy revocation honoured but not saved", "err", err)
	}
	for i := range s.trust.certs {
		if c := &s.trust.certs[i]; r.Covers(c) {
			// Its records for the board go out without it from now on.
			s.trust.log.Error("this node's proxy certificate is revoked by its operator: it no longer speaks for the board",
				"board", c.Board.String(), "until", time.Unix(c.Until, 0).UTC().Format(time.RFC3339))
		}
	}
	s.trust.log.Warn("proxy certificate revoked by its operator", "board", r.Board.String(), "proxy", r.Proxy.String(),
		"certificate", r.UntilText(), "operator", r.Operator.Short(), "records_dropped", s.router.DropRevoked())
	if publish {
		s.publishProxyRevocation(r)
	}
	return true, nil
}

func (s *stack) publishProxyRevocation(r revoke.ProxyRevocation) {
	s.trust.heardProxy[proxyKeyOf(r)] = s.loop.Now()
	b, _ := r.MarshalBinary()
	if _, err := s.apps.gossip.Publish(gossip.Topic(ProxyRevocationTopic), b); err != nil && err != gossip.ErrDuplicate {
		s.trust.log.Warn("proxy revocation not published", "err", err)
	}
}

func (s *stack) publishRevocation(r revoke.Revocation) {
	s.trust.heard[r.Node] = s.loop.Now()
	b, _ := r.MarshalBinary()
	if _, err := s.apps.gossip.Publish(gossip.Topic(RevocationTopic), b); err != nil && err != gossip.ErrDuplicate {
		s.trust.log.Warn("revocation not published", "err", err)
	}
}

// startTrust subscribes to the revocations' topic and schedules their
// republication; on the loop, once the node runs.
func (s *stack) startTrust(republish time.Duration) {
	if len(s.trust.ops) == 0 {
		return // nothing to honour: nothing to pass on either
	}
	s.apps.gossip.Subscribe(gossip.Topic(RevocationTopic), func(m gossip.Delivery) {
		if m.Local {
			return
		}
		var r revoke.Revocation
		if err := r.UnmarshalBinary(m.Data); err != nil {
			s.trust.set.Add(m.Data) // counted as malformed
			return
		}
		if _, err := s.takeRevocation(r, false); err != nil {
			s.trust.log.Debug("revocation refused", "err", err)
			return
		}
		if s.trust.set.Revoked(r.Node) {
			s.trust.heard[r.Node] = s.loop.Now()
		}
	})
	s.apps.gossip.Subscribe(gossip.Topic(ProxyRevocationTopic), func(m gossip.Delivery) {
		if m.Local {
			return
		}
		var r revoke.ProxyRevocation
		if err := r.UnmarshalBinary(m.Data); err != nil {
			s.trust.set.AddProxy(m.Data) // counted as malformed
			return
		}
		if _, err := s.takeProxyRevocation(r, false); err != nil {
			s.trust.log.Debug("proxy revocation refused", "err", err)
			return
		}
		if s.trust.set.ProxyHeld(&r) {
			// Only for one held: an unsigned one a wider revocation
			// covers is "known" too, and would grow the map unbounded.
			s.trust.heardProxy[proxyKeyOf(r)] = s.loop.Now()
		}
	})
	if republish <= 0 {
		return
	}
	// Every node looks at its own time (a random share of the period,
	// then every 0.5–1.5 periods) and republishes only the revocations it
	// has not seen go round for a period: the first node to look floods,
	// the others hear it and keep quiet (as Trickle does).
	var tick func()
	tick = func() {
		for _, r := range due(s.trust.set.List(), nodeOf, s.trust.heard, s.loop.Now(), republish) {
			s.publishRevocation(r)
		}
		for _, r := range due(s.trust.set.ListProxy(), proxyKeyOf, s.trust.heardProxy, s.loop.Now(), republish) {
			s.publishProxyRevocation(r)
		}
		s.loop.AfterFunc(republish/2+rand.N(republish), tick)
	}
	s.loop.AfterFunc(rand.N(republish), tick)
}

// due is what a republishing round publishes: the revocations (of keys
// or of proxy certificates, named by key) not heard going round for a
// period.
func due[R any, K comparable](list []R, key func(R) K, heard map[K]time.Time, now time.Time, period time.Duration) []R {
	var out []R
	for _, r := range list {
		if now.Sub(heard[key(r)]) >= period {
			out = append(out, r)
		}
	}
	return out
}

func nodeOf(r revoke.Revocation) identity.NodeID { return r.Node }

// trustRoutes are the control API's revocation endpoints.
func (d *daemon) trustRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/revocations", d.handleRevocations)
	mux.HandleFunc("POST /v1/revocations", d.handleRevoke)
}

func revocationInfo(r revoke.Revocation) control.Revocation {
	return control.Revocation{NodeID: r.Node.String(), Operator: r.Operator.String(), Date: time.Unix(r.Date, 0).UTC().Format(time.RFC3339)}
}

func proxyRevocationInfo(r revoke.ProxyRevocation) control.Revocation {
	return control.Revocation{Board: r.Board.String(), Proxy: r.Proxy.String(), Certificate: r.UntilText(),
		Operator: r.Operator.String(), Date: time.Unix(r.Date, 0).UTC().Format(time.RFC3339)}
}

func (d *daemon) handleRevocations(w http.ResponseWriter, r *http.Request) {
	t := d.st.trust
	out := control.Revocations{Operators: []string{}, Revocations: []control.Revocation{}, ProxyRevocations: []control.Revocation{}, Max: t.max}
	for _, op := range t.ops {
		out.Operators = append(out.Operators, op.String())
	}
	for _, rv := range t.set.List() {
		out.Revocations = append(out.Revocations, revocationInfo(rv))
	}
	for _, rv := range t.set.ListProxy() {
		out.ProxyRevocations = append(out.ProxyRevocations, proxyRevocationInfo(rv))
	}
	out.ProxyCertificates = []control.ProxyCertificate{}
	for i := range t.certs {
		c := &t.certs[i]
		out.ProxyCertificates = append(out.ProxyCertificates, control.ProxyCertificate{Board: c.Board.String(), Operator: c.Operator.String(),
			Until: time.Unix(c.Until, 0).UTC().Format(time.RFC3339), Revoked: len(t.ops) > 0 && t.set.CertRevoked(c)})
	}
	st := t.set.Stats()
	out.Stats = map[string]uint64{"accepted": st.Accepted, "known": st.Known, "malformed": st.Malformed,
		"untrusted": st.Untrusted, "forged": st.Forged, "full": st.Full}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	if err := d.st.do(ctx, func() {
		ts := d.st.node.Stats().Trust
		out.Stats["proofs_revoked"], out.Stats["neighbours_dropped"] = ts.ProofsRevoked, ts.RevokedDropped
		out.Stats["records_refused"] = d.st.router.Stats().RevokedRecords
		out.Stats["e2e_refused"] = d.st.e2e.Stats().Revoked
	}); err != nil {
		failure(w, err)
		return
	}
	writeJSON(w, out)
}

func (d *daemon) handleRevoke(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	var req control.RevokeRequest
	if err == nil {
		err = json.Unmarshal(b, &req)
	}
	if err != nil {
		failure(w, badRequestf("revoke: %v", err))
		return
	}
	// A key's revocation or a proxy certificate's: the PEM type says.
	var rv revoke.Revocation
	var prv revoke.ProxyRevocation
	blk, _ := pem.Decode([]byte(req.PEM))
	proxy := blk != nil && blk.Type == revoke.ProxyRevocationPEMType
	if proxy {
		prv, err = revoke.ParseProxyRevocationPEM([]byte(req.PEM))
	} else {
		rv, err = revoke.ParsePEM([]byte(req.PEM))
	}
	if err != nil {
		d.st.trust.set.Add(nil) // counted as malformed, as from gossip
		failure(w, badRequestf("revoke: %v", err))
		return
	}
	if len(d.st.trust.ops) == 0 {
		failure(w, badRequestf("revoke: this node lists no operator keys ([trust] operators): it honours no revocation"))
		return
	}
	var added bool
	err = d.st.doErr(r.Context(), func() error {
		var err error
		if proxy {
			added, err = d.st.takeProxyRevocation(prv, true)
		} else {
			added, err = d.st.takeRevocation(rv, true)
		}
		return err
	})
	if err != nil {
		if errors.Is(err, revoke.ErrUntrusted) || errors.Is(err, revoke.ErrForged) || errors.Is(err, revoke.ErrFull) {
			err = badRequestf("%v", err)
		}
		failure(w, err)
		return
	}
	out := revocationInfo(rv)
	if proxy {
		out = proxyRevocationInfo(prv)
	}
	out.Added = added
	writeJSON(w, out)
}
