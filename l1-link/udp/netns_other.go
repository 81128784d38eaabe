//go:build !linux

package udp

// netns: only Linux has per-thread network namespaces; elsewhere the
// process's one network stack is the only one.
type netns struct{}

func currentNetns() netns { return netns{} }
func (netns) enter()      {}
func (netns) close()      {}
