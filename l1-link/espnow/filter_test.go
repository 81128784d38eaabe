package espnow

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
)

// runFilter runs the filter (without the packet-type check, which only the
// kernel can do) in x/net/bpf's VM.
func runFilter(t *testing.T, b []byte) bool {
	t.Helper()
	vm, err := bpf.NewVM(filter(false))
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(b)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestFilterAccepts(t *testing.T) {
	for _, v := range variants(t) {
		if !runFilter(t, v.b) {
			t.Errorf("%s: filtered out", v.name)
		}
	}
	// A radiotap header longer than 255 bytes: the length's high byte counts.
	d := dot11Of(mustBuild(t, &Frame{Src: macA, Dst: macB, Body: []byte{1}}, TxOptions{}))
	long := make([]byte, 264)
	binary.LittleEndian.PutUint16(long[2:], 264)
	b := cat(long, d)
	var f Frame
	if err := Parse(b, &f); err != nil {
		t.Fatal(err)
	}
	if !runFilter(t, b) {
		t.Error("264-byte radiotap header: filtered out")
	}
}

func TestFilterRejects(t *testing.T) {
	in := Frame{Dst: macB, Src: macA, Body: []byte("0123456789")}
	d := dot11Of(mustBuild(t, &in, TxOptions{}))
	mod := func(i int, v byte) []byte {
		c := bytes.Clone(d)
		c[i] = v
		return cat(rtMinimal, c)
	}
	stripped := cat(d[:HeaderLen], d[HeaderLen+1:])
	smod := func(i int, v byte) []byte {
		c := bytes.Clone(stripped)
		c[i] = v
		return cat(rtMinimal, c)
	}
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"radiotap only", rtMinimal},
		{"beacon", cat(rtMinimal, []byte{0x80, 0}, d[2:])},
		{"data", cat(rtMinimal, []byte{0x08, 0x01}, d[2:])},
		{"category 4", mod(HeaderLen, 4)},
		{"other OUI", mod(HeaderLen+2, 0)},
		{"element id", mod(HeaderLen+8, 0xdc)},
		{"element OUI", mod(HeaderLen+12, 0)},
		{"element type", mod(HeaderLen+13, 3)},
		{"stripped, element id", smod(HeaderLen+7, 0xdc)},
		{"stripped, element type", smod(HeaderLen+12, 3)},
		{"stripped, other OUI", smod(HeaderLen, 0x19)},
		{"cut before the element", cat(rtMinimal, d[:HeaderLen+12])},
	} {
		if runFilter(t, c.b) {
			t.Errorf("%s: passed the filter", c.name)
		}
	}
}

func TestFilterAssembles(t *testing.T) {
	raw, err := bpf.Assemble(Filter())
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != len(filter(false))+2 {
		t.Fatalf("%d instructions", len(raw))
	}
	// The outgoing check jumps to the final reject.
	prog := Filter()
	j := prog[1].(bpf.JumpIf)
	if got := prog[2+int(j.SkipTrue)]; got != (bpf.RetConstant{Val: 0}) {
		t.Fatalf("outgoing frames jump to %v", got)
	}
}
