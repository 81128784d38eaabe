package link

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Addr is a link-layer address. Every implementation is a comparable value,
// so addresses key maps directly.
type Addr interface {
	// Network names the kind of link: "espnow", "lora", "udp", "ble", "loop".
	Network() string
	String() string
	// IsBroadcast reports whether the address means every neighbour.
	IsBroadcast() bool
}

// Broadcast is the generic broadcast address every link accepts in Send and
// maps to its own (ff:ff:ff:ff:ff:ff, LoRa address 0, the multicast group...).
var Broadcast Addr = broadcast{}

type broadcast struct{}

func (broadcast) Network() string   { return "any" }
func (broadcast) String() string    { return "broadcast" }
func (broadcast) IsBroadcast() bool { return true }

// MAC is a 6-byte 802.11 address, as ESP-NOW uses.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Network returns "espnow".
func (MAC) Network() string { return "espnow" }

// String formats the MAC as aa:bb:cc:dd:ee:ff.
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// IsBroadcast reports m == ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// ParseMAC parses aa:bb:cc:dd:ee:ff (or with dashes, or 12 hex digits).
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) == 12 {
		s = s[0:2] + ":" + s[2:4] + ":" + s[4:6] + ":" + s[6:8] + ":" + s[8:10] + ":" + s[10:12]
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return m, fmt.Errorf("link: bad MAC %q", s)
	}
	copy(m[:], hw)
	return m, nil
}

// LoRaAddr is a RYLR-998 module address, 0–65535; 0 is broadcast.
type LoRaAddr uint16

// Network returns "lora".
func (LoRaAddr) Network() string { return "lora" }

// String formats the address in decimal.
func (a LoRaAddr) String() string { return strconv.Itoa(int(a)) }

// IsBroadcast reports a == 0.
func (a LoRaAddr) IsBroadcast() bool { return a == 0 }

// UDPAddr is an IP address and port.
type UDPAddr struct{ netip.AddrPort }

// Network returns "udp".
func (UDPAddr) Network() string { return "udp" }

// IsBroadcast reports a multicast or limited-broadcast destination.
func (a UDPAddr) IsBroadcast() bool {
	ip := a.Addr()
	return ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// BLEAddr is a Bluetooth device address.
type BLEAddr [6]byte

// Network returns "ble".
func (BLEAddr) Network() string { return "ble" }

// String formats the address as AA:BB:CC:DD:EE:FF, as BlueZ does.
func (a BLEAddr) String() string {
	return fmt.Sprintf("%02X:%02X:%02X:%02X:%02X:%02X", a[0], a[1], a[2], a[3], a[4], a[5])
}

// IsBroadcast is false: BLE has no broadcast destination (a BLE link
// broadcasts by writing to every connected peer).
func (BLEAddr) IsBroadcast() bool { return false }

// LoopAddr is an endpoint number on a loopback hub; 0 is broadcast.
type LoopAddr uint32

// Network returns "loop".
func (LoopAddr) Network() string { return "loop" }

// String formats the endpoint number.
func (a LoopAddr) String() string { return "loop:" + strconv.Itoa(int(a)) }

// IsBroadcast reports a == 0.
func (a LoopAddr) IsBroadcast() bool { return a == 0 }
