package meshsim

import (
	"time"

	"github.com/mycelium-mesh/mycelium/l1-link/capture"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

// capture writes every frame on the route mesh's medium to path.
func (m *routeMesh) capture(path string) (*capture.Writer, error) {
	lt := capture.LinkTypeUser0
	if len(m.radios) > 0 {
		lt = m.radios[0].CaptureLinkType()
	}
	w, err := capture.Create(path, lt)
	if err != nil {
		return nil, err
	}
	m.med.SetMonitor(func(at time.Time, from *sim.Radio, dst link.Addr, data []byte) {
		if dst == nil {
			dst = link.Broadcast
		}
		_ = w.Write(at, from.CaptureFrame(dst, from.Addr(), data))
	})
	return w, nil
}

// drawTrees records every tree's parents and root for the pictures.
func (m *routeMesh) drawTrees(res *RouteResult) {
	res.TreeParents = make([][]int, m.cfg.Trees)
	res.Roots = make([]int, m.cfg.Trees)
	for k := range m.cfg.Trees {
		res.TreeParents[k] = m.parents(k)
		res.Roots[k] = -1
		for i, t := range m.trees {
			if p, ok := t.Current(k); ok && p.Root && !m.dead[i] {
				res.Roots[k] = i
			}
		}
	}
}
