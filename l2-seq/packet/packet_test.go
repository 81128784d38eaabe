package packet_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/internal/vectors"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

// fromFields builds the packet a packets.json vector describes.
func fromFields(t *testing.T, v *vectors.Packet) packet.Packet {
	t.Helper()
	p := packet.Packet{Schema: uint8(v.Schema), Flags: packet.Flags(v.Flags)}
	num := func(k string) int {
		x, ok := v.Fields[k]
		if !ok {
			return 0
		}
		return int(x.(float64))
	}
	hx := func(k string) []byte {
		x, ok := v.Fields[k]
		if !ok {
			return nil
		}
		b, err := hex.DecodeString(x.(string))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p.PacketID = uint16(num("packet_id"))
	p.SeqID = uint8(num("seq_id"))
	p.SeqSize = uint16(num("seq_size"))
	p.TTL = uint8(num("ttl"))
	p.TreeState = uint8(num("tree_state"))
	copy(p.To[:], hx("to_addr"))
	copy(p.From[:], hx("from_addr"))
	if ck := hx("checksum"); ck != nil {
		p.Checksum = uint32(ck[0])<<24 | uint32(ck[1])<<16 | uint32(ck[2])<<8 | uint32(ck[3])
	}
	p.Body = hx("body")
	return p
}

func TestPacketVectors(t *testing.T) {
	var f vectors.File[vectors.Packet]
	vectors.Load(t, "packets.json", &f)
	if len(f.Vectors) < 100 {
		t.Fatalf("only %d packet vectors", len(f.Vectors))
	}
	for i := range f.Vectors {
		v := &f.Vectors[i]
		p := fromFields(t, v)
		var got []byte
		var err error
		if v.ChecksumMode != nil && *v.ChecksumMode == "crc32_of_body" {
			want := p.Checksum
			got, err = p.AppendSealed(nil)
			if err == nil && p.Checksum != want {
				t.Errorf("vector %d: sealed checksum %08x, vector %08x", i, p.Checksum, want)
			}
		} else {
			got, err = p.AppendTo(nil)
		}
		if err != nil {
			t.Fatalf("vector %d: encode: %v", i, err)
		}
		if !bytes.Equal(got, v.Packet) {
			t.Errorf("vector %d (schema %d): encode\n got %x\nwant %x", i, v.Schema, got, []byte(v.Packet))
		}

		var d packet.Packet
		if err := d.UnmarshalBinary(v.Packet); err != nil {
			t.Fatalf("vector %d: decode: %v", i, err)
		}
		d.Body = append([]byte{}, d.Body...)
		if p.Body == nil {
			p.Body = []byte{}
		}
		if !equalPackets(&d, &p) {
			t.Errorf("vector %d: decode\n got %+v\nwant %+v", i, d, p)
		}
		if int(d.Version) != int(v.Decoded["version"].(float64)) || int(d.Reserved) != int(v.Decoded["reserved"].(float64)) {
			t.Errorf("vector %d: version/reserved", i)
		}
		// The codec reports checksums; it never refuses a packet for one.
		s := d.SchemaOf()
		if s.HasChecksum() {
			want := crc32.ChecksumIEEE(d.Body) == d.Checksum
			if err := d.VerifyChecksum(); (err == nil) != want {
				t.Errorf("vector %d: VerifyChecksum = %v, want ok=%v", i, err, want)
			} else if err != nil && !errors.Is(err, packet.ErrChecksum) {
				t.Errorf("vector %d: checksum error %v is not ErrChecksum", i, err)
			}
		}
	}
}

func equalPackets(a, b *packet.Packet) bool {
	return a.Schema == b.Schema && a.Flags == b.Flags && a.PacketID == b.PacketID &&
		a.SeqID == b.SeqID && a.SeqSize == b.SeqSize && a.TTL == b.TTL &&
		a.Checksum == b.Checksum && a.TreeState == b.TreeState && a.To == b.To &&
		a.From == b.From && bytes.Equal(a.Body, b.Body)
}

func TestSchemaVectors(t *testing.T) {
	var f vectors.File[vectors.Schema]
	vectors.Load(t, "schemas.json", &f)
	defined := 0
	for _, v := range f.Vectors {
		s, err := packet.Lookup(uint8(v.Schema))
		if v.Defined != nil && !*v.Defined {
			if err == nil || !errors.Is(err, packet.ErrUnknownSchema) {
				t.Errorf("schema %d: Lookup = %v, want ErrUnknownSchema", v.Schema, err)
			}
			continue
		}
		defined++
		if err != nil {
			t.Fatalf("schema %d: %v", v.Schema, err)
		}
		if s.HeaderSize != v.HeaderSize || s.MaxBody != v.MaxBody || s.MaxPacket() != v.MaxPacket || s.MaxSeq != v.MaxSeq {
			t.Errorf("schema %d: sizes %d/%d/%d/%d, want %d/%d/%d/%d", v.Schema, s.HeaderSize, s.MaxBody, s.MaxPacket(), s.MaxSeq, v.HeaderSize, v.MaxBody, v.MaxPacket, v.MaxSeq)
		}
		if s.MaxPackageRecv() != v.MaxBlob || s.MaxPackage() != v.MaxBlob-1 {
			t.Errorf("schema %d: max package %d (recv %d), vector max_blob %d", v.Schema, s.MaxPackage(), s.MaxPackageRecv(), v.MaxBlob)
		}
		if s.Sequenced() != v.Sequence || s.Routed() != v.Routing || s.HasChecksum() != v.Checksum {
			t.Errorf("schema %d: properties", v.Schema)
		}
		fields := s.Fields()
		if len(fields)+1 != len(v.Fields) {
			t.Fatalf("schema %d: %d fields, vector %d", v.Schema, len(fields), len(v.Fields)-1)
		}
		for i, fl := range fields {
			name, size := v.Fields[i][0].(string), int(v.Fields[i][1].(float64))
			if fl.String() != name || s.FieldSize(fl) != size {
				t.Errorf("schema %d field %d: %s/%d, want %s/%d", v.Schema, i, fl, s.FieldSize(fl), name, size)
			}
		}
		if last := v.Fields[len(v.Fields)-1]; last[0] != "body" || int(last[2].(float64)) != s.MaxBody {
			t.Errorf("schema %d: body field %v", v.Schema, last)
		}
	}
	// The wire's 22, and ours for ESP-NOW v2: 40–50, the same fields with
	// bodies up to a 1,470-byte datagram.
	if defined != 22 || len(packet.Schemas()) != 33 {
		t.Errorf("%d defined schemas in vectors, %d in table; want 22 and 33", defined, len(packet.Schemas()))
	}
	for id := 40; id <= 50; id++ {
		s, v1 := packet.MustLookup(uint8(id)), packet.MustLookup(uint8(id-40))
		if s.Family != packet.FamilyESPNOWV2 || s.HeaderSize != v1.HeaderSize || s.MaxBody != 1470-s.HeaderSize || s.MaxSeq != v1.MaxSeq {
			t.Errorf("schema %d: %+v", id, s)
		}
	}
}

func TestFlagVectors(t *testing.T) {
	var f vectors.File[vectors.Flag]
	vectors.Load(t, "flags.json", &f)
	if len(f.Vectors) != 256 {
		t.Fatalf("%d flag vectors", len(f.Vectors))
	}
	setter := map[string]packet.Encoded{"ask": packet.EncAsk, "ack": packet.EncAck, "rtx": packet.EncRtx, "rns": packet.EncRNS, "nia": packet.EncNIA, "encoded6": packet.EncReserved7}
	for _, v := range f.Vectors {
		fl := packet.Flags(v.State)
		if int(fl.Encoded()) != v.Encoded || fl.Error() != v.Error || fl.Throttle() != v.Throttle ||
			fl.Ask() != v.Ask || fl.Ack() != v.Ack || fl.Rtx() != v.Rtx || fl.RNS() != v.RNS ||
			fl.NIA() != v.NIA || fl.Mode() != v.Mode || (fl&packet.FlagReserved1 != 0) != v.Reserved1 ||
			(fl&packet.FlagReserved2 != 0) != v.Reserved2 {
			t.Errorf("flags %#02x: accessors disagree with %+v", v.State, v)
		}
		if got := fl.AckReply(); int(got) != v.AckReplyFlags {
			t.Errorf("flags %#02x: ack reply %#02x, want %#02x", v.State, got, v.AckReplyFlags)
		}
		for name, want := range v.SetTrueFalse {
			if got := fl.WithEncoded(setter[name]); int(got) != want[0] {
				t.Errorf("flags %#02x: set %s: %#02x, want %#02x", v.State, name, got, want[0])
			}
			if got := fl.WithEncoded(packet.EncNone); int(got) != want[1] {
				t.Errorf("flags %#02x: clear %s: %#02x, want %#02x", v.State, name, got, want[1])
			}
		}
		// Names round-trip through FlagsFromNames for the named bits.
		names := fl.AppendNames(nil)
		back, ok := packet.FlagsFromNames(names)
		named := fl &^ (packet.FlagReserved1 | packet.FlagReserved2)
		if e := named.Encoded(); e == packet.EncUnused6 || e == packet.EncReserved7 {
			named = named.WithEncoded(packet.EncNone)
		}
		if !ok || back != named {
			t.Errorf("flags %#02x: names %v -> %#02x", v.State, names, back)
		}
	}
	if _, ok := packet.FlagsFromNames([]string{"ask", "ack"}); ok {
		t.Error("two encoded names accepted")
	}
	if _, ok := packet.FlagsFromNames([]string{"bogus"}); ok {
		t.Error("unknown name accepted")
	}
}

func TestCheckValue(t *testing.T) {
	// PROTOCOL 3.1: schema 0, packet_id 7, the Beacon app's Package of "hello".
	app := packet.NewAppID("Beacon", "Dev Beacon App", 0)
	pkg := packet.NewPackage(app, []byte("hello"))
	p := packet.Packet{Schema: 0, PacketID: 7, Body: pkg.AppendTo(nil)}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	const want = "0000000007366821dafdaf45e9bc5cfecb1c2a065c2cf24dba5fb0a30e26e83b2ac5b9e29e68656c6c6f"
	if hex.EncodeToString(b) != want {
		t.Fatalf("got %x", b)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", packet.ErrTooShort},
		{"3 bytes", "000000", packet.ErrTooShort},
		{"header only, schema 0", "00000000", packet.ErrTooShort},
		{"schema 10 short", "00000a00" + "00", packet.ErrTooShort},
		{"version 1", "0100000000", packet.ErrVersion},
		{"schema 11", "00000b0000", packet.ErrUnknownSchema},
		{"schema 255", "0000ff0000", packet.ErrUnknownSchema},
		{"schema 0 251 bytes", "0000000000" + hex.EncodeToString(make([]byte, 246)), packet.ErrBodyTooLong},
		{"schema 20 241 bytes", "0000140000" + hex.EncodeToString(make([]byte, 236)), packet.ErrBodyTooLong},
	}
	for _, c := range cases {
		b, _ := hex.DecodeString(c.in)
		var p packet.Packet
		err := p.UnmarshalBinary(b)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if err != nil && err.Error() == "" {
			t.Errorf("%s: empty message", c.name)
		}
	}
	// The largest legal packets decode.
	for _, s := range packet.Schemas() {
		b := make([]byte, s.MaxPacket())
		b[2] = s.ID
		var p packet.Packet
		if err := p.UnmarshalBinary(b); err != nil || len(p.Body) != s.MaxBody {
			t.Errorf("schema %d: full packet: %v", s.ID, err)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	cases := []struct {
		name string
		p    packet.Packet
		want error
	}{
		{"unknown schema", packet.Packet{Schema: 12}, packet.ErrUnknownSchema},
		{"version", packet.Packet{Version: 1}, packet.ErrVersion},
		{"pid 256 in 1 byte", packet.Packet{Schema: 2, PacketID: 256}, packet.ErrFieldRange},
		{"seq_size 256 in 1 byte", packet.Packet{Schema: 3, SeqSize: 256}, packet.ErrFieldRange},
		{"body 246", packet.Packet{Schema: 0, Body: make([]byte, 246)}, packet.ErrBodyTooLong},
		{"lora body 236", packet.Packet{Schema: 20, Body: make([]byte, 236)}, packet.ErrBodyTooLong},
	}
	for _, c := range cases {
		if _, err := c.p.AppendTo(nil); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	ok := packet.Packet{Schema: 4, PacketID: 65535, SeqSize: 65535, Body: make([]byte, 237)}
	if _, err := ok.AppendTo(nil); err != nil {
		t.Errorf("full schema 4 packet: %v", err)
	}
}

func TestAckFor(t *testing.T) {
	to, from := [16]byte{0x31}, [16]byte{0x48, 0x40}
	in := packet.Packet{Schema: 10, Flags: packet.FlagMode | packet.FlagThrottle, PacketID: 300, SeqID: 9, SeqSize: 400, TTL: 5, TreeState: 3, To: to, From: from, Body: []byte("data")}
	in.Flags = in.Flags.WithEncoded(packet.EncAsk)
	var a packet.Packet
	packet.AckFor(&in, &a)
	if !a.Flags.Ack() || !a.Flags.Mode() || !a.Flags.Throttle() || a.PacketID != 300 || a.SeqID != 9 || a.SeqSize != 400 ||
		a.To != from || a.From != to || a.TreeState != 3 || len(a.Body) != 0 {
		t.Fatalf("ack %+v", a)
	}
	if err := a.VerifyChecksum(); err != nil {
		t.Fatal(err)
	}
}

func TestZeroAlloc(t *testing.T) {
	body := bytes.Repeat([]byte{0xa5}, 203)
	p := packet.Packet{Schema: 10, PacketID: 1234, SeqID: 7, SeqSize: 4000, TTL: 9, TreeState: 2, To: [16]byte{1}, From: [16]byte{2}, Body: body}
	buf := make([]byte, 0, 250)
	var out []byte
	var err error
	if n := testing.AllocsPerRun(1000, func() { out, err = p.AppendSealed(buf[:0]) }); n != 0 || err != nil {
		t.Fatalf("encode: %v allocs, err %v", n, err)
	}
	var d packet.Packet
	if n := testing.AllocsPerRun(1000, func() { err = d.UnmarshalBinary(out) }); n != 0 || err != nil {
		t.Fatalf("decode: %v allocs, err %v", n, err)
	}
	if n := testing.AllocsPerRun(1000, func() { err = d.VerifyChecksum() }); n != 0 || err != nil {
		t.Fatalf("verify: %v allocs, err %v", n, err)
	}
	var pk packet.Package
	pkgBytes := packet.NewPackage(packet.AppID{1}, body).AppendTo(nil)
	if n := testing.AllocsPerRun(1000, func() { err = pk.UnmarshalBinary(pkgBytes) }); n != 0 || err != nil {
		t.Fatalf("package decode: %v allocs, err %v", n, err)
	}
	if n := testing.AllocsPerRun(1000, func() { err = pk.Verify() }); n != 0 || err != nil {
		t.Fatalf("package verify: %v allocs, err %v", n, err)
	}
	if n := testing.AllocsPerRun(1000, func() { out = pk.AppendTo(buf[:0]) }); n != 0 {
		t.Fatalf("package encode: %v allocs", n)
	}
}

// A 250-byte packet: schema 0 with a full body.
func full250() packet.Packet {
	return packet.Packet{Schema: 0, PacketID: 42, Body: bytes.Repeat([]byte{0x5a}, 245)}
}

func BenchmarkEncode250(b *testing.B) {
	p := full250()
	buf := make([]byte, 0, 250)
	b.ReportAllocs()
	b.SetBytes(250)
	for b.Loop() {
		if _, err := p.AppendTo(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode250(b *testing.B) {
	p := full250()
	raw, _ := p.MarshalBinary()
	var d packet.Packet
	b.ReportAllocs()
	b.SetBytes(250)
	for b.Loop() {
		if err := d.UnmarshalBinary(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSealed250(b *testing.B) {
	p := packet.Packet{Schema: 10, PacketID: 9, SeqSize: 300, Body: bytes.Repeat([]byte{0x5a}, 203)}
	buf := make([]byte, 0, 250)
	b.ReportAllocs()
	b.SetBytes(250)
	for b.Loop() {
		if _, err := p.AppendSealed(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeVerify250(b *testing.B) {
	p := packet.Packet{Schema: 10, PacketID: 9, SeqSize: 300, Body: bytes.Repeat([]byte{0x5a}, 203)}
	raw, _ := p.AppendSealed(nil)
	var d packet.Packet
	b.ReportAllocs()
	b.SetBytes(250)
	for b.Loop() {
		if err := d.UnmarshalBinary(raw); err != nil {
			b.Fatal(err)
		}
		if err := d.VerifyChecksum(); err != nil {
			b.Fatal(err)
		}
	}
}
