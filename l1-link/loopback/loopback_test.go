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
		return linktest.Virtual(clk, time.Minute, time.Second, hub.NewLink(), hub.NewLink(), hub.NewLink())
	})
}

var _ link.Link = (*loopback.Link)(nil)
