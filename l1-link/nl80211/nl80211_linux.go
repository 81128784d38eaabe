package nl80211

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// conn is a generic-netlink connection with the nl80211 family resolved.
type conn struct {
	c      *genetlink.Conn
	family genetlink.Family
}

// dial opens a connection and looks the nl80211 family up; the interface
// is checked first, so that a typo is reported as such on any machine.
func dial(iface string) (*conn, *net.Interface, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %q", ErrNoInterface, iface)
	}
	c, err := genetlink.Dial(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("nl80211: generic netlink: %w", err)
	}
	f, err := c.GetFamily(familyName)
	if err != nil {
		c.Close()
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, ErrNoFamily
		}
		return nil, nil, fmt.Errorf("nl80211: family: %w", err)
	}
	return &conn{c: c, family: f}, ifi, nil
}

func (c *conn) close() { c.c.Close() }

func (c *conn) do(cmd uint8, attrs []byte) ([]genetlink.Message, error) {
	return c.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: c.family.Version},
		Data:   attrs,
	}, c.family.ID, netlink.Request|netlink.Acknowledge)
}

// explain turns an errno into what an operator can act on.
func explain(iface, what string, err error) error {
	switch {
	case errors.Is(err, unix.ENODEV):
		return fmt.Errorf("%w: %s", ErrNotWireless, iface)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("nl80211: %s %s: permission denied (needs CAP_NET_ADMIN)", what, iface)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("nl80211: %s %s: device busy (another interface on the radio is up: take it down or delete it)", what, iface)
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("nl80211: %s %s: the driver does not support it", what, iface)
	}
	return fmt.Errorf("nl80211: %s %s: %w", what, iface, err)
}

// Get reports an interface's nl80211 state.
func Get(iface string) (Interface, error) {
	c, ifi, err := dial(iface)
	if err != nil {
		return Interface{}, err
	}
	defer c.close()
	return c.get(iface, ifi)
}

func (c *conn) get(iface string, ifi *net.Interface) (Interface, error) {
	attrs, err := getInterfaceAttrs(uint32(ifi.Index))
	if err != nil {
		return Interface{}, err
	}
	msgs, err := c.do(cmdGetInterface, attrs)
	if err != nil {
		return Interface{}, explain(iface, "get", err)
	}
	if len(msgs) == 0 {
		return Interface{}, fmt.Errorf("%w: %s (no answer)", ErrNotWireless, iface)
	}
	return parseInterface(msgs[0].Data)
}

// SetMonitor puts iface into monitor mode (taking it down for the switch
// and up again) and tunes it to m.Channel.
func SetMonitor(iface string, m Monitor) error {
	var freq uint32
	if m.Channel != 0 {
		f, err := ChannelFreq(m.Channel)
		if err != nil {
			return err
		}
		freq = f
	}
	c, ifi, err := dial(iface)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.get(iface, ifi); err != nil {
		return err // not Wi-Fi: never take it down
	}
	if err := setUp(iface, false); err != nil {
		return err
	}
	attrs, err := setMonitorAttrs(uint32(ifi.Index), m.Active)
	if err != nil {
		return err
	}
	if _, err := c.do(cmdSetInterface, attrs); err != nil {
		return explain(iface, "set monitor mode on", err)
	}
	if err := setUp(iface, true); err != nil {
		return err
	}
	if freq != 0 {
		return c.setFreq(iface, ifi, freq)
	}
	return nil
}

// SetChannel tunes a monitor interface to a channel (the espnow link's
// Config.SetChannel).
func SetChannel(iface string, channel int) error {
	freq, err := ChannelFreq(channel)
	if err != nil {
		return err
	}
	c, ifi, err := dial(iface)
	if err != nil {
		return err
	}
	defer c.close()
	return c.setFreq(iface, ifi, freq)
}

func (c *conn) setFreq(iface string, ifi *net.Interface, freq uint32) error {
	attrs, err := setChannelAttrs(uint32(ifi.Index), freq)
	if err != nil {
		return err
	}
	if _, err := c.do(cmdSetWiphy, attrs); err != nil {
		return explain(iface, fmt.Sprintf("tune to %d MHz", freq), err)
	}
	return nil
}

// setUp brings an interface up or down (SIOCSIFFLAGS).
func setUp(iface string, up bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("nl80211: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(iface)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrNoInterface, iface)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("nl80211: flags of %s: %w", iface, err)
	}
	flags := ifr.Uint16()
	if up {
		flags |= unix.IFF_UP
	} else {
		flags &^= unix.IFF_UP
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		state := "down"
		if up {
			state = "up"
		}
		return explain(iface, "bring "+state, err)
	}
	return nil
}
