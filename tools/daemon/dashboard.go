package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/tools/control"
	"github.com/mycelium-mesh/mycelium/tools/dashboard"
)

// DefaultDashboardListen is where the dashboard is served when
// metrics.dashboard is on and metrics.listen is empty: this machine only.
const DefaultDashboardListen = "127.0.0.1:9477"

// maxRoutedErrors is how many recent routed errors the dashboard keeps.
const maxRoutedErrors = 50

// dashSource is the node as the dashboard sees it. Its node-level reads
// go through the control API's own handlers (the same answers the CLI
// gets); the trees and the routed errors are read on the loop, which owns
// errs and the counters last seen.
type dashSource struct {
	d   *daemon
	api http.Handler

	errs     []dashboard.RoutedError
	failed   map[uint8]uint64
	noRoute  uint64
	hopLimit uint64
}

// serveHTTP starts the metrics listener when metrics.listen is set or
// the dashboard is on: /metrics, and with metrics.dashboard the dashboard
// at /. stop ends the dashboard's streams, then the server.
func (d *daemon) serveHTTP(ctx context.Context, m MetricsConfig) (stop func(context.Context), err error) {
	listen := m.Listen
	if listen == "" && m.Dashboard {
		listen = DefaultDashboardListen
	}
	if listen == "" {
		return func(context.Context) {}, nil
	}
	var page http.Handler
	stopDash, dashDone := func() {}, make(chan struct{})
	if m.Dashboard {
		dash, err := d.startDashboard(ctx)
		if err != nil {
			return nil, err
		}
		dctx, cancel := context.WithCancel(context.Background())
		stopDash = cancel
		go func() { dash.Run(dctx); close(dashDone) }()
		page = dash.Handler()
	} else {
		close(dashDone)
	}
	srv, err := d.serveMetrics(listen, page)
	if err != nil {
		stopDash()
		<-dashDone
		return nil, err
	}
	return func(ctx context.Context) {
		stopDash()
		<-dashDone
		srv.Shutdown(ctx)
	}, nil
}

// startDashboard hooks the dashboard's observer into the router and
// returns its server (Run it for events).
func (d *daemon) startDashboard(ctx context.Context) (*dashboard.Server, error) {
	src := &dashSource{d: d, api: d.routes(), failed: map[uint8]uint64{}}
	if err := d.st.do(ctx, func() { d.st.router.Observe(src.observe) }); err != nil {
		return nil, err
	}
	return dashboard.New(src, dashboard.Config{}), nil
}

// note records a routed error (on the loop).
func (s *dashSource) note(at time.Time, what string) {
	if len(s.errs) == maxRoutedErrors {
		s.errs = slices.Delete(s.errs, 0, 1)
	}
	s.errs = append(s.errs, dashboard.RoutedError{Time: at, What: what})
}

// observe sees every routing decision this node makes (on the loop); it
// keeps the errors that pass through.
func (s *dashSource) observe(h route.Hop) {
	if !h.Error {
		return
	}
	next := s.name(h.Next)
	s.note(s.d.st.loop.Now(), fmt.Sprintf("an error on its way back to (%s), tree_state %d, passed on to %s", h.To, h.TreeState, next))
}

// name is a node's name if known, else the start of its node_id.
func (s *dashSource) name(id identity.NodeID) string {
	if n, ok := s.d.st.router.NameOf(id); ok {
		return n
	}
	return id.Short()
}

// counted turns the router's error counters into entries (on the loop).
func (s *dashSource) counted(rs route.Stats, at time.Time) {
	for _, code := range slices.Sorted(maps.Keys(rs.Failed)) {
		if n := rs.Failed[code]; n > s.failed[code] {
			s.note(at, fmt.Sprintf("%d routed send(s) of this node failed: %s", n-s.failed[code], codeName(code)))
			s.failed[code] = n
		}
	}
	if rs.NoRoute > s.noRoute {
		s.note(at, fmt.Sprintf("no route from here for %d Package(s)", rs.NoRoute-s.noRoute))
		s.noRoute = rs.NoRoute
	}
	if rs.HopLimit > s.hopLimit {
		s.note(at, fmt.Sprintf("the hop limit ran out here for %d Package(s)", rs.HopLimit-s.hopLimit))
		s.hopLimit = rs.HopLimit
	}
}

// Sample reads the node: status and peers through the control API, the
// links' counters, and the trees and errors on the loop.
func (s *dashSource) Sample(ctx context.Context) (*dashboard.Sample, error) {
	var st control.Status
	if err := s.call(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	smp := &dashboard.Sample{
		Node:  dashboard.Node{ID: st.NodeID, Name: st.Name, Version: st.Version, UptimeS: st.UptimeS, Registered: st.Registered},
		Peers: []control.Peer{},
	}
	if err := s.call(ctx, http.MethodGet, "/v1/peers", nil, &smp.Peers); err != nil {
		return nil, err
	}
	for i, cl := range s.d.links() {
		k := s.d.st.links[i].l.Counters()
		l := dashboard.Link{Link: cl, AirtimeS: k.TxAirtime.Seconds(), DropsByReason: map[string]uint64{}}
		for r := link.DropReason(0); r < link.NumDropReasons; r++ {
			if n := k.Drops[r]; n > 0 {
				l.DropsByReason[r.String()] = n
			}
		}
		smp.Links = append(smp.Links, l)
	}
	err := s.d.st.do(ctx, func() {
		now := s.d.st.loop.Now()
		smp.Time = now
		s.counted(s.d.st.router.Stats(), now)
		smp.Errors = slices.Clone(s.errs)
		smp.Trees = s.trees()
	})
	if err != nil {
		return nil, err
	}
	if smp.Errors == nil {
		smp.Errors = []dashboard.RoutedError{}
	}
	if smp.Trees == nil {
		smp.Trees = []dashboard.Tree{}
	}
	return smp, nil
}

// trees reads this node's place in every tree (on the loop): the path
// from the root by its certificate chain, its children and the other
// placed neighbours.
func (s *dashSource) trees() []dashboard.Tree {
	t := s.d.st.trees
	var out []dashboard.Tree
	for k := range t.Count() {
		p, ok := t.Current(k)
		if !ok {
			continue
		}
		ch, ok := t.Chain(k)
		if !ok {
			continue
		}
		tr := dashboard.Tree{Tree: k, TreeState: int(p.TreeState), Address: p.Addr.String(), Depth: p.Depth, IsRoot: p.Root,
			Children: []dashboard.Member{}, Neighbors: []dashboard.Member{}}
		member := func(id identity.NodeID, a addr.Long) dashboard.Member {
			m := dashboard.Member{ID: hex.EncodeToString(id[:]), Address: a.String()}
			m.Name, _ = s.d.st.router.NameOf(id)
			return m
		}
		var a addr.Long // the root's: all zeros
		tr.Path = append(tr.Path, member(identity.NodeID(ch.Claim.Root), a))
		for _, c := range ch.Certs {
			next, err := a.Child(c.Index)
			if err != nil {
				break
			}
			a = next
			tr.Path = append(tr.Path, member(identity.NodeID(c.Child), a))
		}
		children := map[identity.NodeID]bool{}
		for _, nb := range t.Children(k, p.TreeState) {
			children[nb.ID] = true
			tr.Children = append(tr.Children, member(nb.ID, nb.Addr))
		}
		for _, nb := range t.Neighbors(k, p.TreeState) {
			if !children[nb.ID] {
				tr.Neighbors = append(tr.Neighbors, member(nb.ID, nb.Addr))
			}
		}
		out = append(out, tr)
	}
	return out
}

// Trace pings the target once, then traces the route to it, through the
// control API's handlers (as `mycelium ping` and `traceroute` do).
func (s *dashSource) Trace(ctx context.Context, target string) (*dashboard.TraceResult, error) {
	res := &dashboard.TraceResult{TraceResult: control.TraceResult{Target: target, Hops: []control.Hop{}}}
	var ping control.PingResult
	if err := s.call(ctx, http.MethodPost, "/v1/ping", control.PingRequest{Target: target, Count: 1}, &ping); err != nil {
		return nil, err
	}
	res.NodeID = ping.NodeID
	if len(ping.RTTms) > 0 {
		res.RTTms = &ping.RTTms[0]
	} else if len(ping.Errors) > 0 {
		res.Error = ping.Errors[0]
	}
	var tr control.TraceResult
	if err := s.call(ctx, http.MethodPost, "/v1/traceroute", control.TraceRequest{Target: target, TimeoutMS: 20000}, &tr); err != nil {
		if res.Error == "" {
			res.Error = err.Error()
		}
		return res, nil
	}
	res.TraceResult = tr
	return res, nil
}

// call runs one control API request in this process and decodes its
// answer (an error answer becomes the error).
func (s *dashSource) call(ctx context.Context, method, path string, body, out any) error {
	var rd bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd.Reset(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, &rd)
	if err != nil {
		return err
	}
	rec := &recorder{h: http.Header{}, status: http.StatusOK}
	s.api.ServeHTTP(rec, req)
	if rec.status != http.StatusOK {
		var e control.Error
		if json.Unmarshal(rec.body.Bytes(), &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s %s: status %d", method, path, rec.status)
	}
	return json.Unmarshal(rec.body.Bytes(), out)
}
