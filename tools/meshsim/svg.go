package meshsim

import (
	"bufio"
	"fmt"
	"io"
	"math"
)

// WriteRouteSVG draws a route measurement as an SVG picture: the graph's
// links in light grey, tree 0 drawn over them (each node joined to its
// parent), its root in green, and the sampled route in red from its start
// (a ring) to its end (a filled dot), with a legend saying so under the
// title. Browsers and Inkscape open it.
func WriteRouteSVG(w io.Writer, r *RouteResult) error {
	const (
		size   = 1000.0 // the drawing's width; the height follows the layout
		margin = 40.0
	)
	if len(r.Positions) == 0 {
		return fmt.Errorf("svg: the result holds no positions")
	}
	minX, minY := math.Inf(1), math.Inf(1)
	maxX, maxY := math.Inf(-1), math.Inf(-1)
	for _, p := range r.Positions {
		minX, maxX = math.Min(minX, p[0]), math.Max(maxX, p[0])
		minY, maxY = math.Min(minY, p[1]), math.Max(maxY, p[1])
	}
	span := math.Max(maxX-minX, maxY-minY)
	if span == 0 {
		span = 1
	}
	scale := (size - 2*margin) / span
	const top = 60 // the title and the legend
	height := (maxY-minY)*scale + 2*margin + top
	xy := func(i int) (float64, float64) {
		return margin + (r.Positions[i][0]-minX)*scale, margin + top + (r.Positions[i][1]-minY)*scale
	}
	// Dots shrink as the mesh grows, so a thousand nodes stay legible.
	dot := math.Max(1.5, math.Min(6, 200/math.Sqrt(float64(len(r.Positions)))))

	b := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">`+"\n", size, height, size, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%.0f" y="24" font-family="sans-serif" font-size="16">%d nodes, %d links, %d trees, mode %d: delivered %d/%d, stretch %.3f (p95 %.2f)</text>`+"\n",
		margin, r.Nodes, r.Edges, r.Trees, r.Mode, r.Delivered, r.Pairs, r.StretchMean, r.StretchP95)
	legend(b, margin, 52)

	p(`<g stroke="#d0d0d0" stroke-width="0.6">` + "\n")
	for i, nbrs := range r.Graph {
		for _, j := range nbrs {
			if i < j {
				x1, y1 := xy(i)
				x2, y2 := xy(j)
				p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x1, y1, x2, y2)
			}
		}
	}
	p("</g>\n")

	p(`<g stroke="#2060c0" stroke-width="1.4">` + "\n")
	for i, parent := range r.Parents {
		if parent >= 0 && parent < len(r.Positions) {
			x1, y1 := xy(i)
			x2, y2 := xy(parent)
			p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x1, y1, x2, y2)
		}
	}
	p("</g>\n")

	p(`<g fill="#303030">` + "\n")
	for i := range r.Positions {
		x, y := xy(i)
		p(`<circle cx="%.1f" cy="%.1f" r="%.1f"><title>node %d</title></circle>`+"\n", x, y, dot, i)
	}
	p("</g>\n")
	for i, parent := range r.Parents {
		if parent < 0 && r.Root0 == i {
			x, y := xy(i)
			p(`<circle cx="%.1f" cy="%.1f" r="%.1f" fill="#20a040"><title>root of tree 0: node %d</title></circle>`+"\n", x, y, 2.5*dot, i)
		}
	}

	if route := r.SampleRoute; len(route) > 1 {
		p(`<polyline fill="none" stroke="#e02020" stroke-width="3" stroke-linejoin="round" points="`)
		for _, i := range route {
			if i >= 0 && i < len(r.Positions) {
				x, y := xy(i)
				p("%.1f,%.1f ", x, y)
			}
		}
		p(`"><title>a route: %d hops</title></polyline>`+"\n", len(route)-1)
		x, y := xy(route[0])
		p(`<circle cx="%.1f" cy="%.1f" r="%.1f" fill="none" stroke="#e02020" stroke-width="2.5"><title>from node %d</title></circle>`+"\n", x, y, 2.5*dot, route[0])
		x, y = xy(route[len(route)-1])
		p(`<circle cx="%.1f" cy="%.1f" r="%.1f" fill="#e02020"><title>to node %d</title></circle>`+"\n", x, y, 2.5*dot, route[len(route)-1])
	}
	p("</svg>\n")
	return b.Flush()
}

// legend draws the key to the picture in one row at (x, y): what each
// colour and mark means.
func legend(w io.Writer, x, y float64) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p(`<g id="legend" font-family="sans-serif" font-size="13">` + "\n")
	item := func(mark, text string, width float64) {
		p(`<g transform="translate(%.0f %.0f)">%s<text x="26" y="4">%s</text></g>`+"\n", x, y, mark, text)
		x += width
	}
	item(`<line x1="0" y1="0" x2="20" y2="0" stroke="#d0d0d0" stroke-width="2"/>`, "radio link", 110)
	item(`<line x1="0" y1="0" x2="20" y2="0" stroke="#2060c0" stroke-width="2"/>`, "tree 0 (node to parent)", 200)
	item(`<circle cx="10" cy="0" r="6" fill="#20a040"/>`, "root of tree 0", 140)
	item(`<line x1="0" y1="0" x2="20" y2="0" stroke="#e02020" stroke-width="3"/>`, "a sampled route", 150)
	item(`<circle cx="10" cy="0" r="6" fill="none" stroke="#e02020" stroke-width="2.5"/>`, "its source", 110)
	item(`<circle cx="10" cy="0" r="6" fill="#e02020"/>`, "its destination", 140)
	p("</g>\n")
}
