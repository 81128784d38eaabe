package refnode

import "github.com/mycelium-mesh/mycelium/l1-link/link"

// inSeq is the reference's InSequence: a Sequence buffer sized by the first
// chunk's seq_size, the packet_ids seen, the sender (nil: one it does not
// know) and a retry count.
type inSeq struct {
	count   int
	maxBody int
	data    []byte
	have    map[int]bool
	from    *peer
	mac     link.Addr
	retry   int
}

func newInSeq(count, maxBody int) *inSeq {
	return &inSeq{count: count, maxBody: maxBody, data: make([]byte, count*maxBody), have: map[int]bool{}}
}

// add is Sequence.add_packet, with Python's bytearray semantics: the body
// is written at id × max_body (a slice assignment, which clamps to the
// buffer's end and may grow or shrink it), and whenever the chunk is the
// last one the buffer loses max_body − len(body) bytes from its end —
// data[:-trim], which for trim 0 (a last chunk that fills its packet) is
// everything. It reports whether every packet_id 0..count−1 was seen (the
// set counts any id, in range or not).
func (s *inSeq) add(id int, body []byte) bool {
	s.have[id] = true
	s.data = sliceAssign(s.data, id*s.maxBody, id*s.maxBody+len(body), body)
	if id == s.count-1 {
		trim := s.maxBody - len(body)
		if trim <= 0 || trim >= len(s.data) {
			s.data = s.data[:0]
		} else {
			s.data = s.data[:len(s.data)-trim]
		}
	}
	return len(s.have) == s.count
}

// missing is Sequence.get_missing, in order.
func (s *inSeq) missing() []int {
	var out []int
	for i := range s.count {
		if !s.have[i] {
			out = append(out, i)
		}
	}
	return out
}

// sliceAssign is Python's b[lo:hi] = v on a bytearray.
func sliceAssign(b []byte, lo, hi int, v []byte) []byte {
	lo = min(max(lo, 0), len(b))
	hi = min(max(hi, lo), len(b))
	if hi-lo == len(v) {
		copy(b[lo:], v)
		return b
	}
	out := make([]byte, 0, len(b)-(hi-lo)+len(v))
	out = append(out, b[:lo]...)
	out = append(out, v...)
	return append(out, b[hi:]...)
}
