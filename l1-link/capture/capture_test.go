package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

type record struct {
	ts   time.Time
	data []byte
}

func readAll(t *testing.T, r io.Reader) (layers.LinkType, []record) {
	t.Helper()
	cr, err := NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for {
		ts, b, err := cr.Next()
		if err == io.EOF {
			return cr.LinkType(), out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, record{ts, bytes.Clone(b)})
	}
}

func TestWriteReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.pcap")
	w, err := Create(path, LinkTypeRadiotap)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 5, 4, 3, 2, 1, 987654321, time.UTC)
	want := []record{
		{base, []byte{1, 2, 3}},
		{base.Add(time.Nanosecond), nil},
		{base.Add(time.Hour), bytes.Repeat([]byte{0xab}, 65535)},
	}
	for _, r := range want {
		if err := w.Write(r.ts, r.data); err != nil {
			t.Fatal(err)
		}
	}
	if w.LinkType() != LinkTypeRadiotap {
		t.Fatal(w.LinkType())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(base, []byte{1}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	check := func(name string, lt layers.LinkType, got []record) {
		if lt != LinkTypeRadiotap || len(got) != len(want) {
			t.Fatalf("%s: link type %v, %d records", name, lt, len(got))
		}
		for i := range want {
			if !got[i].ts.Equal(want[i].ts) || !bytes.Equal(got[i].data, want[i].data) {
				t.Fatalf("%s: record %d: %v %d bytes, want %v %d bytes", name, i, got[i].ts, len(got[i].data), want[i].ts, len(want[i].data))
			}
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lt, got := readAll(t, f)
	check("capture.Reader", lt, got)

	// And gopacket's own reader agrees.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	pr, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for {
		b, ci, err := pr.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, record{ci.Timestamp, b})
	}
	check("pcapgo.Reader", pr.LinkType(), got)
}

func TestWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkTypeUser0)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 200
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				msg := []byte(fmt.Sprintf("writer %d frame %03d %s", g, i, strings.Repeat("x", i)))
				if err := w.Write(time.Unix(int64(i), 0), msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	lt, recs := readAll(t, &buf)
	if lt != LinkTypeUser0 || len(recs) != writers*each {
		t.Fatalf("%v, %d records", lt, len(recs))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		var g, i int
		if _, err := fmt.Sscanf(string(r.data), "writer %d frame %d", &g, &i); err != nil {
			t.Fatalf("interleaved record %q", r.data)
		}
		if want := fmt.Sprintf("writer %d frame %03d %s", g, i, strings.Repeat("x", i)); string(r.data) != want || r.ts.Unix() != int64(i) {
			t.Fatalf("record %q at %v", r.data, r.ts)
		}
		seen[string(r.data)] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct records", len(seen))
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(b), nil
}

func TestWriterErrorSticks(t *testing.T) {
	w, err := NewWriter(&failWriter{n: 1}, LinkTypeUser0) // room for the file header only
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(time.Unix(1, 0), []byte("x")); err == nil {
		t.Fatal("write to a full disk succeeded")
	}
	if err := w.Write(time.Unix(2, 0), []byte("y")); err == nil || w.Err() == nil {
		t.Fatal("error forgotten")
	}
	if _, err := NewWriter(&failWriter{}, LinkTypeUser0); err == nil {
		t.Fatal("header write error ignored")
	}
}

// pcapHeader builds a little-endian microsecond pcap file header.
func pcapHeader(snaplen uint32, lt uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, snaplen)
	return binary.LittleEndian.AppendUint32(b, lt)
}

func recordHeader(sec, usec, caplen, length uint32) []byte {
	var b []byte
	for _, v := range []uint32{sec, usec, caplen, length} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

func TestReaderBadInput(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"text", []byte("this is not a capture, just some text\n")},
		{"short header", pcapHeader(65535, 127)[:20]},
		{"pcapng without byte-order magic", append([]byte{0x0a, 0x0d, 0x0d, 0x0a}, make([]byte, 40)...)},
		{"pcapng cut in its header", []byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0}},
		{"not gzip after all", []byte{0x1f, 0x8b, 0, 0}},
	} {
		_, err := NewReader(bytes.NewReader(c.in))
		if !errors.Is(err, ErrNotPcap) {
			t.Errorf("%s: %v", c.name, err)
		}
	}

	// Microsecond captures read with their timestamps.
	in := append(pcapHeader(65535, 105), recordHeader(10, 500000, 2, 2)...)
	in = append(in, 0xd0, 0x00)
	r, err := NewReader(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	ts, b, err := r.Next()
	if err != nil || !ts.Equal(time.Unix(10, 500000000)) || !bytes.Equal(b, []byte{0xd0, 0}) || r.LinkType() != LinkTypeDot11 {
		t.Fatalf("%v %x %v", ts, b, err)
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}

	// A record cut short, and a record claiming 2 GB in a file claiming a
	// 4 GB snapshot length: errors, not a crash or a huge allocation.
	for name, in := range map[string][]byte{
		"cut record":       append(append(pcapHeader(65535, 127), recordHeader(1, 0, 10, 10)...), 1, 2, 3),
		"cut record head":  append(pcapHeader(65535, 127), 1, 2, 3),
		"cut before data":  append(pcapHeader(65535, 127), recordHeader(1, 0, 10, 10)...),
		"huge record":      append(pcapHeader(0xffffffff, 127), recordHeader(1, 0, 0x7fffffff, 0x7fffffff)...),
		"caplen above len": append(pcapHeader(65535, 127), recordHeader(1, 0, 10, 5)...),
	} {
		r, err := NewReader(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, _, err := r.Next(); err == nil || err == io.EOF {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestTsharkOpensUser0 checks that Wireshark reads the USER0 captures of
// links without a Framer.
func TestTsharkOpensUser0(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not on PATH (CI installs it): cannot check that Wireshark opens USER0 captures")
	}
	path := filepath.Join(t.TempDir(), "u.pcap")
	w, err := Create(path, LinkTypeUser0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"\x00\x00\x00\x00\x07", "\x00\x00\x01\x00\x03abc"} {
		if err := w.Write(time.Unix(100, 0), []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "frame.len", "-e", "frame.protocols").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "5\t") || !strings.HasPrefix(lines[1], "8\t") || !strings.Contains(lines[0], "user_dlt") {
		t.Fatalf("tshark read %q", out)
	}
}
