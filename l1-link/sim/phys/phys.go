// Package phys holds the simulated medium's profiles of the project's
// radios, next to the drivers they describe: what each kind of link
// reports, its addresses, how long its frames occupy the air, and the
// frames a capture of it holds. Package sim itself names no driver.
package phys

import (
	"math"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/mycelium-mesh/mycelium/l1-link/espnow"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/minstrel"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// ESPNOW is the ESP-NOW radio of an ESP32 (or a Linux monitor-mode card)
// sending at 802.11b 1 Mbit/s with long preamble, the ESP32's default:
// ESPNOWAt(espnow.Rate1M).
func ESPNOW() sim.PHY { return ESPNOWAt(espnow.Rate1M) }

// ESPNOWAt is the ESP-NOW radio sending at rate: an 802.11b/g station
// outside any BSS (package espnow's timing: long slot, DIFS 50 µs, CWmin
// 31 for DSSS and 15 for OFDM, CWmax 1,023, retry limit 7, ACKs at the
// mandatory rate below the frame's), airtime from espnow.Airtime (2,536 µs
// for a 250-byte datagram at 1 Mbit/s), and frame errors that grow with
// distance faster for faster rates (ESPNOWPER). Radio n is 02:00:00:nn:nn:nn,
// a locally administered MAC. Captures hold radiotap + 802.11 frames, as a
// monitor interface would show them.
func ESPNOWAt(rate espnow.Rate) sim.PHY {
	return sim.PHY{
		Name: "espnow", Network: espnow.Network, MTU: espnow.MTU, Bitrate: espnow.Bitrate,
		Schemas: link.SchemasESPNOW,
		Addr: func(n int) link.Addr {
			return espnow.MAC{0x02, 0, 0, byte(n >> 16), byte(n >> 8), byte(n)}
		},
		Airtime:   func(n int) time.Duration { return espnow.Airtime(n, int(rate)) },
		Rates:     espnowRates,
		Rate:      int(rate),
		AirtimeAt: espnow.Airtime,
		PER:       ESPNOWPER,
		FloorSNR:  3, // 1 Mbit/s loses nothing there (its 10 % is at -3 dB)
		DCF: &sim.DCF{
			Slot: espnow.Slot, SIFS: espnow.SIFS, EIFS: espnow.EIFS,
			CWMin:      func(r int) int { return espnow.CWMin(espnow.Rate(r)) },
			CWMax:      espnow.CWMax,
			RetryLimit: espnow.RetryLimit,
			AckRate:    func(r int) int { return int(espnow.AckRate(espnow.Rate(r))) },
			AckAirtime: func(r int) time.Duration { return espnow.AckAirtime(espnow.Rate(r)) },
			AckTimeout: func(r int) time.Duration { return espnow.AckTimeout(espnow.Rate(r)) },
		},
		TxQueue: 8, Caps: link.CapBroadcast | link.CapUnicastAck | link.CapSleep, NoiseFloor: -95, MaxSNR: 40,
		CaptureType:  layers.LinkTypeIEEE80211Radio,
		CaptureFrame: espnowFrame,
	}
}

// ESPNOWV2 is phy with ESP-NOW v2 radios: datagrams up to 1,470 bytes, and
// our v2 schemas besides the ESP-NOW family (link.SchemasESPNOWV2). A v1
// device on the medium is a radio limited with Radio.SetLimits(250,
// link.SchemasESPNOW).
func ESPNOWV2(phy sim.PHY) sim.PHY {
	phy.MTU = espnow.MaxBodyV2
	phy.Schemas = link.SchemasESPNOWV2
	return phy
}

// ESPNOWAdaptive is ESPNOWAt(start) with every radio choosing the rate of
// its unicast frames per destination (ESPNOWRateControl); broadcasts stay
// at start.
func ESPNOWAdaptive(start espnow.Rate) sim.PHY {
	phy := ESPNOWAt(start)
	phy.NewRateControl = func(seed uint64) sim.RateControl { return ESPNOWRateControl(start, seed) }
	return phy
}

// ESPNOWRateControl is the rate control of an ESP-NOW radio, the simulated
// one and espnow.Link alike: minstrel over the 802.11b/g rates, each
// weighed by the time an attempt of a full frame takes
// (espnow.ExchangeTime), starting from start.
func ESPNOWRateControl(start espnow.Rate, seed uint64) *minstrel.Minstrel {
	return minstrel.New(minstrel.Config{
		Rates: espnowRates, Start: int(start), Seed: seed,
		Cost: func(r int) time.Duration { return espnow.ExchangeTime(espnow.MaxBody, espnow.Rate(r)) },
	})
}

// espnowRates are the 802.11b/g rates, slowest first.
var espnowRates = []int{1000, 2000, 5500, 6000, 9000, 11000, 12000, 18000, 24000, 36000, 48000, 54000}

// sensitivity is an ESP32's receive sensitivity per rate (dBm, its
// datasheet's typical figures: 8 % PER for 1,024-byte frames at 802.11b
// rates, 10 % for 1,000 bytes at 802.11g rates).
var sensitivity = map[int]float64{
	1000: -98, 2000: -96, 5500: -93, 11000: -88,
	6000: -93, 9000: -91, 12000: -89, 18000: -87, 24000: -84, 36000: -80, 48000: -77, 54000: -75,
}

// ESPNOWPER is the frame error rate model of ESPNOWAt: a frame of 1,000
// bytes at a rate is lost with probability 10 % at the SNR where the
// ESP32's sensitivity for that rate meets the -95 dBm noise floor, on a
// logistic waterfall 0.75 dB wide (10 % to 90 % over 3.3 dB, what coded
// OFDM and CCK show); longer frames fail more, as 1-(1-p)^(bytes/1000).
// n is the datagram's length, -1 for an ACK (14 bytes).
func ESPNOWPER(rate, n int, snr float64) float64 {
	sens, ok := sensitivity[rate]
	if !ok {
		return 0
	}
	const width = 0.75
	mid := sens + 95 - width*math.Log(9)
	p := 1 / (1 + math.Exp((snr-mid)/width))
	bytes := 14
	if n >= 0 {
		bytes = espnow.FrameLen(n)
	}
	return 1 - math.Pow(1-p, float64(bytes)/1000)
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
