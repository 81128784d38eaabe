// The node's dashboard: state from server-sent events, drawn in SVG.
'use strict';
const $ = (id) => document.getElementById(id);
const MAX_SAMPLES = 300;
let samples = [];

const short = (id) => (id ? id.slice(0, 8) : '?');

function nameOf(s, id) {
	for (const p of s.peers) if (p.node_id === id && p.name) return p.name;
	for (const t of s.trees) for (const m of [...t.path, ...t.children, ...t.neighbors]) if (m.id === id && m.name) return m.name;
	if (id === s.node.id) return s.node.name || short(id);
	return short(id);
}

function fillTable(tbody, rows) {
	tbody.replaceChildren(...rows.map((cells) => {
		const tr = el('tr');
		for (const c of cells) tr.appendChild(typeof c === 'string' ? el('td', {}, c) : c);
		return tr;
	}));
}

function renderHeader(s) {
	$('node-name').textContent = s.node.name || short(s.node.id);
	$('node-id').textContent = s.node.id;
	$('peer-count').textContent = String(s.peers.length);
	$('tree-count').textContent = String(s.trees.length);
	const up = Math.round(s.node.uptime_s);
	$('node-meta').textContent = `${s.node.version} · up ${Math.floor(up / 60)}m${up % 60}s · ${s.node.registered ? 'registered' : 'not registered yet'}`;
	document.title = `${s.node.name || short(s.node.id)} · Mycelium`;
}

function renderLinks(s) {
	fillTable($('links').tBodies[0], s.links.map((l) => {
		const air = l.duty_used !== undefined ? `${(100 * l.duty_used).toFixed(1)} % duty` : `${l.airtime_s.toFixed(2)} s`;
		return [String(l.index), l.type, el('td', { class: 'mono' }, l.addr), String(l.mtu), fmtNum(l.tx_frames), fmtNum(l.rx_frames), String(l.drops), air];
	}));
}

function renderPeers(s) {
	$('peers-empty').hidden = s.peers.length > 0;
	fillTable($('peers').tBodies[0], s.peers.map((p) => [
		p.name || '–', el('td', { class: 'mono', title: p.node_id }, short(p.node_id)), `${p.link} ${p.link_index}`,
		el('td', { class: 'mono' }, p.addr), `${p.last_heard_s.toFixed(1)} s ago`, p.reference ? 'reference board' : '',
	]));
}

// rates turns cumulative counters into per-second rates over the samples.
function rates(get) {
	const out = [];
	for (let i = 1; i < samples.length; i++) {
		const a = samples[i - 1], b = samples[i];
		const dt = (Date.parse(b.time) - Date.parse(a.time)) / 1000;
		if (dt <= 0) continue;
		const va = get(a), vb = get(b);
		if (va === undefined || vb === undefined) continue;
		out.push([(Date.parse(b.time) - Date.parse(samples[samples.length - 1].time)) / 1000, Math.max(0, (vb - va) / dt)]);
	}
	return out;
}

function renderCharts(s) {
	const box = $('charts');
	const charts = [];
	for (const l of s.links) {
		const at = (x) => x.links.find((k) => k.index === l.index);
		const name = `link ${l.index} (${l.type})`;
		charts.push(lineChart(`${name}: frames/s`, [
			{ name: 'tx', points: rates((x) => at(x)?.tx_frames) },
			{ name: 'rx', points: rates((x) => at(x)?.rx_frames) }]));
		charts.push(lineChart(`${name}: bytes/s`, [
			{ name: 'tx', points: rates((x) => at(x)?.tx_bytes) },
			{ name: 'rx', points: rates((x) => at(x)?.rx_bytes) }]));
		if (l.duty_used !== undefined) {
			charts.push(lineChart(`${name}: duty cycle used`, [{ name: '%', points: samples.filter((x) => at(x)?.duty_used !== undefined).map((x) => [(Date.parse(x.time) - Date.parse(s.time)) / 1000, 100 * at(x).duty_used]) }], '%'));
		} else {
			charts.push(lineChart(`${name}: airtime`, [{ name: '% of time', points: rates((x) => at(x)?.airtime_s).map(([t, v]) => [t, 100 * v]) }], '%'));
		}
		const reasons = new Set();
		for (const x of samples) for (const r of Object.keys(at(x)?.drops_by_reason || {})) reasons.add(r);
		charts.push(lineChart(`${name}: drops/s by reason`, [...reasons].map((r) => ({ name: r, points: rates((x) => (at(x) ? (at(x).drops_by_reason || {})[r] || 0 : undefined)) }))));
	}
	box.replaceChildren(...charts);
}

function renderTrees(s) {
	$('trees-empty').hidden = s.trees.length > 0;
	const figs = s.trees.map((t) => {
		const fig = el('figure', { class: 'tree', 'data-tree': String(t.tree) });
		const nodes = [], edges = [];
		const depth = t.path.length;
		const rows = depth + (t.children.length ? 1 : 0);
		const y = (i) => (rows <= 1 ? 0.5 : i / (rows - 1));
		t.path.forEach((m, i) => {
			const self = i === depth - 1;
			nodes.push({ id: 'p' + i, label: (m.name || short(m.id)) + ` (${m.address || 'root'})`, title: m.id, x: 0.35, y: y(i),
				color: self ? '#1f3b2d' : (i === 0 ? '#2f7d4f' : '#2563eb'), r: self ? 8 : 6, cls: i === 0 ? 'root' : 'path' });
			if (i > 0) edges.push({ a: 'p' + (i - 1), b: 'p' + i, color: '#2f7d4f', width: 2 });
		});
		t.children.forEach((m, j) => {
			nodes.push({ id: 'c' + j, label: m.name || short(m.id), title: `${m.id} (${m.address})`, x: t.children.length === 1 ? 0.35 : 0.05 + 0.8 * j / (t.children.length - 1), y: y(rows - 1), color: '#64748b', r: 5, cls: 'child' });
			edges.push({ a: 'p' + (depth - 1), b: 'c' + j, color: '#94a3b8' });
		});
		const h = 80 + 45 * Math.max(1, rows - 1);
		fig.appendChild(drawGraph(nodes, edges, 260, h));
		fig.appendChild(el('figcaption', {}, `tree ${t.tree}: ${t.is_root ? 'this node is the root' : `depth ${t.depth}, address ${t.address}`}; ${t.children.length} children, ${t.neighbors.length} placed neighbours`));
		return fig;
	});
	$('trees').replaceChildren(...figs);
}

// renderMesh draws what this node knows: itself, its peers, and the nodes
// on its trees' paths, with the tree edges it knows.
function renderMesh(s) {
	const nodes = new Map(), edges = [];
	nodes.set(s.node.id, { id: s.node.id, label: s.node.name || short(s.node.id), color: '#1f3b2d', r: 9, cls: 'self' });
	s.peers.forEach((p) => nodes.set(p.node_id, { id: p.node_id, label: p.name || short(p.node_id), color: '#2563eb', r: 7, cls: 'peer' }));
	for (const p of s.peers) edges.push({ a: s.node.id, b: p.node_id, color: '#93c5fd', width: 1.5 });
	for (const t of s.trees) {
		t.path.forEach((m, i) => {
			if (!nodes.has(m.id)) nodes.set(m.id, { id: m.id, label: m.name || short(m.id), color: '#94a3b8', r: 6, cls: 'known' });
			if (i > 0) edges.push({ a: t.path[i - 1].id, b: m.id, color: '#2f7d4f', width: 1.5, dash: '4 2' });
		});
		for (const c of t.children) {
			if (!nodes.has(c.id)) nodes.set(c.id, { id: c.id, label: c.name || short(c.id), color: '#94a3b8', r: 6, cls: 'known' });
			edges.push({ a: s.node.id, b: c.id, color: '#2f7d4f', width: 1.5, dash: '4 2' });
		}
	}
	const list = [...nodes.values()];
	const peers = list.filter((n) => n.cls === 'peer'), others = list.filter((n) => n.cls === 'known');
	list[0].x = 0.5; list[0].y = 0.5;
	peers.forEach((n, i) => { const a = 2 * Math.PI * i / peers.length; n.x = 0.5 + 0.25 * Math.cos(a); n.y = 0.5 + 0.25 * Math.sin(a); });
	others.forEach((n, i) => { const a = 2 * Math.PI * (i + 0.5) / others.length; n.x = 0.5 + 0.47 * Math.cos(a); n.y = 0.5 + 0.47 * Math.sin(a); });
	$('mesh').replaceChildren(drawGraph(list, edges, 420, 320, 'mesh-graph'));
}

function renderErrors(s) {
	$('errors-empty').hidden = s.errors.length > 0;
	$('errors').replaceChildren(...s.errors.slice().reverse().map((e) =>
		el('li', {}, `${new Date(e.time).toLocaleTimeString()} ${e.what}`)));
}

function render() {
	const s = samples[samples.length - 1];
	if (!s) return;
	renderHeader(s);
	renderLinks(s);
	renderPeers(s);
	renderCharts(s);
	renderTrees(s);
	renderMesh(s);
	renderErrors(s);
}

function connect() {
	const es = new EventSource('/events');
	es.addEventListener('history', (e) => {
		samples = JSON.parse(e.data) || [];
		$('conn').textContent = 'live';
		render();
	});
	es.addEventListener('sample', (e) => {
		samples.push(JSON.parse(e.data));
		if (samples.length > MAX_SAMPLES) samples.shift();
		render();
	});
	es.addEventListener('error', () => { $('conn').textContent = 'reconnecting…'; });
}

$('ping-form').addEventListener('submit', async (ev) => {
	ev.preventDefault();
	const target = $('ping-target').value.trim();
	if (!target) return;
	$('ping-button').disabled = true;
	$('ping-status').textContent = `pinging ${target}…`;
	$('ping-path').replaceChildren();
	try {
		const resp = await fetch('/api/trace', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ target }) });
		const r = await resp.json();
		if (!resp.ok) {
			$('ping-status').textContent = `${target}: ${r.error}`;
			return;
		}
		const s = samples[samples.length - 1];
		const hops = [{ label: s ? (s.node.name || short(s.node.id)) : 'this node', title: s ? s.node.id : '', sub: 'here' }];
		for (const h of r.hops) if (!s || h.node_id !== s.node.id) hops.push({ label: h.name || short(h.node_id), title: `${h.node_id} (${h.address})`, sub: `${h.rtt_ms.toFixed(1)} ms` });
		$('ping-path').replaceChildren(pathChain(hops, 'path-graph'));
		const rtt = r.rtt_ms !== undefined ? `echo in ${r.rtt_ms.toFixed(1)} ms` : `no echo${r.error ? ': ' + r.error : ''}`;
		const n = hops.length - 1;
		$('ping-status').textContent = `${target}: ${n} hop${n === 1 ? '' : 's'}${r.complete ? '' : ' (trace incomplete)'}, ${rtt}`;
	} catch (e) {
		$('ping-status').textContent = `${target}: ${e}`;
	} finally {
		$('ping-button').disabled = false;
	}
});

connect();
