package daemon

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l4-apps/messages"
	"github.com/mycelium-mesh/mycelium/tools/control"
)

// MessagesConfig is [messages].
type MessagesConfig struct {
	// Key is the X25519 key messages to this node are sealed to (written
	// on first start, 0600).
	Key string `toml:"key"`
	// Store: keep messages for nodes that are away, and forward them.
	Store bool `toml:"store"`
	// TTL: how long a message sent from here may wait for its target.
	TTL time.Duration `toml:"ttl"`
}

func (c *Config) checkMessages() error {
	if c.Messages.Key == "" {
		return configErr("messages.key: empty (the key file's path)")
	}
	if t := c.Messages.TTL; t < time.Minute || t > 30*24*time.Hour {
		return configErr("messages.ttl %v: 1m..720h", t)
	}
	return nil
}

// loadMessagesKey reads the node's messaging key, or writes a new one
// (atomically, 0600) when there is none.
func loadMessagesKey(path string) (*ecdh.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		if err := writeSecret(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
			return nil, fmt.Errorf("messages.key %s: %v", path, err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("messages.key %s: %v", path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("messages.key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("messages.key %s: %v", path, err)
	}
	xk, ok := k.(*ecdh.PrivateKey)
	if !ok || xk.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("messages.key %s: not an X25519 key", path)
	}
	return xk, nil
}

// writeSecret writes a file 0600 atomically: a temporary file beside it,
// synced, renamed over it.
func writeSecret(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// startMessages builds the messaging service on the stack (before Run).
func startMessages(cfg *Config, s *stack, id identity.Identity) error {
	key, err := loadMessagesKey(cfg.Resolve(cfg.Messages.Key))
	if err != nil {
		return err
	}
	s.apps.msgs = messages.New(messages.Config{
		Clock: s.loop, Router: s.router, Gossip: s.apps.gossip, Signer: id, Key: key,
		Rand: mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64())), Store: cfg.Messages.Store, TTL: cfg.Messages.TTL,
		Refresh: cfg.Services.Refresh,
	})
	s.node.Register(messages.AppID, s.apps.msgs.Handle)
	return nil
}

func (d *daemon) msgRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/msg/send", d.handleMsgSend)
	mux.HandleFunc("GET /v1/msg/inbox", d.handleMsgInbox)
	mux.HandleFunc("GET /v1/msg/outbox", d.handleMsgOutbox)
}

// maxMsgWait bounds how long a send waits for the receipt.
const maxMsgWait = time.Minute

func (d *daemon) handleMsgSend(w http.ResponseWriter, r *http.Request) {
	var req control.MsgSendRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil {
		failure(w, badRequestf("msg send: %v", err))
		return
	}
	if len(req.Text) > messages.MaxText {
		failure(w, badRequestf("msg send: %d bytes of text, at most %d", len(req.Text), messages.MaxText))
		return
	}
	wait := time.Duration(req.WaitMS) * time.Millisecond
	if wait < 0 || wait > maxMsgWait {
		failure(w, badRequestf("msg send: wait_ms %d: 0..%d", req.WaitMS, maxMsgWait.Milliseconds()))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), findPatience)
	to, err := d.resolve(ctx, req.Target)
	cancel()
	if err != nil {
		failure(w, err)
		return
	}
	var id messages.ID
	if err := d.st.doErr(r.Context(), func() error {
		var err error
		id, err = d.st.apps.msgs.Send(to, req.Text)
		return err
	}); err != nil {
		if errors.Is(err, messages.ErrNoKey) {
			err = &targetError{code: "unknown_node", msg: "msg send: " + err.Error()}
		}
		failure(w, err)
		return
	}
	// Wait for the receipt (or the wait's end): the state as it is then.
	var sent messages.Sent
	deadline := time.Now().Add(wait)
	for {
		if err := d.st.do(r.Context(), func() {
			for _, o := range d.st.apps.msgs.Outbox() {
				if o.ID == id {
					sent = o
				}
			}
		}); err != nil {
			failure(w, err)
			return
		}
		if sent.State == messages.Delivered || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
	writeJSON(w, outboxEntry(sent))
}

func outboxEntry(o messages.Sent) control.MsgSent {
	e := control.MsgSent{ID: hex.EncodeToString(o.ID[:]), To: hex.EncodeToString(o.To[:]), State: string(o.State), Stores: o.Stores,
		Created: o.Created.UTC().Format(time.RFC3339Nano)}
	if !o.DeliveredAt.IsZero() {
		e.DeliveredAt = o.DeliveredAt.UTC().Format(time.RFC3339Nano)
	}
	return e
}

func (d *daemon) handleMsgOutbox(w http.ResponseWriter, r *http.Request) {
	var list []messages.Sent
	if err := d.st.do(r.Context(), func() { list = d.st.apps.msgs.Outbox() }); err != nil {
		failure(w, err)
		return
	}
	out := make([]control.MsgSent, 0, len(list))
	for _, o := range list {
		out = append(out, outboxEntry(o))
	}
	writeJSON(w, out)
}

func (d *daemon) handleMsgInbox(w http.ResponseWriter, r *http.Request) {
	var list []messages.Received
	if err := d.st.do(r.Context(), func() { list = d.st.apps.msgs.Inbox() }); err != nil {
		failure(w, err)
		return
	}
	out := make([]control.MsgReceived, 0, len(list))
	for _, m := range list {
		out = append(out, control.MsgReceived{ID: hex.EncodeToString(m.ID[:]), From: hex.EncodeToString(m.From[:]), Text: m.Text,
			Created: m.Created.UTC().Format(time.RFC3339), Received: m.At.UTC().Format(time.RFC3339Nano)})
	}
	writeJSON(w, out)
}
