package packet_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/internal/vectors"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

func TestPackageVectors(t *testing.T) {
	var f vectors.File[vectors.Package]
	vectors.Load(t, "packages.json", &f)
	for i, v := range f.Vectors {
		var app packet.AppID
		copy(app[:], v.AppID)
		p := packet.NewPackage(app, v.Blob)
		if h := packet.HalfSHA256(v.Blob); !bytes.Equal(h[:], v.HalfSHA256) {
			t.Errorf("vector %d: half_sha256 %x", i, h)
		}
		if got := p.AppendTo(nil); !bytes.Equal(got, v.Package) {
			t.Errorf("vector %d: package %x, want %x", i, got, []byte(v.Package))
		}
		var d packet.Package
		if err := d.UnmarshalBinary(v.Package); err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if !bytes.Equal(d.AppID[:], v.Unpacked.AppID) || !bytes.Equal(d.Hash[:], v.Unpacked.HalfSHA256) || !bytes.Equal(d.Blob, v.Unpacked.Blob) {
			t.Errorf("vector %d: unpacked %+v", i, d)
		}
		if err := d.Verify(); (err == nil) != v.Verify {
			t.Errorf("vector %d: verify %v, want %v", i, err, v.Verify)
		}
	}
}

func TestPackageErrors(t *testing.T) {
	var d packet.Package
	if err := d.UnmarshalBinary(make([]byte, 31)); !errors.Is(err, packet.ErrTooShort) {
		t.Fatalf("31 bytes: %v", err)
	}
	good := packet.NewPackage(packet.AppID{9}, []byte("blob")).AppendTo(nil)
	good[len(good)-1] ^= 1
	if err := d.UnmarshalBinary(good); err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(); !errors.Is(err, packet.ErrHash) {
		t.Fatalf("tampered blob verified: %v", err)
	}
}

func TestIdentifierVectors(t *testing.T) {
	var f vectors.File[vectors.Identifier]
	vectors.Load(t, "identifiers.json", &f)
	n := 0
	for _, v := range f.Vectors {
		if v.Kind != "app_id" {
			continue
		}
		if v.Version < 0 || v.Version > 0xffffffff {
			if v.Outcome.OK {
				t.Errorf("version %d accepted by the reference", v.Version)
			}
			continue // uint32 cannot hold it: the type refuses what the reference refuses
		}
		n++
		id := packet.NewAppID(v.Name, v.Description, uint32(v.Version))
		if hex.EncodeToString(id[:]) != v.Outcome.Result {
			t.Errorf("app_id(%q,%q,%d) = %x, want %s", v.Name, v.Description, v.Version, id, v.Outcome.Result)
		}
	}
	if n < 10 {
		t.Fatalf("only %d app_id vectors", n)
	}
	beacon := packet.NewAppID("Beacon", "Dev Beacon App", 0)
	if hex.EncodeToString(beacon[:]) != "366821dafdaf45e9bc5cfecb1c2a065c" {
		t.Fatalf("beacon app_id %x", beacon)
	}
}

func TestMaxPackage(t *testing.T) {
	s2 := packet.MustLookup(2)
	if s2.MaxPackage() != 62207 {
		t.Fatalf("schema 2 max package %d", s2.MaxPackage())
	}
	var wire []*packet.Schema
	for _, s := range packet.Schemas() {
		if s.Family != packet.FamilyESPNOWV2 {
			wire = append(wire, s)
		}
	}
	if got := packet.MaxPackage(wire); got != 65536*237-1 {
		t.Fatalf("max over the wire's schemas %d", got)
	}
	if got := packet.MaxPackage(packet.Schemas()); got != 65536*(1470-13)-1 {
		t.Fatalf("max over all schemas (ours for ESP-NOW v2 included) %d", got)
	}
	if packet.MaxPackage(nil) != 0 {
		t.Fatal("empty set")
	}
}
