package udp

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// ownAddrs is the set of this host's addresses, for telling our own looped
// broadcasts from a peer's: a datagram from one of these addresses and from
// our own port is one we sent. Nothing is added to datagrams to tell them
// apart, so the kernel's view of our addresses is the only evidence.
type ownAddrs struct {
	ns     netns // the network namespace the link was opened in
	mu     sync.Mutex
	set    map[netip.Addr]bool
	loaded time.Time
}

func newOwnAddrs() (*ownAddrs, error) {
	o := &ownAddrs{ns: currentNetns()}
	if err := o.load(); err != nil {
		o.ns.close()
		return nil, err
	}
	return o, nil
}

// load reads the addresses of the calling thread's network namespace.
func (o *ownAddrs) load() error {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return err
	}
	set := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil {
			set[pfx.Addr().Unmap().WithZone("")] = true
		}
	}
	o.set, o.loaded = set, time.Now()
	return nil
}

// has reports whether ip is ours, re-reading the set when it is stale and ip
// is not in it (so a changed address is noticed within ownRefresh).
// Callers run on a thread in the link's namespace (see enter).
func (o *ownAddrs) has(ip netip.Addr) bool {
	ip = ip.WithZone("")
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.set[ip] {
		return true
	}
	if time.Since(o.loaded) > ownRefresh {
		if o.load() != nil {
			o.loaded = time.Now() // keep the old set; try again later
		}
		return o.set[ip]
	}
	return false
}

// enter moves the calling goroutine onto a thread in the link's network
// namespace, for the rest of its life, so that re-reading the addresses sees
// the namespace the sockets live in, not the one the thread happens to be in.
func (o *ownAddrs) enter() { o.ns.enter() }

func (o *ownAddrs) close() { o.ns.close() }
