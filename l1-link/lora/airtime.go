// Package lora holds what every LoRa radio shares: the modulation
// parameters, the Semtech time-on-air formula, and the duty-cycle budget that
// regulations (EU868) put on transmit time. The RYLR-998 driver and the
// simulated medium both use it, so a simulated LoRa frame takes exactly as
// long as a real one.
package lora

import (
	"errors"
	"fmt"
	"time"
)

// Params are the modulation settings (what AT+PARAMETER sets on a RYLR-998).
type Params struct {
	SF        int // spreading factor, 5..12 (the RYLR-998 takes 5..11)
	Bandwidth int // Hz: 7800 .. 500000
	CR        int // coding rate 1..4 meaning 4/5 .. 4/8
	Preamble  int // programmed preamble symbols (the radio adds 4.25)
	// ImplicitHeader drops the explicit PHY header (the RYLR-998 always uses explicit).
	ImplicitHeader bool
	// NoCRC drops the payload CRC (the RYLR-998 always sends one).
	NoCRC bool
	// LDRO forces low data rate optimisation on or off; nil: on when a symbol
	// lasts 16 ms or more, as Semtech recommends and the modules do.
	LDRO *bool
}

// Default is the RYLR-998's factory setting, AT+PARAMETER=9,7,1,12: SF9,
// 125 kHz, 4/5, 12 preamble symbols.
var Default = Params{SF: 9, Bandwidth: 125000, CR: 1, Preamble: 12}

// ErrParams reports modulation settings outside what LoRa defines.
var ErrParams = errors.New("lora: invalid parameters")

// Bandwidths are the LoRa bandwidths in Hz, indexed by the RYLR-998's
// AT+PARAMETER bandwidth code (0..9).
var Bandwidths = [10]int{7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000}

// Validate checks the parameters.
func (p Params) Validate() error {
	switch {
	case p.SF < 5 || p.SF > 12:
		return fmt.Errorf("%w: spreading factor %d not in 5..12", ErrParams, p.SF)
	case p.CR < 1 || p.CR > 4:
		return fmt.Errorf("%w: coding rate %d not in 1..4", ErrParams, p.CR)
	case p.Preamble < 4 || p.Preamble > 65535:
		return fmt.Errorf("%w: preamble %d not in 4..65535", ErrParams, p.Preamble)
	}
	for _, bw := range Bandwidths {
		if bw == p.Bandwidth {
			return nil
		}
	}
	return fmt.Errorf("%w: bandwidth %d Hz is not a LoRa bandwidth", ErrParams, p.Bandwidth)
}

// Symbol is the duration of one symbol, 2^SF / BW.
func (p Params) Symbol() time.Duration {
	return time.Duration(int64(1<<p.SF) * int64(time.Second) / int64(p.Bandwidth))
}

func (p Params) ldro() bool {
	if p.LDRO != nil {
		return *p.LDRO
	}
	return p.Symbol() >= 16*time.Millisecond
}

// Symbols returns the number of symbols a payload of n bytes takes after
// the preamble (header and payload, Semtech AN1200.13):
// 8 + max(ceil((8n − 4SF + 28 + 16CRC − 20IH) / (4(SF − 2DE))) · (CR + 4), 0).
func (p Params) Symbols(n int) int {
	crc, ih, de := 1, 0, 0
	if p.NoCRC {
		crc = 0
	}
	if p.ImplicitHeader {
		ih = 1
	}
	if p.ldro() {
		de = 1
	}
	num := 8*n - 4*p.SF + 28 + 16*crc - 20*ih
	den := 4 * (p.SF - 2*de)
	k := 0
	if num > 0 {
		k = (num + den - 1) / den
	}
	return 8 + k*(p.CR+4)
}

// Airtime is the time on air of a payload of n bytes: (preamble + 4.25)
// symbols, then Symbols(n).
func (p Params) Airtime(n int) time.Duration {
	sym := float64(time.Second) * float64(int64(1)<<p.SF) / float64(p.Bandwidth)
	total := (float64(p.Preamble)+4.25)*sym + float64(p.Symbols(n))*sym
	return time.Duration(total + 0.5)
}

// Bitrate is the nominal raw bit rate SF · BW / 2^SF · 4/(4+CR), in bit/s.
func (p Params) Bitrate() int {
	return int(float64(p.SF) * float64(p.Bandwidth) / float64(int64(1)<<p.SF) * 4 / float64(4+p.CR))
}

// String formats the parameters as SF9/BW125/CR4-5/P12.
func (p Params) String() string {
	return fmt.Sprintf("SF%d/BW%g/CR4-%d/P%d", p.SF, float64(p.Bandwidth)/1000, p.CR+4, p.Preamble)
}
