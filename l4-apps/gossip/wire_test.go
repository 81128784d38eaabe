package gossip

import (
	"bytes"
	"errors"
	"testing"
)

func TestWireLayout(t *testing.T) {
	tp := Topic("weather")
	msg := AppendMessage(nil, tp, []byte("rain"))
	if msg[0] != 0xf0 || !bytes.Equal(msg[1:17], tp[:]) || string(msg[17:]) != "rain" {
		t.Fatalf("message % x", msg)
	}
	id := IDOf(msg)
	if n := AppendNotification(nil, id); n[0] != 0x0f || !bytes.Equal(n[1:], id[:]) {
		t.Fatalf("notification % x", n)
	}
	if r := AppendRequest(nil, id); r[0] != 0x00 || !bytes.Equal(r[1:], id[:]) {
		t.Fatalf("request % x", r)
	}
	var f Frame
	if err := Decode(msg, &f); err != nil || f.Topic != tp || string(f.Data) != "rain" {
		t.Fatalf("decode: %v %+v", err, f)
	}
}

func TestHelloRoundTrip(t *testing.T) {
	h := Hello{Self: 7, Round: 9, Neighbours: []uint32{1, 2, 3}, Relays: []uint32{2}, Bloom: make([]byte, 32)}
	id := IDOf([]byte("x"))
	bloomAdd(h.Bloom, &id, h.Round)
	b := h.AppendTo(nil)
	var f Frame
	if err := Decode(b, &f); err != nil {
		t.Fatal(err)
	}
	g := f.Hello
	if g.Self != 7 || g.Round != 9 || len(g.Neighbours) != 3 || g.Relays[0] != 2 || !bloomHas(g.Bloom, &id, 9) {
		t.Fatalf("%+v", g)
	}
	other := IDOf([]byte("y"))
	if bloomHas(g.Bloom, &other, 9) && bloomHas(g.Bloom, &other, 10) {
		t.Error("an id never added shows in two rounds")
	}
	if len(b) > MaxHello {
		t.Errorf("hello of %d bytes", len(b))
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTooShort},
		{"short message", []byte{0xf0, 1, 2}, ErrTooShort},
		{"short id", []byte{0x0f, 1}, ErrTooShort},
		{"long request", append([]byte{0x00}, make([]byte, 17)...), ErrTooShort},
		{"unknown", []byte{0x42}, ErrUnknownType},
		{"hello claims 200 neighbours", []byte{0x01, 0, 0, 0, 1, 0, 1, 200}, ErrBadHello},
		{"hello without relay count", []byte{0x01, 0, 0, 0, 1, 0, 1, 0}, ErrBadHello},
		{"hello with a 3-byte bloom", []byte{0x01, 0, 0, 0, 1, 0, 1, 0, 0, 1, 2, 3}, ErrBadHello},
	} {
		var f Frame
		if err := Decode(c.b, &f); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(AppendMessage(nil, Topic("t"), []byte("d")))
	f.Add(AppendRequest(nil, MessageID{}))
	h := Hello{Self: 1, Neighbours: []uint32{2, 3}, Relays: []uint32{3}, Bloom: make([]byte, 16)}
	f.Add(h.AppendTo(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr Frame
		if err := Decode(b, &fr); err != nil {
			return
		}
		if fr.Type == TypeHello {
			// What decodes encodes back to the same bytes.
			if got := fr.Hello.AppendTo(nil); !bytes.Equal(got, b) {
				t.Fatalf("hello % x re-encodes as % x", b, got)
			}
		}
	})
}
