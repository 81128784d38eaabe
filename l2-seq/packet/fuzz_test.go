package packet_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/internal/vectors"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// FuzzDecode: no input panics; every error is one of the package's kinds;
// whatever decodes re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	var vs vectors.File[vectors.Packet]
	vectors.Load(f, "packets.json", &vs)
	for _, v := range vs.Vectors {
		f.Add([]byte(v.Packet))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p packet.Packet
		err := p.UnmarshalBinary(b)
		if err != nil {
			if !isKind(err) {
				t.Fatalf("error %v is of no known kind", err)
			}
			return
		}
		if len(p.Body) > p.SchemaOf().MaxBody {
			t.Fatalf("body %d over max", len(p.Body))
		}
		out, err := p.AppendTo(nil)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip\n in %x\nout %x", b, out)
		}
		if err := p.VerifyChecksum(); err != nil && !errors.Is(err, packet.ErrChecksum) {
			t.Fatal(err)
		}
	})
}

// FuzzEncode: any field values either encode or fail with a typed error, and
// what encodes decodes to the same packet.
func FuzzEncode(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint16(7), uint8(0), uint16(0), uint8(0), uint8(0), []byte("hello"), []byte{}, true)
	f.Add(uint8(10), uint8(0x49), uint16(65535), uint8(3), uint16(65535), uint8(16), uint8(1), []byte{1, 2, 3}, []byte{0x31, 0x48}, false)
	f.Add(uint8(28), uint8(0x10), uint16(255), uint8(255), uint16(255), uint8(0), uint8(255), make([]byte, 195), []byte{0xff}, true)
	f.Fuzz(func(t *testing.T, schema, flags uint8, pid uint16, sid uint8, ssz uint16, ttl, ts uint8, body, addr []byte, seal bool) {
		p := packet.Packet{Schema: schema, Flags: packet.Flags(flags), PacketID: pid, SeqID: sid, SeqSize: ssz, TTL: ttl, TreeState: ts, Body: body}
		copy(p.To[:], addr)
		copy(p.From[:], bytes.Repeat(addr, 2))
		var b []byte
		var err error
		if seal {
			b, err = p.AppendSealed(nil)
		} else {
			b, err = p.AppendTo(nil)
		}
		if err != nil {
			if !isKind(err) {
				t.Fatalf("error %v is of no known kind", err)
			}
			return
		}
		var d packet.Packet
		if err := d.UnmarshalBinary(b); err != nil {
			t.Fatalf("decode of encoded: %v", err)
		}
		s := d.SchemaOf()
		want := p
		if !s.Sequenced() {
			want.SeqID, want.SeqSize = 0, 0
		}
		if !s.Routed() {
			want.TTL, want.TreeState, want.To, want.From = 0, 0, [16]byte{}, [16]byte{}
		}
		if !s.HasChecksum() {
			want.Checksum = 0
		}
		if !equalPackets(&d, &want) {
			t.Fatalf("round trip\n in %+v\nout %+v", want, d)
		}
		if seal {
			if err := d.VerifyChecksum(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzPackage: any bytes split into a Package or fail ErrTooShort; the
// serialization round-trips.
func FuzzPackage(f *testing.F) {
	var vs vectors.File[vectors.Package]
	vectors.Load(f, "packages.json", &vs)
	for _, v := range vs.Vectors {
		f.Add([]byte(v.Package))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p packet.Package
		if err := p.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, packet.ErrTooShort) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(p.AppendTo(nil), b) {
			t.Fatal("round trip")
		}
		if err := p.Verify(); err != nil && !errors.Is(err, packet.ErrHash) {
			t.Fatal(err)
		}
	})
}

func isKind(err error) bool {
	for _, k := range []error{packet.ErrTooShort, packet.ErrUnknownSchema, packet.ErrVersion, packet.ErrBodyTooLong, packet.ErrFieldRange, packet.ErrChecksum, packet.ErrHash, packet.ErrPackageSize} {
		if errors.Is(err, k) {
			return err.Error() != ""
		}
	}
	return false
}
