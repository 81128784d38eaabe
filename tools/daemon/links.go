package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"syscall"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/nl80211"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/udp"
)

// openLink is a link the daemon opened, with what it was opened from.
type openLink struct {
	cfg LinkConfig
	l   link.Link
	udp *udp.Link // when a UDP link: its static peers can change on reload
}

// dutyCycler is a link with a duty-cycle budget (RYLR-998).
type dutyCycler interface {
	DutyCycle() (used, budget time.Duration)
}

// dutyUsed is the fraction of the budget used in the current window, if
// the link has one.
func (o *openLink) dutyUsed() (float64, bool) {
	d, ok := o.l.(dutyCycler)
	if !ok {
		return 0, false
	}
	used, budget := d.DutyCycle()
	if budget <= 0 {
		return 0, false
	}
	return float64(used) / float64(budget), true
}

func (o *openLink) close() {
	if err := o.l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		_ = err // closing at shutdown: nothing more to do
	}
}

// openLinkConfig opens one configured link on the loop's clock.
func openLinkConfig(c *LinkConfig, loop clock.Clock, log *slog.Logger) (*openLink, error) {
	switch c.Type {
	case "udp":
		uc := udp.Config{Clock: loop, Interface: c.Interface, MulticastLoop: c.MulticastLoop, Hops: c.Hops}
		uc.Listen = netip.MustParseAddrPort(c.Listen) // checked by Load
		if c.Group == "" {
			uc.NoGroup = true
		} else {
			uc.Group = netip.MustParseAddrPort(c.Group)
		}
		peers, err := parsePeers(c.Peers)
		if err != nil {
			return nil, err
		}
		uc.Peers = peers
		l, err := udp.Open(uc)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("listen %s: address already in use (another node, or another program, has that port)", c.Listen)
			}
			return nil, err
		}
		log.Info("link open", "type", "udp", "addr", l.Info().Addr, "group", c.Group, "peers", len(peers))
		return &openLink{cfg: *c, l: l, udp: l}, nil
	case "espnow":
		if _, err := net.InterfaceByName(c.Interface); err != nil {
			return nil, fmt.Errorf("interface %q does not exist", c.Interface)
		}
		if c.Monitor {
			if err := nl80211.SetMonitor(c.Interface, nl80211.Monitor{Channel: c.Channel, Active: c.Active}); err != nil {
				return nil, fmt.Errorf("monitor mode on %s: %w", c.Interface, err)
			}
			log.Info("monitor mode set", "interface", c.Interface, "channel", c.Channel, "active", c.Active)
		}
		rate, _ := parseRate(c.Rate) // checked by Load
		ec := espnow.Config{Interface: c.Interface, Channel: c.Channel, Rate: rate, Clock: loop, ActiveMonitor: c.Active, SetChannel: nl80211.SetChannel}
		if c.MAC != "" {
			ec.MAC, _ = espnow.ParseMAC(c.MAC)
		}
		l, err := espnow.Open(ec)
		if err != nil {
			return nil, err
		}
		log.Info("link open", "type", "espnow", "interface", c.Interface, "addr", l.Info().Addr, "channel", c.Channel)
		return &openLink{cfg: *c, l: l}, nil
	case "rylr998":
		rc := rylr998.Config{
			Port: c.Port, Baud: c.Baud, Address: uint16(c.Address), NetworkID: c.NetworkID, Band: c.Band,
			Params: c.loraParams(), Password: c.Password, TxPower: c.Power, Clock: loop,
			DutyCycle: lora.DutyCycle{Fraction: c.DutyCycle, Window: c.DutyWindow},
		}
		l, err := rylr998.Open(rc)
		if err != nil {
			return nil, err
		}
		log.Info("link open", "type", "rylr998", "port", c.Port, "address", c.Address, "params", rc.Params.String())
		return &openLink{cfg: *c, l: l}, nil
	}
	return nil, fmt.Errorf("unknown link type %q", c.Type)
}

func parsePeers(ss []string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, s := range ss {
		p, err := netip.ParseAddrPort(s)
		if err != nil {
			return nil, fmt.Errorf("peer %q: %v", s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// reloadable reports whether the running link can become want without
// being reopened: the same device and settings, UDP peers aside (those
// change in place).
func (o *openLink) reloadable(want LinkConfig) bool {
	a, b := o.cfg, want
	a.Peers, b.Peers = nil, nil
	return reflect.DeepEqual(a, b)
}

// setPeers applies a UDP link's new static peers.
func (o *openLink) setPeers(peers []string) (bool, error) {
	if o.udp == nil || slices.Equal(o.cfg.Peers, peers) {
		return false, nil
	}
	ps, err := parsePeers(peers)
	if err != nil {
		return false, err
	}
	if err := o.udp.SetPeers(ps); err != nil {
		return false, err
	}
	o.cfg.Peers = slices.Clone(peers)
	return true, nil
}
