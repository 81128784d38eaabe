package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// collector exports the node's counters to Prometheus. Every scrape takes
// one snapshot on the node's loop, so the numbers of a scrape agree.
type collector struct {
	d *daemon

	linkFrames, linkBytes, linkDrops, linkAirtime, linkDuty *prometheus.Desc
	packets, bytes, retransmits, drops, delivered, sends    *prometheus.Desc
	peers, treeDepth, treeRoot                              *prometheus.Desc
	routed, routeErrors, routeFailed                        *prometheus.Desc
	streams, streamBytes, up                                *prometheus.Desc
}

func newCollector(d *daemon) *collector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("mycelium_"+name, help, labels, nil)
	}
	return &collector{
		d:           d,
		linkFrames:  desc("link_frames_total", "Datagrams sent (tx) and received (rx) by a link.", "link", "type", "dir"),
		linkBytes:   desc("link_bytes_total", "Bytes sent (tx) and received (rx) by a link.", "link", "type", "dir"),
		linkDrops:   desc("link_drops_total", "Datagrams a link dropped, by reason.", "link", "type", "reason"),
		linkAirtime: desc("link_airtime_seconds_total", "Time a link spent transmitting, where it knows (radios).", "link", "type"),
		linkDuty:    desc("link_duty_cycle_used_ratio", "Fraction of the duty-cycle budget used in the current window (links with a budget).", "link", "type"),
		packets:     desc("node_packets_total", "Mesh packets sent and received by the node runtime.", "dir"),
		bytes:       desc("node_bytes_total", "Bytes of mesh packets sent and received.", "dir"),
		retransmits: desc("node_retransmits_total", "Data packets sent again (lost or unacknowledged)."),
		drops:       desc("node_drops_total", "Packets the node runtime dropped, by reason.", "reason"),
		delivered:   desc("node_delivered_total", "Packages handed to local applications."),
		sends:       desc("node_sends_total", "One-hop sends by outcome (ok, or the error's name).", "result"),
		peers:       desc("peers", "Neighbours in the peer table."),
		treeDepth:   desc("tree_depth", "This node's depth in each tree it has a place in (0: the root).", "tree"),
		treeRoot:    desc("tree_is_root", "1 if this node is the tree's root.", "tree"),
		routed:      desc("route_packages_total", "Routed Packages: originated here, delivered here, forwarded.", "kind"),
		routeErrors: desc("route_errors_total", "Routing errors: sent back by this node as a relay or destination, received for sends of ours; no_route and hop_limit as decided here.", "kind"),
		routeFailed: desc("route_send_failures_total", "Routed sends of ours that ended in an error, by its code.", "code"),
		streams:     desc("stream_total", "Streams (large Packages) by outcome.", "kind"),
		streamBytes: desc("stream_bytes_total", "Bytes of streams confirmed sent and delivered here.", "dir"),
		up:          desc("scrape_ok", "1 if the snapshot was taken on the node's loop in time."),
	}
}

// Describe sends every descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.linkFrames, c.linkBytes, c.linkDrops, c.linkAirtime, c.linkDuty, c.packets, c.bytes,
		c.retransmits, c.drops, c.delivered, c.sends, c.peers, c.treeDepth, c.treeRoot, c.routed, c.routeErrors, c.routeFailed,
		c.streams, c.streamBytes, c.up} {
		ch <- d
	}
}

// Collect takes a snapshot and sends it.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for i, ol := range c.d.st.links {
		idx, typ := strconv.Itoa(i), ol.cfg.Type
		k := ol.l.Counters()
		counter(c.linkFrames, k.TxFrames, idx, typ, "tx")
		counter(c.linkFrames, k.RxFrames, idx, typ, "rx")
		counter(c.linkBytes, k.TxBytes, idx, typ, "tx")
		counter(c.linkBytes, k.RxBytes, idx, typ, "rx")
		for _, r := range linkDrops {
			counter(c.linkDrops, k.Drops[r], idx, typ, r.String())
		}
		ch <- prometheus.MustNewConstMetric(c.linkAirtime, prometheus.CounterValue, k.TxAirtime.Seconds(), idx, typ)
		if u, ok := ol.dutyUsed(); ok {
			gauge(c.linkDuty, u, idx, typ)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var snap func()
	err := c.d.st.do(ctx, func() {
		ns := c.d.st.node.Stats()
		rs := c.d.st.router.Stats()
		ss := c.d.st.streams.Stats()
		peers := len(c.d.st.node.Peers())
		pos := c.d.treePositions()
		snap = func() {
			counter(c.packets, ns.PacketsSent, "tx")
			counter(c.packets, ns.PacketsRecv, "rx")
			counter(c.bytes, ns.BytesSent, "tx")
			counter(c.bytes, ns.BytesRecv, "rx")
			counter(c.retransmits, ns.Retransmits)
			for i, n := range ns.Drops {
				counter(c.drops, n, link.DropReason(i).String())
			}
			counter(c.delivered, ns.Delivered)
			counter(c.sends, ns.SendsOK, "ok")
			for code := range codeNames {
				counter(c.sends, ns.SendsFailed[code], codeNames[code])
			}
			gauge(c.peers, float64(peers))
			for _, p := range pos {
				t := strconv.Itoa(p.Tree)
				gauge(c.treeDepth, float64(p.Depth), t)
				root := 0.0
				if p.IsRoot {
					root = 1
				}
				gauge(c.treeRoot, root, t)
			}
			counter(c.routed, rs.Originated, "originated")
			counter(c.routed, rs.Delivered, "delivered")
			counter(c.routed, rs.Forwarded, "forwarded")
			counter(c.routed, rs.Receipts, "receipts")
			counter(c.routeErrors, rs.ErrorsSent, "sent")
			counter(c.routeErrors, rs.ErrorsRecv, "received")
			counter(c.routeErrors, rs.NoRoute, "no_route")
			counter(c.routeErrors, rs.HopLimit, "hop_limit")
			counter(c.routeErrors, rs.Malformed, "malformed")
			for code, n := range rs.Failed {
				counter(c.routeFailed, n, codeName(code))
			}
			counter(c.streams, ss.Sent, "sent")
			counter(c.streams, ss.SendFailed, "send_failed")
			counter(c.streams, ss.Received, "received")
			counter(c.streams, ss.Refused, "refused")
			counter(c.streamBytes, ss.SentBytes, "tx")
			counter(c.streamBytes, ss.ReceivedBytes, "rx")
		}
	})
	if err != nil {
		gauge(c.up, 0)
		return
	}
	snap()
	gauge(c.up, 1)
}

// serveMetrics listens on addr and serves /metrics (the node's collector,
// the Go runtime's and the process's) and, when page is not nil, the
// dashboard at every other path.
func (d *daemon) serveMetrics(addr string, page http.Handler) (*http.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(d), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("metrics.listen %s: address already in use", addr)
		}
		return nil, fmt.Errorf("metrics.listen %s: %v", addr, unwrapOp(err))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	if page != nil {
		mux.Handle("/", page)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}
