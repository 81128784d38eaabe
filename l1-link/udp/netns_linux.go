package udp

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// netns is a handle on a Linux network namespace (nil: unknown).
type netns struct{ f *os.File }

// currentNetns returns the calling thread's network namespace. A link opened
// from a thread that entered another namespace (as tests do) keeps its
// sockets there; this remembers where that was.
func currentNetns() netns {
	f, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return netns{}
	}
	return netns{f}
}

// enter locks the calling goroutine to its thread and, if that thread is in
// another namespace, moves the thread into n. The goroutine never unlocks:
// when it returns, Go discards the thread rather than reuse it elsewhere.
func (n netns) enter() {
	if n.f == nil {
		return
	}
	runtime.LockOSThread()
	here, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return
	}
	defer here.Close()
	if same(here, n.f) {
		// Already there (the usual case: one namespace per process).
		runtime.UnlockOSThread()
		return
	}
	// On failure (no privilege to enter) the thread stays where it is and
	// address refreshes may see the wrong namespace; that only weakens
	// suppression of our own subnet broadcasts after an address change.
	_ = unix.Setns(int(n.f.Fd()), unix.CLONE_NEWNET)
}

func same(a, b *os.File) bool {
	var sa, sb unix.Stat_t
	if unix.Fstat(int(a.Fd()), &sa) != nil || unix.Fstat(int(b.Fd()), &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

func (n netns) close() {
	if n.f != nil {
		n.f.Close()
	}
}
