package sim

import (
	"github.com/google/gopacket/layers"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// CaptureLinkType makes captures of simulated ESP-NOW radios hold the
// radiotap + 802.11 frames a real one would put on the air (Wireshark
// dissects them); other radios capture the datagrams as they are.
func (r *Radio) CaptureLinkType() layers.LinkType {
	if r.m.phy.Network == "espnow" {
		return layers.LinkTypeIEEE80211Radio
	}
	return capture.LinkTypeUser0
}

// CaptureFrame is the on-air frame carrying payload (capture.Framer).
func (r *Radio) CaptureFrame(dst, src link.Addr, payload []byte) []byte {
	if r.m.phy.Network != "espnow" {
		return payload
	}
	f := espnow.Frame{Dst: macOf(dst), Src: macOf(src), Body: payload}
	b, err := espnow.AppendFrame(nil, &f, espnow.TxOptions{})
	if err != nil {
		return nil
	}
	return b
}

func macOf(a link.Addr) link.MAC {
	if m, ok := a.(link.MAC); ok {
		return m
	}
	return link.BroadcastMAC
}

var _ capture.Framer = (*Radio)(nil)
