package control

import "context"

// Revocation is one revocation a node honours (GET /v1/revocations), or
// the answer to POST /v1/revocations.
type Revocation struct {
	NodeID   string `json:"node_id"`
	Operator string `json:"operator"`
	Date     string `json:"date"` // RFC 3339, UTC: when the operator revoked the key
	// Added is set in the answer to a POST: the node had not honoured it
	// before (it now does, and passes it on).
	Added bool `json:"added,omitempty"`
}

// RevokeRequest is POST /v1/revocations: a revocation as `mycelium keys
// operator revoke` writes it (PEM).
type RevokeRequest struct {
	PEM string `json:"pem"`
}

// Revocations is GET /v1/revocations: the operator keys configured, the
// revocations honoured, and the counters of what was refused.
type Revocations struct {
	Operators   []string          `json:"operators"`
	Revocations []Revocation      `json:"revocations"`
	Max         int               `json:"max"`
	Stats       map[string]uint64 `json:"stats"`
}

// Revocations lists the revocations the node honours.
func (c *Client) Revocations(ctx context.Context) (Revocations, error) {
	var out Revocations
	err := c.getJSON(ctx, "/v1/revocations", nil, &out)
	return out, err
}

// Revoke hands the node a revocation (PEM): it checks it against its
// configured operator keys, honours it, keeps it and passes it on.
func (c *Client) Revoke(ctx context.Context, pem []byte) (Revocation, error) {
	var out Revocation
	err := c.postJSON(ctx, "/v1/revocations", RevokeRequest{PEM: string(pem)}, &out)
	return out, err
}
