package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/node"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// listenControl opens the control socket: mode 0660, owned by the
// configured group. A socket file left by a node that died is replaced; one
// a running node answers on is not.
func listenControl(path, group string) (net.Listener, error) {
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control.socket %s: another node is running there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control.socket %s: %v", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control.socket %s: %v", path, unwrapOp(err))
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control.socket %s: %v", path, err)
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("control.group %q: %v", group, err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("control.group %q: %v", group, err)
		}
	}
	return ln, nil
}

func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

// routes wires the API.
func (d *daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", d.handleStatus)
	mux.HandleFunc("GET /v1/peers", d.handlePeers)
	mux.HandleFunc("GET /v1/tree", d.handleTree)
	mux.HandleFunc("GET /v1/stats", d.handleStats)
	mux.HandleFunc("GET /v1/lookup", d.handleLookup)
	mux.HandleFunc("POST /v1/ping", d.handlePing)
	mux.HandleFunc("POST /v1/traceroute", d.handleTrace)
	mux.HandleFunc("POST /v1/send", d.handleSend)
	mux.HandleFunc("GET /v1/listen", d.handleListen)
	d.trustRoutes(mux)
	d.appRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s %s (see docs/control-api.md)", r.Method, r.URL.Path), "not_found")
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err, "")
		return
	}
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, err error, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(control.Error{Error: err.Error(), Code: code})
	w.Write(append(b, '\n'))
}

// failure answers a failed operation with its typed error's status and code.
func failure(w http.ResponseWriter, err error) {
	code := errorCode(err)
	status := http.StatusBadGateway // the mesh said no
	switch code {
	case "bad_request", "bad_name":
		status = http.StatusBadRequest
	case "unknown_target", "ambiguous_target", "unknown_name", "unknown_node":
		status = http.StatusNotFound
	case "revoked":
		status = http.StatusForbidden
	case "shutting_down":
		status = http.StatusServiceUnavailable
	case "timeout":
		status = http.StatusGatewayTimeout
	}
	writeError(w, status, err, code)
}

// codeNames name the node's error codes in the API.
var codeNames = map[uint8]string{
	1: "no_route", 2: "hop_limit", 3: "unknown_app", 4: "peer_asleep", 5: "abandoned", 6: "checksum",
	7: "no_memory", 8: "bad_hash", 9: "throttled", 10: "too_large", 11: "no_schema", 12: "unknown_peer",
	13: "busy", 14: "closed", 15: "link", 16: "reference_length", 17: "source", 18: "stream_lost",
	19: "unauthenticated", 20: "replayed", 21: "handshake",
}

// errorCode names a typed error for the API ("" when it has no name).
func errorCode(err error) string {
	var be *badRequest
	var te *targetError
	switch {
	case errors.As(err, &be):
		return "bad_request"
	case errors.As(err, &te):
		return te.code
	case errors.Is(err, errStopped):
		return "shutting_down"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, route.ErrName):
		return "bad_name"
	case errors.Is(err, route.ErrUnknownName):
		return "unknown_name"
	case errors.Is(err, route.ErrUnknownNode):
		return "unknown_node"
	case errors.Is(err, route.ErrRevoked):
		return "revoked"
	case errors.Is(err, route.ErrNoCommonTree):
		return "no_common_tree"
	case errors.Is(err, route.ErrNoPosition):
		return "no_position"
	case errors.Is(err, route.ErrTraceIncomplete):
		return "trace_incomplete"
	}
	if c := node.CodeOf(err); c != 0 {
		if n, ok := codeNames[c]; ok {
			return n
		}
	}
	return ""
}

// badRequest is a request the API cannot take as it is.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badRequestf(format string, args ...any) error {
	return &badRequest{msg: fmt.Sprintf(format, args...)}
}
