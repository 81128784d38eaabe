package route

import (
	"encoding/binary"
	"errors"
	"slices"
	"sort"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// Trace route [ours]: a probe travels like any routed Package; every node
// that passes it on reports back to the sender (routed, like an error)
// its hop number, its address, its node_id and the link it used next, and
// the destination reports last. The sender sorts the reports by hop and
// notes when each came back.

// TraceHop is one step of a traced path.
type TraceHop struct {
	Hop   int
	Addr  addr.Long
	ID    identity.NodeID // the node that reported (as it says: reports are not signed)
	Link  string          // the link the probe left on ("" at the destination)
	Final bool            // the destination
	// RTT is the time from the probe's start until this report came back:
	// the probe's way out to this hop and the report's way back.
	RTT time.Duration
}

type traceReq struct {
	cb    func([]TraceHop, error)
	hops  []TraceHop
	final int // the destination's hop number + 1 (0 until its report comes)
	start time.Time
	timer interface{ Stop() bool }
}

// ErrTraceIncomplete: the destination's report did not arrive in time.
var ErrTraceIncomplete = errors.New("route: trace incomplete")

// traceTimeout bounds a trace.
const traceTimeout = 30 * time.Second

// Trace sends a probe to d and calls cb with the path (on the node's loop):
// the hops in order, the last one Final; or, with ErrTraceIncomplete, what
// arrived.
func (r *Router) Trace(d Destination, opt *Options, cb func([]TraceHop, error)) {
	if r.closed {
		cb(nil, node.ErrClosed)
		return
	}
	if opt == nil {
		opt = &Options{}
	}
	ph, h, ok := r.pathTo(d.Addrs, opt.Mode, opt.Tree, true)
	if !ok {
		cb(nil, ErrNoCommonTree)
		return
	}
	// Only where the probe can leave from here: with no neighbour closer
	// to the destination in any tree, nothing would come back to say so
	// (a probe fails quietly, as lookups do). A leaf sends everything
	// through its proxy.
	if !r.leases.proxied && !r.canLeave(ph, opt.Mode) {
		cb(nil, node.ErrNoRoute)
		return
	}
	if !d.unsignable() {
		// Only the destination itself reports the end (a keyless board's
		// parser knows no tag).
		ph.setDst(d.ID)
	}
	nonce := r.rng.Uint32()
	q := &traceReq{cb: cb, start: r.clk.Now()}
	r.traces[nonce] = q
	q.timer = r.clk.AfterFunc(r.paced(traceTimeout, 200), func() {
		if r.traces[nonce] == q {
			delete(r.traces, nonce)
			sortHops(q.hops)
			cb(q.hops, ErrTraceIncomplete)
		}
	})
	b := binary.BigEndian.AppendUint32([]byte{msgTrace}, nonce)
	r.forward(r.wrap(h, ph, packet.NewPackage(ControlApp, b)), true, nil)
}

// traceHop reports a probe passing through (next: the neighbour it goes to).
func (r *Router) traceHop(rp *routed, self addr.Long, next tree.Neighbor) {
	if controlType(&rp.Inner) != msgTrace || rp.Header.Error {
		return
	}
	b := rp.Inner.Blob[1:]
	if len(b) != 4 {
		return
	}
	hop := int(r.cfg.TTL) - int(rp.Header.TTL)
	r.sendReport(rp, b, hop, self, r.b.LinkName(next.Via.Link), false)
}

// onTraceArrived: the probe reached us, the destination.
func (r *Router) onTraceArrived(rp *routed, b []byte) {
	if len(b) != 4 {
		return
	}
	self, ok := r.position(rp.Header.TreeState)
	if rp.Path != nil {
		for _, d := range rp.Path.dst {
			if p, ok2 := r.position(d.TreeState); ok2 && p.Addr.SameHolder(d.Addr) {
				self, ok = p, true
			}
		}
	}
	if !ok {
		return
	}
	r.sendReport(rp, b, int(r.cfg.TTL)-int(rp.Header.TTL)+1, self.Addr, "", true)
}

// sendReport reports one hop: nonce(4) ‖ hop(1) ‖ final(1) ‖ the
// reporter's compact address ‖ its node_id(32) ‖ the link's name.
func (r *Router) sendReport(rp *routed, nonce []byte, hop int, a addr.Long, link string, final bool) {
	m := append([]byte{msgTraceReport}, nonce...)
	f := byte(0)
	if final {
		f = 1
	}
	m = append(m, byte(hop), f)
	m = a.AppendCompact(m)
	m = append(m, r.self[:]...)
	m = append(m, link...)
	for _, o := range origin(rp) {
		if self, ok := r.position(o.TreeState); ok && self.Addr.SameHolder(o.Addr) {
			r.onTraceReport(m[1:]) // we are the sender: no need to travel
			return
		}
	}
	r.reply(rp, m)
}

// onTraceReport collects a report.
func (r *Router) onTraceReport(b []byte) {
	if len(b) < 4+1+1+1+32 {
		return
	}
	q := r.traces[nonceOf(b)]
	if q == nil {
		return
	}
	var hop TraceHop
	hop.Hop = int(b[4])
	hop.Final = b[5] == 1
	a, rest, err := addr.ReadCompact(b[6:])
	if err != nil || len(rest) < 32 {
		r.stats.Malformed++
		return
	}
	hop.Addr = a
	copy(hop.ID[:], rest[:32])
	hop.Link = string(rest[32:])
	hop.RTT = r.clk.Now().Sub(q.start)
	if slices.ContainsFunc(q.hops, func(h TraceHop) bool { return h.Hop == hop.Hop }) {
		return // a copy (a report sent again)
	}
	q.hops = append(q.hops, hop)
	if hop.Final {
		q.final = hop.Hop + 1
	}
	// The destination's report can overtake a relay's (that one was sent
	// again after a loss, or comes from further away): the trace is done
	// when every hop up to the destination has reported; the timeout
	// hands over what came.
	if q.final > 0 && len(q.hops) == q.final {
		delete(r.traces, nonceOf(b))
		q.timer.Stop()
		sortHops(q.hops)
		q.cb(q.hops, nil)
	}
}

func sortHops(h []TraceHop) { sort.SliceStable(h, func(i, j int) bool { return h[i].Hop < h[j].Hop }) }
