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
// The MAC frame is the header (24 bytes), the action frame's category, OUI
// and random bytes (8), one vendor element of 7 bytes' overhead per 250
// bytes of payload or part of it (ESP-NOW v1 carries one; v2 splits up to
// 1,470 bytes over as many as six), the payload and the FCS (4).
//
// DSSS/CCK rates (1, 2, 5.5, 11 Mbit/s, and any rate that is not an OFDM
// rate): the 802.11b long preamble and PLCP header, 192 µs, then the MAC
// frame at the rate. At 1 Mbit/s a 250-byte payload takes 2,536 µs.
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
	return frameAirtime(int64(FrameLen(n)), Rate(rateKbps))
}

// FrameLen is the length of the MAC frame (FCS included) that carries an
// n-byte payload: HeaderLen + Overhead + n + FCSLen for a v1 frame, plus 7
// bytes for each further vendor element of a v2 frame.
func FrameLen(n int) int {
	elems := max(1, (n+MaxBody-1)/MaxBody)
	return HeaderLen + Overhead + 7*(elems-1) + n + FCSLen
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

// The 802.11 DCF timing of a 2.4 GHz radio sending ESP-NOW frames outside
// any BSS (IEEE 802.11-2020 clauses 15, 16 and 18): nothing negotiates the
// short slot, so the long 20 µs slot of 802.11b and ERP's long-slot mode
// applies to every rate.
const (
	SIFS = 10 * time.Microsecond // short inter-frame space
	Slot = 20 * time.Microsecond // slot time (long slot)
	DIFS = SIFS + 2*Slot         // distributed (coordination function) inter-frame space
	// EIFS follows a frame received in error: SIFS, the ACK at 1 Mbit/s
	// (the lowest basic rate) and DIFS.
	EIFS = SIFS + 304*time.Microsecond + DIFS
	// CWMax is the ceiling the contention window doubles to.
	CWMax = 1023
	// RetryLimit is how many times a unicast frame goes on the air at most
	// before the sender gives up on its ACK: dot11ShortRetryLimit, 7 (the
	// default of mac80211 and of the ESP32's Wi-Fi stack).
	RetryLimit = 7
	// ackLen is the ACK frame: frame control, duration, receiver address, FCS.
	ackLen = 14
)

// CWMin is the contention window a frame sent at r starts with (the backoff
// is drawn from 0..CWMin slots): aCWmin of the PHY that sends it, 31 for
// DSSS/CCK, 15 for ERP-OFDM.
func CWMin(r Rate) int {
	if r.OFDM() {
		return 15
	}
	return 31
}

// AckRate is the rate of the ACK that answers a frame sent at r: the
// highest mandatory rate not above r (1 Mbit/s for DSSS/CCK, as a station
// with only the 1 Mbit/s basic rate answers; 6, 12 or 24 for OFDM).
func AckRate(r Rate) Rate {
	switch {
	case r >= Rate24M && r.OFDM():
		return Rate24M
	case r >= Rate12M && r.OFDM():
		return Rate12M
	case r.OFDM():
		return Rate6M
	}
	return Rate1M
}

// AckAirtime is how long the ACK answering a frame sent at r lasts.
func AckAirtime(r Rate) time.Duration { return frameAirtime(ackLen, AckRate(r)) }

// AckTimeout is how long after the end of a unicast frame sent at r the
// sender waits for its ACK to begin: SIFS, a slot and the PHY's receive
// start delay (the preamble and header: 192 µs for DSSS long preamble,
// 24 µs for ERP-OFDM).
func AckTimeout(r Rate) time.Duration {
	delay := 192 * time.Microsecond
	if AckRate(r).OFDM() {
		delay = 24 * time.Microsecond
	}
	return SIFS + Slot + delay
}

// ackDuration is SIFS plus the ACK that answers a unicast frame sent at r:
// the value 802.11 puts in the frame's Duration field.
func ackDuration(r Rate) time.Duration { return SIFS + AckAirtime(r) }

// ExchangeTime is the mean time one attempt of a unicast n-byte frame at r
// takes when nothing else contends: DIFS, the mean backoff (CWMin/2
// slots), the frame, SIFS and the ACK. Rate control weighs rates by it.
func ExchangeTime(n int, r Rate) time.Duration {
	return DIFS + time.Duration(CWMin(r))*Slot/2 + Airtime(n, int(r)) + SIFS + AckAirtime(r)
}
