package sim

import (
	"github.com/google/gopacket/layers"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// CaptureLinkType is the PHY's capture link type (capture.LinkTypeUser0
// when it names none): a capture of a simulated ESP-NOW radio holds the
// radiotap + 802.11 frames a real one would put on the air.
func (r *Radio) CaptureLinkType() layers.LinkType {
	if r.m.phy.CaptureType != 0 {
		return r.m.phy.CaptureType
	}
	return capture.LinkTypeUser0
}

// CaptureFrame is the on-air frame carrying payload (capture.Framer): the
// PHY's frame when it builds one, else the payload as it is.
func (r *Radio) CaptureFrame(dst, src link.Addr, payload []byte) []byte {
	if r.m.phy.CaptureFrame == nil {
		return payload
	}
	return r.m.phy.CaptureFrame(dst, src, payload)
}

var _ capture.Framer = (*Radio)(nil)
