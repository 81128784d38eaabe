package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
)

// ngBuilder writes pcapng blocks in one byte order, for tests.
type ngBuilder struct {
	b     []byte
	order interface {
		binary.ByteOrder
		binary.AppendByteOrder
	}
}

func (g *ngBuilder) block(typ uint32, body []byte) *ngBuilder {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	g.b = g.order.AppendUint32(g.b, typ)
	g.b = g.order.AppendUint32(g.b, n)
	g.b = append(g.b, body...)
	g.b = g.order.AppendUint32(g.b, n)
	return g
}

func (g *ngBuilder) section() *ngBuilder {
	body := g.order.AppendUint32(nil, ngByteOrderMagic)
	body = g.order.AppendUint16(body, 1)
	body = g.order.AppendUint16(body, 0)
	body = g.order.AppendUint64(body, ^uint64(0)) // section length unknown
	return g.block(ngSectionHeader, body)
}

// iface adds an interface; tsresol 0 leaves the option out (microseconds).
func (g *ngBuilder) iface(lt layers.LinkType, tsresol byte) *ngBuilder {
	body := g.order.AppendUint16(nil, uint16(lt))
	body = g.order.AppendUint16(body, 0)
	body = g.order.AppendUint32(body, 0)
	if tsresol != 0 {
		body = g.order.AppendUint16(body, ngOptTsResol)
		body = g.order.AppendUint16(body, 1)
		body = append(body, tsresol, 0, 0, 0)
	}
	body = g.order.AppendUint16(body, 2) // if_name, to be skipped
	body = g.order.AppendUint16(body, 4)
	body = append(body, "wlan"...)
	body = g.order.AppendUint32(body, 0) // opt_endofopt
	return g.block(ngInterface, body)
}

func (g *ngBuilder) enhanced(id uint32, ticks uint64, data []byte, withOption bool) *ngBuilder {
	body := g.order.AppendUint32(nil, id)
	body = g.order.AppendUint32(body, uint32(ticks>>32))
	body = g.order.AppendUint32(body, uint32(ticks))
	body = g.order.AppendUint32(body, uint32(len(data)))
	body = g.order.AppendUint32(body, uint32(len(data)))
	body = append(body, data...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	if withOption {
		body = g.order.AppendUint16(body, 1) // opt_comment
		body = g.order.AppendUint16(body, 3)
		body = append(body, "hi!\x00"...)
		body = g.order.AppendUint32(body, 0)
	}
	return g.block(ngEnhancedPacket, body)
}

func (g *ngBuilder) simple(data []byte) *ngBuilder {
	return g.block(ngSimplePacket, append(g.order.AppendUint32(nil, uint32(len(data))), data...))
}

func (g *ngBuilder) obsolete(id uint16, ticks uint64, data []byte) *ngBuilder {
	body := g.order.AppendUint16(nil, id)
	body = g.order.AppendUint16(body, 0)
	body = g.order.AppendUint32(body, uint32(ticks>>32))
	body = g.order.AppendUint32(body, uint32(ticks))
	body = g.order.AppendUint32(body, uint32(len(data)))
	body = g.order.AppendUint32(body, uint32(len(data)))
	return g.block(ngObsoletePacket, append(body, data...))
}

type ngFrame struct {
	ts   time.Time
	data string
	lt   layers.LinkType
}

func readNg(t *testing.T, in []byte) ([]ngFrame, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(in))
	if err != nil {
		return nil, err
	}
	var out []ngFrame
	for {
		ts, b, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ngFrame{ts, string(b), r.FrameLinkType()})
	}
}

// Frames of every packet block kind, in sections of both byte orders, with
// interfaces of two link types and three timestamp resolutions, and blocks
// to skip between them.
func TestPcapngBlocks(t *testing.T) {
	le := &ngBuilder{order: binary.LittleEndian}
	le.section().
		block(4, []byte("name resolution block, skipped")).
		iface(LinkTypeRadiotap, 0).                // microseconds
		iface(LinkTypeDot11, 9).                   // nanoseconds
		enhanced(0, 1_500_000, []byte("a"), true). // 1.5 s
		enhanced(1, 2_000_000_123, []byte("bb"), false).
		simple([]byte("ccc")).
		obsolete(1, 3_000_000_000, []byte("dddd")).
		block(5, make([]byte, 40)) // interface statistics, skipped
	be := &ngBuilder{order: binary.BigEndian}
	be.section().
		iface(LinkTypeUser0, 0x80|10). // 2^-10 s
		enhanced(0, 1024*7+512, []byte("eeeee"), false)
	in := append(le.b, be.b...)

	got, err := readNg(t, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []ngFrame{
		{time.Unix(1, 500_000_000), "a", LinkTypeRadiotap},
		{time.Unix(2, 123), "bb", LinkTypeDot11},
		{time.Time{}, "ccc", LinkTypeRadiotap},
		{time.Unix(3, 0), "dddd", LinkTypeDot11},
		{time.Unix(7, 500_000_000), "eeeee", LinkTypeUser0},
	}
	if len(got) != len(want) {
		t.Fatalf("%d frames: %+v", len(got), got)
	}
	for i := range want {
		if !got[i].ts.Equal(want[i].ts) || got[i].data != want[i].data || got[i].lt != want[i].lt {
			t.Errorf("frame %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	r, _ := NewReader(bytes.NewReader(in))
	if _, _, err := r.Next(); err != nil || r.LinkType() != LinkTypeRadiotap {
		t.Fatalf("link type %v, %v", r.LinkType(), err)
	}

	// Gzipped, the same frames.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(in)
	_ = zw.Close()
	if again, err := readNg(t, gz.Bytes()); err != nil || len(again) != len(want) {
		t.Fatalf("gzipped: %d frames, %v", len(again), err)
	}
}

// Corrupt pcapng: an error naming the fault, never a panic, a hang or an
// allocation of what a length field claims.
func TestPcapngBadInput(t *testing.T) {
	g := func() *ngBuilder { return (&ngBuilder{order: binary.LittleEndian}).section() }
	good := g().iface(LinkTypeRadiotap, 0).enhanced(0, 1, []byte("abc"), false).b
	huge := g().iface(LinkTypeRadiotap, 0).b
	huge = binary.LittleEndian.AppendUint32(huge, ngEnhancedPacket)
	huge = binary.LittleEndian.AppendUint32(huge, 32)
	huge = append(huge, make([]byte, 12)...)
	huge = binary.LittleEndian.AppendUint32(huge, 0x7fffffff) // captured length
	huge = append(huge, make([]byte, 8)...)
	disagree := bytes.Clone(good)
	disagree[len(disagree)-4]++
	odd := g().b
	odd = binary.LittleEndian.AppendUint32(odd, 99)
	odd = binary.LittleEndian.AppendUint32(odd, 13)
	for name, in := range map[string][]byte{
		"cut block":               good[:len(good)-6],
		"cut block header":        good[:len(good)-len(good)%8-30],
		"huge captured length":    huge,
		"lengths disagree":        disagree,
		"length not a multiple 4": odd,
		"packet of no interface":  g().enhanced(0, 1, []byte("x"), false).b,
		"simple before interface": g().simple([]byte("x")).b,
		"bad resolution":          g().iface(LinkTypeRadiotap, 70).b,
	} {
		frames, err := readNg(t, in)
		t.Logf("%s: %v", name, err)
		if err == nil {
			t.Errorf("%s: no error, %d frames", name, len(frames))
		}
		if errors.Is(err, ErrNotPcap) {
			t.Errorf("%s: refused as not pcapng: %v", name, err)
		}
	}
}

// What editcap (Wireshark's converter) writes from one of our pcap files
// reads back as the same frames.
func TestPcapngFromEditcap(t *testing.T) {
	if _, err := exec.LookPath("editcap"); err != nil {
		t.Skip("editcap not on PATH (CI installs tshark, which brings it): cannot convert to Wireshark's pcapng")
	}
	dir := t.TempDir()
	pcap, ng := filepath.Join(dir, "in.pcap"), filepath.Join(dir, "out.pcapng")
	w, err := Create(pcap, LinkTypeRadiotap)
	if err != nil {
		t.Fatal(err)
	}
	frames := [][]byte{bytes.Repeat([]byte{1}, 30), bytes.Repeat([]byte{2}, 251), {3}}
	for i, f := range frames {
		if err := w.Write(time.Unix(1700000000+int64(i), 1234), f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("editcap", "-F", "pcapng", pcap, ng).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v: %s", err, out)
	}
	in, err := os.ReadFile(ng)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(in, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		t.Fatalf("editcap did not write pcapng: % x", in[:8])
	}
	got, err := readNg(t, in)
	if err != nil || len(got) != len(frames) {
		t.Fatalf("%d frames, %v", len(got), err)
	}
	for i, f := range got {
		if f.data != string(frames[i]) || f.lt != LinkTypeRadiotap || !f.ts.Equal(time.Unix(1700000000+int64(i), 1234)) {
			t.Errorf("frame %d: %d bytes at %v, link type %v", i, len(f.data), f.ts, f.lt)
		}
	}
}
