package cli

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/udp"
	"github.com/mycelium-mesh/mycelium/l2-seq/hop"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

func init() { register(pcapCmd) }

// pcapFrameJSON is one line of `mycelium pcap`: src and dst when the
// frame names them (not in USER0 captures, which hold bare packets);
// channel and rssi only when the capture has them; packet, or error when
// the payload is not a valid packet.
type pcapFrameJSON struct {
	Src     string      `json:"src,omitempty"`
	Dst     string      `json:"dst,omitempty"`
	Channel *int        `json:"channel,omitempty"`
	RSSI    *int        `json:"rssi,omitempty"`
	Packet  *packetJSON `json:"packet,omitempty"`
	// Hop is the trailer of a frame authenticated between two proven
	// neighbours (l2-seq/hop; not checked here: no key).
	Hop   *hopJSON `json:"hop,omitempty"`
	Error string   `json:"error,omitempty"`
}

// hopJSON is a hop trailer: its counter and tag.
type hopJSON struct {
	Counter uint32 `json:"counter"`
	Tag     string `json:"tag"`
}

func pcapCmd() *cobra.Command {
	var port int
	c := &cobra.Command{
		Use:   "pcap FILE|-",
		Short: "Print the mesh packets in the frames of a capture, one JSON object per line",
		Long: "Reads a pcap or pcapng capture (what tcpdump, tshark and dumpcap write; gzipped too;\n" +
			"\"-\" reads standard input, so a live capture can be piped in) of radiotap + 802.11\n" +
			"frames (link type 127, what a monitor interface gives), bare 802.11 frames (105),\n" +
			"Ethernet frames (1) or bare mesh packets (USER0, 147: what `mycelium sim --pcap`\n" +
			"writes for LoRa) and prints one JSON object per mesh frame:\n" +
			"{\"src\",\"dst\",\"channel\"?,\"rssi\"?,\"packet\":{...}} or, when the payload is not a valid\n" +
			"packet, \"error\" instead of \"packet\". ESP-NOW frames give MAC addresses, UDP\n" +
			"datagrams to or from --port IP:port ones, USER0 frames none (src and dst left out).\n" +
			"Other frames (not ESP-NOW, not UDP on the mesh port) are skipped and counted on stderr.",
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
				var v pcapFrameJSON
				switch r.FrameLinkType() {
				case capture.LinkTypeRadiotap:
					if perr = espnow.Parse(b, &f); perr == nil {
						v = viewESPNOW(&f)
					}
				case capture.LinkTypeDot11:
					if perr = espnow.ParseDot11(b, &f); perr == nil {
						v = viewESPNOW(&f)
					}
				case capture.LinkTypeUser0:
					v = viewPayload(pcapFrameJSON{}, b)
				case layers.LinkTypeEthernet:
					v, perr = viewUDP(b, port)
				default:
					perr = errNotMesh // no mesh frames in this link type
				}
				if perr != nil {
					skipped++
					continue
				}
				if err := printJSON(out, v); err != nil {
					return err
				}
			}
			if skipped > 0 {
				what := "frames that are"
				if skipped == 1 {
					what = "frame that is"
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "mycelium: skipped %d %s not ESP-NOW or UDP on port %d\n", skipped, what, port)
			}
			return nil
		},
	}
	c.Flags().IntVar(&port, "port", udp.DefaultPort, "the mesh's UDP port, in captures of Ethernet frames")
	return c
}

var errNotMesh = errors.New("not a mesh frame")

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
	return viewPayload(v, f.Body)
}

// viewUDP decodes an Ethernet frame holding an IPv4 or IPv6 UDP datagram
// to or from port.
func viewUDP(b []byte, port int) (pcapFrameJSON, error) {
	pk := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	u, ok := pk.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if !ok || (int(u.SrcPort) != port && int(u.DstPort) != port) {
		return pcapFrameJSON{}, errNotMesh
	}
	var src, dst net.IP
	switch ip := pk.NetworkLayer().(type) {
	case *layers.IPv4:
		src, dst = ip.SrcIP, ip.DstIP
	case *layers.IPv6:
		src, dst = ip.SrcIP, ip.DstIP
	default:
		return pcapFrameJSON{}, errNotMesh
	}
	v := pcapFrameJSON{
		Src: net.JoinHostPort(src.String(), strconv.Itoa(int(u.SrcPort))),
		Dst: net.JoinHostPort(dst.String(), strconv.Itoa(int(u.DstPort))),
	}
	return viewPayload(v, u.Payload), nil
}

// viewPayload fills in the mesh packet a frame carries.
func viewPayload(v pcapFrameJSON, body []byte) pcapFrameJSON {
	if pkt := hop.Packet(body); len(pkt) < len(body) {
		tr := body[len(pkt):]
		v.Hop = &hopJSON{Counter: binary.BigEndian.Uint32(tr), Tag: hex.EncodeToString(tr[hop.CounterSize:])}
		body = pkt
	}
	var p packet.Packet
	if err := p.UnmarshalBinary(body); err != nil {
		v.Error = err.Error()
	} else {
		pj := viewPacket(&p)
		v.Packet = &pj
	}
	return v
}
