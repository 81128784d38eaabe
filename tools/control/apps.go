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
	Time      string `json:"time"`  // RFC 3339, nanoseconds
	Data      []byte `json:"data"`  // base64 in JSON
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
