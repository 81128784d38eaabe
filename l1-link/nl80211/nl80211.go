// Package nl80211 puts a Wi-Fi interface into monitor mode and tunes its
// channel through the kernel's nl80211 generic-netlink family, as iw does,
// without running iw: what the ESP-NOW link needs before it opens its raw
// socket. Changing the type needs the interface down, so SetMonitor takes it
// down and brings it up again. It needs CAP_NET_ADMIN.
//
// Linux only; elsewhere every call returns ErrUnsupported.
package nl80211

import (
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
)

// The nl80211 ABI (include/uapi/linux/nl80211.h): stable numbers, written
// out so the messages are built the same on every platform.
const (
	cmdGetInterface = 5 // NL80211_CMD_GET_INTERFACE
	cmdSetInterface = 6 // NL80211_CMD_SET_INTERFACE
	cmdSetWiphy     = 2 // NL80211_CMD_SET_WIPHY
	familyName      = "nl80211"

	attrWiphy            = 1    // NL80211_ATTR_WIPHY, u32
	attrIfindex          = 3    // NL80211_ATTR_IFINDEX, u32
	attrIfname           = 4    // NL80211_ATTR_IFNAME, string
	attrIftype           = 5    // NL80211_ATTR_IFTYPE, u32
	attrMntrFlags        = 0x17 // NL80211_ATTR_MNTR_FLAGS, nested flags
	attrWiphyFreq        = 0x26 // NL80211_ATTR_WIPHY_FREQ, u32 MHz
	attrWiphyChannelType = 0x27 // NL80211_ATTR_WIPHY_CHANNEL_TYPE, u32

	mntrFlagActive = 6 // NL80211_MNTR_FLAG_ACTIVE
	chanNoHT       = 0 // NL80211_CHAN_NO_HT
)

// Errors the calls return (wrapped, with the interface's name).
var (
	// ErrNoFamily: the kernel has no nl80211 family: cfg80211 is not
	// loaded, which means no Wi-Fi driver is (a machine with no card, or
	// a container without one).
	ErrNoFamily = errors.New("nl80211: the kernel has no nl80211 (no Wi-Fi driver loaded)")
	// ErrNoInterface: no network interface has that name.
	ErrNoInterface = errors.New("nl80211: no such interface")
	// ErrNotWireless: the interface exists but is not a Wi-Fi interface.
	ErrNotWireless = errors.New("nl80211: not a Wi-Fi interface")
	// ErrChannel: a channel number that names no 2.4 or 5 GHz channel.
	ErrChannel = errors.New("nl80211: no such channel")
	// ErrUnsupported: not Linux.
	ErrUnsupported = errors.New("nl80211: only on Linux")
)

// Interface types (enum nl80211_iftype) that matter here.
const (
	TypeStation = 2 // NL80211_IFTYPE_STATION
	TypeMonitor = 6 // NL80211_IFTYPE_MONITOR
)

// Interface is what nl80211 reports about a Wi-Fi interface.
type Interface struct {
	Index   int
	Name    string
	Type    uint32 // an nl80211 interface type (TypeMonitor...)
	Wiphy   uint32 // the radio it belongs to
	FreqMHz uint32 // the channel's centre frequency, 0 if not reported
}

// Monitor is what SetMonitor does.
type Monitor struct {
	// Channel to tune to after the switch (0: leave it).
	Channel int
	// Active asks for active monitor mode: the card ACKs unicast frames
	// addressed to its own MAC (drivers that support it; see
	// docs/espnow-linux.md), so boards stop retrying what we received.
	Active bool
}

// ChannelFreq is the centre frequency in MHz of a 2.4 GHz (1–14) or 5 GHz
// (32–177) channel.
func ChannelFreq(ch int) (uint32, error) {
	switch {
	case ch >= 1 && ch <= 13:
		return uint32(2407 + 5*ch), nil
	case ch == 14:
		return 2484, nil
	case ch >= 32 && ch <= 177:
		return uint32(5000 + 5*ch), nil
	}
	return 0, fmt.Errorf("%w: %d (2.4 GHz: 1..14, 5 GHz: 32..177)", ErrChannel, ch)
}

// getInterfaceAttrs are the attributes of NL80211_CMD_GET_INTERFACE.
func getInterfaceAttrs(ifindex uint32) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(attrIfindex, ifindex)
	return ae.Encode()
}

// setMonitorAttrs are the attributes of NL80211_CMD_SET_INTERFACE that make
// ifindex a monitor interface: the type, and the monitor flags (none but
// ACTIVE when asked; an empty set means the kernel's default, "other BSS"
// frames included, which is what a sniffer of ESP-NOW needs).
func setMonitorAttrs(ifindex uint32, active bool) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(attrIfindex, ifindex)
	ae.Uint32(attrIftype, TypeMonitor)
	if active {
		ae.Nested(attrMntrFlags, func(nae *netlink.AttributeEncoder) error {
			nae.Flag(mntrFlagActive, true)
			return nil
		})
	}
	return ae.Encode()
}

// setChannelAttrs are the attributes of NL80211_CMD_SET_WIPHY that tune the
// radio of ifindex (a monitor interface) to freq MHz, 20 MHz without HT:
// what `iw dev IFACE set channel N` sends.
func setChannelAttrs(ifindex, freq uint32) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(attrIfindex, ifindex)
	ae.Uint32(attrWiphyFreq, freq)
	ae.Uint32(attrWiphyChannelType, chanNoHT)
	return ae.Encode()
}

// parseInterface decodes the attributes of an interface message (the
// answer to GET_INTERFACE). Attributes it does not know are skipped.
func parseInterface(b []byte) (Interface, error) {
	var ifc Interface
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return ifc, fmt.Errorf("nl80211: interface message: %w", err)
	}
	seen := false
	for ad.Next() {
		switch ad.Type() {
		case attrIfindex:
			ifc.Index = int(ad.Uint32())
			seen = true
		case attrIfname:
			ifc.Name = ad.String()
		case attrIftype:
			ifc.Type = ad.Uint32()
		case attrWiphy:
			ifc.Wiphy = ad.Uint32()
		case attrWiphyFreq:
			ifc.FreqMHz = ad.Uint32()
		}
	}
	if err := ad.Err(); err != nil {
		return Interface{}, fmt.Errorf("nl80211: interface message: %w", err)
	}
	if !seen {
		return Interface{}, errors.New("nl80211: interface message without an interface index")
	}
	return ifc, nil
}
