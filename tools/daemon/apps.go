package daemon

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
	"github.com/mycelium-mesh/mycelium/l4-apps/admin"
	"github.com/mycelium-mesh/mycelium/l4-apps/gossip"
	"github.com/mycelium-mesh/mycelium/l4-apps/messages"
	"github.com/mycelium-mesh/mycelium/l4-apps/services"
	"github.com/mycelium-mesh/mycelium/l4-apps/stream"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// GossipConfig is [gossip].
type GossipConfig struct {
	HelloPeriod time.Duration `toml:"hello_period"`
}

// ServiceConfig is one [[service]] the node announces.
type ServiceConfig struct {
	Name string `toml:"name"`
	App  string `toml:"app"`
	Meta string `toml:"meta"`
}

// ServicesConfig is [services].
type ServicesConfig struct {
	// Refresh is how often the node announces its services again; an
	// entry not refreshed for three times that expires.
	Refresh time.Duration `toml:"refresh"`
}

func (c *Config) checkApps() error {
	if err := c.checkMessages(); err != nil {
		return err
	}
	if err := c.checkAdmin(); err != nil {
		return err
	}
	if p := c.Gossip.HelloPeriod; p < time.Second || p > 24*time.Hour {
		return configErr("gossip.hello_period %v: 1s..24h", p)
	}
	if r := c.Services.Refresh; r < 10*time.Second || r > 24*time.Hour {
		return configErr("services.refresh %v: 10s..24h", r)
	}
	if len(c.Service) > 255 {
		return configErr("service: %d of them, at most 255", len(c.Service))
	}
	for i, s := range c.Service {
		if s.Name == "" {
			return configErr("service %d: name: empty", i+1)
		}
		for _, f := range []struct{ k, v string }{{"name", s.Name}, {"app", s.App}, {"meta", s.Meta}} {
			if len(f.v) > 255 || !utf8.ValidString(f.v) {
				return configErr("service %d: %s: at most 255 bytes of UTF-8", i+1, f.k)
			}
		}
	}
	return nil
}

// apps are the applications above the router: gossip and the service
// directory.
type apps struct {
	gossip *gossip.Service
	dir    *services.Directory
	msgs   *messages.Service
}

// appNames name the app_ids a neighbour's beacon may list, for the
// directory's summaries; "" hides the protocol's own.
var appNames = map[packet.AppID]string{
	gossip.AppID: "gossip", services.AppID: "services", stream.AppID: "stream", messages.AppID: "messages", admin.AppID: "admin",
	PingApp: "", tree.AppID: "", route.ControlApp: "", node.SegmentAppID: "",
	beacon.AppID: "", beacon.CapabilitiesID: "", beacon.SleepsID: "", beacon.ESPNOWV2ID: "",
}

// startApps builds and registers the applications on n (before Run).
func startApps(cfg *Config, n *node.Node, id identity.Identity, s *stack, log *slog.Logger) error {
	a := &apps{}
	gcfg := gossip.Config{
		Clock: s.loop, Net: n, Self: n.ID(), Seed: rand.Uint64(), HelloPeriod: cfg.Gossip.HelloPeriod,
		Logger: log.With("layer", "gossip"),
	}
	if cfg.Node.SignBroadcasts {
		// Signed (l2-seq/bsig). Inline stays gossip's default: a signed
		// Message of 120 to 200 bytes takes a two-frame broadcast
		// sequence on ESP-NOW or LoRa rather than a Notification and a
		// Request per hop (with Inline cut to what one signed frame
		// holds, store announcements went the Notification way and
		// tools/lab TestMessageToDownNode missed its store once in five
		// runs).
		gcfg.Net = node.Signing{Node: n}
	}
	a.gossip = gossip.New(gcfg)
	n.Register(gossip.AppID, a.gossip.Handle)
	a.dir = services.New(services.Config{
		Clock: s.loop, Gossip: a.gossip, Signer: id, Peers: n.Peers, AppNames: appNames,
		Refresh: cfg.Services.Refresh, Logger: log.With("layer", "services"),
	})
	var own []services.Service
	for _, sc := range cfg.Service {
		own = append(own, services.Service{Name: sc.Name, App: sc.App, Meta: sc.Meta})
	}
	if err := a.dir.Set(own); err != nil {
		return err
	}
	// Listed in the beacons: neighbours see a directory here.
	n.Register(services.AppID, func(node.Message) {})
	s.apps = a
	return startMessages(cfg, s, id)
}

// start begins the hellos and announcements (on the loop, once the node
// runs).
func (a *apps) start() {
	a.gossip.Start()
	a.dir.Start()
	a.msgs.Start()
}

// appRoutes adds the applications' endpoints to the control API.
func (d *daemon) appRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/publish", d.handlePublish)
	mux.HandleFunc("GET /v1/subscribe", d.handleSubscribe)
	mux.HandleFunc("GET /v1/services", d.handleServices)
	d.msgRoutes(mux)
	d.adminRoutes(mux)
}

// maxPublish bounds a published Message's data (gossip's 4 KiB Message
// less its type and topic).
const maxPublish = 4096 - gossip.MessageHead

func (d *daemon) handlePublish(w http.ResponseWriter, r *http.Request) {
	var req control.PublishRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 2*maxPublish+1024)).Decode(&req); err != nil {
		failure(w, badRequestf("publish: %v", err))
		return
	}
	if req.Topic == "" || len(req.Topic) > 255 {
		failure(w, badRequestf("publish: topic: 1..255 bytes"))
		return
	}
	if len(req.Data) > maxPublish {
		failure(w, badRequestf("publish: %d bytes of data, at most %d", len(req.Data), maxPublish))
		return
	}
	var id gossip.MessageID
	err := d.st.doErr(r.Context(), func() error {
		var err error
		id, err = d.st.apps.gossip.Publish(gossip.Topic(req.Topic), req.Data)
		return err
	})
	if err != nil {
		if err == gossip.ErrDuplicate {
			err = badRequestf("publish: the same data on the same topic was published in the last 30 minutes (add something that changes)")
		}
		failure(w, err)
		return
	}
	writeJSON(w, control.Published{Topic: req.Topic, MessageID: hex.EncodeToString(id[:]), Bytes: len(req.Data)})
}

// subscribeBacklog bounds the Messages queued for a slow subscriber; past
// it a Message is dropped for that subscriber (and logged), never held.
const subscribeBacklog = 256

func (d *daemon) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("topic")
	if name == "" || len(name) > 255 {
		failure(w, badRequestf("subscribe: topic: 1..255 bytes"))
		return
	}
	topic := gossip.Topic(name)
	ch := make(chan control.GossipMessage, subscribeBacklog)
	var cancel func()
	if err := d.st.do(r.Context(), func() {
		cancel = d.st.apps.gossip.Subscribe(topic, func(m gossip.Delivery) {
			select {
			case ch <- control.GossipMessage{Topic: name, MessageID: hex.EncodeToString(m.ID[:]), Local: m.Local, Signed: m.Signed, Time: m.Time.UTC().Format(time.RFC3339Nano), Data: m.Data}:
			default:
				d.log.Warn("subscriber too slow: message dropped for it", "topic", name)
			}
		})
	}); err != nil {
		failure(w, err)
		return
	}
	defer func() {
		// The request's context is done by now: a short one of its own.
		ctx, stop := context.WithTimeout(context.Background(), time.Second)
		_ = d.st.do(ctx, cancel)
		stop()
	}()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case m := <-ch:
			if err := enc.Encode(m); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-r.Context().Done():
			return
		}
	}
}

func (d *daemon) handleServices(w http.ResponseWriter, r *http.Request) {
	app := r.URL.Query().Get("app")
	var list []services.Entry
	if err := d.st.do(r.Context(), func() { list = d.st.apps.dir.List(app) }); err != nil {
		failure(w, err)
		return
	}
	out := make([]control.ServiceEntry, 0, len(list))
	for _, e := range list {
		out = append(out, control.ServiceEntry{
			NodeID: hex.EncodeToString(e.Node[:]), Name: e.Name, App: e.App, Meta: e.Meta,
			AgeS: e.Age.Seconds(), Beacon: e.Beacon,
		})
	}
	writeJSON(w, out)
}

// appsChanged names the applications' section that changed ("" if none):
// they apply only at start.
func appsChanged(old, cfg *Config) string {
	switch {
	case old.Gossip != cfg.Gossip:
		return "[gossip]"
	case old.Services != cfg.Services:
		return "[services]"
	case !slices.Equal(old.Service, cfg.Service):
		return "[[service]]"
	case old.Messages != cfg.Messages:
		return "[messages]"
	case !reflect.DeepEqual(old.Admin, cfg.Admin):
		return "[admin]"
	}
	return ""
}
