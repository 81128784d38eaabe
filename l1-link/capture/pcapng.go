package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/google/gopacket/layers"
)

// pcapng block types this reader acts on; every other block is skipped.
const (
	ngSectionHeader   = 0x0a0d0d0a
	ngInterface       = 0x00000001
	ngObsoletePacket  = 0x00000002
	ngSimplePacket    = 0x00000003
	ngEnhancedPacket  = 0x00000006
	ngByteOrderMagic  = 0x1a2b3c4d
	ngOptEnd          = 0
	ngOptTsResol      = 9
	ngMaxInterfaces   = 1 << 16 // interface ids are 32-bit; no capture has this many
	ngMinBlock        = 12      // type, length, trailing length
	ngMaxOptionsBytes = 1 << 16 // an interface's options, read to find if_tsresol
)

// ngReader reads pcapng (what Wireshark, tshark and dumpcap write by
// default) as a stream. It trusts no length: a frame longer than SnapLen
// or than its block is an error, blocks it does not need are skipped
// without being held in memory, and it allocates one frame buffer.
type ngReader struct {
	r         *bufio.Reader
	order     binary.ByteOrder
	ifaces    []ngIface
	buf       []byte
	lt        layers.LinkType // of the frame Next returned last
	first     layers.LinkType // of the capture's first interface
	haveFirst bool
	hdr       [28]byte
}

// ngIface is an interface description: its link type, snapshot length
// and timestamp resolution (if_tsresol: 10^-exp or, if binary, 2^-exp
// seconds per tick).
type ngIface struct {
	lt      layers.LinkType
	snaplen uint32
	exp     int
	binary  bool
}

func newNgReader(br *bufio.Reader) (*ngReader, error) {
	r := &ngReader{r: br}
	_, err := io.ReadFull(r.r, r.hdr[:8])
	if err == nil {
		err = r.section(r.hdr[:8])
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("pcapng: too short for a section header")
		}
		return nil, fmt.Errorf("%w: %v", ErrNotPcap, err)
	}
	return r, nil
}

// section reads a section header block whose type and length (head) have
// been read: it sets the byte order and forgets the last section's
// interfaces.
func (r *ngReader) section(head []byte) error {
	var magic [4]byte
	if _, err := io.ReadFull(r.r, magic[:]); err != nil {
		return io.ErrUnexpectedEOF
	}
	switch {
	case binary.BigEndian.Uint32(magic[:]) == ngByteOrderMagic:
		r.order = binary.BigEndian
	case binary.LittleEndian.Uint32(magic[:]) == ngByteOrderMagic:
		r.order = binary.LittleEndian
	default:
		return errors.New("pcapng: bad byte-order magic")
	}
	n := r.order.Uint32(head[4:8])
	if n < 28 || n%4 != 0 {
		return fmt.Errorf("pcapng: section header of %d bytes", n)
	}
	r.ifaces = r.ifaces[:0]
	return r.skip(int64(n) - 12)
}

func (r *ngReader) skip(n int64) error {
	if _, err := io.CopyN(io.Discard, r.r, n); err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// next returns the next frame. The bytes are valid until the following
// call. At the end it returns io.EOF; a block cut short by the end of the
// input is io.ErrUnexpectedEOF.
func (r *ngReader) next() (time.Time, []byte, error) {
	for {
		if _, err := io.ReadFull(r.r, r.hdr[:8]); err != nil {
			if errors.Is(err, io.EOF) {
				return time.Time{}, nil, io.EOF
			}
			return time.Time{}, nil, io.ErrUnexpectedEOF
		}
		typ := r.order.Uint32(r.hdr[:4])
		if typ == ngSectionHeader { // the same both ways round
			// A new section, maybe of the other byte order.
			if err := r.section(r.hdr[:8]); err != nil {
				return time.Time{}, nil, err
			}
			continue
		}
		n := r.order.Uint32(r.hdr[4:8])
		if n < ngMinBlock || n%4 != 0 {
			return time.Time{}, nil, fmt.Errorf("pcapng: block of %d bytes", n)
		}
		body := int64(n) - 12
		var (
			ts   time.Time
			data []byte
			err  error
		)
		switch typ {
		case ngInterface:
			err = r.iface(body)
		case ngEnhancedPacket:
			ts, data, err = r.packet(body, 20, func(h []byte) (uint32, uint64, uint32) {
				return r.order.Uint32(h[0:4]), uint64(r.order.Uint32(h[4:8]))<<32 | uint64(r.order.Uint32(h[8:12])), r.order.Uint32(h[12:16])
			})
		case ngObsoletePacket:
			ts, data, err = r.packet(body, 20, func(h []byte) (uint32, uint64, uint32) {
				return uint32(r.order.Uint16(h[0:2])), uint64(r.order.Uint32(h[4:8]))<<32 | uint64(r.order.Uint32(h[8:12])), r.order.Uint32(h[12:16])
			})
		case ngSimplePacket:
			data, err = r.simple(body)
		default:
			err = r.skip(body)
		}
		if err != nil {
			return time.Time{}, nil, err
		}
		if _, err := io.ReadFull(r.r, r.hdr[:4]); err != nil {
			return time.Time{}, nil, io.ErrUnexpectedEOF
		}
		if r.order.Uint32(r.hdr[:4]) != n {
			return time.Time{}, nil, errors.New("pcapng: block lengths disagree")
		}
		if data != nil {
			return ts, data, nil
		}
	}
}

// iface reads an interface description block's body of n bytes.
func (r *ngReader) iface(n int64) error {
	if n < 8 {
		return fmt.Errorf("pcapng: interface block of %d bytes", n+12)
	}
	if len(r.ifaces) == ngMaxInterfaces {
		return errors.New("pcapng: too many interfaces")
	}
	var h [8]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		return io.ErrUnexpectedEOF
	}
	in := ngIface{lt: layers.LinkType(r.order.Uint16(h[0:2])), snaplen: r.order.Uint32(h[4:8]), exp: 6}
	rest := n - 8
	// Options: code, length, value padded to 4 bytes. Only if_tsresol
	// matters; look at the first 64 KiB of them.
	opts := min(rest, ngMaxOptionsBytes)
	b := make([]byte, opts)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return io.ErrUnexpectedEOF
	}
	if err := r.skip(rest - opts); err != nil {
		return err
	}
	for len(b) >= 4 {
		code, l := r.order.Uint16(b[0:2]), int(r.order.Uint16(b[2:4]))
		if code == ngOptEnd {
			break
		}
		padded := (l + 3) &^ 3
		if 4+padded > len(b) {
			return errors.New("pcapng: interface option runs past its block")
		}
		if code == ngOptTsResol && l == 1 {
			in.exp, in.binary = int(b[4]&0x7f), b[4]&0x80 != 0
			if (!in.binary && in.exp > 19) || in.exp > 63 {
				return fmt.Errorf("pcapng: timestamp resolution %#x", b[4])
			}
		}
		b = b[4+padded:]
	}
	if !r.haveFirst {
		r.first, r.haveFirst = in.lt, true
	}
	r.ifaces = append(r.ifaces, in)
	return nil
}

// time converts a timestamp in the interface's ticks.
func (in *ngIface) time(ticks uint64) time.Time {
	var ns uint64
	switch {
	case in.binary:
		hi, lo := bits.Mul64(ticks, 1e9)
		if in.exp == 0 {
			ns = lo
		} else {
			ns = lo>>in.exp | hi<<(64-in.exp)
		}
	case in.exp <= 9:
		unit := pow10[in.exp]
		return time.Unix(int64(ticks/unit), int64(ticks%unit*pow10[9-in.exp]))
	default:
		ns = ticks / pow10[in.exp-9]
	}
	return time.Unix(int64(ns/1e9), int64(ns%1e9))
}

var pow10 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// packet reads an enhanced (or obsolete) packet block's body of n bytes,
// whose fixed part of hl bytes gives interface, timestamp and captured
// length through fields.
func (r *ngReader) packet(n int64, hl int, fields func([]byte) (uint32, uint64, uint32)) (time.Time, []byte, error) {
	if n < int64(hl) {
		return time.Time{}, nil, fmt.Errorf("pcapng: packet block of %d bytes", n+12)
	}
	if _, err := io.ReadFull(r.r, r.hdr[8:8+hl]); err != nil {
		return time.Time{}, nil, io.ErrUnexpectedEOF
	}
	id, ticks, caplen := fields(r.hdr[8 : 8+hl])
	if int(id) >= len(r.ifaces) {
		return time.Time{}, nil, fmt.Errorf("pcapng: packet of interface %d, which no block described", id)
	}
	in := &r.ifaces[id]
	padded := (int64(caplen) + 3) &^ 3
	if caplen > SnapLen || padded > n-int64(hl) {
		return time.Time{}, nil, fmt.Errorf("pcapng: packet of %d bytes in a block of %d", caplen, n+12)
	}
	data, err := r.read(int(caplen))
	if err != nil {
		return time.Time{}, nil, err
	}
	if err := r.skip(n - int64(hl) - int64(caplen)); err != nil {
		return time.Time{}, nil, err
	}
	r.lt = in.lt
	return in.time(ticks), data, nil
}

// simple reads a simple packet block's body of n bytes: interface 0, no
// timestamp, the frame cut to the block and the interface's snapshot.
func (r *ngReader) simple(n int64) ([]byte, error) {
	if len(r.ifaces) == 0 {
		return nil, errors.New("pcapng: simple packet before any interface block")
	}
	if n < 4 {
		return nil, fmt.Errorf("pcapng: simple packet block of %d bytes", n+12)
	}
	var h [4]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	l := int64(r.order.Uint32(h[:]))
	l = min(l, n-4)
	if s := r.ifaces[0].snaplen; s != 0 {
		l = min(l, int64(s))
	}
	if l > SnapLen {
		return nil, fmt.Errorf("pcapng: packet of %d bytes", l)
	}
	data, err := r.read(int(l))
	if err != nil {
		return nil, err
	}
	if err := r.skip(n - 4 - l); err != nil {
		return nil, err
	}
	r.lt = r.ifaces[0].lt
	return data, nil
}

func (r *ngReader) read(n int) ([]byte, error) {
	if cap(r.buf) < n {
		r.buf = make([]byte, n, max(n, 2048))
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	return r.buf, nil
}
