package sequence_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/internal/vectors"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/sequence"
)

func template(t *testing.T, v *vectors.Sequence) packet.Packet {
	t.Helper()
	tmpl := packet.Packet{SeqID: uint8(v.SeqID)}
	if x, ok := v.ExtraFields["ttl"]; ok {
		tmpl.TTL = uint8(x.(float64))
	}
	if x, ok := v.ExtraFields["tree_state"]; ok {
		tmpl.TreeState = uint8(x.(float64))
	}
	for k, dst := range map[string]*[16]byte{"to_addr": &tmpl.To, "from_addr": &tmpl.From} {
		if x, ok := v.ExtraFields[k]; ok {
			b, err := hex.DecodeString(x.(string))
			if err != nil {
				t.Fatal(err)
			}
			copy(dst[:], b)
		}
	}
	return tmpl
}

func TestSequenceVectors(t *testing.T) {
	var f vectors.File[vectors.Sequence]
	vectors.Load(t, "sequences.json", &f)
	if len(f.Vectors) < 90 {
		t.Fatalf("only %d sequence vectors", len(f.Vectors))
	}
	for i := range f.Vectors {
		v := &f.Vectors[i]
		blob := v.Blob()
		if sum := sha256.Sum256(blob); !bytes.Equal(sum[:], v.BlobSHA256) {
			t.Fatalf("vector %d: blob generator disagrees", i)
		}
		var app packet.AppID
		copy(app[:], v.AppID)
		pkg := packet.NewPackage(app, blob).AppendTo(nil)
		if len(pkg) != v.PackageLen {
			t.Fatalf("vector %d: package %d bytes, want %d", i, len(pkg), v.PackageLen)
		}
		s := packet.MustLookup(uint8(v.Schema))
		if n := sequence.Count(s, len(pkg)); n != v.Count {
			t.Errorf("vector %d: count %d, want %d", i, n, v.Count)
		}
		tmpl := template(t, v)
		got, err := sequence.Split(s, pkg, &tmpl)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if len(got) != len(v.Packets) {
			t.Fatalf("vector %d: %d packets, want %d", i, len(got), len(v.Packets))
		}
		var asks []int
		for j := range got {
			if !bytes.Equal(got[j], v.Packets[j]) {
				t.Errorf("vector %d (schema %d) packet %d:\n got %x\nwant %x", i, v.Schema, j, got[j], []byte(v.Packets[j]))
			}
			var p packet.Packet
			if err := p.UnmarshalBinary(got[j]); err != nil {
				t.Fatal(err)
			}
			if p.Flags.Ask() {
				asks = append(asks, j)
			}
			if err := p.VerifyChecksum(); err != nil {
				t.Errorf("vector %d packet %d: %v", i, j, err)
			}
		}
		if !equalInts(asks, v.AskPacketIDs) {
			t.Errorf("vector %d: asks on %v, want %v", i, asks, v.AskPacketIDs)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSplitLimits(t *testing.T) {
	s := packet.MustLookup(2)
	var tmpl packet.Packet
	// The senders' limit is MaxSeq*MaxBody-1: 62,207 bytes fit, 62,208 do not.
	pkts, err := sequence.Split(s, make([]byte, 62207), &tmpl)
	if err != nil || len(pkts) != 256 {
		t.Fatalf("62207: %d packets, %v", len(pkts), err)
	}
	if _, err := sequence.Split(s, make([]byte, 62208), &tmpl); !errors.Is(err, packet.ErrPackageSize) {
		t.Fatalf("62208: %v", err)
	}
	// An exact multiple of the body is cut into full packets, nothing empty after.
	pkts, err = sequence.Split(s, make([]byte, 243*3), &tmpl)
	if err != nil || len(pkts) != 3 || len(pkts[2]) != 250 {
		t.Fatalf("3 full packets: %d, %v", len(pkts), err)
	}
	// A non-sequenced schema carries one packet.
	pkts, err = sequence.Split(packet.MustLookup(0), make([]byte, 100), &tmpl)
	if err != nil || len(pkts) != 1 {
		t.Fatalf("schema 0: %d, %v", len(pkts), err)
	}
	if _, err := sequence.Split(packet.MustLookup(0), make([]byte, 245), &tmpl); !errors.Is(err, packet.ErrPackageSize) {
		t.Fatalf("schema 0, 245 bytes: %v", err)
	}
}

func TestCutZeroAlloc(t *testing.T) {
	s := packet.MustLookup(4)
	pkg := make([]byte, 10000)
	var tmpl, p packet.Packet
	buf := make([]byte, 0, 250)
	n := testing.AllocsPerRun(100, func() {
		for i := range sequence.Count(s, len(pkg)) {
			sequence.Cut(s, pkg, i, &tmpl, &p)
			if _, err := p.AppendTo(buf[:0]); err != nil {
				t.Fatal(err)
			}
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

// CutRoom keeps room bytes free in the first packet only, and the packets
// put back together in order are the Package.
func TestCutRoom(t *testing.T) {
	s := packet.MustLookup(3)
	for _, n := range []int{0, 1, s.MaxBody - 12, s.MaxBody - 11, s.MaxBody, 3*s.MaxBody - 12, 3*s.MaxBody - 11, 5000} {
		pkg := make([]byte, n)
		for i := range pkg {
			pkg[i] = byte(i * 13)
		}
		count := sequence.CountRoom(s, n, 12)
		var whole []byte
		var p packet.Packet
		for i := range count {
			sequence.CutRoom(s, pkg, i, 12, &packet.Packet{}, &p)
			limit := s.MaxBody
			if i == 0 {
				limit -= 12
			}
			if len(p.Body) > limit || (i < count-1 && len(p.Body) != limit) {
				t.Fatalf("n %d: packet %d of %d has %d bytes", n, i, count, len(p.Body))
			}
			whole = append(whole, p.Body...)
		}
		if !bytes.Equal(whole, pkg) {
			t.Fatalf("n %d: cut and put together differs", n)
		}
	}
}
