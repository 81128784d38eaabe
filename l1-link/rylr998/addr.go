package rylr998

import (
	"fmt"
	"strconv"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// Network is the kind of a RYLR-998 address (link.Addr.Network).
const Network = "lora"

// Bitrate is the nominal rate the reference gives its RYLR-998 interface
// (used to rank links and in interface ids).
const Bitrate = 9_600

// Addr is a RYLR-998 module address, 0–65535; 0 is broadcast. It is a
// link.Addr.
type Addr uint16

// Network returns "lora".
func (Addr) Network() string { return Network }

// String formats the address in decimal.
func (a Addr) String() string { return strconv.Itoa(int(a)) }

// IsBroadcast reports a == 0.
func (a Addr) IsBroadcast() bool { return a == 0 }

// ParseAddr parses a module address in decimal.
func ParseAddr(s string) (Addr, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("rylr998: bad address %q", s)
	}
	return Addr(n), nil
}

func init() {
	link.RegisterNetwork(Network, func(s string) (link.Addr, error) { return ParseAddr(s) })
}
