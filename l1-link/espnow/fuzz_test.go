package espnow

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/net/bpf"
)

// FuzzParse feeds Parse arbitrary bytes: it must never panic, and whatever
// it accepts must hold a body within the limits, aliasing the input, that
// survives a rebuild, and must pass the kernel filter (the filter never
// drops a frame Parse would take).
func FuzzParse(f *testing.F) {
	for _, v := range variants(f) {
		f.Add(v.b)
	}
	in := Frame{Dst: BroadcastMAC, Src: macA, Body: []byte{0, 0, 1, 0, 5, 'h', 'i'}}
	d := dot11Of(mustBuild(f, &in, TxOptions{}))
	f.Add(cat(rtMinimal, d[:len(d)-1]))
	f.Add(cat(mustHex("000009000200000050"), withFCS(d)))
	f.Add(cat(rtChanSignal, []byte{0x80, 0}, d[2:]))
	f.Add(mustHex("0000080000000080"))
	f.Add(mustBuild(f, &Frame{Dst: macB, Src: macA, Body: bytes.Repeat([]byte{1}, 700)}, TxOptions{}))
	f.Add([]byte{})
	vm, err := bpf.NewVM(filter(false))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr Frame
		orig := bytes.Clone(b)
		if err := Parse(b, &fr); err != nil {
			return
		}
		if len(fr.Body) > MaxBodyV2 {
			t.Fatalf("body of %d bytes", len(fr.Body))
		}
		if len(fr.Body) > 0 {
			start := uintptr(unsafe.Pointer(&fr.Body[0])) - uintptr(unsafe.Pointer(&b[0]))
			if start > uintptr(len(b)-len(fr.Body)) {
				t.Fatal("body does not alias the input")
			}
		}
		if n, err := vm.Run(orig); err != nil || n == 0 {
			t.Fatalf("filter drops a frame Parse accepts: %d %v", n, err)
		}
		re, err := AppendFrame(nil, &fr, TxOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := fr
		if want.Version == 0 {
			want.Version = defaultVersion(len(fr.Body)) // AppendFrame writes 0 as Version
		}
		var again Frame
		if err := Parse(re, &again); err != nil || !sameFrame(&want, &again) {
			t.Fatalf("rebuild: %+v %v, want %+v", again, err, want)
		}
	})
}

// FuzzRoundTrip checks Parse(AppendFrame(x)) == x for any frame and transmit
// options.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(0xffffffffffff), uint64(0x240ac4000001), uint32(0xdeadbeef), uint8(1), uint16(0), []byte("hello"), uint8(0), false)
	f.Add(uint64(0x240ac4000002), uint64(0x240ac4000001), uint32(0), uint8(0), uint16(4095), bytes.Repeat([]byte{0xff}, MaxBody), uint8(7), true)
	f.Add(uint64(0), uint64(0), uint32(1), uint8(255), uint16(0xffff), []byte{}, uint8(11), false)
	f.Add(uint64(0x240ac4000002), uint64(0x240ac4000001), uint32(5), uint8(0x12), uint16(1), bytes.Repeat([]byte{0x5a}, MaxBodyV2), uint8(8), false)
	rates := []Rate{Rate1M, Rate2M, Rate5M5, Rate11M, Rate6M, Rate9M, Rate12M, Rate18M, Rate24M, Rate36M, Rate48M, Rate54M}
	f.Fuzz(func(t *testing.T, dst, src uint64, random uint32, version uint8, seq uint16, body []byte, rate uint8, noAck bool) {
		var in Frame
		var m [8]byte
		binary.BigEndian.PutUint64(m[:], dst)
		copy(in.Dst[:], m[2:])
		binary.BigEndian.PutUint64(m[:], src)
		copy(in.Src[:], m[2:])
		binary.BigEndian.PutUint32(in.Random[:], random)
		in.Version, in.Seq, in.Body = version, seq, body
		opt := TxOptions{Rate: rates[int(rate)%len(rates)], NoAck: noAck}
		b, err := AppendFrame(nil, &in, opt)
		if len(body) > MaxBodyV2 {
			if err == nil {
				t.Fatal("oversized body built")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var out Frame
		if err := Parse(bytes.Clone(b), &out); err != nil {
			t.Fatal(err)
		}
		want := in
		want.Version &^= moreData
		if want.Version == 0 {
			want.Version = defaultVersion(len(body))
		}
		want.Seq &= 0xfff
		if !sameFrame(&want, &out) {
			t.Fatalf("got %+v, want %+v", out, want)
		}
		// With an FCS, and with the category stripped, it still parses.
		d := dot11Of(b)
		if err := Parse(cat(rtFlagsFCS, withFCS(d)), &out); err != nil || !sameFrame(&want, &out) {
			t.Fatalf("with FCS: %+v %v", out, err)
		}
		if err := Parse(cat(rtMinimal, d[:HeaderLen], d[HeaderLen+1:]), &out); err != nil || !sameFrame(&want, &out) {
			t.Fatalf("stripped category: %+v %v", out, err)
		}
	})
}
