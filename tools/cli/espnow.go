package cli

import (
	crand "crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
)

func init() { register(espnowCmd) }

// espnowJSON is the output of `mycelium espnow parse`.
type espnowJSON struct {
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	Body string `json:"body"`
}

func espnowCmd() *cobra.Command {
	c := &cobra.Command{Use: "espnow", Short: "Build and parse ESP-NOW frames (radiotap + 802.11 vendor action frames)"}
	var src, dst, random string
	frame := &cobra.Command{
		Use:   "frame --src MAC --dst MAC [--random HEX8] HEX|-",
		Short: "Print the radiotap + 802.11 frame carrying HEX as ESP-NOW payload, in hex",
		Long: `Prints the radiotap + 802.11 vendor action frame that carries the payload
(hex, at most 250 bytes; "-" reads it from standard input) as ESP-NOW, in hex.`,
		Example: `  mycelium espnow frame --src 24:0a:c4:00:00:01 --dst ff:ff:ff:ff:ff:ff 68656c6c6f`,
		Args:    args("HEX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var f espnow.Frame
			var err error
			if f.Src, err = espnow.ParseMAC(src); err != nil {
				return fmt.Errorf("--src %q: not a MAC address like 24:0a:c4:00:00:01", src)
			}
			if f.Dst, err = espnow.ParseMAC(dst); err != nil {
				return fmt.Errorf("--dst %q: not a MAC address like 24:0a:c4:00:00:01", dst)
			}
			if random != "" {
				r, err := parseFixedHex("--random", random, 4)
				if err != nil {
					return err
				}
				copy(f.Random[:], r)
			} else if _, err := crand.Read(f.Random[:]); err != nil {
				return err
			}
			if f.Body, err = hexInput(cmd, "payload", args[0]); err != nil {
				return err
			}
			if len(f.Body) > espnow.MaxBody {
				// (ESP-NOW v1, what every board takes.)
				return fmt.Errorf("payload: %s, ESP-NOW carries at most %d", plural(len(f.Body), "byte", "bytes"), espnow.MaxBody)
			}
			b, err := espnow.AppendFrame(nil, &f, espnow.TxOptions{})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(b))
			return err
		},
	}
	frame.Flags().StringVar(&src, "src", "", "source MAC, aa:bb:cc:dd:ee:ff")
	frame.Flags().StringVar(&dst, "dst", "", "destination MAC (ff:ff:ff:ff:ff:ff for broadcast)")
	frame.Flags().StringVar(&random, "random", "", "the frame's 4 random bytes, 8 hex digits (default: random)")
	_ = frame.MarkFlagRequired("src")
	_ = frame.MarkFlagRequired("dst")

	parse := &cobra.Command{
		Use:     "parse HEX|-",
		Short:   "Parse a radiotap + 802.11 ESP-NOW frame and print its addresses and payload as JSON",
		Example: `  mycelium espnow frame --src 24:0a:c4:00:00:01 --dst ff:ff:ff:ff:ff:ff 68656c6c6f | mycelium espnow parse -`,
		Args:    args("HEX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := hexInput(cmd, "frame", args[0])
			if err != nil {
				return err
			}
			var f espnow.Frame
			if err := espnow.Parse(b, &f); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), espnowJSON{Src: f.Src.String(), Dst: f.Dst.String(), Body: hex.EncodeToString(f.Body)})
		},
	}
	c.AddCommand(frame, parse)
	return c
}
