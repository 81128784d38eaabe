//go:build unix

package meshsim

import "syscall"

// cpuSeconds is the CPU time the process has used so far, user and system,
// as the OS counts it (runtime/metrics' estimate counts the time the
// OS did not run the process too: on a loaded machine it overstated the
// CPU time several times over).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
