package meshsim

import (
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/proof"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
	"github.com/mycelium-mesh/mycelium/l3-route/tree"
)

// What takes a node's air: every transmission the medium logs (MAC
// retries included), its time on the air charged to its sender under the
// kind of message it carries, read from its bytes as a capture would. A
// sequence's later packets carry no Package header: they are charged to
// the kind its first packet named. The busiest node's split says which
// control messages to make cheaper.

// airKinds accumulates the airtime of each node by kind of message.
type airKinds struct {
	radio map[*sim.Radio]int
	seqs  map[seqKey]string // the kind of each sequence in flight, by sender and seq_id
	air   []map[string]time.Duration
	dec   packet.Packet
}

type seqKey struct {
	node int
	seq  uint8
}

func newAirKinds(radios []*sim.Radio) *airKinds {
	k := &airKinds{radio: make(map[*sim.Radio]int, len(radios)), seqs: map[seqKey]string{}, air: make([]map[string]time.Duration, len(radios))}
	for i, r := range radios {
		k.radio[r] = i
		k.air[i] = map[string]time.Duration{}
	}
	return k
}

// attempt is the medium's attempt log (its lock held: no calls back).
func (k *airKinds) attempt(a *sim.Attempt) {
	i, ok := k.radio[a.From]
	if !ok {
		return
	}
	k.air[i][k.kind(i, a.Data)] += a.End.Sub(a.Start)
}

// kind names what a frame carries.
func (k *airKinds) kind(from int, b []byte) string {
	p := &k.dec
	if packet.Decode(b, p) != nil {
		return "malformed"
	}
	if p.Flags.Ack() {
		return "ack"
	}
	s := p.SchemaOf()
	key := seqKey{from, p.SeqID}
	if s != nil && s.Sequenced() && p.PacketID != 0 {
		if kind, ok := k.seqs[key]; ok {
			return kind
		}
		return "sequence"
	}
	kind := packageKind(p.Body)
	if s != nil && s.Sequenced() {
		k.seqs[key] = kind
	}
	return kind
}

// packageKind names the message a Package (or its first bytes) carries.
func packageKind(b []byte) string {
	if len(b) < packet.PackageOverhead+1 {
		return "other"
	}
	var app packet.AppID
	copy(app[:], b)
	blob := b[packet.PackageOverhead:]
	switch app {
	case beacon.AppID:
		return "beacon"
	case proof.AppID:
		return "proof"
	case tree.AppID:
		return "tree " + treeMsgName(blob[0])
	case route.ControlApp:
		return "route " + route.ControlName(blob[0])
	case route.PathApp:
		inner, ok := pathInner(blob)
		if !ok {
			return "route path"
		}
		return packageKind(inner)
	case RouteApp:
		return "probe"
	}
	return "other"
}

// pathInner skips a path header (route/path.go) to the Package it
// carries: flags(1) ‖ phase(1) ‖ bound(8) ‖ n ‖ n × (tree_state ‖ len ‖
// len bytes) [‖ m ‖ m × …] ‖ Package.
func pathInner(b []byte) ([]byte, bool) {
	if len(b) < 11 {
		return nil, false
	}
	lists := 1 + int(b[0]&1)
	b = b[10:]
	for range lists {
		if len(b) < 1 {
			return nil, false
		}
		n := int(b[0])
		b = b[1:]
		for range n {
			if len(b) < 2 || len(b) < 2+int(b[1]) {
				return nil, false
			}
			b = b[2+int(b[1]):]
		}
	}
	return b, true
}

func treeMsgName(t byte) string {
	switch t {
	case tree.MsgClaim:
		return "claim"
	case tree.MsgNotify:
		return "notify"
	case tree.MsgRequest:
		return "request"
	case tree.MsgResponse:
		return "response"
	case tree.MsgQuery:
		return "query"
	case tree.MsgSuffix:
		return "suffix"
	case tree.MsgPosition:
		return "position"
	}
	return "other"
}

// snapshot is each node's airtime by kind so far (a copy).
func (k *airKinds) snapshot() []map[string]time.Duration {
	out := make([]map[string]time.Duration, len(k.air))
	for i, m := range k.air {
		out[i] = make(map[string]time.Duration, len(m))
		for kind, d := range m {
			out[i][kind] = d
		}
	}
	return out
}
