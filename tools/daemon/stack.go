package daemon

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/e2e"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
	"github.com/mycelium-mesh/mycelium/l4-apps/stream"
)

// stack is one node with everything above and below it: the links, the
// node runtime, the trees and router, and the stream service, on one
// wall-clock loop that the node's Run runs. This file is the one place the
// daemon assembles the layers; the rest of the daemon reaches them through
// the stack's fields on the loop (do).
type stack struct {
	loop    *clock.Loop
	stopRun context.CancelFunc
	ran     chan error // Run's result
	once    sync.Once
	stopped chan struct{} // closed when Run has returned
	runErr  error

	links   []*openLink
	node    *node.Node
	trees   *tree.Trees
	router  *route.Router
	streams *stream.Service
	apps    *apps   // gossip, the service directory, messages (apps.go)
	gates   []*gate // the links as the node has them: admin switches them (gate.go)
	mode    bool    // the metric our sends ask relays to use (prefix: true)
	// End-to-end encryption: the layer and the sealing view of the router
	// (always: remote admin uses them; streams when [node] e2e), and the
	// clear Packages refused (on the loop).
	e2e          *e2e.Layer
	seal         *sealingRouter
	clearRefused uint64
	trust        *trustState // operator keys and revocations (trust.go)
}

// stackHooks are what the daemon plugs into the stack: where Packages for
// local applications go.
type stackHooks struct {
	// accepts reports whether a local application listens for app.
	accepts func(app packet.AppID) bool
	// deliver hands a completed stream to the application's listeners.
	deliver func(m stream.Message) error
}

// startStack opens the links, builds the node, trees, router and streams
// and runs the node. On error everything opened is closed again.
func startStack(cfg *Config, id identity.Identity, log *slog.Logger, hooks stackHooks) (*stack, error) {
	s := &stack{loop: clock.NewLoop(), ran: make(chan error, 1)}
	// The loop runs while the links open: some (RYLR-998) talk to their
	// device through it. It stops again before the node's Run takes it
	// over; what the links handed it meanwhile waits for Run.
	openCtx, stopOpen := context.WithCancel(context.Background())
	opened := make(chan struct{})
	go func() { s.loop.Run(openCtx); close(opened) }()
	for i := range cfg.Links {
		ol, err := openLinkConfig(&cfg.Links[i], s.loop, log)
		if err != nil {
			stopOpen()
			<-opened
			s.closeLinks()
			return nil, fmt.Errorf("link %d (%s): %w", i+1, cfg.Links[i].Type, err)
		}
		s.links = append(s.links, ol)
	}
	stopOpen()
	<-opened
	fail := func(err error) (*stack, error) {
		s.closeLinks()
		return nil, err
	}
	trust, err := openTrust(cfg, log.With("layer", "trust"))
	if err != nil {
		return fail(err)
	}
	s.trust = trust
	certs, err := readProxyCerts(cfg, id.ID())
	if err != nil {
		return fail(err)
	}
	trust.certs = certs
	b := cfg.Budgets
	r := cfg.Routing
	s.mode = r.Metric == "prefix"
	// Built before Run: nothing runs on the loop yet.
	n, err := node.New(node.Config{
		Clock: s.loop, Identity: id, Links: s.linkList(),
		Seed:         rand.Uint64(), // a real node need not repeat itself: jitter differs per run and node
		Entropy:      crand.Reader,  // the neighbour proof's nonces: unpredictable, never repeated across runs
		BeaconPeriod: cfg.Node.BeaconPeriod, Sleep: cfg.Node.Sleep, Logger: log.With("layer", "node"),
		Budgets: node.Budgets{
			RxPerPeer: b.RxPerPeer, RxTotal: b.RxTotal, RxSequences: b.RxSequences, RxPerPeerSq: b.RxPerPeerSeqs,
			SendCache: b.SendCache, PendingSend: b.PendingPerPeer, Backlog: b.ThrottleBacklog,
		},
		Revocations: trust.revocations(),
		HopAuth:     cfg.Node.HopAuth,
	})
	if err != nil {
		return fail(err)
	}
	s.node = n
	s.router, err = route.Attach(n, tree.Config{
		Trees: r.Trees, ClaimPeriod: r.ClaimPeriod, MissedClaims: r.MissedClaims,
		EpochPeriods: r.EpochPeriods, MaxSkew: r.MaxSkew,
	}, route.Config{
		TTL: uint8(r.TTL), ReceiptTimeout: r.ReceiptTimeout, Attempts: r.Attempts, LookupTrees: r.LookupTrees,
		Records: r.Records, RegisterQuiet: r.RegisterQuiet, RegisterMax: r.RegisterMax, RegisterSpread: r.RegisterSpread,
		Name: cfg.Node.Name, Revocations: trust.revocations(),
		CertifiedProxies: cfg.Trust.CertifiedProxies, ProxyOperators: trust.operators(), ProxyCerts: certs,
		CertRevocations: trust.certRevocations(),
	})
	if err != nil {
		return fail(err)
	}
	s.trees = s.router.Trees()
	var via stream.Router = s.router
	handle := func(h node.Handler) node.Handler { return h }
	// The e2e layer runs whatever [node] e2e says: remote admin always
	// travels sealed (admin.go); the setting decides for streams.
	s.seal = &sealingRouter{r: s.router, n: n, mode: s.mode}
	s.e2e, err = e2e.Attach(n, id, e2e.TransportFunc(s.seal.carry), e2e.Config{Revocations: trust.revocations(), Reply: s.seal.replyTo})
	if err != nil {
		return fail(err)
	}
	s.seal.e = s.e2e
	if cfg.Node.E2E {
		via = s.seal
		handle = func(h node.Handler) node.Handler { return s.seal.sealedOnly(h, &s.clearRefused) }
	}
	st := cfg.Stream
	s.streams = stream.New(stream.Config{
		Clock: s.loop, Router: via, Rand: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), Self: n.ID(),
		Chunk: st.Chunk, Window: st.Window, MaxSize: st.MaxSize, MaxBuffered: st.MaxBuffered, MaxIncoming: st.MaxIncoming,
		Idle: st.Idle, ResultWait: st.ResultWait, Accept: hooks.accepts, Deliver: hooks.deliver,
		Logger: log.With("layer", "stream"),
	})
	n.Register(stream.AppID, handle(s.streams.Handle))
	n.Register(PingApp, func(node.Message) {}) // pings need only their receipts
	if err := startApps(cfg, n, id, s, log); err != nil {
		return fail(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	s.stopRun = stopRun
	go func() { s.ran <- n.Run(runCtx); close(s.ran) }()
	// The trees start once the node has: Run queued its start first.
	if err := s.do(context.Background(), func() { s.trees.Start(); s.apps.start(); s.startTrust(cfg.Trust.Republish) }); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// do runs f on the loop and waits for it (or ctx).
func (s *stack) do(ctx context.Context, f func()) error {
	return s.doErr(ctx, func() error { f(); return nil })
}

// errStopped: the node has stopped.
var errStopped = errors.New("the node is shutting down")

func (s *stack) doErr(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	s.loop.AfterFunc(0, func() { done <- f() })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ranDone():
		return errStopped
	}
}

// ranDone is closed once the node's Run has returned.
func (s *stack) ranDone() <-chan struct{} {
	s.once.Do(func() {
		s.stopped = make(chan struct{})
		go func() {
			err := <-s.ran
			s.runErr = err
			close(s.stopped)
		}()
	})
	return s.stopped
}

// close ends the node's Run (a goodbye on every link, waited for), then
// closes the links.
func (s *stack) close() error {
	s.stopRun()
	<-s.ranDone()
	s.closeLinks()
	return s.runErr
}

// linkList is the links as the node takes them, in configuration order.
func (s *stack) linkList() []link.Link {
	out := make([]link.Link, len(s.links))
	s.gates = make([]*gate, len(s.links))
	for i, ol := range s.links {
		s.gates[i], out[i] = gated(ol.l)
	}
	return out
}

func (s *stack) closeLinks() {
	for _, l := range s.links {
		l.close()
	}
}
