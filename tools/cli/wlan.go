package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l1-link/nl80211"
)

func init() { register(wlanCmd) }

func wlanCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "wlan",
		Short: "Wi-Fi interfaces for the ESP-NOW link (through nl80211)",
	}
	c.AddCommand(wlanMonitorCmd())
	return c
}

func wlanMonitorCmd() *cobra.Command {
	var (
		channel int
		active  bool
	)
	c := &cobra.Command{
		Use:   "monitor IFACE --channel N",
		Short: "Put a Wi-Fi interface into monitor mode on a channel",
		Long: `Takes IFACE down, switches it to monitor mode (active monitor mode with
--active: the card then ACKs frames addressed to its MAC, on drivers that
support it), brings it up and tunes it to channel N, all through the
kernel's nl80211 interface (what iw does, without iw). Needs
CAP_NET_ADMIN. The node does the same at start with monitor = true in an
espnow [[link]].`,
		Example: "  sudo mycelium wlan monitor wlan1 --channel 1",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if channel == 0 {
				return errors.New("--channel is required (1..14 on 2.4 GHz; the boards' channel)")
			}
			if _, err := nl80211.ChannelFreq(channel); err != nil {
				return fmt.Errorf("--channel: %v", err)
			}
			if err := nl80211.SetMonitor(args[0], nl80211.Monitor{Channel: channel, Active: active}); err != nil {
				return err
			}
			ifc, err := nl80211.Get(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: monitor mode, %d MHz (channel %d)\n", args[0], ifc.FreqMHz, channel)
			return nil
		},
	}
	c.Flags().IntVar(&channel, "channel", 0, "Wi-Fi channel to tune to")
	c.Flags().BoolVar(&active, "active", false, "active monitor mode (ACK frames to our MAC)")
	return c
}
