package dashboard

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

func TestStretchBins(t *testing.T) {
	bins := stretchBins([]float64{1, 1, 1.04, 1.05, 1.25, 1.5})
	if len(bins) != 11 || bins[0].N != 3 || bins[1].N != 1 || bins[5].N != 1 || bins[10].N != 1 {
		t.Fatalf("bins %+v", bins)
	}
	// A long tail widens the bins to at most 40.
	bins = stretchBins([]float64{1, 9})
	if len(bins) > 40 || bins[0].N != 1 || bins[len(bins)-1].N != 1 || bins[len(bins)-1].Hi < 9 {
		t.Fatalf("bins %+v", bins)
	}
	if len(stretchBins(nil)) != 0 {
		t.Fatal("no stretches, no bins")
	}
}

func TestWriteRoutePage(t *testing.T) {
	r := &meshsim.RouteResult{
		Nodes: 3, Edges: 2, Trees: 1, ProbeStats: meshsim.ProbeStats{Delivered: 2, Pairs: 2},
		Positions:   [][2]float64{{0, 0}, {10, 0}, {20, 5}},
		Graph:       [][]int{{1}, {0, 2}, {1}},
		TreeParents: [][]int{{-1, 0, 1}}, Roots: []int{0},
		SampleRoutes: [][]int{{0, 1, 2}}, Stretches: []float64{1, 1},
	}
	var b bytes.Buffer
	if err := WriteRoutePage(&b, r); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"<!doctype html>", "function drawGraph", "function drawMesh", `id="tree-select"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, `src="`) || strings.Contains(page, `href="/`) {
		t.Fatal("the page loads something from elsewhere: it must be self-contained")
	}
	_, data, _ := strings.Cut(page, `<script type="application/json" id="data">`)
	data, _, _ = strings.Cut(data, "</script>")
	var v routeView
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Links) != 2 || v.Positions[2] != [2]float64{1, 0.25} || v.Histogram[0].N != 2 || len(v.Routes) != 1 {
		t.Fatalf("data %+v", v)
	}
	if err := WriteRoutePage(&b, &meshsim.RouteResult{}); err == nil {
		t.Fatal("a result without positions drew a page")
	}
}
