package espnow

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	macA = MAC{0x24, 0x0a, 0xc4, 0x00, 0x00, 0x01}
	macB = MAC{0x24, 0x0a, 0xc4, 0x00, 0x00, 0x02}
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func mustBuild(t testing.TB, f *Frame, opt TxOptions) []byte {
	t.Helper()
	b, err := AppendFrame(nil, f, opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dot11Of returns the 802.11 part of a frame AppendFrame built.
func dot11Of(b []byte) []byte { return b[TxRadiotapLen:] }

// withFCS appends the FCS of an 802.11 frame.
func withFCS(d []byte) []byte {
	return binary.LittleEndian.AppendUint32(bytes.Clone(d), crc32.ChecksumIEEE(d))
}

// Radiotap headers as receivers see them.
var (
	// Only the mandatory 8 bytes.
	rtMinimal = mustHex("0000080000000000")
	// Flags field only, FCS bit set.
	rtFlagsFCS = mustHex("000009000200000010")
	// Flags (no FCS), channel 2484 MHz (channel 14) with CCK flags, -42 dBm.
	rtChanSignal = mustHex("00000f002a0000000000b409a000d6")
	// What mac80211 on iwlwifi hands up: three presence words (standard
	// namespace continued, ext), TSFT, flags (FCS), rate, channel 2412,
	// signal -57 dBm, RX flags; per-chain signal and antenna in the second
	// namespace.
	rtMac80211 = mustHex("00002400" + "2f4000a0" + "20080000" + "00000000" +
		"1122334455667788" + "10" + "02" + "6c09a000" + "c7" + "00" + "0000" + "c9" + "00")
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestAppendFrameBytes(t *testing.T) {
	f := Frame{Dst: macB, Src: macA, Random: [4]byte{0xde, 0xad, 0xbe, 0xef}, Seq: 0x123, Body: []byte{0x00, 0x01, 0x02}}
	got := mustBuild(t, &f, TxOptions{})
	want := "" +
		"0000" + "0c00" + "04800000" + "02" + "00" + "1000" + // radiotap: rate 1 Mbit/s, TX flags NOSEQ
		"d000" + "3a01" + // action, duration 314 µs (SIFS + ACK at 1 Mbit/s)
		"240ac4000002" + "240ac4000001" + "ffffffffffff" + "3012" + // addresses, seq 0x123
		"7f" + "18fe34" + "deadbeef" + // vendor action, random bytes
		"dd" + "08" + "18fe34" + "04" + "01" + // element: len 5+3, OUI, type 4, version 1
		"000102"
	if hex.EncodeToString(got) != want {
		t.Fatalf("frame\n got %x\nwant %s", got, want)
	}

	// Broadcast with no-ack at 24 Mbit/s: duration 0, rate 48, flags NOACK|NOSEQ.
	f.Dst = BroadcastMAC
	got = mustBuild(t, &f, TxOptions{Rate: Rate24M, NoAck: true})
	if hex.EncodeToString(got[:16]) != "00000c000480000030001800d0000000" {
		t.Fatalf("broadcast header %x", got[:16])
	}

	// Append-style: the prefix survives and nothing is allocated with room.
	buf := make([]byte, 3, 3+MaxFrameLen)
	copy(buf, "abc")
	f.Body = bytes.Repeat([]byte{7}, MaxBody)
	allocs := testing.AllocsPerRun(100, func() {
		out, err := AppendFrame(buf, &f, TxOptions{})
		if err != nil || len(out) != 3+MaxFrameLen || string(out[:3]) != "abc" {
			t.Fatal(len(out), err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendFrame allocated %v times", allocs)
	}
}

func TestAppendFrameErrors(t *testing.T) {
	f := Frame{Body: make([]byte, MaxBodyV2+1)}
	if _, err := AppendFrame(nil, &f, TxOptions{}); !errors.Is(err, ErrBodyTooLong) {
		t.Fatalf("1,471-byte body: %v", err)
	}
	f.Body = nil
	if _, err := AppendFrame(nil, &f, TxOptions{Rate: 3000}); !errors.Is(err, ErrRate) {
		t.Fatalf("3 Mbit/s: %v", err)
	}
}

func TestParseRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 100, MaxBody} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i * 7)
		}
		in := Frame{Dst: macB, Src: macA, Random: [4]byte{9, 8, 7, 6}, Version: 3, Seq: 4095, Body: body}
		b := mustBuild(t, &in, TxOptions{Rate: Rate11M})
		var out Frame
		if err := Parse(b, &out); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !sameFrame(&in, &out) {
			t.Fatalf("%d bytes: got %+v want %+v", n, out, in)
		}
		if out.HasChannel || out.HasSignal {
			t.Fatalf("metadata from a TX header: %+v", out)
		}
		// Body aliases the input.
		if n > 0 && &out.Body[0] != &b[len(b)-n] {
			t.Fatal("body does not alias the frame")
		}
	}
	// v2: bodies over 250 bytes in a chain of elements.
	for _, n := range []int{MaxBody + 1, 500, 1000, MaxBodyV2} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i * 7)
		}
		in := Frame{Dst: macB, Src: macA, Random: [4]byte{9, 8, 7, 6}, Version: VersionV2, Seq: 12, Body: body}
		b := mustBuild(t, &in, TxOptions{Rate: Rate24M})
		if len(b) != TxRadiotapLen+FrameLen(n)-FCSLen {
			t.Fatalf("%d bytes: frame of %d, want %d", n, len(b), TxRadiotapLen+FrameLen(n)-FCSLen)
		}
		// (Parse moves a v2 frame's bodies together in place: each parse
		// gets its own copy.)
		for _, raw := range [][]byte{bytes.Clone(b), cat(rtFlagsFCS, withFCS(dot11Of(b))), cat(rtMinimal, withFCS(dot11Of(b)))} {
			var out Frame
			if err := Parse(raw, &out); err != nil || !sameFrame(&in, &out) {
				t.Fatalf("%d bytes: %v, body of %d", n, err, len(out.Body))
			}
		}
	}
	// Version 0 is sent as 1.
	b := mustBuild(t, &Frame{Src: macA, Dst: macB}, TxOptions{})
	var out Frame
	if err := Parse(b, &out); err != nil || out.Version != Version {
		t.Fatalf("version %d, %v", out.Version, err)
	}
	// And as 2 over 250 bytes.
	b = mustBuild(t, &Frame{Src: macA, Dst: macB, Body: make([]byte, 300)}, TxOptions{})
	if err := Parse(b, &out); err != nil || out.Version != VersionV2 {
		t.Fatalf("version %d, %v", out.Version, err)
	}
}

// A v2 frame, byte for byte (ESP-IDF's format: elements of up to 250
// bytes, "more data" in bit 4 of each version byte but the last).
func TestAppendFrameV2Bytes(t *testing.T) {
	body := bytes.Repeat([]byte{0xab}, 260)
	b := mustBuild(t, &Frame{Dst: macB, Src: macA, Body: body}, TxOptions{})
	a := dot11Of(b)[HeaderLen+8:]
	want := cat(mustHex("dd"+"ff"+"18fe34"+"04"+"12"), body[:250], mustHex("dd"+"0f"+"18fe34"+"04"+"02"), body[250:])
	if !bytes.Equal(a, want) {
		t.Fatalf("elements\n got %x\nwant %x", a, want)
	}
	// A chain that ends too soon, or that a foreign element interrupts.
	var f Frame
	if err := Parse(bytes.Clone(b[:len(b)-12]), &f); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut chain: %v", err)
	}
	c := bytes.Clone(b)
	c[len(c)-10-5] = 0x99 // the second element's type
	if err := Parse(c, &f); !errors.Is(err, ErrNotESPNOW) {
		t.Fatalf("foreign element: %v", err)
	}
	big := mustBuild(t, &Frame{Dst: macB, Src: macA, Body: make([]byte, MaxBodyV2)}, TxOptions{})
	big = cat(big, mustHex("dd"+"06"+"18fe34"+"04"+"02"+"00"))
	big[len(big)-8-220-elemHeader+6] |= moreData // the sixth element says more follows
	if err := Parse(big, &f); !errors.Is(err, ErrBodyTooLong) {
		t.Fatalf("seven elements: %v", err)
	}
}

func sameFrame(a, b *Frame) bool {
	return a.Dst == b.Dst && a.Src == b.Src && a.Random == b.Random && a.Version == b.Version &&
		a.Seq == b.Seq && bytes.Equal(a.Body, b.Body)
}

// variants returns the frame in the forms drivers hand up, with what Parse
// must report.
func variants(t testing.TB) []struct {
	name    string
	b       []byte
	channel int // 0: none
	rssi    int // 0: none
} {
	in := Frame{Dst: macB, Src: macA, Random: [4]byte{1, 2, 3, 4}, Seq: 77, Body: []byte("mesh packet bytes")}
	d := dot11Of(mustBuild(t, &in, TxOptions{}))
	stripped := cat(d[:HeaderLen], d[HeaderLen+1:]) // no category byte
	// +HTC: Order flag set and a 4-byte HT Control field after the header.
	htc := cat(d[:HeaderLen], []byte{0, 0, 0, 0}, d[HeaderLen:])
	htc[1] |= fcFlagOrder
	return []struct {
		name    string
		b       []byte
		channel int
		rssi    int
	}{
		{"tx header", mustBuild(t, &in, TxOptions{}), 0, 0},
		{"minimal radiotap", cat(rtMinimal, d), 0, 0},
		{"flagged FCS", cat(rtFlagsFCS, withFCS(d)), 0, 0},
		{"unflagged FCS", cat(rtMinimal, withFCS(d)), 0, 0},
		{"channel and signal", cat(rtChanSignal, d), 14, -42},
		{"channel, signal and unflagged FCS", cat(rtChanSignal, withFCS(d)), 14, -42},
		{"mac80211 with FCS", cat(rtMac80211, withFCS(d)), 1, -57},
		{"stripped category", cat(rtMinimal, stripped), 0, 0},
		{"stripped category with FCS", cat(rtFlagsFCS, withFCS(stripped)), 0, 0},
		{"HT control", cat(rtMinimal, htc), 0, 0},
	}
}

func TestParseVariants(t *testing.T) {
	want := Frame{Dst: macB, Src: macA, Random: [4]byte{1, 2, 3, 4}, Version: Version, Seq: 77, Body: []byte("mesh packet bytes")}
	for _, v := range variants(t) {
		var f Frame
		if err := Parse(v.b, &f); err != nil {
			t.Errorf("%s: %v", v.name, err)
			continue
		}
		if !sameFrame(&want, &f) {
			t.Errorf("%s: got %+v", v.name, f)
		}
		if f.HasChannel != (v.channel != 0) || f.Channel != v.channel {
			t.Errorf("%s: channel %d (%v), want %d", v.name, f.Channel, f.HasChannel, v.channel)
		}
		if f.HasSignal != (v.rssi != 0) || f.RSSI != v.rssi {
			t.Errorf("%s: rssi %d (%v), want %d", v.name, f.RSSI, f.HasSignal, v.rssi)
		}
	}
	// Without radiotap.
	d := dot11Of(mustBuild(t, &want, TxOptions{}))
	for _, b := range [][]byte{d, withFCS(d)} {
		var f Frame
		if err := ParseDot11(b, &f); err != nil || !sameFrame(&want, &f) {
			t.Fatalf("ParseDot11: %+v %v", f, err)
		}
	}
}

// TestParseAgainstGopacket decodes the valid variants with gopacket's
// radiotap and 802.11 layers as an independent reference.
func TestParseAgainstGopacket(t *testing.T) {
	for _, v := range variants(t) {
		var f Frame
		if err := Parse(v.b, &f); err != nil {
			t.Fatal(v.name, err)
		}
		p := gopacket.NewPacket(v.b, layers.LayerTypeRadioTap, gopacket.Default)
		rt, _ := p.Layer(layers.LayerTypeRadioTap).(*layers.RadioTap)
		d11, _ := p.Layer(layers.LayerTypeDot11).(*layers.Dot11)
		if rt == nil || d11 == nil {
			t.Fatalf("%s: gopacket: %v", v.name, p.ErrorLayer())
		}
		if d11.Type != layers.Dot11TypeMgmtAction {
			t.Errorf("%s: gopacket type %v", v.name, d11.Type)
		}
		if !bytes.Equal(d11.Address1, f.Dst[:]) || !bytes.Equal(d11.Address2, f.Src[:]) || d11.SequenceNumber != f.Seq {
			t.Errorf("%s: gopacket addresses %v %v seq %d, ours %v %v %d", v.name, d11.Address1, d11.Address2, d11.SequenceNumber, f.Dst, f.Src, f.Seq)
		}
		if rt.Present.Channel() != f.HasChannel || (f.HasChannel && FreqToChannel(int(rt.ChannelFrequency)) != f.Channel) {
			t.Errorf("%s: gopacket channel %v %d, ours %d", v.name, rt.Present.Channel(), rt.ChannelFrequency, f.Channel)
		}
		if rt.Present.DBMAntennaSignal() != f.HasSignal || (f.HasSignal && int(rt.DBMAntennaSignal) != f.RSSI) {
			t.Errorf("%s: gopacket signal %d, ours %d", v.name, rt.DBMAntennaSignal, f.RSSI)
		}
		if rt.Flags.FCS() && !bytes.HasSuffix(v.b, binary.LittleEndian.AppendUint32(nil, d11.Checksum)) {
			t.Errorf("%s: gopacket FCS %08x", v.name, d11.Checksum)
		}
	}
}

func TestParseRejects(t *testing.T) {
	in := Frame{Dst: macB, Src: macA, Body: []byte("0123456789")}
	d := dot11Of(mustBuild(t, &in, TxOptions{}))
	mod := func(i int, v byte) []byte {
		c := bytes.Clone(d)
		c[i] = v
		return cat(rtMinimal, c)
	}
	fcsBad := withFCS(d)
	fcsBad[len(fcsBad)-1] ^= 1
	beacon := cat(rtMinimal, []byte{0x80, 0}, d[2:])
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"radiotap version 1", cat([]byte{1}, rtMinimal[1:], d), ErrRadiotap},
		{"radiotap length 4", cat(mustHex("0000040000000000"), d), ErrRadiotap},
		{"radiotap longer than frame", mustHex("0000ff0000000000"), ErrTruncated},
		{"radiotap field past header", cat(mustHex("0000080001000000"), d), ErrRadiotap}, // TSFT claimed, no room
		{"radiotap ext bitmap past header", mustHex("0000080000000080"), ErrRadiotap},
		{"beacon", beacon, ErrNotAction},
		{"data frame", cat(rtMinimal, []byte{0x08, 0}, d[2:]), ErrNotAction},
		{"protected", mod(1, fcFlagProtected), ErrEncrypted},
		{"category 4", mod(HeaderLen, 4), ErrNotESPNOW},
		{"other OUI", mod(HeaderLen+1, 0x00), ErrNotESPNOW},
		{"element id", mod(HeaderLen+8, 0xde), ErrNotESPNOW},
		{"element OUI", mod(HeaderLen+10, 0x00), ErrNotESPNOW},
		{"element type", mod(HeaderLen+13, 5), ErrNotESPNOW},
		{"element length short of 5", mod(HeaderLen+9, 4), ErrBadLength},
		{"element length past frame", mod(HeaderLen+9, 16), ErrTruncated},
		{"element length 1 short", mod(HeaderLen+9, 14), ErrBadLength},
		{"trailing garbage", cat(rtMinimal, d, []byte{1, 2, 3}), ErrBadLength},
		{"4 trailing bytes not an FCS", cat(rtMinimal, d, []byte{1, 2, 3, 4}), ErrBadLength},
		{"flagged FCS wrong", cat(rtFlagsFCS, fcsBad), ErrBadFCS},
		{"flagged FCS missing", cat(rtFlagsFCS, d), ErrBadFCS},
		{"radiotap says bad FCS", cat(mustHex("000009000200000050"), withFCS(d)), ErrBadFCS},
	} {
		var f Frame
		err := Parse(c.b, &f)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Every strict prefix of a valid frame is refused.
	full := mustBuild(t, &in, TxOptions{})
	for n := range len(full) {
		var f Frame
		if err := Parse(full[:n], &f); err == nil {
			t.Fatalf("prefix of %d bytes parsed: %+v", n, f)
		}
	}
}

func TestFreqChannel(t *testing.T) {
	for _, c := range []struct{ mhz, ch int }{{2412, 1}, {2437, 6}, {2472, 13}, {2484, 14}, {5180, 36}, {5825, 165}, {5955, 1}, {2400, 0}, {2485, 0}, {0, 0}, {5181, 0}} {
		if got := FreqToChannel(c.mhz); got != c.ch {
			t.Errorf("FreqToChannel(%d) = %d, want %d", c.mhz, got, c.ch)
		}
	}
	for ch := 1; ch <= 14; ch++ {
		if FreqToChannel(ChannelToFreq(ch)) != ch {
			t.Errorf("channel %d", ch)
		}
	}
	if ChannelToFreq(15) != 0 {
		t.Error("channel 15")
	}
}

func TestAirtime(t *testing.T) {
	for _, c := range []struct {
		n    int
		rate int
		want time.Duration
	}{
		{250, 1000, 2536 * time.Microsecond}, // 192 + 293*8
		{0, 1000, (192 + 43*8) * time.Microsecond},
		{250, 0, 2536 * time.Microsecond},
		{250, 2000, (192 + 293*4) * time.Microsecond},
		{250, 11000, 192*time.Microsecond + time.Duration(293*8*1000000/11000)},
		// OFDM 6 Mbit/s: 24 bits/symbol, (16+2344+6)/24 = 98.6 -> 99 symbols.
		{250, 6000, (20 + 4*99 + 6) * time.Microsecond},
		// 54 Mbit/s: 216 bits/symbol, 2366/216 -> 11 symbols.
		{250, 54000, (20 + 4*11 + 6) * time.Microsecond},
	} {
		if got := Airtime(c.n, c.rate); got != c.want {
			t.Errorf("Airtime(%d, %d) = %v, want %v", c.n, c.rate, got, c.want)
		}
	}
	// Duration field values 802.11 tables give: SIFS + ACK.
	if d := ackDuration(Rate1M); d != 314*time.Microsecond {
		t.Errorf("ack at 1M %v", d)
	}
	if d := ackDuration(Rate54M); d != 10*time.Microsecond+(20+4*2+6)*time.Microsecond {
		t.Errorf("ack at 54M %v", d)
	}
	if r, err := ParseRate("5.5"); err != nil || r != Rate5M5 || r.String() != "5.5 Mbit/s" {
		t.Errorf("ParseRate: %v %v", r, err)
	}
	if _, err := ParseRate("3"); !errors.Is(err, ErrRate) {
		t.Error("3 Mbit/s accepted")
	}
}

func BenchmarkBuild(b *testing.B) {
	f := Frame{Dst: macB, Src: macA, Body: bytes.Repeat([]byte{0xa5}, MaxBody)}
	buf := make([]byte, 0, MaxFrameLen)
	b.ReportAllocs()
	b.SetBytes(MaxBody)
	for b.Loop() {
		if _, err := AppendFrame(buf[:0], &f, TxOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	d := dot11Of(mustBuild(b, &Frame{Dst: macB, Src: macA, Body: bytes.Repeat([]byte{0xa5}, MaxBody)}, TxOptions{}))
	frame := cat(rtMac80211, withFCS(d)) // the common receive case: FCS checked
	var f Frame
	b.ReportAllocs()
	b.SetBytes(MaxBody)
	for b.Loop() {
		if err := Parse(frame, &f); err != nil {
			b.Fatal(err)
		}
	}
}
