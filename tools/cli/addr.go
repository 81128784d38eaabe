package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

// addrError drops the package prefix the addr errors carry: the command
// already says what it parsed.
func addrError(err error) error {
	return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "addr: "))
}

// parseAddr reads a tree address: 32 hex digits, 0x allowed.
func parseAddr(what, s string) (addr.Address, error) {
	var a addr.Address
	b, err := parseFixedHex(what, s, addr.Size)
	if err != nil {
		return a, err
	}
	copy(a[:], b)
	return a, nil
}

func addrCmd() *cobra.Command {
	c := &cobra.Command{Use: "addr", Short: "Tree address codec (coordinates <-> 16 bytes) and routing distances"}
	c.AddCommand(&cobra.Command{
		Use:   "encode COORDS",
		Short: "Print the 32 hex digits of the address with coordinates like 3,1",
		Long: fmt.Sprintf(`Prints the 16-byte tree address (32 hex digits) of the coordinates given as
a comma-separated list of child indexes, each 1..%d, from the root down (the
root itself is "").`, addr.MaxCoord),
		Example: `  mycelium addr encode 3,1
  mycelium addr encode ""`,
		Args: args("COORDS"),
		RunE: func(cmd *cobra.Command, a []string) error {
			cs, err := addr.ParseCoords(a[0])
			if err != nil {
				return addrError(err)
			}
			ad, err := addr.Encode(cs)
			if err != nil {
				return addrError(err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), ad.Hex())
			return err
		},
	}, &cobra.Command{
		Use:   "decode HEX|-",
		Short: "Print an address's coordinates like 3,1 (the root prints an empty line)",
		Example: `  mycelium addr decode 31000000000000000000000000000000
  mycelium addr decode 0x31000000000000000000000000000000`,
		Args: args("HEX"),
		RunE: func(cmd *cobra.Command, a []string) error {
			s, err := input(cmd, "address", a[0])
			if err != nil {
				return err
			}
			ad, err := parseAddr("address", s)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), addr.FormatCoords(ad.Coords()))
			return err
		},
	})
	var mode uint8
	dist := &cobra.Command{
		Use:   "distance --mode 0|1 HEX HEX",
		Short: "Print the distance between two addresses (mode 0 tree, mode 1 common prefix)",
		Example: `  mycelium addr distance 31000000000000000000000000000000 32000000000000000000000000000000
  mycelium addr distance --mode 1 31000000000000000000000000000000 32000000000000000000000000000000`,
		Args: args("HEX", "HEX"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if mode > 1 {
				return fmt.Errorf("--mode %d: want 0 (tree distance) or 1 (common-prefix distance)", mode)
			}
			x, err := parseAddr("first address", a[0])
			if err != nil {
				return err
			}
			y, err := parseAddr("second address", a[1])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), addr.Metric(mode).FormatDistance(x, y))
			return err
		},
	}
	dist.Flags().Uint8Var(&mode, "mode", 0, "0: tree distance, 1: common-prefix distance")
	c.AddCommand(dist)
	return c
}
