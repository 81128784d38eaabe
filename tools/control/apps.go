package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// PublishRequest is POST /v1/publish: data on a gossip topic, to every
// node.
type PublishRequest struct {
	Topic string `json:"topic"`
	Data  []byte `json:"data"` // base64 in JSON
}

// Published answers a publish.
type Published struct {
	Topic     string `json:"topic"`
	MessageID string `json:"message_id"` // hex
	Bytes     int    `json:"bytes"`
}

// GossipMessage is one line of GET /v1/subscribe?topic=NAME (NDJSON).
type GossipMessage struct {
	Topic     string `json:"topic"`
	MessageID string `json:"message_id"`
	Local     bool   `json:"local"` // published on this node
	// Signed: the neighbour that passed it on signed its broadcast, and
	// it verified (one hop authenticated, not the publisher).
	Signed bool   `json:"signed"`
	Time   string `json:"time"` // RFC 3339, nanoseconds
	Data   []byte `json:"data"` // base64 in JSON
}

// ServiceEntry is one element of GET /v1/services[?app=NAME].
type ServiceEntry struct {
	NodeID string  `json:"node_id"`
	Name   string  `json:"name"`
	App    string  `json:"app"`
	Meta   string  `json:"meta"`
	AgeS   float64 `json:"age_s"`
	// Beacon: known from a neighbour's beacon only (its app_ids), not
	// announced.
	Beacon bool `json:"beacon,omitempty"`
}

// Publish sends data on topic to every node.
func (c *Client) Publish(ctx context.Context, topic string, data []byte) (Published, error) {
	var out Published
	err := c.postJSON(ctx, "/v1/publish", PublishRequest{Topic: topic, Data: data}, &out)
	return out, err
}

// Services lists the node's service directory (app "" for all).
func (c *Client) Services(ctx context.Context, app string) ([]ServiceEntry, error) {
	var out []ServiceEntry
	q := url.Values{}
	if app != "" {
		q.Set("app", app)
	}
	err := c.getJSON(ctx, "/v1/services", q, &out)
	return out, err
}

// Subscribe calls f with each new Message on topic until ctx ends, f
// returns an error, or the daemon goes away.
func (c *Client) Subscribe(ctx context.Context, topic string, f func(GossipMessage) error) error {
	resp, err := c.do(ctx, http.MethodGet, "/v1/subscribe", url.Values{"topic": {topic}}, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m GossipMessage
		if err := dec.Decode(&m); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return errors.New("subscribe: the node closed the connection (did it stop?)")
			}
			return fmt.Errorf("subscribe: %w", err)
		}
		if err := f(m); err != nil {
			return err
		}
	}
}

// MsgSendRequest is POST /v1/msg/send: a text to a node, sealed to it,
// held by storage nodes while it is away.
type MsgSendRequest struct {
	Target string `json:"target"` // a name, a node_id or a unique prefix
	Text   string `json:"text"`
	WaitMS int    `json:"wait_ms"` // how long to wait for the receipt, 0..60,000
}

// MsgSent is a sent message (the answer to a send, and GET /v1/msg/outbox).
type MsgSent struct {
	ID          string `json:"id"`
	To          string `json:"to"`
	State       string `json:"state"`  // sending, waiting, stored, delivered, expired
	Stores      int    `json:"stores"` // storage nodes that took it
	Created     string `json:"created"`
	DeliveredAt string `json:"delivered_at,omitempty"`
}

// MsgReceived is one element of GET /v1/msg/inbox.
type MsgReceived struct {
	ID       string `json:"id"`
	From     string `json:"from"`
	Text     string `json:"text"`
	Created  string `json:"created"`  // the sender's clock
	Received string `json:"received"` // ours
}

// MsgSend sends a message and waits up to wait for its receipt.
func (c *Client) MsgSend(ctx context.Context, req MsgSendRequest) (MsgSent, error) {
	var out MsgSent
	err := c.postJSON(ctx, "/v1/msg/send", req, &out)
	return out, err
}

// MsgInbox lists the messages received.
func (c *Client) MsgInbox(ctx context.Context) ([]MsgReceived, error) {
	var out []MsgReceived
	err := c.getJSON(ctx, "/v1/msg/inbox", nil, &out)
	return out, err
}

// MsgOutbox lists the messages sent and still followed.
func (c *Client) MsgOutbox(ctx context.Context) ([]MsgSent, error) {
	var out []MsgSent
	err := c.getJSON(ctx, "/v1/msg/outbox", nil, &out)
	return out, err
}

// AdminExec is POST /v1/admin/exec: one Starlark command on this node.
type AdminExec struct {
	Command string `json:"command"`
}

// AdminResult answers a command (local or remote).
type AdminResult struct {
	Outcome string `json:"outcome"` // ok, error, refused, rate_limited
	Result  string `json:"result"`  // the value or what it printed; the error
}

// AdminNonceRequest is POST /v1/admin/nonce: ask a node for a nonce to
// sign a command over.
type AdminNonceRequest struct {
	Target string `json:"target"`
}

// AdminNonce is a node's nonce (single use, good for 30 s).
type AdminNonce struct {
	NodeID string `json:"node_id"`
	Nonce  string `json:"nonce"` // hex
}

// AdminRemote is POST /v1/admin/remote: a signed command for another node.
type AdminRemote struct {
	NodeID    string `json:"node_id"`
	Operator  string `json:"operator"`  // the operator's Ed25519 public key, hex
	Nonce     string `json:"nonce"`     // hex, from /v1/admin/nonce
	Signature string `json:"signature"` // hex: Ed25519 over admin.SignedBytes
	Command   string `json:"command"`
}

// AdminExec runs a command on this node.
func (c *Client) AdminExec(ctx context.Context, command string) (AdminResult, error) {
	var out AdminResult
	err := c.postJSON(ctx, "/v1/admin/exec", AdminExec{Command: command}, &out)
	return out, err
}

// AdminNonce asks target for a nonce.
func (c *Client) AdminNonce(ctx context.Context, target string) (AdminNonce, error) {
	var out AdminNonce
	err := c.postJSON(ctx, "/v1/admin/nonce", AdminNonceRequest{Target: target}, &out)
	return out, err
}

// AdminRemote sends a signed command to another node through this one.
func (c *Client) AdminRemote(ctx context.Context, req AdminRemote) (AdminResult, error) {
	var out AdminResult
	err := c.postJSON(ctx, "/v1/admin/remote", req, &out)
	return out, err
}
