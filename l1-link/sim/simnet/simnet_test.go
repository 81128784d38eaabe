package simnet_test

import (
	"slices"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/simnet"
)

func TestNet(t *testing.T) {
	n := simnet.New()
	n.AddMedium("espnow", phys.ESPNOW(), 1)
	n.AddMedium("lora", phys.LoRa(lora.Default), 2)
	a := n.AddStation(sim.Position{}, "espnow")
	gw := n.AddStation(sim.Position{X: 10}, "espnow", "lora")
	far := n.AddStation(sim.Position{X: 1000}, "lora")
	if got := n.ConnectWithin("espnow", 50, sim.Loss{}); got != 1 {
		t.Fatalf("%d espnow pairs", got)
	}
	n.Connect("lora", gw, far, sim.Loss{}, sim.Loss{})
	if ls := n.Links(gw); len(ls) != 2 || ls[0].Info().Name != "espnow" || ls[1].Info().Name != "rylr998" {
		t.Fatalf("gateway links %v", ls)
	}
	if !slices.Equal(n.Neighbors(gw), []int{a, far}) || !slices.Equal(n.Neighbors(far), []int{gw}) {
		t.Fatalf("neighbours %v %v", n.Neighbors(gw), n.Neighbors(far))
	}
	// Traffic flows between connected stations, on the network's clock.
	var r linktest.Recorder
	n.Radio(far, "lora").Attach(&r)
	if _, err := r.Send(n.Radio(gw, "lora"), link.Broadcast, []byte("over the hill")); err != nil {
		t.Fatal(err)
	}
	if !n.RunUntil(time.Minute, func() bool { return len(r.Frames()) == 1 }) {
		t.Fatal("nothing arrived")
	}
	n.Disconnect("lora", gw, far)
	if len(n.Neighbors(far)) != 0 {
		t.Fatal("still connected")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a station on a medium never added did not panic")
		}
	}()
	n.AddStation(sim.Position{}, "nowhere")
}
