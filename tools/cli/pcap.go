package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

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
		Use:   "pcap FILE|-",
		Short: "Print the mesh packets in the ESP-NOW frames of a capture, one JSON object per line",
		Long: "Reads a pcap or pcapng capture (what tcpdump, tshark and dumpcap write; gzipped too;\n" +
			"\"-\" reads standard input, so a live capture can be piped in) of radiotap + 802.11\n" +
			"frames (link type 127, what a monitor interface gives) or bare 802.11 frames (105)\n" +
			"and prints one JSON object per ESP-NOW frame:\n" +
			"{\"src\",\"dst\",\"channel\"?,\"rssi\"?,\"packet\":{...}} or, when the payload is not a valid\n" +
			"packet, \"error\" instead of \"packet\". Frames that are not ESP-NOW are skipped and\n" +
			"counted on stderr.",
		Example: `  mycelium pcap capture.pcapng
  tshark -i wlan0mon -w - | mycelium pcap -`,
		Args: args("FILE"),
		RunE: func(cmd *cobra.Command, a []string) error {
			name := a[0]
			var in io.Reader = cmd.InOrStdin()
			if name == "-" {
				name = "standard input"
			} else {
				fh, err := os.Open(name)
				if err != nil {
					return fmt.Errorf("%s: %v", name, unwrapPath(err))
				}
				defer fh.Close()
				in = fh
			}
			r, err := capture.NewReader(in)
			if err != nil {
				return fmt.Errorf("%s: %v", name, strings.TrimPrefix(err.Error(), "capture: "))
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
						err = errors.New("the capture ends inside a frame")
					}
					return fmt.Errorf("%s: frame %d: %s", name, n+1, strings.TrimPrefix(err.Error(), "capture: "))
				}
				var f espnow.Frame
				var perr error
				switch r.FrameLinkType() {
				case capture.LinkTypeRadiotap:
					perr = espnow.Parse(b, &f)
				case capture.LinkTypeDot11:
					perr = espnow.ParseDot11(b, &f)
				default:
					perr = errNotESPNOW // no ESP-NOW frames in this link type
				}
				if perr != nil {
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

var errNotESPNOW = errors.New("not ESP-NOW")

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
