//go:build !unix

package meshsim

import "runtime/metrics"

// cpuSeconds is the CPU time the process has spent in Go code and its
// collector so far: off Unix, runtime/metrics' estimate (which counts
// time the OS did not run the process, so it overstates a loaded machine's).
func cpuSeconds() float64 {
	ms := []metrics.Sample{{Name: "/cpu/classes/user:cpu-seconds"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/scavenge/total:cpu-seconds"}}
	metrics.Read(ms)
	t := 0.0
	for _, m := range ms {
		if m.Value.Kind() == metrics.KindFloat64 {
			t += m.Value.Float64()
		}
	}
	return t
}
