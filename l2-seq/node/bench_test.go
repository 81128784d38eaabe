package node

import (
	"sort"
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
	"github.com/mycelium-mesh/mycelium/l1-link/sim/phys"
	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/sequence"
)

// transferRun measures one Package of size bytes from node 0 to node 1.
func transferRun(t testing.TB, phy sim.PHY, size int, loss float64, seed uint64) (time.Duration, bool) {
	me := newMesh(t, 2, phy, sim.Independent(loss), seed, func(i int, c *Config) { c.BeaconPeriod = time.Hour })
	me.start()
	me.discover()
	a, b := me.nodes[0], me.nodes[1]
	start := me.clk.Now()
	r := a.Send(b.ID(), testApp, blob(size-packet.PackageOverhead, 3), nil)
	me.clk.RunWhile(start.Add(time.Hour), func() bool { return !r.Finished() })
	return me.clk.Now().Sub(start), r.Err() == nil
}

func TestTransferEfficiency(t *testing.T) {
	cases := []struct {
		name string
		phy  sim.PHY
		size int
		loss float64
	}{
		{"espnow/0", phys.ESPNOW(), 62207, 0},
		{"espnow/0.1", phys.ESPNOW(), 62207, 0.1},
		{"espnow/0.3", phys.ESPNOW(), 62207, 0.3},
		{"lora/0.1", phys.LoRa(lora.Default), 4096, 0.1},
	}
	for _, c := range cases {
		var ds []float64
		fails := 0
		for seed := range uint64(9) {
			d, ok := transferRun(t, c.phy, c.size, c.loss, seed+1)
			if !ok {
				fails++
			}
			ds = append(ds, d.Seconds())
		}
		sort.Float64s(ds)
		med := ds[len(ds)/2]
		s := packet.MustLookup(2)
		if c.phy.Name != "espnow" {
			s = packet.MustLookup(22)
		}
		count := sequence.Count(s, c.size)
		full := c.phy.Airtime(s.MaxPacket())
		last := c.phy.Airtime(s.HeaderSize + c.size - (count-1)*s.MaxBody)
		bound := (time.Duration(count-1)*full + last).Seconds() / (1 - c.loss)
		t.Logf("%s: median %.3fs bound %.3fs efficiency %.3f fails %d  %v", c.name, med, bound, bound/med, fails, ds)
	}
}
