// Package replay is the sliding replay window shared by what counts its
// messages (end-to-end sessions, l2-seq/e2e; authenticated hops,
// l2-seq/hop), written once.
package replay

// Window is a sliding replay window over a key's counters, as WireGuard
// keeps one (RFC 6479's ring of bitmap words): a counter whose word has
// slid out of the ring (between 960 and 1,024 behind the highest seen) is
// refused, and each one within it is accepted once. The zero value has
// seen nothing.
type Window struct {
	hi   uint64 // highest counter seen + 1 (0: none yet)
	bits [Size / 64]uint64
}

// Size is the window's width in counters.
const Size = 1024

const words = uint64(Size / 64)

// Fresh reports whether ctr may be accepted (not seen, not too old).
func (w *Window) Fresh(ctr uint64) bool {
	if ctr >= w.hi {
		return true
	}
	if (w.hi-1)/64-ctr/64 >= words {
		return false
	}
	return w.bits[(ctr/64)%words]&(1<<(ctr%64)) == 0
}

// Mark records ctr (Fresh must have said yes).
func (w *Window) Mark(ctr uint64) {
	if ctr >= w.hi {
		// The words the window slides onto start empty.
		start := uint64(0)
		if w.hi > 0 {
			start = (w.hi-1)/64 + 1
		}
		if end := ctr / 64; end >= start {
			if end-start+1 >= words {
				w.bits = [words]uint64{}
			} else {
				for i := start; i <= end; i++ {
					w.bits[i%words] = 0
				}
			}
		}
		w.hi = ctr + 1
	}
	w.bits[(ctr/64)%words] |= 1 << (ctr % 64)
}
