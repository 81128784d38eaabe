package espnow

import (
	"strconv"
	"time"
)

// Rate is an 802.11b/g PHY rate in kbit/s.
type Rate int

// The rates a 2.4 GHz radio sends legacy frames at: DSSS/CCK (802.11b) and
// ERP-OFDM (802.11g).
const (
	Rate1M  Rate = 1000 // DSSS, the ESP32's default for ESP-NOW
	Rate2M  Rate = 2000
	Rate5M5 Rate = 5500
	Rate11M Rate = 11000
	Rate6M  Rate = 6000 // OFDM
	Rate9M  Rate = 9000
	Rate12M Rate = 12000
	Rate18M Rate = 18000
	Rate24M Rate = 24000
	Rate36M Rate = 36000
	Rate48M Rate = 48000
	Rate54M Rate = 54000
)

// Valid reports whether r is one of the 802.11b/g rates.
func (r Rate) Valid() bool { return r.DSSS() || r.OFDM() }

// DSSS reports whether r is an 802.11b (DSSS/CCK) rate.
func (r Rate) DSSS() bool {
	switch r {
	case Rate1M, Rate2M, Rate5M5, Rate11M:
		return true
	}
	return false
}

// OFDM reports whether r is an 802.11g (ERP-OFDM) rate.
func (r Rate) OFDM() bool {
	switch r {
	case Rate6M, Rate9M, Rate12M, Rate18M, Rate24M, Rate36M, Rate48M, Rate54M:
		return true
	}
	return false
}

// String formats the rate as "5.5 Mbit/s".
func (r Rate) String() string {
	return strconv.FormatFloat(float64(r)/1000, 'f', -1, 64) + " Mbit/s"
}

// ParseRate parses a rate in Mbit/s ("1", "5.5", "24").
func ParseRate(s string) (Rate, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, ErrRate
	}
	r := Rate(v*1000 + 0.5)
	if !r.Valid() {
		return 0, ErrRate
	}
	return r, nil
}

// Airtime returns how long an ESP-NOW frame carrying an n-byte payload
// occupies the air at rateKbps, from the start of the preamble to the end of
// the FCS (no inter-frame space, no ACK).
//
// DSSS/CCK rates (1, 2, 5.5, 11 Mbit/s, and any rate that is not an OFDM
// rate): the 802.11b long preamble and PLCP header, 192 µs at 1 Mbit/s,
// then the MAC frame (header 24 + action/vendor overhead 15 + n + FCS 4
// bytes) at the rate. At 1 Mbit/s a 250-byte payload takes 2,536 µs.
//
// OFDM rates (6..54 Mbit/s): 20 µs of preamble and SIGNAL, 4 µs symbols
// carrying the 16-bit SERVICE field, the frame and 6 tail bits, and the
// 6 µs signal extension of ERP-OFDM in the 2.4 GHz band.
//
// A rateKbps of 0 or less means 1 Mbit/s.
func Airtime(n int, rateKbps int) time.Duration {
	if rateKbps <= 0 {
		rateKbps = int(Rate1M)
	}
	bytes := int64(HeaderLen + Overhead + n + FCSLen)
	return frameAirtime(bytes, Rate(rateKbps))
}

// frameAirtime is the airtime of a PPDU carrying a MAC frame of the given
// length (FCS included).
func frameAirtime(bytes int64, r Rate) time.Duration {
	if r.OFDM() {
		dbps := int64(r) * 4 / 1000 // data bits per 4 µs symbol
		sym := (16 + 8*bytes + 6 + dbps - 1) / dbps
		return time.Duration(20+4*sym+6) * time.Microsecond
	}
	return 192*time.Microsecond + time.Duration(bytes*8*int64(time.Millisecond)/int64(r))
}

// ackDuration is SIFS plus the ACK that answers a unicast frame sent at r:
// the value 802.11 puts in the frame's Duration field. The ACK goes at the
// highest mandatory rate not above r (1 Mbit/s for DSSS; 6, 12 or 24 for
// OFDM).
func ackDuration(r Rate) time.Duration {
	const sifs = 10 * time.Microsecond
	const ackLen = 14
	resp := Rate1M
	switch {
	case r >= Rate24M && r.OFDM():
		resp = Rate24M
	case r >= Rate12M && r.OFDM():
		resp = Rate12M
	case r.OFDM():
		resp = Rate6M
	}
	return sifs + frameAirtime(ackLen, resp)
}
