package ble

import (
	"fmt"
	"net"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// Network is the kind of a BLE address (link.Addr.Network).
const Network = "ble"

// Addr is a Bluetooth device address; it is a link.Addr.
type Addr [6]byte

// Network returns "ble".
func (Addr) Network() string { return Network }

// String formats the address as AA:BB:CC:DD:EE:FF, as BlueZ does.
func (a Addr) String() string {
	return fmt.Sprintf("%02X:%02X:%02X:%02X:%02X:%02X", a[0], a[1], a[2], a[3], a[4], a[5])
}

// IsBroadcast is false: BLE has no broadcast destination (a BLE link
// broadcasts by writing to every connected peer).
func (Addr) IsBroadcast() bool { return false }

// ParseAddr parses AA:BB:CC:DD:EE:FF.
func ParseAddr(s string) (Addr, error) {
	var a Addr
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return a, fmt.Errorf("ble: bad address %q", s)
	}
	copy(a[:], hw)
	return a, nil
}

func init() {
	link.RegisterNetwork(Network, func(s string) (link.Addr, error) { return ParseAddr(s) })
}
