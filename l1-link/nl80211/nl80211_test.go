package nl80211

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// attr builds one netlink attribute by hand (length and type in host
// order, the value padded to 4 bytes), the way the kernel parses it.
func attr(typ uint16, value []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(value)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, value...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// The messages carry exactly the attributes iw sends for
// `iw dev IFACE set type monitor`, `... set monitor active` and
// `... set channel N` (NL80211_CMD_SET_INTERFACE / SET_WIPHY).
func TestMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  func() ([]byte, error)
		want []byte
	}{
		{"get", func() ([]byte, error) { return getInterfaceAttrs(7) }, attr(3, u32(7))},
		{"monitor", func() ([]byte, error) { return setMonitorAttrs(7, false) }, cat(attr(3, u32(7)), attr(5, u32(6)))},
		{"monitor active", func() ([]byte, error) { return setMonitorAttrs(7, true) },
			// MNTR_FLAGS (0x17) nested (0x8000), holding the ACTIVE flag (6) with no value.
			cat(attr(3, u32(7)), attr(5, u32(6)), attr(0x8000|0x17, attr(6, nil)))},
		{"channel 14", func() ([]byte, error) { return setChannelAttrs(7, 2484) }, cat(attr(3, u32(7)), attr(0x26, u32(2484)), attr(0x27, u32(0)))},
	} {
		got, err := tc.got()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s:\n got % x\nwant % x", tc.name, got, tc.want)
		}
	}
}

func TestChannelFreq(t *testing.T) {
	for ch, want := range map[int]uint32{1: 2412, 6: 2437, 13: 2472, 14: 2484, 36: 5180, 149: 5745} {
		if got, err := ChannelFreq(ch); err != nil || got != want {
			t.Errorf("channel %d: %d, %v; want %d", ch, got, err, want)
		}
	}
	for _, ch := range []int{0, -1, 15, 31, 178, 1000} {
		if _, err := ChannelFreq(ch); !errors.Is(err, ErrChannel) {
			t.Errorf("channel %d: %v, want ErrChannel", ch, err)
		}
	}
}

func TestParseInterface(t *testing.T) {
	b := cat(attr(3, u32(4)), attr(4, []byte("wlan1\x00")), attr(5, u32(TypeMonitor)), attr(1, u32(0)), attr(0x26, u32(2484)), attr(200, []byte{1, 2, 3}))
	ifc, err := parseInterface(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Interface{Index: 4, Name: "wlan1", Type: TypeMonitor, Wiphy: 0, FreqMHz: 2484}
	if ifc != want {
		t.Fatalf("%+v, want %+v", ifc, want)
	}
	for name, bad := range map[string][]byte{
		"truncated":   attr(3, u32(4))[:6],
		"no index":    attr(5, u32(TypeMonitor)),
		"short u32":   attr(3, []byte{1, 2}),
		"overlong":    cat(attr(3, u32(4)), []byte{0xff, 0x00, 0x05, 0x00}),
		"zero length": {0, 0, 3, 0},
	} {
		if _, err := parseInterface(bad); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func FuzzParseInterface(f *testing.F) {
	f.Add(cat(attr(3, u32(4)), attr(4, []byte("wlan1\x00")), attr(5, u32(6))))
	f.Add([]byte{})
	f.Add([]byte{4, 0, 3, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ifc, err := parseInterface(b)
		if err == nil && ifc.Index == 0 && !bytes.Contains(b, []byte{8, 0, 3, 0}) {
			t.Fatalf("parsed %+v from bytes without an index attribute", ifc)
		}
	})
}

// An interface that does not exist is named in the error, on any machine,
// before anything is asked of the kernel.
func TestNoInterface(t *testing.T) {
	for name, f := range map[string]func() error{
		"monitor": func() error { return SetMonitor("nosuchwlan9", Monitor{Channel: 1}) },
		"channel": func() error { return SetChannel("nosuchwlan9", 1) },
		"get":     func() error { _, err := Get("nosuchwlan9"); return err },
	} {
		err := f()
		if !errors.Is(err, ErrNoInterface) && !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrNoInterface", name, err)
		}
	}
	if err := SetMonitor("lo", Monitor{Channel: 15}); !errors.Is(err, ErrChannel) && !errors.Is(err, ErrUnsupported) {
		t.Errorf("channel 15: %v, want ErrChannel", err)
	}
}
