package meshsim

import (
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l2-seq/beacon"
	"github.com/mycelium-mesh/mycelium/l2-seq/hop"
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

// airKinds accumulates the airtime of each node by kind of message. Kinds
// are small numbers (names interned on first sight), so that the log, run
// for every transmission, allocates nothing and the per-node tallies are
// short arrays rather than maps of strings: at 10,000 nodes the maps and
// the strings were a share of the live heap and of the collector's work.
type airKinds struct {
	radios []*sim.Radio       // by node
	radio  map[*sim.Radio]int // node by radio, where the medium's index is not the node's
	names  []string           // kind → its name
	ids    map[string]kind    // name → kind
	msgs   [2][256]kind       // "tree …" and "route …" kinds by message type (0: not named yet)
	seqs   [][]kind           // the kind of each sequence in flight, by sender and seq_id (0: none)
	air    [][]time.Duration  // by node, by kind
	frames [3][]uint64        // by kind, over every node: transmissions (MAC retries included); of which MAC retries; of which a sequence's later packets
	// nodeFrames is frames' three counters by node (by counter, node,
	// kind): the busiest node's split of what it sent, which the mesh's
	// totals hide (a rooftop gateway's answers among 300 nodes').
	nodeFrames [3][][]uint64
	dec        packet.Packet
	later      bool // the frame kind named last is a sequence's later packet
}

// kind is an interned kind of message; 0 is none. The names are a fixed
// set (packageKind: a few dozen), so the table stays small.
type kind uint16

const (
	msgsTree = iota
	msgsRoute
)

func newAirKinds(radios []*sim.Radio) *airKinds {
	k := &airKinds{radios: radios, radio: map[*sim.Radio]int{}, ids: map[string]kind{}, names: []string{""}, seqs: make([][]kind, len(radios)), air: make([][]time.Duration, len(radios))}
	for c := range k.nodeFrames {
		k.nodeFrames[c] = make([][]uint64, len(radios))
	}
	for i, r := range radios {
		if r.Index() != i {
			k.radio[r] = i
		}
	}
	return k
}

// intern returns name's kind.
func (k *airKinds) intern(name string) kind {
	if id, ok := k.ids[name]; ok {
		return id
	}
	id := kind(len(k.names))
	k.names = append(k.names, name)
	k.ids[name] = id
	return id
}

// attempt is the medium's attempt log (its lock held: no calls back).
func (k *airKinds) attempt(a *sim.Attempt) {
	// The radio's index, not a map: at 10,000 nodes the map's lookup
	// missed the cache on most frames.
	i := a.From.Index()
	if i >= len(k.radios) || k.radios[i] != a.From {
		j, ok := k.radio[a.From]
		if !ok {
			return
		}
		i = j
	}
	id := k.kind(i, a.Data)
	if int(id) >= len(k.air[i]) {
		k.air[i] = append(k.air[i], make([]time.Duration, int(id)+1-len(k.air[i]))...)
	}
	k.air[i][id] += a.End.Sub(a.Start)
	k.count(0, i, id)
	if a.Try > 1 {
		k.count(1, i, id)
	}
	if k.later {
		k.count(2, i, id)
	}
}

// count adds a frame of kind id sent by node i to counter c of k.frames
// and k.nodeFrames.
func (k *airKinds) count(c, i int, id kind) {
	if int(id) >= len(k.frames[c]) {
		k.frames[c] = append(k.frames[c], make([]uint64, int(id)+1-len(k.frames[c]))...)
	}
	k.frames[c][id]++
	n := &k.nodeFrames[c][i]
	if int(id) >= len(*n) {
		*n = append(*n, make([]uint64, int(id)+1-len(*n))...)
	}
	(*n)[id]++
}

// kind names what a frame carries (k.later: a sequence's later packet).
func (k *airKinds) kind(from int, b []byte) kind {
	p := &k.dec
	k.later = false
	// A hop-authenticated frame's trailer (package hop) is no part of the
	// packet; its airtime is charged to what the packet carries.
	if packet.Decode(hop.Packet(b), p) != nil {
		return k.intern("malformed")
	}
	if p.Flags.Ack() {
		return k.intern("ack")
	}
	s := p.SchemaOf()
	if s != nil && s.Sequenced() && p.PacketID != 0 {
		k.later = true
		if seqs := k.seqs[from]; seqs != nil && seqs[p.SeqID] != 0 {
			return seqs[p.SeqID]
		}
		return k.intern("sequence")
	}
	id := k.packageKind(p.Body)
	if s != nil && s.Sequenced() {
		if k.seqs[from] == nil {
			k.seqs[from] = make([]kind, 256)
		}
		k.seqs[from][p.SeqID] = id
	}
	return id
}

// packageKind names the message a Package (or its first bytes) carries.
func (k *airKinds) packageKind(b []byte) kind {
	if len(b) < packet.PackageOverhead+1 {
		return k.intern("other")
	}
	var app packet.AppID
	copy(app[:], b)
	blob := b[packet.PackageOverhead:]
	switch app {
	case beacon.AppID:
		return k.intern("beacon")
	case proof.AppID:
		return k.intern("proof")
	case tree.AppID:
		return k.msgKind(msgsTree, blob[0])
	case route.ControlApp:
		return k.msgKind(msgsRoute, blob[0])
	case route.PathApp:
		inner, ok := pathInner(blob)
		if !ok {
			return k.intern("route path")
		}
		return k.packageKind(inner)
	case RouteApp:
		return k.intern("probe")
	}
	return k.intern("other")
}

// msgKind is the kind of a tree or route control message of type t (its
// name made once).
func (k *airKinds) msgKind(layer int, t byte) kind {
	if id := k.msgs[layer][t]; id != 0 {
		return id
	}
	name := "tree " + treeMsgName(t)
	if layer == msgsRoute {
		name = "route " + route.ControlName(t)
	}
	id := k.intern(name)
	k.msgs[layer][t] = id
	return id
}

// pathInner skips a path header (route/path.go) to the Package it
// carries: flags(1) ‖ phase(1) ‖ bound(8) ‖ n ‖ n × (tree_state ‖ len ‖
// len bytes) [‖ m ‖ m × …] [‖ nonce(8), flag 0x02] [‖ destination
// tag(8), flag 0x04] ‖ Package.
func pathInner(b []byte) ([]byte, bool) {
	if len(b) < 11 {
		return nil, false
	}
	flags := b[0]
	lists := 1 + int(flags&1)
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
	for _, f := range []byte{0x02, 0x04} { // the nonce, the destination tag
		if flags&f != 0 {
			if len(b) < 8 {
				return nil, false
			}
			b = b[8:]
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
func (k *airKinds) snapshot() [][]time.Duration {
	out := make([][]time.Duration, len(k.air))
	for i, a := range k.air {
		out[i] = slices.Clone(a)
	}
	return out
}

// nodeFrameCounts is node i's frames so far by kind: transmissions (c
// 0), MAC retries (c 1), a sequence's later packets (c 2) (a copy).
func (k *airKinds) nodeFrameCounts(c, i int) []uint64 { return slices.Clone(k.nodeFrames[c][i]) }

// frameCounts is the transmissions so far by kind, over every node (c 0);
// of them the MAC's retries (c 1) and a sequence's later packets (c 2) (a
// copy).
func (k *airKinds) frameCounts(c int) []uint64 { return slices.Clone(k.frames[c]) }

// name is kind id's name.
func (k *airKinds) name(id int) string { return k.names[id] }
