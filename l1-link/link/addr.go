package link

import (
	"fmt"
	"slices"
	"sync"
)

// Addr is a link-layer address. Every implementation is a comparable value,
// so addresses key maps directly. Each driver defines its own kind (a MAC,
// a LoRa module address, an IP address and port...) and registers it with
// RegisterNetwork, so that this package names no driver.
type Addr interface {
	// Network names the kind of address, as its driver registered it
	// ("espnow", "lora", "udp", "ble", "loop"...).
	Network() string
	String() string
	// IsBroadcast reports whether the address means every neighbour.
	IsBroadcast() bool
}

// Broadcast is the generic broadcast address every link accepts in Send and
// maps to its own broadcast (ff:ff:ff:ff:ff:ff, LoRa address 0, the
// multicast group...).
var Broadcast Addr = broadcast{}

type broadcast struct{}

func (broadcast) Network() string   { return "any" }
func (broadcast) String() string    { return "broadcast" }
func (broadcast) IsBroadcast() bool { return true }

// DestKind applies the destination rules every link keeps in Send, for a
// link whose addresses are of kind network: Broadcast, or a broadcast
// address of the link's own kind, means every neighbour (bcast true);
// another address of the link's own kind is a unicast destination; nil,
// or an address of another kind (even another kind's broadcast address,
// which means nothing here), is ErrAddr.
func DestKind(dst Addr, network string) (bcast bool, err error) {
	switch {
	case dst == nil:
		return false, fmt.Errorf("%w: no destination", ErrAddr)
	case dst == Broadcast:
		return true, nil
	case dst.Network() != network:
		return false, fmt.Errorf("%w: %s address %v on a %s link", ErrAddr, dst.Network(), dst, network)
	}
	return dst.IsBroadcast(), nil
}

// Dest is DestKind for a driver whose addresses are of type A (whose zero
// value names the kind): it also returns the unicast destination as an A.
func Dest[A Addr](dst Addr) (to A, bcast bool, err error) {
	bcast, err = DestKind(dst, to.Network())
	if err == nil && !bcast {
		to = dst.(A)
	}
	return to, bcast, err
}

// ParseFunc parses the text form of one kind of address.
type ParseFunc func(s string) (Addr, error)

var (
	networksMu sync.RWMutex
	networks   = map[string]ParseFunc{}
)

// RegisterNetwork makes ParseAddr know a kind of address; drivers call it
// from an init function. Registering a name twice panics, as registering
// two flags of one name does: it is a programming error found at start.
func RegisterNetwork(name string, parse ParseFunc) {
	networksMu.Lock()
	defer networksMu.Unlock()
	if _, dup := networks[name]; dup || name == "" || name == Broadcast.Network() {
		panic("link: address kind " + name + " registered twice (or reserved)")
	}
	networks[name] = parse
}

// ParseAddr parses s as an address of the registered kind network ("any"
// and "broadcast" parse as Broadcast whatever the kind).
func ParseAddr(network, s string) (Addr, error) {
	if s == Broadcast.String() {
		return Broadcast, nil
	}
	networksMu.RLock()
	parse := networks[network]
	networksMu.RUnlock()
	if parse == nil {
		return nil, fmt.Errorf("%w: unknown kind %q (known: %v)", ErrAddr, network, Networks())
	}
	a, err := parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAddr, err)
	}
	return a, nil
}

// Networks lists the registered kinds of address, sorted.
func Networks() []string {
	networksMu.RLock()
	defer networksMu.RUnlock()
	out := make([]string, 0, len(networks))
	for n := range networks {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
