package gossip

import (
	"encoding/binary"

	"errors"
	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"slices"
	"time"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/peer"
)

// ErrDuplicate: the Message was already published or seen.
var ErrDuplicate = errors.New("gossip: message already seen")

// settle is how old a Message must be before a neighbour's bloom that
// lacks it counts as a hole: younger ones may still be on their way.
const settle = 10 * time.Second

func (s *Service) jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(s.rng.Int64N(int64(d/2)+1))
}

func (s *Service) scheduleHello(d time.Duration) {
	s.helloAt = s.cfg.Clock.Now().Add(d)
	s.hello = s.cfg.Clock.AfterFunc(d, s.sendHello)
}

// sendHello tells the neighbours ours and what we have seen lately.
func (s *Service) sendHello() {
	if s.stopped {
		return
	}
	now := s.cfg.Clock.Now()
	s.expire(now)
	s.forget(now)
	s.round++
	all := s.neighbourList()
	h := Hello{Self: s.self, Round: s.round, Relays: s.chooseRelays(all)}
	s.relays = h.Relays
	h.Neighbours = listed(all, h.Relays)
	if recent := s.recent(now, s.bloomWindow()); len(recent) > 0 {
		room := MaxHello - helloHead - 1 - 4*min(len(h.Neighbours), MaxHelloNeighbours) - 4*min(len(h.Relays), MaxHelloNeighbours)
		h.Bloom = make([]byte, room)
		for i := range recent {
			bloomAdd(h.Bloom, &recent[i], s.round)
		}
	}
	s.stats.HellosSent++
	s.cfg.Net.Broadcast(AppID, h.AppendTo(nil), nil)
	next := s.cfg.HelloPeriod*9/10 + s.jitter(s.cfg.HelloPeriod/5) - s.cfg.HelloPeriod/10 // 0.9–1 period
	if s.early > 0 {
		// The second and third hellos, soon: the second carries the
		// neighbours the first round taught us, the third the relays we
		// chose from the neighbours' lists.
		s.early--
		next = 2*time.Second + s.jitter(2*time.Second)
	}
	s.scheduleHello(next)
}

// bloomWindow is how far back a hello's bloom reaches.
func (s *Service) bloomWindow() time.Duration { return s.cfg.HelloPeriod * 4 }

// recent lists the ids seen within d, newest first.
func (s *Service) recent(now time.Time, d time.Duration) []MessageID {
	var out []MessageID
	for i := len(s.seenQ) - 1; i >= 0; i-- {
		id := s.seenQ[i]
		if now.Sub(s.seen[id]) > d {
			break
		}
		out = append(out, id)
	}
	return out
}

func (s *Service) neighbourList() []uint32 {
	out := make([]uint32, 0, len(s.nbrs))
	for id := range s.nbrs {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// forget drops neighbours not heard for three hello periods.
func (s *Service) forget(now time.Time) {
	for id, nb := range s.nbrs {
		if now.Sub(nb.last) > 3*s.cfg.HelloPeriod {
			delete(s.nbrs, id)
			if s.byEp[nb.ep] == id {
				delete(s.byEp, nb.ep)
			}
		}
	}
}

func (s *Service) onHello(h *Hello, via peer.Endpoint) {
	s.stats.HellosRecv++
	if h.Self == s.self {
		return
	}
	now := s.cfg.Clock.Now()
	nb := s.nbrs[h.Self]
	fresh := nb == nil
	if fresh {
		nb = &neighbour{}
		s.nbrs[h.Self] = nb
	}
	changed := fresh || !slices.Equal(nb.list, sortedCopy(h.Neighbours))
	if old, ok := s.byEp[nb.ep]; ok && old == h.Self && nb.ep != via {
		delete(s.byEp, nb.ep)
	}
	nb.ep, nb.last, nb.round = via, now, h.Round
	nb.list = append(nb.list[:0], h.Neighbours...)
	slices.Sort(nb.list)
	// A neighbour with more neighbours than a hello lists may have left
	// us out: then we do not know its choice, and relay for it.
	nb.relaysKnown = true
	nb.relay = slices.Contains(h.Relays, s.self) || !slices.Contains(h.Neighbours, s.self)
	nb.bloom = nil
	if h.Bloom != nil {
		nb.bloom = slices.Clone(h.Bloom)
	}
	s.byEp[via] = h.Self
	if changed && (fresh || !slices.Equal(s.chooseRelays(s.neighbourList()), s.relays)) {
		// A new neighbour, or new relays to name: tell the neighbours
		// soon rather than a period from now.
		s.soon()
	}
	s.repair(h, nb, now)
}

func sortedCopy(l []uint32) []uint32 {
	c := slices.Clone(l)
	slices.Sort(c)
	return c
}

// soon brings the next hello forward to within a tenth of a period (a
// second at least), unless it is due by then anyway.
func (s *Service) soon() {
	if s.early > 0 || !s.started || s.hello == nil {
		return
	}
	d := max(s.cfg.HelloPeriod/10, time.Second)
	if s.helloAt.Sub(s.cfg.Clock.Now()) <= d {
		return
	}
	s.hello.Stop()
	s.scheduleHello(s.jitter(d))
}

// repair sends the neighbour what its bloom lacks: Messages we saw between
// settle and the bloom's reach ago. Of the nodes that might (the
// neighbour's own list), the one the id and round rank first sends; if it
// does not have it or missed the hello, the next round ranks another.
func (s *Service) repair(h *Hello, nb *neighbour, now time.Time) {
	reach := s.bloomWindow() - settle
	for i := len(s.storeQ) - 1; i >= 0; i-- {
		id := s.storeQ[i]
		st, ok := s.store[id]
		if !ok {
			continue
		}
		age := now.Sub(st.at)
		if age < settle {
			continue
		}
		if age > reach {
			break
		}
		if h.Bloom != nil && bloomHas(h.Bloom, &id, h.Round) {
			continue
		}
		if _, ok := s.pushes[id]; ok {
			continue
		}
		s.schedulePush(id, s.pushOrder(&id, h), len(h.Neighbours) <= 2)
	}
}

// pushOrder is our place among the hello's sender's neighbours that might
// repair it: they are ranked by a hash of the id, their short id and the
// round, and those above us that we know to lack id (our neighbours too,
// whose last bloom does not hold it) do not count.
func (s *Service) pushOrder(id *MessageID, h *Hello) int {
	me := s.rank(id, s.self, h.Round)
	k := 0
	for _, n := range h.Neighbours {
		if n == s.self || s.rank(id, n, h.Round) > me {
			continue
		}
		if nb := s.nbrs[n]; nb != nil && nb.bloom != nil && !bloomHas(nb.bloom, id, nb.round) {
			continue
		}
		k++
	}
	return k
}

// pushSlot is the wait per repairer ranked above us: long enough to hear
// its broadcast (a frame takes 2.5 ms at 1 Mbit/s, with contention a few
// more).
const pushSlot = 40 * time.Millisecond

type push struct {
	timer clock.Timer
	heard int // broadcasts of the Message heard meanwhile
}

// schedulePush repairs a hole with a broadcast of the Message — one frame,
// no acknowledgement, and it reaches the other holes around — after the
// repairers ranked above us had their turn; hearing two of them send it
// first, we stay quiet. A lost repair is sent again next round.
//
// A hole with one or two neighbours has one or two nodes to repair it:
// twice, 50 ms apart, they send.
func (s *Service) schedulePush(id MessageID, order int, twice bool) {
	d := time.Duration(order)*pushSlot + time.Duration(s.rng.Int64N(int64(pushSlot/2)))
	ps := &push{}
	s.pushes[id] = ps
	ps.timer = s.cfg.Clock.AfterFunc(d, func() {
		delete(s.pushes, id)
		st, ok := s.store[id]
		if !ok || s.stopped {
			return
		}
		s.stats.Pushed++
		s.transmit(id, st.msg)
		if twice {
			s.cfg.Clock.AfterFunc(50*time.Millisecond, func() {
				if st, ok := s.store[id]; ok && !s.stopped {
					s.stats.Pushed++
					s.transmit(id, st.msg)
				}
			})
		}
	})
}

func (s *Service) rank(id *MessageID, n uint32, round uint16) uint64 {
	var b [IDSize + 6]byte
	copy(b[:], id[:])
	binary.BigEndian.PutUint32(b[IDSize:], n)
	binary.BigEndian.PutUint16(b[IDSize+4:], round)
	sum := packet.HalfSHA256(b[:])
	return binary.BigEndian.Uint64(sum[:8])
}

// countFailure counts a unicast that did not end confirmed.
func (s *Service) countFailure(err error) {
	if err != nil {
		s.stats.SendsFailed++
	}
}

// listed is the neighbours a hello lists: all of them when they fit,
// else the relays and as many others as fit.
func listed(all, relays []uint32) []uint32 {
	if len(all) <= MaxHelloNeighbours {
		return all
	}
	out := append([]uint32(nil), relays[:min(len(relays), MaxHelloNeighbours)]...)
	for _, n := range all {
		if len(out) == MaxHelloNeighbours {
			break
		}
		if !slices.Contains(relays, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// chooseRelays picks the neighbours that carry our broadcasts on (OLSR's
// multipoint relays, greedily): first those that alone reach some node two
// hops away, then whichever reaches most of those still unreached.
func (s *Service) chooseRelays(nbrs []uint32) []uint32 {
	two := map[uint32]int{} // two-hop node -> providers
	for _, n := range nbrs {
		for _, m := range s.nbrs[n].list {
			if m == s.self {
				continue
			}
			if _, ok := slices.BinarySearch(nbrs, m); ok {
				continue
			}
			two[m]++
		}
	}
	var out []uint32
	take := func(n uint32) {
		out = append(out, n)
		for _, m := range s.nbrs[n].list {
			delete(two, m)
		}
	}
	for _, n := range nbrs {
		for _, m := range s.nbrs[n].list {
			if two[m] == 1 {
				take(n)
				break
			}
		}
	}
	for len(two) > 0 {
		best, most := uint32(0), 0
		for _, n := range nbrs {
			if slices.Contains(out, n) {
				continue
			}
			k := 0
			for _, m := range s.nbrs[n].list {
				if _, ok := two[m]; ok {
					k++
				}
			}
			if k > most {
				best, most = n, k
			}
		}
		if most == 0 {
			break
		}
		take(best)
	}
	slices.Sort(out)
	return out
}
