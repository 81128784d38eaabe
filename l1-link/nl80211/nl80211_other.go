//go:build !linux

package nl80211

// Get reports an interface's nl80211 state.
func Get(iface string) (Interface, error) { return Interface{}, ErrUnsupported }

// SetMonitor puts iface into monitor mode.
func SetMonitor(iface string, m Monitor) error { return ErrUnsupported }

// SetChannel tunes a monitor interface to a channel.
func SetChannel(iface string, channel int) error { return ErrUnsupported }
