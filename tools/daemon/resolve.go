package daemon

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
)

// findPatience bounds finding a node (a name lookup, then its addresses):
// a mesh still forming may take a while; a ping's or send's own timeout is
// for what follows.
const findPatience = 2 * time.Minute

// find resolves a TARGET and looks its addresses up.
func (d *daemon) find(ctx context.Context, target string) (identity.NodeID, route.Destination, error) {
	ctx, cancel := context.WithTimeout(ctx, findPatience)
	defer cancel()
	id, err := d.resolve(ctx, target)
	if err != nil {
		return id, route.Destination{}, err
	}
	dst, err := d.destination(ctx, id)
	return id, dst, err
}

// targetError is a TARGET the daemon cannot turn into a node.
type targetError struct {
	code string // unknown_target, ambiguous_target
	msg  string
}

func (e *targetError) Error() string { return e.msg }

// resolve turns a TARGET into a node_id: 64 hex digits are one; a valid
// name is looked up in the mesh; other hex digits are a prefix of a node_id
// this node knows (itself, its peers, its trees' neighbours, nodes it has
// reached or heard from), which must match exactly one.
func (d *daemon) resolve(ctx context.Context, target string) (identity.NodeID, error) {
	var id identity.NodeID
	t := strings.ToLower(strings.TrimSpace(target))
	if len(t) == 2*identity.NodeIDSize {
		if b, err := hex.DecodeString(t); err == nil {
			copy(id[:], b)
			return id, nil
		}
	}
	if route.ValidName(t) == nil {
		type answer struct {
			id  identity.NodeID
			err error
		}
		ch := make(chan answer, 1)
		if err := d.st.do(ctx, func() {
			d.st.router.LookupName(t, func(id identity.NodeID, err error) { ch <- answer{id, err} })
		}); err != nil {
			return id, err
		}
		select {
		case a := <-ch:
			if a.err != nil {
				return id, fmt.Errorf("%s: %w", target, a.err)
			}
			d.noteID(a.id)
			return a.id, nil
		case <-ctx.Done():
			return id, fmt.Errorf("name lookup of %s: %w", target, ctx.Err())
		}
	}
	if t == "" || strings.Trim(t, "0123456789abcdef") != "" {
		return id, &targetError{code: "unknown_target", msg: fmt.Sprintf("%q is not a node_id (64 hex digits), a prefix of one, or a name (a-z 0-9 - _ ., starting with a letter)", target)}
	}
	var matches []identity.NodeID
	err := d.st.do(ctx, func() {
		for _, k := range d.knownIDs() {
			if strings.HasPrefix(k.String(), t) {
				matches = append(matches, k)
			}
		}
	})
	if err != nil {
		return id, err
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return id, &targetError{code: "unknown_target", msg: fmt.Sprintf("no node this node knows has a node_id starting with %s (give all 64 hex digits, or a name)", t)}
	}
	return id, &targetError{code: "ambiguous_target", msg: fmt.Sprintf("%d known nodes have a node_id starting with %s: give more digits", len(matches), t)}
}

// knownIDs are the node_ids a prefix may name (on the loop).
func (d *daemon) knownIDs() []identity.NodeID {
	seen := map[identity.NodeID]bool{}
	var out []identity.NodeID
	add := func(id identity.NodeID) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	add(d.st.node.ID())
	for _, p := range d.st.node.Peers() {
		add(p.ID)
	}
	for k := range d.st.trees.Count() {
		if p, ok := d.st.trees.Current(k); ok {
			for _, nb := range d.st.trees.Neighbors(k, p.TreeState) {
				add(nb.ID)
			}
		}
	}
	d.seenMu.Lock()
	seenQ := append([]identity.NodeID(nil), d.seenQ...)
	d.seenMu.Unlock()
	for _, id := range seenQ {
		add(id)
	}
	return out
}

// maxSeen bounds the node_ids remembered from lookups and deliveries.
const maxSeen = 1024

// noteID remembers a node this one reached or heard from, for prefixes
// (on the loop or off: it locks).
func (d *daemon) noteID(id identity.NodeID) {
	d.seenMu.Lock()
	defer d.seenMu.Unlock()
	for _, s := range d.seenQ {
		if s == id {
			return
		}
	}
	if len(d.seenQ) >= maxSeen {
		d.seenQ = d.seenQ[1:]
	}
	d.seenQ = append(d.seenQ, id)
}
