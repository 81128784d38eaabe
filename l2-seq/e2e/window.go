package e2e

// window is a sliding replay window over a session's counters, as
// WireGuard keeps one (RFC 6479's ring of bitmap words): a counter whose
// word has slid out of the ring (between 960 and 1,024 behind the
// highest seen) is refused, and each one within it is accepted once.
type window struct {
	hi   uint64 // highest counter seen + 1 (0: none yet)
	bits [windowSize / 64]uint64
}

const windowSize = 1024

const words = uint64(windowSize / 64)

// fresh reports whether ctr may be accepted (not seen, not too old).
func (w *window) fresh(ctr uint64) bool {
	if ctr >= w.hi {
		return true
	}
	if (w.hi-1)/64-ctr/64 >= words {
		return false
	}
	return w.bits[(ctr/64)%words]&(1<<(ctr%64)) == 0
}

// mark records ctr (fresh must have said yes).
func (w *window) mark(ctr uint64) {
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
