package clock

import (
	"math"
	"math/bits"
)

// qItem is one pending callback.
type qItem struct {
	key int64  // due time, nanoseconds since the clock's start
	seq uint64 // scheduling order, for ties
	t   *vtimer
}

// live reports whether the entry is its timer's pending one: not
// stopped, and not an earlier arming of an Alarm armed again since.
func (a *qItem) live() bool { return a.t.pending && a.t.seq == a.seq }

func (a *qItem) before(b *qItem) bool {
	return a.key < b.key || a.key == b.key && a.seq < b.seq
}

// radixQ holds a virtual clock's pending callbacks in (key, seq) order: a
// radix heap (a monotone priority queue: nothing is ever added before the
// last key taken), with a small binary heap beside it for what is.
//
// Bucket i of b holds the entries whose key first differs from last at
// bit i-1 (bucket 0: key == last). Adding is an append; taking the first
// is the head of bucket 0, and when bucket 0 is empty, the lowest
// non-empty bucket is split into the lower ones around its least key,
// which becomes last. An entry moves down at most once per bit of its
// delay, each move a sequential append, where a heap of a large mesh's
// pending callbacks sifted every one through levels in memory the cache
// no longer held (its cost per callback grew with the mesh).
//
// Ties: every bucket keeps its entries in scheduling order. A bucket is
// only split into buckets that are empty (all below it are), in its own
// order, and whatever is appended to a bucket later was scheduled later
// than everything already held. So bucket 0, the entries due at last, is
// in scheduling order, and its head is the first by (key, seq).
//
// early: Virtual.RunUntil looks at the first pending callback without
// taking it, which can move last past now; a callback scheduled after
// that for before last goes to early, a binary heap whose keys are all
// below last, and so is taken before anything in the buckets.
type radixQ struct {
	last  int64
	b     [65][]qItem
	head0 int    // b[0][:head0] already taken
	mask  uint64 // bit i-1 set: b[i] is not empty (i ≥ 1)
	early heap4
	n     int // entries held, stopped ones included
}

// len is the number of entries held, stopped ones included.
func (q *radixQ) len() int { return q.n }

// push adds it.
func (q *radixQ) push(it qItem) {
	q.n++
	if it.key < q.last {
		q.early.push(it)
		return
	}
	i := bits.Len64(uint64(it.key ^ q.last))
	q.b[i] = append(q.b[i], it)
	if i > 0 {
		q.mask |= 1 << (i - 1)
	}
}

// first returns the first pending entry, dropping stopped ones on the way
// (nil if none is pending). It stays first until popped or stopped.
func (q *radixQ) first() *qItem {
	for len(q.early) > 0 {
		if q.early[0].live() {
			return &q.early[0]
		}
		q.early.pop()
		q.n--
	}
	for {
		b0 := q.b[0]
		for q.head0 < len(b0) {
			if it := &b0[q.head0]; it.live() {
				return it
			}
			b0[q.head0] = qItem{}
			q.head0++
			q.n--
		}
		q.b[0], q.head0 = b0[:0], 0
		if q.mask == 0 {
			return nil
		}
		i := bits.TrailingZeros64(q.mask) + 1
		q.mask &^= 1 << (i - 1)
		src := q.b[i]
		least := int64(math.MaxInt64)
		found := false
		for k := range src {
			if it := &src[k]; it.live() && (!found || it.key < least) {
				least, found = it.key, true
			}
		}
		if found {
			q.last = least
			for _, it := range src {
				if !it.live() {
					q.n--
					continue
				}
				// Below i: it agrees with the old last above bit i-1,
				// and so does the new one.
				j := bits.Len64(uint64(it.key ^ least))
				q.b[j] = append(q.b[j], it)
				if j > 0 {
					q.mask |= 1 << (j - 1)
				}
			}
		} else {
			q.n -= len(src)
		}
		clear(src)
		q.b[i] = src[:0]
	}
}

// pop removes the entry first returned; call it only after first
// returned one.
func (q *radixQ) pop() qItem {
	q.n--
	if len(q.early) > 0 {
		return q.early.pop()
	}
	it := q.b[0][q.head0]
	q.b[0][q.head0] = qItem{}
	q.head0++
	return it
}

// compact drops every stopped entry, keeping the order of what is left.
func (q *radixQ) compact() {
	q.early.compact()
	n := len(q.early)
	for i := range q.b {
		src := q.b[i]
		if i == 0 {
			src = src[q.head0:]
		}
		live := q.b[i][:0]
		for _, it := range src {
			if it.live() {
				live = append(live, it)
			}
		}
		clear(q.b[i][len(live):])
		q.b[i] = live
		n += len(live)
		if i > 0 && len(live) == 0 {
			q.mask &^= 1 << (i - 1)
		}
	}
	q.head0 = 0
	q.n = n
}

// heap4 is a 4-ary min-heap of entries ordered by (key, seq).
type heap4 []qItem

// push adds it to the heap.
func (h *heap4) push(it qItem) {
	*h = append(*h, it)
	q := *h
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !it.before(&q[p]) {
			break
		}
		q[i] = q[p]
		i = p
	}
	q[i] = it
}

// pop removes and returns the heap's first entry.
func (h *heap4) pop() qItem {
	q := *h
	top := q[0]
	n := len(q) - 1
	last := q[n]
	q[n] = qItem{}
	q = q[:n]
	*h = q
	if n > 0 {
		q[0] = last
		q.down(0)
	}
	return top
}

// down sifts the entry at i towards the leaves.
func (h heap4) down(i int) {
	n := len(h)
	it := h[i]
	for {
		first := 4*i + 1
		if first >= n {
			break
		}
		m := first
		for j := first + 1; j < first+4 && j < n; j++ {
			if h[j].before(&h[m]) {
				m = j
			}
		}
		if !h[m].before(&it) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = it
}

// compact drops the stopped entries of h and rebuilds it.
func (h *heap4) compact() {
	q := *h
	live := q[:0]
	for _, it := range q {
		if it.live() {
			live = append(live, it)
		}
	}
	clear(q[len(live):])
	*h = live
	for i := (len(live) - 2) / 4; i >= 0 && len(live) > 1; i-- {
		h.down(i)
	}
}
