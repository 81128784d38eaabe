// Drawing helpers shared by the node's dashboard and the simulator's page:
// plain SVG, no library.
'use strict';
const SVGNS = 'http://www.w3.org/2000/svg';
const PALETTE = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

function el(tag, attrs, text) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
	if (text !== undefined) e.textContent = text;
	return e;
}

function svgEl(tag, attrs, text) {
	const e = document.createElementNS(SVGNS, tag);
	for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
	if (text !== undefined) e.textContent = text;
	return e;
}

function fmtNum(v) {
	if (!isFinite(v)) return '0';
	const a = Math.abs(v);
	if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
	if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
	if (a >= 1e3) return (v / 1e3).toFixed(1) + 'k';
	if (a >= 10 || a === 0) return v.toFixed(0);
	return v.toFixed(2);
}

// lineChart draws series ({name, color, points: [[x, y], ...]}) over a
// shared x range; x is seconds (relative labels).
function lineChart(title, series, unit) {
	const W = 300, H = 150, L = 44, R = 8, T = 34, B = 20;
	const s = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
	s.appendChild(svgEl('text', { x: 4, y: 12, 'font-weight': 'bold' }, title));
	let xmin = Infinity, xmax = -Infinity, ymax = 0;
	for (const se of series) for (const [x, y] of se.points) {
		xmin = Math.min(xmin, x); xmax = Math.max(xmax, x); ymax = Math.max(ymax, y);
	}
	if (!isFinite(xmin)) { xmin = 0; xmax = 1; }
	if (xmax === xmin) xmax = xmin + 1;
	if (ymax <= 0) ymax = 1;
	const px = (x) => L + (x - xmin) / (xmax - xmin) * (W - L - R);
	const py = (y) => H - B - y / ymax * (H - T - B);
	for (const f of [0, 0.5, 1]) {
		s.appendChild(svgEl('line', { class: 'grid', x1: L, x2: W - R, y1: py(ymax * f), y2: py(ymax * f) }));
		s.appendChild(svgEl('text', { x: L - 4, y: py(ymax * f) + 4, 'text-anchor': 'end' }, fmtNum(ymax * f)));
	}
	s.appendChild(svgEl('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
	s.appendChild(svgEl('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
	s.appendChild(svgEl('text', { x: L, y: H - 5 }, `-${Math.round(xmax - xmin)} s`));
	s.appendChild(svgEl('text', { x: W - R, y: H - 5, 'text-anchor': 'end' }, unit ? `now (${unit})` : 'now'));
	let lx = L;
	series.forEach((se, i) => {
		const color = se.color || PALETTE[i % PALETTE.length];
		if (se.points.length > 0) {
			const d = se.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
			s.appendChild(svgEl('polyline', { points: d, fill: 'none', stroke: color, 'stroke-width': 1.5 }));
		}
		s.appendChild(svgEl('rect', { x: lx, y: 19, width: 8, height: 8, fill: color }));
		s.appendChild(svgEl('text', { x: lx + 11, y: 27 }, se.name));
		lx += 16 + se.name.length * 6;
	});
	return s;
}

// histogram draws bars of counts over bins ({lo, hi, n}).
function histogram(title, bins, xlabel) {
	const W = 520, H = 220, L = 44, R = 10, T = 22, B = 34;
	const s = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title, id: 'histogram' });
	s.appendChild(svgEl('text', { x: L, y: 14 }, title));
	const nmax = Math.max(1, ...bins.map((b) => b.n));
	const bw = (W - L - R) / Math.max(1, bins.length);
	bins.forEach((b, i) => {
		const h = b.n / nmax * (H - T - B);
		const r = svgEl('rect', { x: L + i * bw + 1, y: H - B - h, width: Math.max(1, bw - 2), height: h, fill: '#2f7d4f', class: 'bar' });
		r.appendChild(svgEl('title', {}, `${b.lo.toFixed(2)}–${b.hi.toFixed(2)}: ${b.n}`));
		s.appendChild(r);
		if (bins.length <= 12 || i % Math.ceil(bins.length / 12) === 0) {
			s.appendChild(svgEl('text', { x: L + i * bw + bw / 2, y: H - B + 13, 'text-anchor': 'middle' }, b.lo.toFixed(2)));
		}
	});
	s.appendChild(svgEl('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
	s.appendChild(svgEl('text', { x: L - 4, y: T + 4, 'text-anchor': 'end' }, String(nmax)));
	s.appendChild(svgEl('text', { x: (W + L) / 2, y: H - 4, 'text-anchor': 'middle' }, xlabel));
	return s;
}

// drawGraph draws nodes ({id, label, x, y, color, r, cls}) and edges
// ({a, b, color, width, dash}) laid out in [0, 1]², scaled to w × h.
function drawGraph(nodes, edges, w, h, id) {
	const s = svgEl('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, id: id || '' });
	const pad = 40;
	const byId = new Map(nodes.map((n) => [n.id, n]));
	const X = (n) => pad + n.x * (w - 2 * pad), Y = (n) => pad + n.y * (h - 2 * pad);
	for (const e of edges) {
		const a = byId.get(e.a), b = byId.get(e.b);
		if (!a || !b) continue;
		const line = svgEl('line', { x1: X(a), y1: Y(a), x2: X(b), y2: Y(b), stroke: e.color || '#cbd5e1', 'stroke-width': e.width || 1, class: e.cls || 'edge' });
		if (e.dash) line.setAttribute('stroke-dasharray', e.dash);
		s.appendChild(line);
	}
	for (const n of nodes) {
		const g = svgEl('g', { class: n.cls || 'node' });
		g.appendChild(svgEl('circle', { cx: X(n), cy: Y(n), r: n.r || 7, fill: n.color || '#64748b', stroke: '#fff', 'stroke-width': 1 }));
		if (n.label && n.below) g.appendChild(svgEl('text', { x: X(n), y: Y(n) + (n.r || 7) + 13, 'text-anchor': 'middle' }, n.label));
		else if (n.label) g.appendChild(svgEl('text', { x: X(n) + (n.r || 7) + 3, y: Y(n) + 4 }, n.label));
		if (n.title) g.appendChild(svgEl('title', {}, n.title));
		s.appendChild(g);
	}
	return s;
}

// pathChain lays a path out left to right: hops ({id, label, title}).
function pathChain(hops, id) {
	const w = Math.max(320, 130 * hops.length), h = 104;
	const nodes = hops.map((p, i) => ({
		id: 'hop' + i, label: p.label, title: p.title, x: hops.length === 1 ? 0.5 : i / (hops.length - 1), y: 0.1, below: true,
		color: i === 0 ? '#1f3b2d' : (i === hops.length - 1 ? '#2f7d4f' : '#2563eb'), r: 9, cls: 'hop',
	}));
	const edges = [];
	for (let i = 1; i < hops.length; i++) edges.push({ a: 'hop' + (i - 1), b: 'hop' + i, color: '#2563eb', width: 2.5, cls: 'hop-edge' });
	const s = drawGraph(nodes, edges, w, h, id);
	hops.forEach((p, i) => {
		if (p.sub) s.appendChild(svgEl('text', { x: 40 + nodes[i].x * (w - 80), y: 86, 'text-anchor': 'middle', class: 'muted' }, p.sub));
	});
	return s;
}
