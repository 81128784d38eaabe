package node

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/bsig"
)

// TestSignedBroadcast: a's neighbours are b (ours, honest), c (ours, an
// attacker) and r (a reference board). b's signed broadcast reaches a
// authenticated; a copy of it, one changed on the way, one c signed for
// b's address, and one of b's from another run are not taken for b's. A
// board's clear broadcast is still delivered, unauthenticated.
func TestSignedBroadcast(t *testing.T) {
	me := trustMesh(t, phys.ESPNOW(), true)
	me.proveAll()
	a, b, c, r := me.nodes[0], me.nodes[1], me.nodes[2], me.nodes[3]
	epB := epOf(a, b)
	last := func() Message {
		t.Helper()
		if len(me.got[0]) == 0 {
			t.Fatal("a got nothing")
		}
		return me.got[0][len(me.got[0])-1]
	}
	// Sent until a has it: a broadcast can be lost on the air.
	bcast := func(from *Node, signed bool, data []byte) Message {
		t.Helper()
		for range 10 {
			before := len(me.got[0])
			send := from.Broadcast
			if signed {
				send = from.BroadcastSigned
			}
			if err := me.wait(send(testApp, data, nil), time.Minute); err != nil {
				t.Fatal(err)
			}
			me.clk.RunFor(time.Second)
			if len(me.got[0]) > before {
				return last()
			}
		}
		t.Fatal("broadcast never delivered")
		return Message{}
	}
	m := bcast(b, true, []byte("hello from b"))
	if !m.Signed || !m.Authenticated() || m.From != b.ID() || !m.Broadcast || string(m.Blob) != "hello from b" {
		t.Fatalf("b's signed broadcast at a: %+v", m)
	}
	if len(me.got[3]) != 0 {
		t.Fatal("the reference board delivered an envelope it cannot read")
	}
	// A board's clear broadcast, and one a board-mode node "signs".
	for _, signed := range []bool{false, true} {
		if m := bcast(r, signed, []byte("from the board")); m.Signed || m.From != r.ID() {
			t.Fatalf("r's broadcast (signed %v) at a: %+v", signed, m)
		}
	}
	// Our own clear broadcasts stay unauthenticated.
	if m := bcast(b, false, []byte("clear")); m.Signed {
		t.Fatalf("a clear broadcast came signed: %+v", m)
	}

	// What an attacker on the radio can do with b's envelopes, delivered
	// to a as from b's address.
	now := me.clk.Now()
	inject := func(env []byte) error {
		t.Helper()
		return a.receiveSigned(epB, env, true, 0, now)
	}
	before := len(me.got[0])
	replayed := bsig.Append(nil, b.id, b.ID(), b.boot, 0, testApp, []byte("hello from b"))
	if err := inject(replayed); !errors.Is(err, ErrReplayed) {
		t.Fatalf("a copy of b's first broadcast: %v", err)
	}
	changed := bsig.Append(nil, b.id, b.ID(), b.boot, 100, testApp, []byte("pay c"))
	changed[bsig.Header+16] ^= 1
	if err := inject(changed); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a changed envelope: %v", err)
	}
	byC := bsig.Append(nil, c.id, b.ID(), b.boot, 101, testApp, []byte("pay c"))
	if err := inject(byC); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("c's signature in b's name: %v", err)
	}
	if err := a.receiveSigned(epB, bsig.Append(nil, b.id, b.ID(), b.boot, 102, testApp, nil)[:bsig.Min-1], true, 0, now); err == nil {
		t.Fatal("a short envelope was taken")
	}
	if len(me.got[0]) != before {
		t.Fatalf("a delivered %d refused envelopes", len(me.got[0])-before)
	}
	old := b.boot
	old[0] ^= 1
	if err := inject(bsig.Append(nil, b.id, b.ID(), old, 5, testApp, []byte("yesterday"))); err != nil {
		t.Fatal(err)
	}
	if m := last(); m.Signed || string(m.Blob) != "yesterday" {
		t.Fatalf("b's broadcast of another run: %+v", m)
	}
	s := a.Stats().Broadcasts
	if s.Replayed != 1 || s.Forged != 2 || s.Malformed != 1 || s.Verified == 0 || s.Unverified != 1 {
		t.Fatalf("a's counts: %+v", s)
	}
	// c's own signed broadcast is c's.
	if m := bcast(c, true, []byte("c, honestly")); !m.Signed || m.From != c.ID() {
		t.Fatalf("c's signed broadcast: %+v", m)
	}
	// One-hop unicast (a link that carries broadcasts to static peers one
	// datagram each hands them up so): b's envelope from c's address does
	// not verify, and the refusal goes back to c.
	if err := me.wait(c.Send(a.ID(), bsig.AppID, replayed, nil), time.Minute); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("b's envelope sent by c: %v", err)
	}
	own := bsig.Append(nil, c.id, c.ID(), c.boot, 1000, testApp, []byte("c, unicast"))
	if err := me.wait(c.Send(a.ID(), bsig.AppID, own, nil), time.Minute); err != nil {
		t.Fatal(err)
	}
	if m := last(); !m.Signed || m.Broadcast || m.From != c.ID() {
		t.Fatalf("c's envelope, unicast: %+v", m)
	}
}

// TestSignedBroadcastSize: signing adds bsig.Overhead bytes; a blob that
// no longer fits one frame goes as a broadcast sequence, verified all the
// same, and one too large for any broadcast schema fails, typed.
func TestSignedBroadcastSize(t *testing.T) {
	for _, tc := range []struct {
		phy    sim.PHY
		single int // the largest blob one frame carries signed
	}{{phys.ESPNOW(), 119}, {phys.LoRa(lora.Default), 109}} {
		t.Run(tc.phy.Name, func(t *testing.T) {
			me := newMesh(t, 2, tc.phy, sim.Loss{}, 3, nil)
			me.start()
			me.discover()
			me.proveAll()
			a := me.nodes[0]
			for _, size := range []int{tc.single, tc.single + 1, 1000} {
				want := 1
				if size > tc.single {
					want = 2
				}
				if size == 1000 {
					want = 5
				}
				sent := a.Stats().PacketsSent
				data := blob(size, 9)
				before := len(me.got[1])
				if err := me.wait(a.BroadcastSigned(testApp, data, nil), time.Minute); err != nil {
					t.Fatal(err)
				}
				if got := a.Stats().PacketsSent - sent; int(got) != want {
					t.Fatalf("%d bytes signed: %d frames, want %d", size, got, want)
				}
				me.clk.RunFor(10 * time.Second)
				if len(me.got[1]) != before+1 {
					t.Fatalf("%d bytes: delivered %d times", size, len(me.got[1])-before)
				}
				if m := me.got[1][before]; !m.Signed || m.From != a.ID() || !bytes.Equal(m.Blob, data) {
					t.Fatalf("%d bytes: %+v", size, m.Signed)
				}
			}
			if err := me.wait(a.BroadcastSigned(testApp, make([]byte, 70000), nil), time.Minute); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("a broadcast too large: %v", err)
			}
		})
	}
}
