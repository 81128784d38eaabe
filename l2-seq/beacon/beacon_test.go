package beacon

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/mycelium-mesh/mycelium/l2-seq/internal/vectors"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
)

type vec struct {
	Kind    string        `json:"kind"`
	Case    string        `json:"case"`
	Op      string        `json:"op"`
	PeerID  vectors.Hex   `json:"peer_id"`
	Apps    []vectors.Hex `json:"apps"`
	Blob    vectors.Hex   `json:"blob"`
	Outcome struct {
		OK     bool `json:"ok"`
		Result struct {
			Op     string        `json:"op"`
			PeerID vectors.Hex   `json:"peer_id"`
			Apps   []vectors.Hex `json:"apps"`
		} `json:"result"`
	} `json:"outcome"`
	NodeID   vectors.Hex   `json:"node_id"`
	Ordered  []vectors.Hex `json:"registered_app_ids_in_insertion_order"`
	Messages []vectors.Hex `json:"messages"`
}

func ids(hs []vectors.Hex) []packet.AppID {
	out := make([]packet.AppID, len(hs))
	for i, h := range hs {
		copy(out[i][:], h)
	}
	return out
}

func TestVectors(t *testing.T) {
	var f vectors.File[vec]
	vectors.Load(t, "beacon.json", &f)
	counts := map[string]int{}
	for i, v := range f.Vectors {
		counts[v.Kind]++
		switch v.Kind {
		case "serialize_bm":
			op, _ := hex.DecodeString(v.Op)
			m := Message{Op: Op(op[0]), Apps: ids(v.Apps)}
			copy(m.NodeID[:], v.PeerID)
			got, err := m.AppendTo(nil)
			if err != nil || !bytes.Equal(got, v.Blob) {
				t.Errorf("vector %d: %x, %v; want %x", i, got, err, []byte(v.Blob))
			}
		case "deserialize_bm":
			var m Message
			err := m.UnmarshalBinary(v.Blob)
			if len(v.Outcome.Result.PeerID) < NodeIDSize {
				// The reference accepts a short or empty message; we refuse
				// it: a beacon without a whole node_id names nobody.
				if !errors.Is(err, ErrTooShort) {
					t.Errorf("vector %d (%s): %v, want ErrTooShort", i, v.Case, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("vector %d (%s): %v", i, v.Case, err)
			}
			if hex.EncodeToString([]byte{byte(m.Op)}) != v.Outcome.Result.Op || !bytes.Equal(m.NodeID[:], v.Outcome.Result.PeerID) {
				t.Errorf("vector %d (%s): %+v", i, v.Case, m)
			}
			want := ids(v.Outcome.Result.Apps)
			if len(m.Apps) != len(want) {
				t.Fatalf("vector %d (%s): %d apps, want %d", i, v.Case, len(m.Apps), len(want))
			}
			for j := range want {
				if m.Apps[j] != want[j] {
					t.Errorf("vector %d: app %d", i, j)
				}
			}
		case "get_bmsgs":
			var node [NodeIDSize]byte
			copy(node[:], v.NodeID)
			msgs := Messages(OpBeacon, node, ids(v.Ordered))
			if len(msgs) != len(v.Messages) {
				t.Fatalf("vector %d: %d messages, want %d", i, len(msgs), len(v.Messages))
			}
			for j := range msgs {
				got, _ := msgs[j].AppendTo(nil)
				if !bytes.Equal(got, v.Messages[j]) {
					t.Errorf("vector %d message %d:\n got %x\nwant %x", i, j, got, []byte(v.Messages[j]))
				}
			}
		}
	}
	if counts["serialize_bm"] == 0 || counts["deserialize_bm"] == 0 || counts["get_bmsgs"] == 0 {
		t.Fatalf("vector kinds %v", counts)
	}
	if hex.EncodeToString(AppID[:]) != "366821dafdaf45e9bc5cfecb1c2a065c" {
		t.Fatal("beacon app id")
	}
}

func TestTooMany(t *testing.T) {
	m := Message{Apps: make([]packet.AppID, 11)}
	if _, err := m.AppendTo(nil); !errors.Is(err, ErrTooMany) {
		t.Fatal(err)
	}
	if got := Messages(OpBeacon, [32]byte{}, nil); len(got) != 1 || len(got[0].Apps) != 0 {
		t.Fatalf("no apps: %+v", got)
	}
	if got := Messages(OpBeacon, [32]byte{}, make([]packet.AppID, 20)); len(got) != 2 {
		t.Fatalf("20 apps: %d messages", len(got))
	}
}

func FuzzUnmarshal(f *testing.F) {
	var vs vectors.File[vec]
	vectors.Load(f, "beacon.json", &vs)
	for _, v := range vs.Vectors {
		if len(v.Blob) > 0 {
			f.Add([]byte(v.Blob))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrTooShort) {
				t.Fatal(err)
			}
			return
		}
		if len(m.Apps) != (len(b)-HeaderSize)/packet.AppIDSize {
			t.Fatalf("%d apps from %d bytes", len(m.Apps), len(b))
		}
		if len(m.Apps) <= MaxApps {
			out, err := m.AppendTo(nil)
			if err != nil || !bytes.Equal(out, b[:len(out)]) {
				t.Fatal("round trip")
			}
		}
	})
}
