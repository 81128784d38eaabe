package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
	"github.com/mycelium-mesh/mycelium/l4-apps/stream"
)

// stack is one node with everything above and below it: the links, the
// node runtime, the trees, the router and the stream service, on one
// wall-clock loop. This file is the one place the daemon assembles the
// layers; the rest of the daemon reaches them through the stack's fields
// on the loop (do).
type stack struct {
	loop     *clock.Loop
	stopLoop context.CancelFunc
	loopDone chan struct{}

	links   []*openLink
	node    *node.Node
	trees   *tree.Trees
	router  *route.Router
	streams *stream.Service
	mode    bool // the metric our sends ask relays to use (prefix: true)
}

// stackHooks are what the daemon plugs into the stack: where Packages for
// local applications go.
type stackHooks struct {
	// accepts reports whether a local application listens for app.
	accepts func(app packet.AppID) bool
	// deliver hands a completed stream to the application's listeners.
	deliver func(m stream.Message) error
}

// startStack opens the links and starts the node, trees and router. On
// error everything opened is closed again.
func startStack(cfg *Config, id identity.Identity, log *slog.Logger, hooks stackHooks) (*stack, error) {
	s := &stack{loop: clock.NewLoop(), loopDone: make(chan struct{})}
	// The loop runs from the start: some links (RYLR-998) talk to their
	// device through it while they open.
	ctx, cancel := context.WithCancel(context.Background())
	s.stopLoop = cancel
	go func() { s.loop.Run(ctx); close(s.loopDone) }()
	ok := false
	defer func() {
		if !ok {
			s.closeLinks()
			s.stopLoop()
			<-s.loopDone
		}
	}()
	for i := range cfg.Links {
		ol, err := openLinkConfig(&cfg.Links[i], s.loop, log)
		if err != nil {
			return nil, fmt.Errorf("link %d (%s): %w", i+1, cfg.Links[i].Type, err)
		}
		s.links = append(s.links, ol)
	}
	b := cfg.Budgets
	r := cfg.Routing
	s.mode = r.Metric == "prefix"
	err := s.doErr(context.Background(), func() error {
		n, err := node.New(node.Config{
			Clock: s.loop, Identity: id, Links: s.linkList(), Seed: rand.Uint64(), // a real node need not repeat itself: jitter differs per run and node
			BeaconPeriod: cfg.Node.BeaconPeriod, Sleep: cfg.Node.Sleep, Logger: log.With("layer", "node"),
			Budgets: node.Budgets{
				RxPerPeer: b.RxPerPeer, RxTotal: b.RxTotal, RxSequences: b.RxSequences, RxPerPeerSq: b.RxPerPeerSeqs,
				SendCache: b.SendCache, PendingSend: b.PendingPerPeer, Backlog: b.ThrottleBacklog,
			},
		})
		if err != nil {
			return err
		}
		s.node = n
		s.trees = tree.New(n, tree.Config{
			Trees: r.Trees, ClaimPeriod: r.ClaimPeriod, MissedClaims: r.MissedClaims,
			EpochPeriods: r.EpochPeriods, MaxSkew: r.MaxSkew,
		})
		s.router = route.New(n, s.trees, route.Config{
			TTL: uint8(r.TTL), ReceiptTimeout: r.ReceiptTimeout, Attempts: r.Attempts, LookupTrees: r.LookupTrees,
			Records: r.Records, RegisterQuiet: r.RegisterQuiet, RegisterMax: r.RegisterMax, RegisterSpread: r.RegisterSpread,
			Name: cfg.Node.Name,
		})
		st := cfg.Stream
		s.streams = stream.New(stream.Config{
			Clock: s.loop, Router: s.router, Rand: n.Rand(), Self: n.ID(),
			Chunk: st.Chunk, Window: st.Window, MaxSize: st.MaxSize, MaxBuffered: st.MaxBuffered, MaxIncoming: st.MaxIncoming,
			Idle: st.Idle, ResultWait: st.ResultWait, Accept: hooks.accepts, Deliver: hooks.deliver,
			Logger: log.With("layer", "stream"),
		})
		n.Register(stream.AppID, s.streams.Handle)
		n.Register(PingApp, func(node.Message) {}) // pings need only their receipts
		n.Start()
		s.trees.Start()
		return nil
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// do runs f on the loop and waits for it (or ctx).
func (s *stack) do(ctx context.Context, f func()) error {
	return s.doErr(ctx, func() error { f(); return nil })
}

// errStopped: the stack's loop is gone.
var errStopped = errors.New("the node is shutting down")

func (s *stack) doErr(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	s.loop.AfterFunc(0, func() { done <- f() })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.loopDone:
		return errStopped
	}
}

// close says goodbye, closes the links (which send what is queued, the
// goodbye included) and stops the loop.
func (s *stack) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = s.do(ctx, func() { s.node.Close() })
	cancel()
	s.closeLinks()
	s.stopLoop()
	<-s.loopDone
}

// linkList is the links as the node takes them, in configuration order.
func (s *stack) linkList() []link.Link {
	out := make([]link.Link, len(s.links))
	for i, ol := range s.links {
		out[i] = ol.l
	}
	return out
}

func (s *stack) closeLinks() {
	for _, l := range s.links {
		l.close()
	}
}
