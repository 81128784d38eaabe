package dashboard

import (
	"bufio"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"

	"github.com/mycelium-mesh/mycelium/tools/meshsim"
)

// routeView is what the simulator's page draws: the measurement's figures
// (its JSON), and the drawing's data (positions scaled to the unit square).
type routeView struct {
	*meshsim.RouteResult
	Positions [][2]float64 `json:"positions"`
	Links     [][2]int     `json:"links"`
	Parents   [][]int      `json:"parents"` // per tree, per node (-1: none)
	Roots     []int        `json:"roots"`
	Routes    [][]int      `json:"routes"`
	Histogram []bin        `json:"histogram"`
}

type bin struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	N  int     `json:"n"`
}

// stretchBins counts stretches (each at least 1) in bins 0.05 wide from
// 1, widened so that there are at most 40.
func stretchBins(s []float64) []bin {
	if len(s) == 0 {
		return []bin{}
	}
	hi := 1.0
	for _, v := range s {
		hi = math.Max(hi, v)
	}
	width := 0.05
	n := int(math.Floor((hi-1)/width)) + 1
	for n > 40 {
		width *= 2
		n = int(math.Floor((hi-1)/width)) + 1
	}
	out := make([]bin, n)
	for i := range out {
		out[i] = bin{Lo: 1 + float64(i)*width, Hi: 1 + float64(i+1)*width}
	}
	for _, v := range s {
		i := min(max(int(math.Floor((v-1)/width+1e-9)), 0), n-1)
		out[i].N++
	}
	return out
}

// WriteRoutePage writes a self-contained HTML page of a route
// measurement (`mycelium sim route --html`): the graph, each tree drawn
// over it, the sampled routes, and the histogram of stretches. The script
// and style are inlined; the page needs nothing else.
func WriteRoutePage(w io.Writer, r *meshsim.RouteResult) error {
	if len(r.Positions) == 0 {
		return fmt.Errorf("html: the result holds no positions")
	}
	v := routeView{
		RouteResult: r, Links: [][2]int{}, Parents: r.TreeParents, Roots: r.Roots, Routes: r.SampleRoutes,
		Histogram: stretchBins(r.Stretches),
	}
	if v.Parents == nil {
		v.Parents = [][]int{}
	}
	if v.Roots == nil {
		v.Roots = []int{}
	}
	if v.Routes == nil {
		v.Routes = [][]int{}
	}
	minX, minY := math.Inf(1), math.Inf(1)
	maxX, maxY := math.Inf(-1), math.Inf(-1)
	for _, p := range r.Positions {
		minX, maxX = math.Min(minX, p[0]), math.Max(maxX, p[0])
		minY, maxY = math.Min(minY, p[1]), math.Max(maxY, p[1])
	}
	span := math.Max(math.Max(maxX-minX, maxY-minY), 1e-9)
	for _, p := range r.Positions {
		v.Positions = append(v.Positions, [2]float64{(p[0] - minX) / span, (p[1] - minY) / span})
	}
	for i, nbrs := range r.Graph {
		for _, j := range nbrs {
			if i < j {
				v.Links = append(v.Links, [2]int{i, j})
			}
		}
	}
	data, err := json.Marshal(v) // escapes <, > and &: safe inside a script element
	if err != nil {
		return err
	}
	b := bufio.NewWriter(w)
	title := html.EscapeString(fmt.Sprintf("Mycelium: %d nodes, %d trees, seed %d", r.Nodes, r.Trees, r.Seed))
	fmt.Fprintf(b, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>\n", title)
	for _, part := range []struct {
		name, open, close string
	}{
		{"style.css", "", "</style>\n</head>\n<body>\n"},
		{"route.html", "", "<script type=\"application/json\" id=\"data\">"},
	} {
		a, err := assets.ReadFile("assets/" + part.name)
		if err != nil {
			return err
		}
		b.Write(a)
		b.WriteString(part.close)
	}
	b.Write(data)
	b.WriteString("</script>\n")
	for _, js := range []string{"mesh.js", "route.js"} {
		a, err := assets.ReadFile("assets/" + js)
		if err != nil {
			return err
		}
		b.WriteString("<script>\n")
		b.Write(a)
		b.WriteString("</script>\n")
	}
	b.WriteString("</body>\n</html>\n")
	return b.Flush()
}
