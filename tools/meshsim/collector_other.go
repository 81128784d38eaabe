//go:build !linux

package meshsim

// physicalMemory is unknown off Linux: TuneCollector keeps SimMemoryLimit.
func physicalMemory() int64 { return 0 }
