// Package sim is the simulated radio medium every higher-layer test and
// benchmark runs on: radios with addresses, an explicit graph of who hears
// whom (or positions and a range), per-link loss (independent or bursty,
// Gilbert–Elliott), airtime from each radio's formula at the rate of each
// frame, half-duplex radios, collisions where transmissions overlap at a
// receiver, and, for 802.11 radios, the distributed coordination function
// as the standard defines it: carrier sense in slots, binary exponential
// backoff, NAV, and unicast frames acknowledged after SIFS and retried up
// to the radio's retry limit. Driven by a clock.Virtual it runs hours of
// mesh time in seconds, and the same seed gives the same run.
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
	// Airtime is how long a datagram of n bytes occupies the medium at the
	// PHY's default rate.
	Airtime func(n int) time.Duration
	// Rates are the PHY rates (kbit/s) a radio may send at, slowest first;
	// Rate is the one it sends at unless told otherwise (SetRate,
	// SetRateControl). Empty Rates: the PHY has one rate, and AirtimeAt
	// is not used.
	Rates []int
	Rate  int
	// AirtimeAt is how long a datagram of n bytes occupies the medium at
	// rate (kbit/s).
	AirtimeAt func(n, rate int) time.Duration
	// PER, when set, is the probability that a frame at rate is lost at a
	// receiver whose signal-to-noise ratio is snr dB (thermal noise: rates
	// that need more SNR fail first as radios move apart); n is the
	// datagram's length, or -1 for an 802.11 ACK. It applies between radios
	// placed at positions (the SNR comes from their distance), on top of
	// the link's loss model. Radios the medium connects hear each other at
	// the slowest rate whatever their distance: the SNR is taken as at
	// least FloorSNR, so a graph's long edges stay up and only faster
	// rates fade with distance.
	PER      func(rate, n int, snr float64) float64
	FloorSNR float64
	// NewRateControl, when set, gives each radio its own rate control for
	// unicast frames (seeded from the medium's seed and the radio's index,
	// so runs repeat).
	NewRateControl func(seed uint64) RateControl
	// DCF makes every radio an 802.11 station (see DCF); nil leaves them
	// ALOHA radios that transmit at once, as LoRa modules do.
	DCF *DCF
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

// DCF is the 802.11 distributed coordination function of a PHY (IEEE
// 802.11-2020 10.3): the figures come from the PHY's clause, the behaviour
// is the medium's.
//
// A radio with a frame to send transmits at once if the medium has been
// idle for DIFS (EIFS after a frame it received in error); otherwise it
// draws a backoff of 0..CW slots and counts it down only while the medium
// is idle, freezing while it is busy. The medium is busy while a frame the
// radio hears is on the air (sensed one slot after it starts: two radios
// whose countdowns end in the same slot both transmit, and collide) and
// while the NAV it set from an overheard frame's Duration field runs.
// A unicast frame is answered, SIFS after it ends, by an ACK from its
// addressee at the ACK rate; without one by the ACK timeout the sender
// doubles CW (up to CWMax) and sends again, at most RetryLimit times in
// all, then reports link.ErrNoAck. A retry the addressee already received
// is acknowledged but not delivered twice. Broadcasts get no ACK and no
// retry. After every frame, sent or given up, the sender draws a
// post-backoff from CWMin.
type DCF struct {
	Slot time.Duration
	SIFS time.Duration
	// EIFS replaces DIFS after a frame received in error.
	EIFS time.Duration
	// CWMin is the contention window of a frame's first attempt at rate;
	// CWMax the ceiling of its doublings.
	CWMin func(rate int) int
	CWMax int
	// RetryLimit is how many times a unicast frame goes on the air at most.
	RetryLimit int
	// AckRate is the rate of the ACK to a frame sent at rate, AckAirtime
	// how long that ACK lasts, and AckTimeout how long after the frame's
	// end its sender waits for the ACK to begin.
	AckRate    func(rate int) int
	AckAirtime func(rate int) time.Duration
	AckTimeout func(rate int) time.Duration
}

// DIFS is SIFS plus two slots.
func (d *DCF) DIFS() time.Duration { return d.SIFS + 2*d.Slot }

// RateControl chooses the rates of a radio's unicast frames, per
// destination, and learns from how they fared.
type RateControl interface {
	// Rate is the rate chain for the next frame to dst: its first n
	// attempts at first, the rest at then (n 0: every attempt at first).
	// A rate control samples a rate that way at little cost: one attempt,
	// and the frame's retries at a rate known to work (as mac80211's
	// minstrel does with its retry chains).
	Rate(dst link.Addr) (first, n, then int)
	// Report tells how attempts at rate to dst fared: attempts times on
	// the air, acknowledged at the last of them or never.
	Report(dst link.Addr, rate, attempts int, acked bool)
}
