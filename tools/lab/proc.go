package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Usage is a process's resident memory and CPU time so far.
type Usage struct {
	RSS int64         // bytes
	CPU time.Duration // user + system
}

// ProcUsage reads /proc/PID/status and /proc/PID/stat (Linux).
func ProcUsage(pid int) (Usage, error) {
	var u Usage
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, l := range strings.Split(string(st), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				u.RSS = kb << 10
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return u, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// utime and stime are fields 14 and 15, in USER_HZ (100 a second on
	// every Linux): 12 and 13 after the command.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st2, _ := strconv.ParseInt(f[12], 10, 64)
	u.CPU = time.Duration(ut+st2) * 10 * time.Millisecond
	return u, nil
}
