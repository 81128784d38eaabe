// Package phys holds the simulated medium's profiles of the project's
// radios, next to the drivers they describe: what each kind of link
// reports, its addresses, how long its frames occupy the air, and the
// frames a capture of it holds. Package sim itself names no driver.
package phys

import (
	"time"

	"github.com/google/gopacket/layers"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// ESPNOW is the ESP-NOW radio of an ESP32 (or a Linux monitor-mode card) at
// 802.11b 1 Mbit/s with long preamble, carrier sense on; its airtime is
// espnow.Airtime (2,536 µs for a 250-byte datagram). Radio n is
// 02:00:00:nn:nn:nn, a locally administered MAC. Captures hold radiotap +
// 802.11 frames, as a monitor interface would show them.
func ESPNOW() sim.PHY {
	return sim.PHY{
		Name: "espnow", Network: espnow.Network, MTU: espnow.MTU, Bitrate: espnow.Bitrate,
		Schemas: link.SchemasESPNOW,
		Addr: func(n int) link.Addr {
			return espnow.MAC{0x02, 0, 0, byte(n >> 16), byte(n >> 8), byte(n)}
		},
		Airtime: func(n int) time.Duration { return espnow.Airtime(n, int(espnow.Rate1M)) },
		CSMA:    true, DIFS: 50 * time.Microsecond, Slot: 20 * time.Microsecond, CW: 16, PostCW: 16,
		TxQueue: 8, Caps: link.CapBroadcast | link.CapSleep, NoiseFloor: -95, MaxSNR: 40,
		CaptureType:  layers.LinkTypeIEEE80211Radio,
		CaptureFrame: espnowFrame,
	}
}

func espnowFrame(dst, src link.Addr, payload []byte) []byte {
	f := espnow.Frame{Dst: macOf(dst), Src: macOf(src), Body: payload}
	b, err := espnow.AppendFrame(nil, &f, espnow.TxOptions{})
	if err != nil {
		return nil
	}
	return b
}

func macOf(a link.Addr) espnow.MAC {
	if m, ok := a.(espnow.MAC); ok {
		return m
	}
	return espnow.BroadcastMAC
}

// LoRa is a RYLR-998 module with modulation p: no carrier sense, airtime
// from the Semtech formula for the datagram plus the 8 bytes the module
// adds on the air (rylr998.AirOverhead), as the driver estimates it.
// Radio n has module address n.
func LoRa(p lora.Params) sim.PHY {
	return sim.PHY{
		Name: "rylr998", Network: rylr998.Network, MTU: rylr998.MTU, Bitrate: rylr998.Bitrate,
		Schemas: link.SchemasLoRa,
		Addr:    func(n int) link.Addr { return rylr998.Addr(n) },
		Airtime: func(n int) time.Duration { return p.Airtime(n + rylr998.AirOverhead) },
		TxQueue: 4, Caps: link.CapBroadcast, NoiseFloor: -120, MaxSNR: 10,
	}
}

// LoRaOnAir is LoRa for frames that already hold the module's header (the
// RYLR-998 emulator puts it on the medium itself): airtime of the bytes as
// they are, MTU raised by the header.
func LoRaOnAir(p lora.Params) sim.PHY {
	phy := LoRa(p)
	phy.MTU += rylr998.AirOverhead
	phy.Airtime = p.Airtime
	return phy
}
