// Package sim is the simulated radio medium every higher-layer test and
// benchmark runs on: radios with addresses, an explicit graph of who hears
// whom (or positions and a range), per-link loss (independent or bursty,
// Gilbert–Elliott), airtime from each radio's formula, half-duplex radios,
// collisions where transmissions overlap at a receiver, and carrier sense
// where the radio does it. Driven by a clock.Virtual it runs hours of mesh
// time in seconds, and the same seed gives the same run.
package sim

//
// The medium knows no driver: what a kind of radio is (its addresses, its
// airtime, the frames a capture of it holds) comes in its PHY, and the
// profiles of the project's radios live in package sim/phys, next to the
// drivers they describe.
import (
	"time"

	"github.com/google/gopacket/layers"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
)

// PHY describes one kind of radio: what its links report and how long its
// frames occupy the air.
type PHY struct {
	Name    string // link name in Info ("espnow", "rylr998")
	Network string // the kind of the radios' addresses (link.Addr.Network)
	// Addr is the address of the medium's n-th radio (1-based).
	Addr    func(n int) link.Addr
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
	// CaptureType is the pcap link type of the medium's captures; zero
	// means capture.LinkTypeUser0 (the datagrams as they are).
	CaptureType layers.LinkType
	// CaptureFrame, when set, builds the on-air frame a capture holds for a
	// datagram (an ESP-NOW radio's radiotap + 802.11 frame).
	CaptureFrame func(dst, src link.Addr, payload []byte) []byte
}
