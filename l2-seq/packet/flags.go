package packet

// Flags is the fourth header byte (PROTOCOL 2.1).
type Flags uint8

// Single-bit flags.
const (
	FlagError     Flags = 0x80 // sent back toward the origin because of an error
	FlagThrottle  Flags = 0x40 // the sender is congested
	FlagReserved1 Flags = 0x04
	FlagReserved2 Flags = 0x02
	FlagMode      Flags = 0x01 // routed schemas: 0 tree distance, 1 common-prefix distance

	encodedMask Flags = 0x38
)

const encodedShift = 3

// Encoded is the 3-bit field of mutually exclusive control meanings.
type Encoded uint8

// Values of the encoded field.
const (
	EncNone      Encoded = 0
	EncAsk       Encoded = 1 // please acknowledge
	EncAck       Encoded = 2 // acknowledgement
	EncRtx       Encoded = 3 // retransmission request
	EncRNS       Encoded = 4 // request node status (are you awake?)
	EncNIA       Encoded = 5 // node is active
	EncUnused6   Encoded = 6
	EncReserved7 Encoded = 7
)

var encodedNames = [8]string{"", "ask", "ack", "rtx", "rns", "nia", "encoded6", "encoded7"}

// String names the encoded value ("" for none).
func (e Encoded) String() string { return encodedNames[e&7] }

// Encoded returns the 3-bit encoded field.
func (f Flags) Encoded() Encoded { return Encoded((f & encodedMask) >> encodedShift) }

// WithEncoded returns f with the encoded field replaced by e.
func (f Flags) WithEncoded(e Encoded) Flags {
	return f&^encodedMask | Flags(e&7)<<encodedShift
}

// Error reports the error bit.
func (f Flags) Error() bool { return f&FlagError != 0 }

// Throttle reports the throttle bit.
func (f Flags) Throttle() bool { return f&FlagThrottle != 0 }

// Mode reports the mode bit (routing metric on routed schemas).
func (f Flags) Mode() bool { return f&FlagMode != 0 }

// Ask reports encoded == ask.
func (f Flags) Ask() bool { return f.Encoded() == EncAsk }

// Ack reports encoded == ack.
func (f Flags) Ack() bool { return f.Encoded() == EncAck }

// Rtx reports encoded == rtx.
func (f Flags) Rtx() bool { return f.Encoded() == EncRtx }

// RNS reports encoded == rns.
func (f Flags) RNS() bool { return f.Encoded() == EncRNS }

// NIA reports encoded == nia.
func (f Flags) NIA() bool { return f.Encoded() == EncNIA }

// AckReply returns the flags of the ack that answers a packet with flags f:
// the encoded bits replaced by ack, every other bit kept (PROTOCOL 4).
func (f Flags) AckReply() Flags { return f.WithEncoded(EncAck) }

// AppendNames appends the names of the set flags among error, throttle, ask, ack,
// rtx, rns, nia and mode, in that order, to dst.
func (f Flags) AppendNames(dst []string) []string {
	if f.Error() {
		dst = append(dst, "error")
	}
	if f.Throttle() {
		dst = append(dst, "throttle")
	}
	switch e := f.Encoded(); e {
	case EncAsk, EncAck, EncRtx, EncRNS, EncNIA:
		dst = append(dst, e.String())
	}
	if f.Mode() {
		dst = append(dst, "mode")
	}
	return dst
}

// FlagsFromNames builds a flags byte from names as AppendNames produces them.
// It reports false for an unknown name or two encoded names.
func FlagsFromNames(names []string) (Flags, bool) {
	var f Flags
	enc := false
	for _, n := range names {
		switch n {
		case "error":
			f |= FlagError
		case "throttle":
			f |= FlagThrottle
		case "mode":
			f |= FlagMode
		default:
			e := EncNone
			for i := EncAsk; i <= EncNIA; i++ {
				if encodedNames[i] == n {
					e = i
				}
			}
			if e == EncNone || enc {
				return 0, false
			}
			enc = true
			f = f.WithEncoded(e)
		}
	}
	return f, true
}
