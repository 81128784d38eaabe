// Package capture records what links send and receive in pcap files that
// Wireshark and tshark open: ESP-NOW links as radiotap + 802.11 frames
// (LINKTYPE_IEEE802_11_RADIO), every other link as the bare mesh packet
// under LINKTYPE_USER0. Tap wraps any link.Link to do it; Reader reads the
// files back for tools.
package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Link types of the captures this package writes.
const (
	// LinkTypeRadiotap is LINKTYPE_IEEE802_11_RADIO (127): a radiotap
	// header, then the 802.11 frame.
	LinkTypeRadiotap = layers.LinkTypeIEEE80211Radio
	// LinkTypeDot11 is LINKTYPE_IEEE802_11 (105): bare 802.11 frames.
	LinkTypeDot11 = layers.LinkTypeIEEE802_11
	// LinkTypeUser0 is LINKTYPE_USER0 (147), reserved for private use:
	// Wireshark shows it as "USER 0" data, and a DLT_USER preference can
	// attach a dissector. Links without a Framer capture mesh packets under it.
	LinkTypeUser0 layers.LinkType = 147
)

// SnapLen is the snapshot length written in file headers and the longest
// frame read back: the pcap default, above any link's MTU.
const SnapLen = 262144

// ErrNotPcap means the input is neither a pcap nor a pcapng capture.
var ErrNotPcap = errors.New("capture: not a pcap or pcapng capture")

// Writer writes frames to a pcap file with nanosecond timestamps. It is safe
// for concurrent use.
type Writer struct {
	mu     sync.Mutex
	pw     *pcapgo.Writer
	c      io.Closer
	lt     layers.LinkType
	err    error
	closed bool
}

// NewWriter writes the pcap file header for linkType to w and returns a
// Writer for the frames. If w is an io.Closer, Close closes it.
func NewWriter(w io.Writer, linkType layers.LinkType) (*Writer, error) {
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(SnapLen, linkType); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	cw := &Writer{pw: pw, lt: linkType}
	if c, ok := w.(io.Closer); ok {
		cw.c = c
	}
	return cw, nil
}

// Create creates (or truncates) the file at path and starts a capture in it.
func Create(path string, linkType layers.LinkType) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	w, err := NewWriter(f, linkType)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return w, nil
}

// LinkType returns the capture's link type.
func (w *Writer) LinkType() layers.LinkType { return w.lt }

// Write records one frame taken at ts. A frame longer than SnapLen is cut,
// its original length kept in the record. After a write error every later
// Write returns that error.
func (w *Writer) Write(ts time.Time, frame []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return os.ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: len(frame)}
	if len(frame) > SnapLen {
		frame = frame[:SnapLen]
		ci.CaptureLength = SnapLen
	}
	if err := w.pw.WritePacket(ci, frame); err != nil {
		w.err = fmt.Errorf("capture: %w", err)
	}
	return w.err
}

// Err returns the first write error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close ends the capture and closes the underlying file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return os.ErrClosed
	}
	w.closed = true
	if w.c != nil {
		return w.c.Close()
	}
	return nil
}

// Reader reads frames from a pcap capture (microsecond or nanosecond, either
// byte order, optionally gzipped) or a pcapng one (what Wireshark, tshark
// and dumpcap write by default), as a stream: a pipe will do. pcapng is
// read by this package's own reader (gopacket's trusts length fields enough
// to allocate gigabytes for a corrupt file); it bounds every frame by
// SnapLen and skips the blocks it does not need without holding them.
type Reader struct {
	r  *pcapgo.Reader
	ng *ngReader
}

// NewReader reads the file header from r.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		// Gzipped (pcapgo would take a gzipped pcap, not a pcapng).
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotPcap, err)
		}
		br = bufio.NewReader(zr)
	}
	if magic, err := br.Peek(4); err == nil && bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		ng, err := newNgReader(br)
		if err != nil {
			return nil, err
		}
		return &Reader{ng: ng}, nil
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("too short for a pcap header")
		}
		return nil, fmt.Errorf("%w: %w", ErrNotPcap, err)
	}
	// A corrupt header could claim a 4 GB snapshot length, and pcapgo
	// allocates what each record claims up to it: clamp.
	if pr.Snaplen() == 0 || pr.Snaplen() > SnapLen {
		pr.SetSnaplen(SnapLen)
	}
	return &Reader{r: pr}, nil
}

// LinkType returns the capture's link type: in pcapng, that of its first
// interface (known once its description has been read; FrameLinkType
// gives each frame's).
func (r *Reader) LinkType() layers.LinkType {
	if r.ng != nil {
		return r.ng.first
	}
	return r.r.LinkType()
}

// FrameLinkType returns the link type of the frame Next returned last: a
// pcapng capture may hold interfaces of several.
func (r *Reader) FrameLinkType() layers.LinkType {
	if r.ng != nil {
		return r.ng.lt
	}
	return r.r.LinkType()
}

// Next returns the next frame and its timestamp; the bytes are valid until
// the following call. At the end it returns io.EOF; a record cut short by
// the end of the file is io.ErrUnexpectedEOF.
func (r *Reader) Next() (time.Time, []byte, error) {
	if r.ng != nil {
		ts, b, err := r.ng.next()
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			err = fmt.Errorf("capture: %w", err)
		}
		return ts, b, err
	}
	data, ci, err := r.r.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, io.EOF) && len(data) == 0 && ci.CaptureLength == 0 {
			return time.Time{}, nil, io.EOF
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return time.Time{}, nil, io.ErrUnexpectedEOF
		}
		return time.Time{}, nil, fmt.Errorf("capture: %w", err)
	}
	return ci.Timestamp, data, nil
}
