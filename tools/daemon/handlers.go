package daemon

import (
	"context"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// queryTimeout bounds reading state off the loop.
const queryTimeout = 5 * time.Second

func (d *daemon) links() []control.Link {
	var out []control.Link
	for i, ol := range d.st.links {
		info, c := ol.l.Info(), ol.l.Counters()
		l := control.Link{
			Index: i, Type: ol.cfg.Type, Addr: info.Addr.String(), MTU: info.MTU, Bitrate: info.Bitrate,
			TxFrames: c.TxFrames, RxFrames: c.RxFrames, TxBytes: c.TxBytes, RxBytes: c.RxBytes, Drops: c.Dropped(),
		}
		if u, ok := ol.dutyUsed(); ok {
			l.DutyUsed = &u
		}
		out = append(out, l)
	}
	return out
}

// trees reads this node's place in every tree (on the loop).
func (d *daemon) treePositions() []control.TreePos {
	t := d.st.trees
	var out []control.TreePos
	for k := range t.Count() {
		p, ok := t.Current(k)
		if !ok {
			continue
		}
		tp := control.TreePos{Tree: k, TreeState: int(p.TreeState), Address: p.Addr.String(), Depth: p.Depth, IsRoot: p.Root,
			Neighbors: len(t.Neighbors(k, p.TreeState))}
		if root, _ := t.Root(k); root != nil {
			tp.Root = hex.EncodeToString(root)
		}
		out = append(out, tp)
	}
	return out
}

func (d *daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	st := control.Status{Version: d.version, UptimeS: time.Since(d.started).Seconds(), Links: d.links(), Name: d.cfg.Node.Name, Timing: d.cfg.timing()}
	err := d.st.do(ctx, func() {
		st.NodeID = d.st.node.ID().String()
		st.Peers = len(d.st.node.Peers())
		st.Trees = d.treePositions()
		st.Registered = d.st.router.Registered() && (d.cfg.Node.Name == "" || d.st.router.NameRegistered())
		st.NameTaken = d.st.router.NameTaken()
	})
	if err != nil {
		failure(w, err)
		return
	}
	if st.Trees == nil {
		st.Trees = []control.TreePos{}
	}
	writeJSON(w, st)
}

func (d *daemon) handlePeers(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	out := []control.Peer{}
	err := d.st.do(ctx, func() {
		now := d.st.loop.Now()
		for _, p := range d.st.node.Peers() {
			cp := control.Peer{NodeID: p.ID.String(), LastHeardS: now.Sub(p.LastRx).Seconds(), Reference: !p.Full, Sleeps: p.Sleeps}
			cp.Name, _ = d.st.router.NameOf(p.ID)
			if len(p.Endpoints) > 0 {
				ep := p.Endpoints[0]
				cp.LinkIndex, cp.Addr = ep.Link, ep.Addr.String()
				if ep.Link < len(d.st.links) {
					cp.Link = d.st.links[ep.Link].cfg.Type
				}
			}
			out = append(out, cp)
		}
	})
	if err != nil {
		failure(w, err)
		return
	}
	writeJSON(w, out)
}

func (d *daemon) handleTree(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	var out []control.TreePos
	if err := d.st.do(ctx, func() { out = d.treePositions() }); err != nil {
		failure(w, err)
		return
	}
	if out == nil {
		out = []control.TreePos{}
	}
	writeJSON(w, out)
}

// destination looks a node's addresses up (off the loop, waiting).
func (d *daemon) destination(ctx context.Context, id identity.NodeID) (route.Destination, error) {
	type answer struct {
		d   route.Destination
		err error
	}
	ch := make(chan answer, 1)
	if err := d.st.do(ctx, func() {
		d.st.router.Lookup(id, func(dst route.Destination, err error) { ch <- answer{dst, err} })
	}); err != nil {
		return route.Destination{}, err
	}
	select {
	case a := <-ch:
		return a.d, a.err
	case <-ctx.Done():
		return route.Destination{}, ctx.Err()
	}
}

func (d *daemon) handleLookup(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("target")
	if target == "" {
		failure(w, badRequestf("lookup: target missing (?target=NAME|NODE_ID)"))
		return
	}
	ctx := r.Context()
	id, dst, err := d.find(ctx, target)
	if err != nil {
		failure(w, err)
		return
	}
	d.noteID(id)
	res := control.LookupResult{Target: target, NodeID: id.String(), Addrs: []control.TreeAddr{}}
	for _, a := range dst.Addrs {
		res.Addrs = append(res.Addrs, control.TreeAddr{Tree: int(a.Tree), TreeState: int(a.TreeState), Address: a.Addr.String()})
	}
	_ = d.st.do(ctx, func() { res.Name, _ = d.st.router.NameOf(id) })
	writeJSON(w, res)
}

func (d *daemon) handleStats(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	var s control.Stats
	err := d.st.do(ctx, func() {
		ns := d.st.node.Stats()
		s.Node = map[string]uint64{
			"packets_sent": ns.PacketsSent, "packets_received": ns.PacketsRecv, "bytes_sent": ns.BytesSent, "bytes_received": ns.BytesRecv,
			"retransmits": ns.Retransmits, "delivered": ns.Delivered, "delivered_bytes": ns.DeliveredBytes,
			"sends_ok": ns.SendsOK, "peers": uint64(len(d.st.node.Peers())),
		}
		for code, n := range ns.SendsFailed {
			s.Node["sends_failed_"+codeName(code)] = n
		}
		s.Drops = map[string]uint64{}
		for i, n := range ns.Drops {
			s.Drops[link.DropReason(i).String()] = n
		}
		rs := d.st.router.Stats()
		s.Route = map[string]uint64{
			"originated": rs.Originated, "delivered": rs.Delivered, "forwarded": rs.Forwarded, "receipts": rs.Receipts,
			"errors_sent": rs.ErrorsSent, "errors_received": rs.ErrorsRecv, "no_route": rs.NoRoute, "hop_limit": rs.HopLimit,
			"control_bytes_sent": rs.ControlBytesSent, "malformed": rs.Malformed, "lookups": rs.Lookups, "lookup_hits": rs.LookupHits,
			"name_lookups": rs.NameLookups, "name_conflicts": rs.NameConflicts,
		}
		for code, n := range rs.Failed {
			s.Route["failed_"+codeName(code)] = n
		}
		ts := d.st.trees.Stats()
		s.Trees = map[string]uint64{
			"messages_sent": ts.MsgsSent, "messages_received": ts.MsgsRecv, "bytes_sent": ts.BytesSent, "bytes_received": ts.BytesRecv,
			"rejected": ts.Rejected, "malformed": ts.Malformed, "epochs": ts.Epochs, "terms": ts.Terms,
		}
		ss := d.st.streams.Stats()
		s.Stream = map[string]uint64{
			"sent": ss.Sent, "sent_bytes": ss.SentBytes, "send_failed": ss.SendFailed, "received": ss.Received,
			"received_bytes": ss.ReceivedBytes, "refused": ss.Refused, "malformed": ss.Malformed,
		}
		if d.st.e2e != nil {
			es := d.st.e2e.Stats()
			s.E2E = map[string]uint64{
				"sealed": es.Sealed, "opened": es.Opened, "sealed_bytes": es.SealedBytes, "handshakes": es.Handshakes,
				"inits_sent": es.InitsSent, "inits_limited": es.InitsLimited, "malformed": es.Malformed,
				"unauthenticated": es.Unauthenticated, "replayed": es.Replayed, "handshake_failed": es.HandshakeFailed,
				"refused_sent": es.RefusedSent, "refused_heard": es.RefusedHeard,
				"cookies_sent": es.CookiesSent, "cookies_heard": es.CookiesHeard, "cookie_inits": es.CookieInits,
			}
		}
	})
	if err != nil {
		failure(w, err)
		return
	}
	s.Links = d.links()
	writeJSON(w, s)
}

// codeName names a wire error code ("other" for 0: errors without one).
func codeName(code uint8) string {
	if n, ok := codeNames[code]; ok {
		return n
	}
	if code == 0 {
		return "other"
	}
	return "code_" + strconv.Itoa(int(code))
}

// linkDrops are the link drop reasons, for metrics.
var linkDrops = func() []link.DropReason {
	var out []link.DropReason
	for r := link.DropReason(0); r < link.NumDropReasons; r++ {
		out = append(out, r)
	}
	return out
}()
