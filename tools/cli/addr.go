package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l3-route/addr"
)

func addrCmd() *cobra.Command {
	c := &cobra.Command{Use: "addr", Short: "Tree address codec (coordinates <-> 16 bytes) and routing distances"}
	c.AddCommand(&cobra.Command{
		Use:   "encode COORDS",
		Short: "Print the 32 hex digits of the address with coordinates like 3,1",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := addr.ParseCoords(args[0])
			if err != nil {
				return err
			}
			a, err := addr.Encode(cs)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), a.Hex())
			return err
		},
	}, &cobra.Command{
		Use:   "decode HEX",
		Short: "Print an address's coordinates like 3,1 (the root prints an empty line)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := addr.ParseHex(args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), addr.FormatCoords(a.Coords()))
			return err
		},
	})
	var mode uint8
	dist := &cobra.Command{
		Use:   "distance --mode 0|1 HEX HEX",
		Short: "Print the distance between two addresses (mode 0 tree, mode 1 common prefix)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if mode > 1 {
				return fmt.Errorf("--mode: %d is not 0 or 1", mode)
			}
			a, err := addr.ParseHex(args[0])
			if err != nil {
				return err
			}
			b, err := addr.ParseHex(args[1])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), addr.Metric(mode).FormatDistance(a, b))
			return err
		},
	}
	dist.Flags().Uint8Var(&mode, "mode", 0, "0: tree distance, 1: common-prefix distance")
	c.AddCommand(dist)
	return c
}
