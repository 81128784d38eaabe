package meshsim

import (
	"os"
	"runtime/debug"
)

// SimGCPercent is the collector's target a long simulation runs with: the
// heap may grow to five times what is live between collections, instead
// of Go's default of twice. A simulation allocates a frame, a timer and a
// reception for every event and keeps little of it; at the default the
// collector took a fifth of the CPU of `sim route`.
const SimGCPercent = 400

// SimMemoryLimit caps what the collector lets the heap grow to under
// SimGCPercent (the runtime's soft limit): 3 GiB, or half the machine's
// memory where that is less, so that a larger target never costs more
// memory than the machine has.
const SimMemoryLimit = 3 << 30

// TuneCollector sets the collector for a long simulation (SimGCPercent,
// SimMemoryLimit) and returns what restores the settings it found. A user
// who set GOGC or GOMEMLIMIT keeps theirs.
func TuneCollector() (restore func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	limit := int64(SimMemoryLimit)
	if total := physicalMemory(); total > 0 {
		limit = min(limit, total/2)
	}
	pct := debug.SetGCPercent(SimGCPercent)
	was := debug.SetMemoryLimit(limit)
	return func() {
		debug.SetGCPercent(pct)
		debug.SetMemoryLimit(was)
	}
}
