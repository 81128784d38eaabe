package route

import (
	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
)

// Raw sends, for the simulator's adversaries (tools/meshsim): what any node
// running our stack could put on the air, with nothing checked on the way
// out. Whatever they send is checked where it arrives like any message.

// SendControl routes msg, a message of the routing layer's own application
// (ControlApp) of any type and content, to a node's addresses; isError sets
// the header's error flag.
func (r *Router) SendControl(to []TreeAddr, msg []byte, isError bool) {
	r.sendControlTo(to, false, msg, isError, r.cfg.TTL)
}

// SendRecord sends rec, as it is, to the homes of its node's name record
// in every tree that holds one (a registration).
func (r *Router) SendRecord(rec *Record) {
	for _, k := range r.lookupOrder(rec.ID[:])[:r.lookupTrees()] {
		if p, ok := r.t.Current(k); ok {
			r.sendControl(p.TreeState, keyAddr(rec.ID, k), false, rec.AppendTo([]byte{msgRegister}))
		}
	}
}

// StoredRecord returns the name record stored here for id, if any.
func (r *Router) StoredRecord(id identity.NodeID) (Record, bool) {
	s := r.records[id]
	if s == nil {
		return Record{}, false
	}
	return s.rec, true
}
