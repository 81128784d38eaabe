package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

func init() { register(pcapCmd) }

// pcapFrameJSON is one line of `mycelium pcap`: channel and rssi only when
// the capture has them; packet, or error when the payload is not a valid
// packet.
type pcapFrameJSON struct {
	Src     string      `json:"src"`
	Dst     string      `json:"dst"`
	Channel *int        `json:"channel,omitempty"`
	RSSI    *int        `json:"rssi,omitempty"`
	Packet  *packetJSON `json:"packet,omitempty"`
	Error   string      `json:"error,omitempty"`
}

func pcapCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pcap FILE",
		Short: "Print the mesh packets in the ESP-NOW frames of a pcap capture, one JSON object per line",
		Long: "Reads a pcap capture of radiotap + 802.11 frames (link type 127, what a monitor interface\n" +
			"gives) or bare 802.11 frames (105) and prints one JSON object per ESP-NOW frame.\n" +
			"Frames that are not ESP-NOW are skipped and counted on stderr.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fh, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer fh.Close()
			r, err := capture.NewReader(fh)
			if err != nil {
				return fmt.Errorf("%s: %v", args[0], err)
			}
			parse := espnow.Parse
			switch r.LinkType() {
			case capture.LinkTypeRadiotap:
			case capture.LinkTypeDot11:
				parse = espnow.ParseDot11
			default:
				parse = nil // no ESP-NOW frames in this link type
			}
			out := cmd.OutOrStdout()
			skipped := 0
			for n := 0; ; n++ {
				_, b, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					if errors.Is(err, io.ErrUnexpectedEOF) {
						err = errors.New("the file ends inside a frame")
					}
					return fmt.Errorf("%s: frame %d: %v", args[0], n+1, err)
				}
				var f espnow.Frame
				if parse == nil || parse(b, &f) != nil {
					skipped++
					continue
				}
				if err := printJSON(out, viewESPNOW(&f)); err != nil {
					return err
				}
			}
			if skipped > 0 {
				what := "frames that are"
				if skipped == 1 {
					what = "frame that is"
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "mycelium: skipped %d %s not ESP-NOW\n", skipped, what)
			}
			return nil
		},
	}
}

func viewESPNOW(f *espnow.Frame) pcapFrameJSON {
	v := pcapFrameJSON{Src: f.Src.String(), Dst: f.Dst.String()}
	if f.HasChannel {
		ch := f.Channel
		v.Channel = &ch
	}
	if f.HasSignal {
		rssi := f.RSSI
		v.RSSI = &rssi
	}
	var p packet.Packet
	if err := p.UnmarshalBinary(f.Body); err != nil {
		v.Error = err.Error()
	} else {
		pj := viewPacket(&p)
		v.Packet = &pj
	}
	return v
}
