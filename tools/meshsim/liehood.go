package meshsim

import (
	"slices"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
	"github.com/mycelium-mesh/mycelium/l3-route/route"
)

// lieHoodNames is how many destinations a lying neighbourhood list names
// (as many as one frame holds are kept: about two dozen).
const lieHoodNames = 32

// lieHood: adversary i, a proven neighbour of its honest neighbours,
// broadcasts in each tree it is placed in a neighbourhood list (0x19,
// l3-route/route/hood.go) naming as its own neighbours honest nodes far
// from it, each at its true address in that tree and under its own tag
// (so a relay groups them across trees as it does an honest list's): "the
// destination is next to me". After attackCheck each honest neighbour h is
// asked, for each destination named, whom it would pass a Package to now
// (route.Router.NextHop). Each question is tried; it is rejected unless h
// picks i at a least distance below what i can rank by right: its own
// certified positions' least distance, or one hop beyond the floor its
// certified depths put under its neighbours' (built here from the
// destination's own addresses, not taken from the router: the bound
// docs/security.md states). Attracted counts the decisions that went to
// i though it is on no shortest path from h to the destination, at a rank
// its list gave it (below its own positions'): the traffic the lie drew,
// within the bound or not.
func (m *routeMesh) lieHood(i int, res *AdversaryResult) {
	a := m.adv
	hs := m.honestNeighbours(i)
	if len(hs) == 0 {
		return
	}
	var ts []int
	for _, t := range a.rng.Perm(len(m.adj)) {
		if len(ts) == lieHoodNames {
			break
		}
		if t != i && !a.is[t] && !m.dead[t] && !slices.Contains(m.adj[i], t) {
			ts = append(ts, t)
		}
	}
	dsts := make([][]route.TreeAddr, len(ts))
	tags := make([]uint16, len(ts))
	for n, t := range ts {
		dsts[n] = m.rts[t].Addrs()
		id := m.nodes[t].ID()
		tags[n] = uint16(id[0])<<8 | uint16(id[1])
	}
	named := make([]bool, len(ts)) // in some list that fit a frame
	for _, own := range m.rts[i].Addrs() {
		var as []addr.Long
		var tg []uint16
		var of []int
		for n, ds := range dsts {
			for _, d := range ds {
				if d.TreeState == own.TreeState {
					as, tg, of = append(as, d.Addr), append(tg, tags[n]), append(of, n)
				}
			}
		}
		msg := route.AppendHood(nil, own.TreeState, tg, as)
		for _, n := range of[:msg[2]] {
			named[n] = true
		}
		m.nodes[i].Broadcast(route.ControlApp, msg, nil)
	}
	for n := len(ts) - 1; n >= 0; n-- {
		if !named[n] {
			ts, dsts = slices.Delete(ts, n, n+1), slices.Delete(dsts, n, n+1)
		}
	}
	me := m.nodes[i].ID()
	m.clk.AfterFunc(attackCheck, func() {
		if m.dead[i] {
			return
		}
		for n, t := range ts {
			dt := m.bfs(t)
			for _, h := range hs {
				right, own, ok := m.rightLeast(h, i, dsts[n])
				if m.dead[h] || !ok {
					continue
				}
				next, phase, least, ok := m.rts[h].NextHop(dsts[n], m.cfg.Mode)
				res.Tried++
				if !ok || next != me {
					res.Rejected++
					continue
				}
				if phase == 0 && least < own && (dt[i] < 0 || dt[i] >= dt[h]) {
					res.Attracted++
				}
				if phase != 0 || least >= right {
					res.Rejected++
				}
			}
		}
	})
}

// rightLeast is the least distance honest node h may rank its neighbour,
// adversary i, at toward a destination at dst in phase 0, whatever i's
// list says: by i's certified positions as h holds them in the
// destination's epochs h is in (false: none), their least distance (own),
// or one more than a floor on their neighbours'. A tree's floor is the least distance
// between the destination and any address within a level of i's depth
// there; in mode 0 the floor is the largest of the trees' (a hop count
// from any root bounds the graph distance), in mode 1 the least.
func (m *routeMesh) rightLeast(h, i int, dst []route.TreeAddr) (right, own uint32, ok bool) {
	id := m.nodes[i].ID()
	met := addr.MetricTree
	if m.cfg.Mode {
		met = addr.MetricCPL
	}
	own, floor := ^uint32(0), uint32(0)
	if m.cfg.Mode {
		floor = ^uint32(0)
	}
	for _, d := range dst {
		if _, in := m.rts[h].Position(d.TreeState); !in {
			continue // h ranks its neighbours only in epochs it is in
		}
		var at addr.Long
		placed := false
		for _, nb := range m.trees[h].Neighbors(int(d.Tree), d.TreeState) {
			if nb.ID == id {
				at, placed = nb.Addr, true
			}
		}
		if !placed {
			continue
		}
		ok = true
		own = min(own, met.PathKey(at, d.Addr))
		f, depth := ^uint32(0), at.Depth()
		for x := max(depth-1, 0); x <= depth+1; x++ {
			if k, built := nearestAt(met, d.Addr, x); built {
				f = min(f, k)
			}
		}
		if m.cfg.Mode {
			floor = min(floor, f)
		} else {
			floor = max(floor, f)
		}
	}
	return min(own, floor+1), own, ok
}

// nearestAt is the least key met gives, toward d, an address of route
// depth x (a lease one level below its proxy): d itself, an ancestor of
// d's, or a descendant (false: none can be built, past a Long's depth).
func nearestAt(met addr.Metric, d addr.Long, x int) (uint32, bool) {
	cs := d.Canonical().AppendCoords(nil)
	rd := len(cs)
	if d.LeaseID() != 0 {
		rd++
	}
	if x == rd {
		return 0, true
	}
	if x < len(cs) {
		cs = cs[:x]
	}
	for len(cs) < x {
		cs = append(cs, 1)
	}
	c, err := addr.EncodeLong(cs)
	if err != nil {
		return 0, false
	}
	return met.PathKey(c, d), true
}
