// Package sim is the simulated radio medium every higher-layer test and
// benchmark runs on: radios with addresses, an explicit graph of who hears
// whom (or positions and a range), per-link loss (independent or bursty,
// Gilbert–Elliott), airtime from each radio's formula, half-duplex radios,
// collisions where transmissions overlap at a receiver, and carrier sense
// where the radio does it. Driven by a clock.Virtual it runs hours of mesh
// time in seconds, and the same seed gives the same run.
package sim

import (
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
)

// PHY describes one kind of radio: what its links report and how long its
// frames occupy the air.
type PHY struct {
	Name    string // link name in Info ("espnow", "rylr998")
	Network string // address kind: "espnow" (6-byte MACs) or "lora" (module addresses)
	MTU     int
	Bitrate int // nominal, as Info reports it
	Schemas []uint8
	// Airtime is how long a datagram of n bytes occupies the medium.
	Airtime func(n int) time.Duration
	// CSMA makes a radio listen before it talks (a simplified 802.11 DCF,
	// see Radio.arm): DIFS of idle medium, a backoff of 0..CW-1 slots
	// counted only while idle when it found the medium busy, and a
	// post-backoff of 0..PostCW-1 slots after each of its own frames.
	// Without CSMA a radio transmits at once (pure ALOHA, as LoRa modules do).
	CSMA   bool
	DIFS   time.Duration
	Slot   time.Duration
	CW     int
	PostCW int
	// TxQueue is each radio's transmit queue capacity.
	TxQueue int
	// Caps reported by the links.
	Caps link.Caps
	// NoiseFloor (dBm) turns a received signal strength into the SNR frames
	// report: about -95 dBm for 2.4 GHz Wi-Fi at 20 MHz, -120 for LoRa at 125 kHz.
	NoiseFloor int
	// MaxSNR caps the SNR a radio reports (an SX127x reports at most about
	// +10 dB; Wi-Fi chips 40).
	MaxSNR int
}

// ESPNOW is the ESP-NOW radio of an ESP32 (or a Linux monitor-mode card) at
// 802.11b 1 Mbit/s with long preamble, carrier sense on; its airtime is
// espnow.Airtime (2,536 µs for a 250-byte datagram).
func ESPNOW() PHY {
	return PHY{
		Name: "espnow", Network: "espnow", MTU: 250, Bitrate: link.BitrateESPNOW,
		Schemas: link.SchemasESPNOW,
		Airtime: func(n int) time.Duration { return espnow.Airtime(n, int(espnow.Rate1M)) },
		CSMA:    true, DIFS: 50 * time.Microsecond, Slot: 20 * time.Microsecond, CW: 16, PostCW: 16,
		TxQueue: 8, Caps: link.CapBroadcast | link.CapSleep, NoiseFloor: -95, MaxSNR: 40,
	}
}

// LoRa is a RYLR-998 module with modulation p: no carrier sense, airtime
// from the Semtech formula for the datagram plus the 8 bytes the module
// adds on the air (rylr998.AirOverhead), as the driver estimates it.
func LoRa(p lora.Params) PHY {
	return PHY{
		Name: "rylr998", Network: "lora", MTU: rylr998.MTU, Bitrate: link.BitrateRYLR998,
		Schemas: link.SchemasLoRa, Airtime: func(n int) time.Duration { return p.Airtime(n + rylr998.AirOverhead) },
		TxQueue: 4, Caps: link.CapBroadcast, NoiseFloor: -120, MaxSNR: 10,
	}
}

// LoRaOnAir is LoRa for frames that already hold the module's header (the
// RYLR-998 emulator puts it on the medium itself): airtime of the bytes as
// they are, MTU raised by the header.
func LoRaOnAir(p lora.Params) PHY {
	phy := LoRa(p)
	phy.MTU += rylr998.AirOverhead
	phy.Airtime = p.Airtime
	return phy
}
