package espnow

import (
	"fmt"
	"net"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// Network is the kind of an ESP-NOW address (link.Addr.Network).
const Network = "espnow"

// Bitrate is the nominal rate the reference gives its ESP-NOW interface
// (used to rank links and in interface ids).
const Bitrate = 12_000_000

// MAC is a 6-byte 802.11 address, as ESP-NOW uses; it is a link.Addr.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Network returns "espnow".
func (MAC) Network() string { return Network }

// String formats the MAC as aa:bb:cc:dd:ee:ff.
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// MACTextSize is the length of a MAC's text (String): aa:bb:cc:dd:ee:ff.
const MACTextSize = 3*len(MAC{}) - 1

// AppendText appends String's text to b (encoding.TextAppender), without
// allocating it.
func (m MAC) AppendText(b []byte) ([]byte, error) {
	const hex = "0123456789abcdef"
	for i, c := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[c>>4], hex[c&0xf])
	}
	return b, nil
}

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
		return m, fmt.Errorf("espnow: bad MAC %q", s)
	}
	copy(m[:], hw)
	return m, nil
}

func init() {
	link.RegisterNetwork(Network, func(s string) (link.Addr, error) { return ParseMAC(s) })
}
