package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
)

// Client calls a daemon's control API.
type Client struct {
	socket string
	hc     *http.Client
}

// SocketPath picks the socket: flag if set, else $MYCELIUM_SOCKET, else
// DefaultSocket.
func SocketPath(flag string) string {
	if flag != "" {
		return flag
	}
	if s := os.Getenv(EnvSocket); s != "" {
		return s
	}
	return DefaultSocket
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// APIError is an error the daemon answered with.
type APIError struct {
	Status  int
	Message string
	Code    string
}

func (e *APIError) Error() string { return e.Message }

// ErrUnreachable wraps a failure to reach the daemon at all.
var ErrUnreachable = errors.New("cannot reach the node")

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, ctype string) (*http.Response, error) {
	u := "http://mycelium" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w at %s (is `mycelium node` running? --socket or $%s name another socket): %v", ErrUnreachable, c.socket, EnvSocket, unwrapURL(err))
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: HTTP %d", method, path, resp.StatusCode)
		}
		return nil, &APIError{Status: resp.StatusCode, Message: e.Error, Code: e.Code}
	}
	return resp, nil
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *Client) getJSON(ctx context.Context, path string, q url.Values, out any) error {
	resp, err := c.do(ctx, http.MethodGet, path, q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPost, path, nil, bytes.NewReader(b), "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.getJSON(ctx, "/v1/status", nil, &s)
}

// Peers returns the neighbours.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var p []Peer
	return p, c.getJSON(ctx, "/v1/peers", nil, &p)
}

// Tree returns this node's place in every tree.
func (c *Client) Tree(ctx context.Context) ([]TreePos, error) {
	var t []TreePos
	return t, c.getJSON(ctx, "/v1/tree", nil, &t)
}

// Stats returns the counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	return s, c.getJSON(ctx, "/v1/stats", nil, &s)
}

// Lookup resolves a target (name, node_id or prefix) to its addresses.
func (c *Client) Lookup(ctx context.Context, target string) (LookupResult, error) {
	var r LookupResult
	return r, c.getJSON(ctx, "/v1/lookup", url.Values{"target": {target}}, &r)
}

// Ping pings a target.
func (c *Client) Ping(ctx context.Context, req PingRequest) (PingResult, error) {
	var r PingResult
	return r, c.postJSON(ctx, "/v1/ping", req, &r)
}

// Traceroute traces the path to a target.
func (c *Client) Traceroute(ctx context.Context, req TraceRequest) (TraceResult, error) {
	var r TraceResult
	return r, c.postJSON(ctx, "/v1/traceroute", req, &r)
}

// Send sends body (size bytes; the daemon reads it whole first) to app on
// target and waits for the destination's confirmation; progress (may be
// nil) hears the confirmed bytes.
func (c *Client) Send(ctx context.Context, target, app string, body io.Reader, size int64, progress func(SendProgress)) (SendResult, error) {
	q := url.Values{"target": {target}, "app": {app}}
	if size >= 0 {
		q.Set("size", strconv.FormatInt(size, 10))
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/send", q, body, "application/octet-stream")
	if err != nil {
		return SendResult{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev SendEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return SendResult{}, fmt.Errorf("send: bad answer from the node: %v", err)
		}
		switch {
		case ev.Error != nil:
			return SendResult{}, &APIError{Status: http.StatusOK, Message: ev.Error.Error, Code: ev.Error.Code}
		case ev.Result != nil:
			return *ev.Result, nil
		case ev.Progress != nil && progress != nil:
			progress(*ev.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return SendResult{}, ctx.Err()
		}
		return SendResult{}, fmt.Errorf("send: %w", err)
	}
	return SendResult{}, errors.New("send: the node closed the connection without a result (did it stop?)")
}

// Listen calls f with each Package delivered to app until ctx ends, f
// returns an error, or the daemon goes away.
func (c *Client) Listen(ctx context.Context, app string, f func(Received) error) error {
	resp, err := c.do(ctx, http.MethodGet, "/v1/listen", url.Values{"app": {app}}, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var r Received
		if err := dec.Decode(&r); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return errors.New("listen: the node closed the connection (did it stop?)")
			}
			return fmt.Errorf("listen: %w", err)
		}
		if err := f(r); err != nil {
			return err
		}
	}
}
