// Package espnow is the ESP-NOW link for Linux: mesh packets carried in
// 802.11 vendor-specific action frames, sent and received as raw frames with
// a radiotap header through an AF_PACKET socket on a monitor-mode interface,
// so that a Linux host with an injection-capable Wi-Fi card talks to ESP32
// boards running the reference firmware.
//
// The frame codec (AppendFrame, Parse) is the part boards must accept byte
// for byte; the link (Open) adds the socket, a kernel BPF filter, duplicate
// suppression and the link.Link contract.
package espnow

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"
)

// MaxBody is the largest ESP-NOW v1 payload (what the reference boards
// speak), and the most one vendor element carries: the element's one-byte
// length minus its 5 header bytes.
const MaxBody = 250

// MaxBodyV2 is the largest ESP-NOW v2 payload: up to six vendor elements
// of MaxBody bytes each, every one but the last flagged "more data".
// Devices that speak v2 take v1 frames too; v1 devices drop (or cut) v2
// frames longer than MaxBody, so a sender uses them only toward peers that
// said they accept them.
const MaxBodyV2 = 1470

// Codes that identify an ESP-NOW frame.
const (
	CategoryVendor = 127  // action category: vendor specific
	ElementVendor  = 0xdd // information element: vendor specific
	TypeESPNOW     = 4    // Espressif vendor element type for ESP-NOW
	// Version is what AppendFrame writes when Frame.Version is 0 and the
	// body fits one element; VersionV2 when it takes several. Receivers
	// accept any version.
	Version   = 1
	VersionV2 = 2
	// moreData flags a v2 element that another element of the same body
	// follows (bit 4 of the element's version byte, reserved in v1).
	moreData = 0x10
)

// OUI is Espressif's organisationally unique identifier, 18:fe:34.
var OUI = [3]byte{0x18, 0xfe, 0x34}

// Sizes of the parts of a frame.
const (
	// HeaderLen is the 802.11 management header: frame control, duration,
	// three addresses, sequence control.
	HeaderLen = 24
	// Overhead is what the action body adds around the payload: category
	// (1), OUI (3), random bytes (4), element id and length (2), OUI (3),
	// type (1), version (1).
	Overhead = 15
	// FCSLen is the frame check sequence the radio appends.
	FCSLen = 4
	// TxRadiotapLen is the radiotap header AppendFrame writes (one byte
	// more with TxOptions.Tries).
	TxRadiotapLen = 12
	// MaxFrameLen is the longest v1 frame AppendFrame produces;
	// MaxFrameLenV2 the longest v2 frame (six elements).
	MaxFrameLen   = TxRadiotapLen + HeaderLen + Overhead + MaxBody
	MaxFrameLenV2 = TxRadiotapLen + 1 + HeaderLen + Overhead + 5*elemHeader + MaxBodyV2
	// elemHeader is a vendor element's own bytes: id, length, OUI, type,
	// version.
	elemHeader = 7
)

const (
	fcAction = 0xd0 // frame control byte 0: version 0, type management, subtype action

	fcFlagProtected = 0x40
	fcFlagOrder     = 0x80 // +HTC: a 4-byte HT Control field follows the header

	rtFlagFCS    = 0x10 // radiotap flags: the frame ends with its FCS
	rtFlagBadFCS = 0x40 // radiotap flags: the FCS check failed

	rtTxFail  = 0x0001 // radiotap TX flags (status report): not acknowledged after every retry
	rtTxNoAck = 0x0008 // radiotap TX flags: do not wait for an ACK
	rtTxNoSeq = 0x0010 // radiotap TX flags: keep our sequence number
)

// Errors Parse and AppendFrame return; test with errors.Is.
var (
	// ErrTruncated: the bytes end before the frame does.
	ErrTruncated = errors.New("espnow: truncated frame")
	// ErrRadiotap: the radiotap header is malformed.
	ErrRadiotap = errors.New("espnow: malformed radiotap header")
	// ErrNotAction: an 802.11 frame, but not a management action frame.
	ErrNotAction = errors.New("espnow: not an 802.11 action frame")
	// ErrNotESPNOW: an action frame, but not Espressif's ESP-NOW (category,
	// OUI, element id or element type differ).
	ErrNotESPNOW = errors.New("espnow: not an ESP-NOW frame")
	// ErrEncrypted: a protected (encrypted) action frame; ESP-NOW
	// encryption is not supported.
	ErrEncrypted = errors.New("espnow: encrypted frame")
	// ErrBadLength: the vendor element's length disagrees with the frame.
	ErrBadLength = errors.New("espnow: vendor element length disagrees with the frame")
	// ErrBadFCS: the frame check sequence is wrong (the frame was damaged).
	ErrBadFCS = errors.New("espnow: bad frame check sequence")
	// ErrBodyTooLong: a payload over MaxBodyV2 bytes.
	ErrBodyTooLong = errors.New("espnow: body longer than 1470 bytes")
	// ErrRate: a transmit rate 802.11b/g does not define.
	ErrRate = errors.New("espnow: unsupported transmit rate")
)

// Frame is one ESP-NOW frame.
type Frame struct {
	Dst     MAC     // addr1, the receiver (ff:ff:ff:ff:ff:ff for broadcast)
	Src     MAC     // addr2, the transmitter
	Random  [4]byte // per-frame random bytes after the action OUI
	Version uint8   // vendor element version, 4 bits (0 when building: Version, or VersionV2 for a body over MaxBody)
	Seq     uint16  // 802.11 sequence number, 12 bits
	// Body is the ESP-NOW payload, a mesh packet. After Parse it aliases
	// the parsed bytes.
	Body []byte

	// Receive metadata from the radiotap header; ignored by AppendFrame.
	Channel    int  // Wi-Fi channel number
	HasChannel bool // Channel holds a value
	RSSI       int  // antenna signal, dBm
	HasSignal  bool // RSSI holds a value
	// TxStatus marks a transmit status report: mac80211 hands a frame we
	// sent back to monitor interfaces with the TX flags field, after the
	// card is done with it. TxFailed says the unicast was never
	// acknowledged (meaningless for broadcasts and no-ack frames).
	TxStatus bool
	TxFailed bool
	// TxRetries is how many times a reported frame was sent again after
	// its first attempt, when the report says (HasTxRetries).
	TxRetries    int
	HasTxRetries bool
}

// TxOptions are the transmit settings AppendFrame puts in the radiotap
// header for the driver.
type TxOptions struct {
	// Rate is the PHY rate; 0 means Rate1M, the rate ESP32s use for
	// ESP-NOW by default.
	Rate Rate
	// NoAck asks the driver not to wait for an ACK (nor retry) even for a
	// unicast frame: the reference boards' frames are usually broadcast,
	// and a card in plain monitor mode never hears the ACK it asked for.
	NoAck bool
	// Tries, when positive, bounds the times the card sends a unicast
	// frame (the radiotap data retries field, Tries-1, which mac80211
	// honours for injected frames); 0 leaves the card's retry limit.
	Tries int
}

// AppendFrame appends the radiotap header and 802.11 action frame carrying f
// to b, ready to write to a monitor interface (no FCS: the radio adds it).
// A body of up to MaxBody bytes goes in one vendor element (ESP-NOW v1,
// version 0 written as Version); a longer one, up to MaxBodyV2, in as many
// elements of MaxBody bytes as it takes (ESP-NOW v2, version 0 written as
// VersionV2). It does not allocate when b has room for the frame
// (MaxFrameLen, or MaxFrameLenV2, more bytes).
func AppendFrame(b []byte, f *Frame, opt TxOptions) ([]byte, error) {
	if len(f.Body) > MaxBodyV2 {
		return b, ErrBodyTooLong
	}
	rate := opt.Rate
	if rate == 0 {
		rate = Rate1M
	}
	if !rate.Valid() {
		return b, ErrRate
	}
	elems := max(1, (len(f.Body)+MaxBody-1)/MaxBody)
	rtLen := TxRadiotapLen
	if opt.Tries > 0 {
		rtLen++
	}
	n := len(b)
	total := rtLen + HeaderLen + Overhead + (elems-1)*elemHeader + len(f.Body)
	if cap(b)-n < total {
		nb := make([]byte, n, n+total)
		copy(nb, b)
		b = nb
	}
	b = b[:n+total]
	p := b[n:]

	// Radiotap: version 0, pad, length 12, present = rate (bit 2) and TX
	// flags (bit 15); rate at offset 8, pad, TX flags aligned at 10. This
	// is the header injection tools (aireplay-ng) use, which every
	// mac80211 driver that injects accepts. With Tries, data retries (bit
	// 17) follows at 12.
	p[0], p[1] = 0, 0
	binary.LittleEndian.PutUint16(p[2:], uint16(rtLen))
	present := uint32(1<<2 | 1<<15)
	if opt.Tries > 0 {
		present |= 1 << 17
		p[12] = byte(min(opt.Tries, 256) - 1)
	}
	binary.LittleEndian.PutUint32(p[4:], present)
	p[8] = byte(rate / 500)
	p[9] = 0
	tx := uint16(rtTxNoSeq)
	if opt.NoAck {
		tx |= rtTxNoAck
	}
	binary.LittleEndian.PutUint16(p[10:], tx)

	h := p[rtLen:]
	h[0], h[1] = fcAction, 0
	var dur uint16
	if f.Dst != BroadcastMAC && !opt.NoAck {
		// Unicast: reserve the medium for SIFS + the ACK, as 802.11 does.
		dur = uint16(ackDuration(rate) / time.Microsecond)
	}
	binary.LittleEndian.PutUint16(h[2:], dur)
	copy(h[4:10], f.Dst[:])
	copy(h[10:16], f.Src[:])
	copy(h[16:22], BroadcastMAC[:])
	binary.LittleEndian.PutUint16(h[22:], (f.Seq&0xfff)<<4)

	a := h[HeaderLen:]
	a[0] = CategoryVendor
	copy(a[1:4], OUI[:])
	copy(a[4:8], f.Random[:])
	v := f.Version &^ moreData
	if v == 0 {
		v = defaultVersion(len(f.Body))
	}
	e, body := a[8:], f.Body
	for i := range elems {
		chunk := body[:min(len(body), MaxBody)]
		body = body[len(chunk):]
		e[0] = ElementVendor
		e[1] = byte(5 + len(chunk))
		copy(e[2:5], OUI[:])
		e[5] = TypeESPNOW
		e[6] = v
		if i < elems-1 {
			e[6] |= moreData
		}
		copy(e[elemHeader:], chunk)
		e = e[elemHeader+len(chunk):]
	}
	return b, nil
}

// defaultVersion is the version AppendFrame writes for an n-byte body
// when the frame names none.
func defaultVersion(n int) uint8 {
	if n > MaxBody {
		return VersionV2
	}
	return Version
}

// Parse decodes a radiotap + 802.11 frame as Linux hands it up from a
// monitor interface (or as a LINKTYPE_IEEE802_11_RADIO capture holds it)
// into f; f.Body aliases b. It accepts what drivers hand up: radiotap fields
// present or not, with or without FCS (flagged in radiotap, or recognised by
// its CRC when the vendor elements end 4 bytes short of the frame), and with
// the action category byte stripped; and v1 frames (one vendor element) as
// well as v2 ones (a chain of elements, the bodies of which Parse moves
// together inside b, so b no longer holds the frame as it came). It never
// allocates and never panics.
func Parse(b []byte, f *Frame) error {
	*f = Frame{}
	n, flags, err := parseRadiotap(b, f)
	if err != nil {
		return err
	}
	if flags&rtFlagBadFCS != 0 {
		return ErrBadFCS
	}
	return parseDot11(b[n:], f, flags&rtFlagFCS != 0)
}

// ParseDot11 decodes an 802.11 frame without a radiotap header
// (LINKTYPE_IEEE802_11 captures) into f; a trailing FCS is recognised by
// its CRC.
func ParseDot11(b []byte, f *Frame) error {
	*f = Frame{}
	return parseDot11(b, f, false)
}

// parseRadiotap reads the radiotap header at the start of b: its length, the
// flags field, channel and antenna signal. gopacket's layers.RadioTap is not
// used here because its DecodeFromBytes (v1.1.19) indexes the header
// without bounds checks (a short header panics) and copies every frame
// without an FCS to append a computed one; this walk is bounds-checked and
// allocation-free, and the tests check it against gopacket on valid frames.
func parseRadiotap(b []byte, f *Frame) (n int, flags byte, err error) {
	if len(b) < 8 {
		return 0, 0, ErrTruncated
	}
	if b[0] != 0 {
		return 0, 0, ErrRadiotap // only radiotap version 0 exists
	}
	n = int(binary.LittleEndian.Uint16(b[2:4]))
	if n < 8 {
		return 0, 0, ErrRadiotap
	}
	if n > len(b) {
		return 0, 0, ErrTruncated
	}
	hdr := b[:n]
	present := binary.LittleEndian.Uint32(hdr[4:8])
	// Skip the extended presence bitmaps: the fields of the first bitmap
	// (standard namespace) come first after the last bitmap.
	off := 8
	for w := present; w&(1<<31) != 0; {
		if off+4 > n {
			return 0, 0, ErrRadiotap
		}
		w = binary.LittleEndian.Uint32(hdr[off:])
		off += 4
	}
	// Walk fields 0..5 of the standard namespace, and on to 17 (TX flags,
	// RTS and data retries) when a transmit status report has TX flags;
	// each is aligned to its natural size relative to the start of the
	// header.
	last := 5
	if present&(1<<15) != 0 {
		last = 17
	}
	for bit := 0; bit <= last; bit++ {
		if present&(1<<bit) == 0 {
			continue
		}
		al, size := rtFields[bit][0], rtFields[bit][1]
		off = (off + al - 1) &^ (al - 1)
		if off+size > n {
			return 0, 0, ErrRadiotap
		}
		switch bit {
		case 1: // flags
			flags = hdr[off]
		case 3: // channel: frequency (MHz), flags
			if ch := FreqToChannel(int(binary.LittleEndian.Uint16(hdr[off:]))); ch != 0 {
				f.Channel, f.HasChannel = ch, true
			}
		case 5: // antenna signal, dBm
			f.RSSI, f.HasSignal = int(int8(hdr[off])), true
		case 15: // TX flags: a transmit status report
			f.TxStatus = true
			f.TxFailed = binary.LittleEndian.Uint16(hdr[off:])&rtTxFail != 0
		case 17: // data retries: in a status report, the retries the frame took
			f.TxRetries, f.HasTxRetries = int(hdr[off]), true
		}
		off += size
	}
	return n, flags, nil
}

// rtFields holds {alignment, size} of radiotap fields 0..17, as Linux's
// radiotap iterator defines them: TSFT, flags, rate, channel, FHSS,
// antenna signal (dBm), antenna noise, lock quality, TX attenuation, dB TX
// attenuation, dBm TX power, antenna, dB antenna signal, dB antenna noise,
// RX flags, TX flags, RTS retries, data retries.
var rtFields = [18][2]int{{8, 8}, {1, 1}, {1, 1}, {2, 4}, {2, 2}, {1, 1}, {1, 1}, {2, 2}, {2, 2}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {2, 2}, {2, 2}, {1, 1}, {1, 1}}

// parseDot11 decodes the 802.11 action frame in b; fcs says the last 4 bytes
// are known to be the FCS.
func parseDot11(b []byte, f *Frame, fcs bool) error {
	if len(b) >= 1 && b[0] != fcAction {
		return ErrNotAction
	}
	if fcs {
		if len(b) < HeaderLen+FCSLen {
			return ErrTruncated
		}
		if !fcsOK(b) {
			return ErrBadFCS
		}
		b = b[:len(b)-FCSLen]
	}
	if len(b) < HeaderLen {
		return ErrTruncated
	}
	if b[1]&fcFlagProtected != 0 {
		return ErrEncrypted
	}
	hl := HeaderLen
	if b[1]&fcFlagOrder != 0 {
		hl += 4
	}
	copy(f.Dst[:], b[4:10])
	copy(f.Src[:], b[10:16])
	f.Seq = binary.LittleEndian.Uint16(b[22:24]) >> 4
	if len(b) < hl {
		return ErrTruncated
	}
	body := b[hl:]
	// The category byte, unless the driver stripped it.
	switch {
	case len(body) >= 1 && body[0] == CategoryVendor:
		body = body[1:]
	case len(body) >= 3 && body[0] == OUI[0] && body[1] == OUI[1] && body[2] == OUI[2]:
	case len(body) == 0:
		return ErrTruncated
	default:
		return ErrNotESPNOW
	}
	// OUI, random (4), element id, length, OUI, type, version.
	const fixed = 3 + 4 + 2 + 3 + 1 + 1
	if len(body) < 3 {
		return ErrTruncated
	}
	if body[0] != OUI[0] || body[1] != OUI[1] || body[2] != OUI[2] {
		return ErrNotESPNOW
	}
	if len(body) < fixed {
		return ErrTruncated
	}
	if body[7] != ElementVendor || body[9] != OUI[0] || body[10] != OUI[1] || body[11] != OUI[2] || body[12] != TypeESPNOW {
		return ErrNotESPNOW
	}
	// The vendor elements: one (v1), or a v2 chain whose every element but
	// the last is flagged more data. A chain's bodies are moved together
	// in b so that Body is one slice.
	if fcs || (fcsOK(b) && !chainFits(body[7:])) {
		// (A trailing FCS the driver did not flag is recognised by its CRC
		// when the elements do not fill the frame exactly.)
		if !fcs {
			body = body[:len(body)-FCSLen]
		}
	}
	copy(f.Random[:], body[3:7])
	f.Version = body[13] &^ moreData
	out := body[fixed:fixed]
	rest := body[7:]
	for k := 0; ; k++ {
		if len(rest) < 2 {
			return ErrTruncated
		}
		el := int(rest[1])
		if el < 5 {
			return ErrBadLength
		}
		if len(rest) < 2+el {
			return ErrTruncated
		}
		if k > 0 && (rest[0] != ElementVendor || rest[2] != OUI[0] || rest[3] != OUI[1] || rest[4] != OUI[2] || rest[5] != TypeESPNOW) {
			return ErrNotESPNOW
		}
		chunk := rest[elemHeader : 2+el]
		if len(out)+len(chunk) > MaxBodyV2 {
			return ErrBodyTooLong
		}
		more := rest[6]&moreData != 0
		rest = rest[2+el:]
		out = append(out, chunk...) // within b: moves the chunk down, over its element's header
		if !more {
			break
		}
	}
	if len(rest) != 0 {
		return ErrBadLength
	}
	f.Body = out
	return nil
}

// chainFits reports whether the vendor elements starting at e fill it
// exactly (a chain ending where the bytes do).
func chainFits(e []byte) bool {
	for len(e) >= 2 {
		el := int(e[1])
		if el < 5 || len(e) < 2+el || len(e) < 7 {
			return false
		}
		more := e[6]&moreData != 0
		e = e[2+el:]
		if !more {
			return len(e) == 0
		}
	}
	return false
}

// fcsOK reports whether the last 4 bytes of b are the 802.11 FCS (CRC-32,
// little-endian) of the rest.
func fcsOK(b []byte) bool {
	n := len(b) - FCSLen
	return n >= 0 && crc32.ChecksumIEEE(b[:n]) == binary.LittleEndian.Uint32(b[n:])
}

// FreqToChannel maps a centre frequency in MHz to its Wi-Fi channel number
// (2.4, 5 and 6 GHz bands), or 0 if it is not a Wi-Fi channel.
func FreqToChannel(mhz int) int {
	switch {
	case mhz == 2484:
		return 14
	case mhz >= 2412 && mhz <= 2472 && (mhz-2407)%5 == 0:
		return (mhz - 2407) / 5
	case mhz >= 5955 && mhz <= 7115 && (mhz-5950)%5 == 0:
		return (mhz - 5950) / 5
	case mhz >= 5160 && mhz <= 5885 && (mhz-5000)%5 == 0:
		return (mhz - 5000) / 5
	}
	return 0
}

// ChannelToFreq maps a 2.4 GHz channel (1..14) to its centre frequency in
// MHz, or 0.
func ChannelToFreq(ch int) int {
	switch {
	case ch == 14:
		return 2484
	case ch >= 1 && ch <= 13:
		return 2407 + 5*ch
	}
	return 0
}
