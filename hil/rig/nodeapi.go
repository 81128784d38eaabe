package rig

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// NodeAPI is the part of a `mycelium node`'s control API (docs/control-
// api.md) the suite uses, over its unix socket.
type NodeAPI struct {
	Socket string
	hc     *http.Client
}

// NewNodeAPI talks to the node whose control socket is sock.
func NewNodeAPI(sock string) *NodeAPI {
	return &NodeAPI{Socket: sock, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}}
}

func (n *NodeAPI) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://node"+path, nil)
	if err != nil {
		return err
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, v)
}

// Stats reads the node's counters (/v1/stats) as the node wrote them.
func (n *NodeAPI) Stats(ctx context.Context) (json.RawMessage, error) {
	var st json.RawMessage
	err := n.get(ctx, "/v1/stats", &st)
	return st, err
}

// Status is what the suite reads of /v1/status.
type Status struct {
	NodeID string `json:"node_id"`
	Name   string `json:"name"`
	Peers  int    `json:"peers"`
	Links  []struct {
		Type     string `json:"type"`
		TxFrames uint64 `json:"tx_frames"`
		RxFrames uint64 `json:"rx_frames"`
	} `json:"links"`
	Trees []struct {
		Address string `json:"address"`
		IsRoot  bool   `json:"is_root"`
	} `json:"trees"`
}

// Status reads the node's status.
func (n *NodeAPI) Status(ctx context.Context) (Status, error) {
	var s Status
	err := n.get(ctx, "/v1/status", &s)
	return s, err
}

// Peer is one entry of /v1/peers.
type Peer struct {
	NodeID     string  `json:"node_id"`
	Link       string  `json:"link"`
	Addr       string  `json:"addr"`
	LastHeardS float64 `json:"last_heard_s"`
	Reference  bool    `json:"reference"`
	Sleeps     bool    `json:"sleeps"`
}

// Peers lists the node's neighbours.
func (n *NodeAPI) Peers(ctx context.Context) ([]Peer, error) {
	var p []Peer
	err := n.get(ctx, "/v1/peers", &p)
	return p, err
}

// SendResult is the end of a send: Code "" when the destination confirmed.
type SendResult struct {
	Bytes   int     `json:"bytes"`
	Seconds float64 `json:"seconds"`
	Code    string
	Err     string
}

// Send sends blob to target's application app and waits for the end.
func (n *NodeAPI) Send(ctx context.Context, target, app string, blob []byte) (SendResult, error) {
	q := url.Values{"target": {target}, "app": {app}}
	req, err := http.NewRequestWithContext(ctx, "POST", "http://node/v1/send?"+q.Encode(), bytes.NewReader(blob))
	if err != nil {
		return SendResult{}, err
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		return SendResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var e struct {
			Error string `json:"error"`
			Code  string `json:"code"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		json.Unmarshal(b, &e)
		return SendResult{Code: e.Code, Err: e.Error}, nil
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev struct {
			Result *SendResult `json:"result"`
			Error  *struct {
				Error string `json:"error"`
				Code  string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		if ev.Result != nil {
			return *ev.Result, nil
		}
		if ev.Error != nil {
			return SendResult{Code: ev.Error.Code, Err: ev.Error.Error}, nil
		}
	}
	if err := sc.Err(); err != nil {
		return SendResult{}, err
	}
	return SendResult{}, fmt.Errorf("send: the node ended the answer without a result")
}

// Received is one Package a listener got.
type Received struct {
	App    string `json:"app"`
	From   string `json:"from"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

// Listen registers a listener for app; Packages come on the channel until
// ctx ends. It returns once the node has registered the application.
func (n *NodeAPI) Listen(ctx context.Context, app string) (<-chan Received, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://node/v1/listen?app="+url.QueryEscape(app), nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		return nil, fmt.Errorf("listen: %s: %s", resp.Status, b)
	}
	ch := make(chan Received, 64)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var r Received
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				select {
				case ch <- r:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch, nil
}
