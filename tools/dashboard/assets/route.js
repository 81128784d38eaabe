// The simulator's page: `mycelium sim route --html`. Its data is inlined.
'use strict';
const D = JSON.parse(document.getElementById('data').textContent);
const g = (id) => document.getElementById(id);

function drawMesh() {
	const tree = Number(g('tree-select').value || 0), ri = Number(g('route-select').value || -1);
	const n = D.positions.length;
	const r = Math.max(1.5, Math.min(6, 120 / Math.sqrt(n)));
	const route = ri >= 0 ? D.routes[ri] || [] : [];
	const on = new Set(route);
	const root = D.roots[tree] !== undefined ? D.roots[tree] : -1;
	const nodes = D.positions.map((p, i) => {
		const nd = { id: i, x: p[0], y: p[1], r, color: '#64748b', cls: 'node', title: `node ${i}` };
		if (i === root) Object.assign(nd, { r: r * 2, color: '#16a34a', cls: 'root', title: `node ${i}: root of tree ${tree}` });
		if (on.has(i)) nd.color = '#dc2626';
		if (route.length && i === route[0]) Object.assign(nd, { r: r * 1.8, color: '#fff', cls: 'route-start' });
		if (route.length && i === route[route.length - 1]) Object.assign(nd, { r: r * 1.8, color: '#dc2626', cls: 'route-end' });
		if (n <= 60) nd.label = String(i);
		return nd;
	});
	const edges = D.links.map(([a, b]) => ({ a, b, color: '#e2e8f0', width: 0.6 }));
	const parents = D.parents[tree] || [];
	parents.forEach((p, i) => { if (p >= 0) edges.push({ a: i, b: p, color: '#16a34a', width: 1.3, cls: 'tree-edge' }); });
	for (let i = 1; i < route.length; i++) edges.push({ a: route[i - 1], b: route[i], color: '#dc2626', width: 3, cls: 'route-edge' });
	const s = drawGraph(nodes, edges, 900, 900, 'mesh-graph');
	if (route.length) {
		const start = s.querySelector('g.route-start circle');
		if (start) { start.setAttribute('stroke', '#dc2626'); start.setAttribute('stroke-width', 2.5); }
	}
	g('graph').replaceChildren(s);
}

function init() {
	g('summary').textContent = `${D.nodes} nodes, ${D.edges} links (mean degree ${D.mean_degree.toFixed(2)}), ${D.trees} trees, mode ${D.mode}, seed ${D.seed}`;
	for (let k = 0; k < D.parents.length; k++) g('tree-select').appendChild(el('option', { value: String(k) }, `${k}${D.roots[k] >= 0 ? ` (root ${D.roots[k]})` : ''}`));
	g('route-select').appendChild(el('option', { value: '-1' }, 'none'));
	D.routes.forEach((rt, i) => g('route-select').appendChild(el('option', { value: String(i) }, `${rt[0]} → ${rt[rt.length - 1]} (${rt.length - 1} hops)`)));
	if (D.routes.length) g('route-select').value = '0';
	g('tree-select').addEventListener('change', drawMesh);
	g('route-select').addEventListener('change', drawMesh);
	drawMesh();
	g('hist').replaceChildren(histogram(`${D.delivered} of ${D.pairs} routes delivered`, D.histogram, 'stretch (hops taken / shortest)'));
	g('hist-note').textContent = `mean ${D.stretch_mean.toFixed(3)}, p95 ${D.stretch_p95.toFixed(3)}, max ${D.stretch_max.toFixed(3)}`;
	const rows = [
		['converged', `${D.converged_s.toFixed(1)} s of mesh time (${D.converged_beacon_periods.toFixed(2)} beacon periods)`],
		['delivered', `${D.delivered} / ${D.pairs}`],
		['stretch', `mean ${D.stretch_mean.toFixed(3)}, p95 ${D.stretch_p95.toFixed(3)}, max ${D.stretch_max.toFixed(3)}`],
		['deepest', `${D.max_depth} levels`],
		['loops', `${D.loops} hops that did not bring a Package closer`],
	];
	g('figures').tBodies[0].replaceChildren(...rows.map(([k, v]) => { const tr = el('tr'); tr.appendChild(el('th', {}, k)); tr.appendChild(el('td', {}, v)); return tr; }));
}

init();
