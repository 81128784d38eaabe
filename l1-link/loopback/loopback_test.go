package loopback_test

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/link/linktest"
	"github.com/mycelium-mesh/mycelium/l1-link/loopback"
)

func TestConformance(t *testing.T) {
	linktest.Run(t, func(t *testing.T) *linktest.Env {
		clk := clock.NewVirtual(time.Time{})
		hub := loopback.NewHub(clk)
		e := &linktest.Env{}
		for range 3 {
			e.Links = append(e.Links, hub.NewLink())
		}
		e.Wait = func(cond func() bool) bool {
			return clk.RunWhile(clk.Now().Add(time.Minute), func() bool { return !cond() }) || cond()
		}
		e.Settle = func() { clk.RunFor(time.Second) }
		return e
	})
}

var _ link.Link = (*loopback.Link)(nil)
