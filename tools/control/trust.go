package control

import "context"

// Revocation is one revocation a node honours (GET /v1/revocations), or
// the answer to POST /v1/revocations: of a node's key (NodeID), or of a
// proxy certificate (Board, Proxy, Certificate; NodeID empty).
type Revocation struct {
	NodeID string `json:"node_id"`
	// Board and Proxy name a revoked proxy certificate's pair, and
	// Certificate which of theirs: the certificate's date (RFC 3339), or
	// "every certificate".
	Board       string `json:"board,omitempty"`
	Proxy       string `json:"proxy,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	Operator    string `json:"operator"`
	Date        string `json:"date"` // RFC 3339, UTC: when the operator revoked it
	// Added is set in the answer to a POST: the node had not honoured it
	// before (it now does, and passes it on).
	Added bool `json:"added,omitempty"`
}

// RevokeRequest is POST /v1/revocations: a revocation as `mycelium keys
// operator revoke` or `revoke-proxy` writes it (PEM).
type RevokeRequest struct {
	PEM string `json:"pem"`
}

// Revocations is GET /v1/revocations: the operator keys configured, the
// revocations honoured (of keys; of proxy certificates), and the counters
// of what was refused.
type Revocations struct {
	Operators        []string     `json:"operators"`
	Revocations      []Revocation `json:"revocations"`
	ProxyRevocations []Revocation `json:"proxy_revocations"`
	// ProxyCertificates are this node's own ([trust]
	// proxy_certificates), each with whether it was revoked since.
	ProxyCertificates []ProxyCertificate `json:"proxy_certificates"`
	Max               int                `json:"max"`
	Stats             map[string]uint64  `json:"stats"`
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

// ProxyCertificate is one of a node's own proxy certificates.
type ProxyCertificate struct {
	Board    string `json:"board"`
	Operator string `json:"operator"`
	Until    string `json:"until"` // RFC 3339, UTC
	Revoked  bool   `json:"revoked"`
}
