package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"testing"
	"time"
)

// FuzzReader feeds the pcap reader arbitrary files: it must never panic nor
// hand back a frame longer than SnapLen, and must stop.
func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkTypeRadiotap)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		if err := w.Write(time.Unix(int64(i), 5), bytes.Repeat([]byte{byte(i)}, 10*i)); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(buf.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(buf.Bytes())
	_ = zw.Close()
	f.Add(gz.Bytes())
	f.Add(append(pcapHeader(0xffffffff, 127), recordHeader(1, 0, 0x7fffffff, 0x7fffffff)...))
	f.Add(append(pcapHeader(65535, 105), recordHeader(10, 500000, 2, 2)...))
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0})
	le := &ngBuilder{order: binary.LittleEndian}
	le.section().iface(LinkTypeRadiotap, 9).enhanced(0, 7, []byte("frame"), true).simple([]byte("x")).obsolete(0, 1, []byte("yy")).block(5, make([]byte, 8))
	f.Add(le.b)
	be := &ngBuilder{order: binary.BigEndian}
	be.section().iface(LinkTypeDot11, 0x80|20).enhanced(0, 1<<40, bytes.Repeat([]byte{0xd0}, 30), false)
	f.Add(be.b)
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := NewReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		for range len(in) + 1 { // every record takes at least 16 bytes
			_, b, err := r.Next()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !bytes.Contains([]byte(err.Error()), []byte("capture")) {
					t.Fatalf("unwrapped error %v", err)
				}
				return
			}
			if len(b) > SnapLen {
				t.Fatalf("frame of %d bytes", len(b))
			}
		}
		if len(in) > 0 && in[0] != 0x1f { // gzip input may expand
			t.Fatal("reader did not stop")
		}
	})
}
