package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// Options are what the command line gives Run.
type Options struct {
	ConfigPath string
	Version    string
	// Logs go here (standard error).
	Logs io.Writer
}

// daemon is a running node.
type daemon struct {
	cfg     *Config
	path    string
	version string
	log     *slog.Logger
	level   *slog.LevelVar
	st      *stack
	started time.Time
	lis     listeners

	admin *adminState // admin.go

	seenMu sync.Mutex
	seenQ  []identity.NodeID
}

// Run runs the node until ctx ends or SIGINT/SIGTERM comes (then it says
// goodbye and returns nil); SIGHUP reloads the configuration. Any error
// before the node is up is returned (the command exits 1 with it).
func Run(ctx context.Context, opt Options) error {
	cfg, err := Load(opt.ConfigPath)
	if err != nil {
		return err
	}
	id, err := loadIdentity(cfg)
	if err != nil {
		return err
	}
	d := &daemon{cfg: cfg, path: opt.ConfigPath, version: opt.Version, level: new(slog.LevelVar), started: time.Now()}
	gate := &startGate{w: opt.Logs}
	d.log = newLogger(gate, opt.Logs, cfg.Log, d.level)

	// Signals first: a SIGTERM during start-up must not kill us half-way.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ln, err := listenControl(cfg.Resolve(cfg.Control.Socket), cfg.Control.Group)
	if err != nil {
		return err
	}
	defer ln.Close()
	d.st, err = startStack(cfg, id, d.log, stackHooks{
		accepts: func(app packet.AppID) bool { return d.lis.has(app) },
		deliver: d.onStream,
	})
	if err != nil {
		return err
	}
	stackUp := true
	defer func() {
		if stackUp {
			d.st.close()
		}
	}()
	if err := d.startAdmin(); err != nil {
		return err
	}
	defer d.admin.adm.Close()
	stopHTTP, err := d.serveHTTP(ctx, cfg.Metrics)
	if err != nil {
		return err
	}
	// Handlers end with the server's base context: long requests (listen,
	// a send) stop at shutdown instead of holding it up.
	base, stopHandlers := context.WithCancel(context.Background())
	srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return base }}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	gate.release()
	var nodeID string
	_ = d.st.do(ctx, func() { nodeID = d.st.node.ID().String() })
	d.log.Info("node started", "node_id", nodeID, "name", cfg.Node.Name, "socket", cfg.Resolve(cfg.Control.Socket),
		"links", len(d.st.links), "metrics", cfg.Metrics.Listen, "version", opt.Version)
	d.log.Info("timing", "profile", cfg.Profile, "beacon_period", cfg.Node.BeaconPeriod, "claim_period", cfg.Routing.ClaimPeriod,
		"trees", cfg.Routing.Trees, "epoch_periods", cfg.Routing.EpochPeriods, "explicit", cfg.Explicit)
	for _, w := range cfg.Warnings() {
		d.log.Warn("config", "warning", w)
	}

	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case err := <-served:
			runErr = fmt.Errorf("control API: %w", err)
			break wait
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reload()
				continue
			}
			d.log.Info("stopping", "signal", sig.String())
			break wait
		}
	}
	// Shut down: no new requests, running ones told to end; goodbye on
	// every link; links closed. All within a second or so.
	stopHandlers()
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	srv.Shutdown(sctx)
	stopHTTP(sctx)
	cancel()
	d.st.close()
	stackUp = false
	d.log.Info("stopped")
	return runErr
}

// loadIdentity reads the node's key; a missing one is an error naming the
// file (mycelium init makes one), never a silent new identity.
func loadIdentity(cfg *Config) (identity.Identity, error) {
	path := cfg.Resolve(cfg.Node.Identity)
	id, err := identity.Load(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return id, fmt.Errorf("node.identity %s: no such file (mycelium init --dir DIR writes one)", path)
	case err != nil:
		return id, fmt.Errorf("node.identity %s: %v", path, err)
	}
	return id, nil
}

// reload re-reads the configuration (SIGHUP). What can change in place
// does (the log level, a UDP link's static peers); anything else is
// refused with a log line naming it, and the node runs on as it was.
func (d *daemon) reload() {
	cfg, err := Load(d.path)
	if err != nil {
		d.log.Error("reload refused", "err", err)
		return
	}
	if why := d.changedBeyondReload(cfg); why != "" {
		d.log.Error("reload refused: restart to apply", "change", why)
		return
	}
	lvl, _ := parseLevel(cfg.Log.Level)
	if lvl != d.level.Level() {
		d.level.Set(lvl)
		d.log.Info("reload: log level", "level", cfg.Log.Level)
	}
	for i, ol := range d.st.links {
		changed, err := ol.setPeers(cfg.Links[i].Peers)
		if err != nil {
			d.log.Error("reload: peers", "link", i+1, "err", err)
			continue
		}
		if changed {
			d.log.Info("reload: static peers", "link", i+1, "peers", cfg.Links[i].Peers)
		}
	}
	d.cfg.Log.Level = cfg.Log.Level
	d.log.Info("reloaded", "config", d.path)
}

// changedBeyondReload names the first change a reload cannot apply.
func (d *daemon) changedBeyondReload(cfg *Config) string {
	old := d.cfg
	switch {
	case !reflect.DeepEqual(old.Node, cfg.Node):
		return "[node]"
	case !reflect.DeepEqual(old.Control, cfg.Control):
		return "[control]"
	case !reflect.DeepEqual(old.Metrics, cfg.Metrics):
		return "[metrics]"
	case old.Log.Format != cfg.Log.Format:
		return "log.format"
	case !reflect.DeepEqual(old.Routing, cfg.Routing):
		return "[routing]"
	case !reflect.DeepEqual(old.Budgets, cfg.Budgets):
		return "[budgets]"
	case !reflect.DeepEqual(old.Stream, cfg.Stream):
		return "[stream]"
	case !reflect.DeepEqual(old.Trust, cfg.Trust):
		return "[trust]"
	case appsChanged(old, cfg) != "":
		return appsChanged(old, cfg)
	case len(cfg.Links) != len(d.st.links):
		return fmt.Sprintf("links added or removed (%d to %d): a link is opened or closed only at start", len(d.st.links), len(cfg.Links))
	}
	for i, ol := range d.st.links {
		if !ol.reloadable(cfg.Links[i]) {
			return fmt.Sprintf("link %d (%s): only peers change without a restart", i+1, cfg.Links[i].Type)
		}
	}
	return ""
}
