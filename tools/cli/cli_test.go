package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mycelium/l1-link/vectors"
)

// run executes the command and returns stdout, stderr and the status.
func run(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	st := Main(args, &out, &errb)
	return out.String(), errb.String(), st
}

func loadVectors(t *testing.T, name string, v any) {
	t.Helper()
	b, err := vectors.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

var contractNames = map[string]bool{"error": true, "throttle": true, "ask": true, "ack": true, "rtx": true, "rns": true, "nia": true, "mode": true}

func TestPacketDecodeEncodeVectors(t *testing.T) {
	var f struct {
		Vectors []struct {
			Packet    string         `json:"packet"`
			FlagNames []string       `json:"flag_names"`
			Decoded   map[string]any `json:"decoded"`
		} `json:"vectors"`
	}
	loadVectors(t, "packets.json", &f)
	for i, v := range f.Vectors {
		out, stderr, st := run("packet", "decode", v.Packet)
		if st != 0 {
			t.Fatalf("vector %d: status %d: %s", i, st, stderr)
		}
		if strings.Count(out, "\n") != 1 {
			t.Fatalf("vector %d: output is not one line: %q", i, out)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		want := map[string]any{}
		for k, x := range v.Decoded {
			if k != "accepted" {
				want[k] = x
			}
		}
		var names []any
		for _, n := range v.FlagNames {
			if contractNames[n] {
				names = append(names, n)
			}
		}
		if names == nil {
			names = []any{}
		}
		want["flag_names"] = names
		if ck, ok := got["checksum_ok"]; ok {
			if _, isBool := ck.(bool); !isBool {
				t.Fatalf("vector %d: checksum_ok %v", i, ck)
			}
			delete(got, "checksum_ok")
			if _, has := want["checksum"]; !has {
				t.Fatalf("vector %d: checksum_ok without checksum", i)
			}
		} else if _, has := want["checksum"]; has {
			t.Fatalf("vector %d: checksum schema without checksum_ok", i)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if !bytes.Equal(gj, wj) {
			t.Errorf("vector %d:\n got %s\nwant %s", i, gj, wj)
		}
		// The decode form encodes back to the same bytes.
		enc, stderr, st := run("packet", "encode", strings.TrimSpace(out))
		if st != 0 || strings.TrimSpace(enc) != v.Packet {
			t.Errorf("vector %d: encode of decode: %q (%s), want %s", i, enc, stderr, v.Packet)
		}
	}
}

func TestPacketEncodeComputesChecksum(t *testing.T) {
	out, stderr, st := run("packet", "encode", `{"schema":1,"flags":0,"packet_id":7,"body":"68656c6c6f"}`)
	if st != 0 {
		t.Fatal(stderr)
	}
	// crc32("hello") = 3610a686
	if strings.TrimSpace(out) != "00000100073610a68668656c6c6f" {
		t.Fatalf("got %s", out)
	}
	dec, _, _ := run("packet", "decode", strings.TrimSpace(out))
	if !strings.Contains(dec, `"checksum":"3610a686"`) || !strings.Contains(dec, `"checksum_ok":true`) {
		t.Fatalf("decode %s", dec)
	}
}

func TestCheckValue(t *testing.T) {
	out, _, st := run("packet", "decode", "0000000007366821dafdaf45e9bc5cfecb1c2a065c2cf24dba5fb0a30e26e83b2ac5b9e29e68656c6c6f")
	want := `{"version":0,"reserved":0,"schema":0,"flags":0,"flag_names":[],"packet_id":7,"body":"366821dafdaf45e9bc5cfecb1c2a065c2cf24dba5fb0a30e26e83b2ac5b9e29e68656c6c6f"}` + "\n"
	if st != 0 || out != want {
		t.Fatalf("got %q", out)
	}
}

func TestBadInput(t *testing.T) {
	cases := [][]string{
		{"packet", "decode", ""},
		{"packet", "decode", "zz"},
		{"packet", "decode", "000000"},
		{"packet", "decode", "00000b0000"},
		{"packet", "decode", "0100000000"},
		{"packet", "decode", "0000000000" + strings.Repeat("00", 246)},
		{"packet", "decode"},
		{"packet", "encode", `{"schema":11}`},
		{"packet", "encode", `{"schema":0,"packet_id":256}`},
		{"packet", "encode", `{"schema":0,"seq_id":1}`},
		{"packet", "encode", `{"schema":0,"packet_id":-1}`},
		{"packet", "encode", `{"schema":0,"packet_id":1.5}`},
		{"packet", "encode", `{"schema":0,"bogus":1}`},
		{"packet", "encode", `{"schema":0,"body":"` + strings.Repeat("00", 246) + `"}`},
		{"packet", "encode", `{"schema":5,"to_addr":"00"}`},
		{"packet", "encode", `not json`},
		{"package", "decode", strings.Repeat("00", 31)},
		{"package", "encode", "--app-id", "00", "--blob", ""},
		{"sequence", "split", "--schema", "2", "--app-id", strings.Repeat("00", 16), "--blob", strings.Repeat("00", 62208-32+1), "--seq-id", "1"},
		{"sequence", "split", "--schema", "2", "--app-id", strings.Repeat("00", 16), "--blob", "", "--seq-id", "1", "--ttl", "3"},
		{"sequence", "split", "--schema", "12", "--app-id", strings.Repeat("00", 16), "--blob", "", "--seq-id", "1"},
		{"appid", "--name", "a", "--description", "b", "--version", "4294967296"},
		{"appid", "--name", "a", "--description", "b", "--version", "-1"},
		{"nosuchcommand"},
	}
	for _, c := range cases {
		out, stderr, st := run(c...)
		if st != 1 {
			t.Errorf("%v: status %d, want 1", c, st)
		}
		if out != "" {
			t.Errorf("%v: stdout %q", c, out)
		}
		if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "mycelium: ") {
			t.Errorf("%v: stderr %q is not one line", c, stderr)
		}
	}
}

func TestPackageCommands(t *testing.T) {
	var f struct {
		Vectors []struct {
			AppID   string `json:"app_id"`
			Blob    string `json:"blob"`
			Package string `json:"package"`
			Half    string `json:"half_sha256"`
		} `json:"vectors"`
	}
	loadVectors(t, "packages.json", &f)
	for i, v := range f.Vectors {
		out, stderr, st := run("package", "encode", "--app-id", v.AppID, "--blob", v.Blob)
		if st != 0 || strings.TrimSpace(out) != v.Package {
			t.Fatalf("vector %d: %q %s", i, out, stderr)
		}
		out, _, st = run("package", "decode", v.Package)
		var got map[string]any
		if st != 0 || json.Unmarshal([]byte(out), &got) != nil {
			t.Fatalf("vector %d: decode %q", i, out)
		}
		if got["app_id"] != v.AppID || got["hash"] != v.Half || got["blob"] != v.Blob || got["hash_ok"] != true {
			t.Fatalf("vector %d: %v", i, got)
		}
	}
	// A tampered blob decodes with hash_ok false.
	p := f.Vectors[1].Package
	bad := p[:len(p)-2] + "00"
	out, _, st := run("package", "decode", bad)
	if st != 0 || !strings.Contains(out, `"hash_ok":false`) {
		t.Fatalf("tampered: %q", out)
	}
}

func TestSequenceSplitVectors(t *testing.T) {
	var f struct {
		Vectors []struct {
			Schema  int            `json:"schema"`
			AppID   string         `json:"app_id"`
			BlobGen map[string]int `json:"blob_gen"`
			SeqID   int            `json:"seq_id"`
			Extra   map[string]any `json:"extra_fields"`
			Packets []string       `json:"packets"`
		} `json:"vectors"`
	}
	loadVectors(t, "sequences.json", &f)
	for i, v := range f.Vectors {
		blob := make([]byte, v.BlobGen["len"])
		for j := range blob {
			blob[j] = byte(j*v.BlobGen["mul"] + v.BlobGen["add"])
		}
		args := []string{"sequence", "split", "--schema", itoa(v.Schema), "--app-id", v.AppID, "--blob", hex.EncodeToString(blob), "--seq-id", itoa(v.SeqID)}
		if x, ok := v.Extra["ttl"]; ok {
			args = append(args, "--ttl", itoa(int(x.(float64))), "--tree-state", itoa(int(v.Extra["tree_state"].(float64))),
				"--to", v.Extra["to_addr"].(string), "--from", v.Extra["from_addr"].(string))
		}
		out, stderr, st := run(args...)
		if st != 0 {
			t.Fatalf("vector %d: %s", i, stderr)
		}
		got := strings.Split(strings.TrimSpace(out), "\n")
		if strings.Join(got, ",") != strings.Join(v.Packets, ",") {
			t.Fatalf("vector %d (schema %d): packets differ", i, v.Schema)
		}
	}
}

func TestAppID(t *testing.T) {
	out, _, st := run("appid", "--name", "Beacon", "--description", "Dev Beacon App", "--version", "0")
	if st != 0 || out != "366821dafdaf45e9bc5cfecb1c2a065c\n" {
		t.Fatalf("%q", out)
	}
	out, _, _ = run("appid", "--name", "Beacon", "--description", "Dev Beacon App", "--version", "4294967295")
	if out != "02e4a62a3814cc15cb2c4791dc2693ef\n" {
		t.Fatalf("%q", out)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestAddrCommands(t *testing.T) {
	var f struct {
		Encode []struct {
			Coords  []int  `json:"coords"`
			Address string `json:"address"`
		} `json:"encode"`
		Distances []struct {
			A     string  `json:"a_address"`
			B     string  `json:"b_address"`
			Tree  int     `json:"d_tree_mode0"`
			Mode1 float64 `json:"d_cpl_mode1"`
		} `json:"distances"`
	}
	b, err := vectors.Read("tree_addresses_spec.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Encode {
		cs := make([]string, len(v.Coords))
		for i, c := range v.Coords {
			cs[i] = itoa(c)
		}
		arg := strings.Join(cs, ",")
		out, stderr, st := run("addr", "encode", arg)
		if v.Address == "" {
			continue
		}
		if st != 0 || strings.TrimSpace(out) != v.Address {
			t.Fatalf("encode %s: %q %s", arg, out, stderr)
		}
		out, _, st = run("addr", "decode", v.Address)
		if st != 0 || strings.TrimSpace(out) != arg {
			t.Fatalf("decode %s: %q, want %s", v.Address, out, arg)
		}
	}
	for _, v := range f.Distances {
		out, _, st := run("addr", "distance", "--mode", "0", v.A, v.B)
		if st != 0 || strings.TrimSpace(out) != itoa(v.Tree) {
			t.Fatalf("mode 0 %s %s: %q want %d", v.A, v.B, out, v.Tree)
		}
		out, _, st = run("addr", "distance", "--mode", "1", v.A, v.B)
		var got float64
		if st != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &got) != nil || got != v.Mode1 {
			t.Fatalf("mode 1 %s %s: %q want %v", v.A, v.B, out, v.Mode1)
		}
	}
	if out, _, _ := run("addr", "encode", "3,1"); out != "31000000000000000000000000000000\n" {
		t.Fatalf("3,1: %q", out)
	}
	for _, bad := range [][]string{{"addr", "encode", "0"}, {"addr", "encode", "136"}, {"addr", "encode", "x"}, {"addr", "decode", "00"}, {"addr", "distance", "--mode", "2", strings.Repeat("0", 32), strings.Repeat("0", 32)}} {
		if _, stderr, st := run(bad...); st != 1 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: status %d %q", bad, st, stderr)
		}
	}
}
