// A lot genealogy as a layered SVG graph: one column per depth (what went
// in on the left, where it went on the right), lots ordered in each column
// by the mean position of their neighbours (a few sweeps of the barycenter
// heuristic, so edges cross less), edges as curves from input to output.

const NS = 'http://www.w3.org/2000/svg';
const NODE_W = 150, NODE_H = 38, GAP_X = 70, GAP_Y = 14, PAD = 16;

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

// nodes: [{lot, depth, record}], edges: [{input_lot, output_lot, quantity, uom}]
export function genealogyGraph({ nodes, edges, lot }, onPick) {
  const layers = new Map();
  for (const n of nodes) {
    if (!layers.has(n.depth)) layers.set(n.depth, []);
    layers.get(n.depth).push(n.lot);
  }
  const depths = [...layers.keys()].sort((a, b) => a - b);
  for (const d of depths) layers.get(d).sort();
  const neighbours = new Map(nodes.map((n) => [n.lot, []]));
  for (const e of edges) {
    neighbours.get(e.input_lot)?.push(e.output_lot);
    neighbours.get(e.output_lot)?.push(e.input_lot);
  }
  const position = new Map();
  const place = () => { for (const d of depths) layers.get(d).forEach((l, i) => position.set(l, i)); };
  place();
  for (let sweep = 0; sweep < 4; sweep++) {
    const order = sweep % 2 === 0 ? depths : [...depths].reverse();
    for (const d of order) {
      const center = (l) => { const p = neighbours.get(l).filter((m) => position.has(m)).map((m) => position.get(m)); return p.length ? p.reduce((a, b) => a + b) / p.length : position.get(l); };
      layers.get(d).sort((a, b) => center(a) - center(b) || (a < b ? -1 : 1));
      place();
    }
  }
  const tallest = Math.max(...depths.map((d) => layers.get(d).length));
  const height = PAD * 2 + tallest * (NODE_H + GAP_Y);
  const width = PAD * 2 + depths.length * (NODE_W + GAP_X) - GAP_X;
  const xy = new Map();
  depths.forEach((d, column) => {
    const lots = layers.get(d);
    const top = PAD + ((tallest - lots.length) * (NODE_H + GAP_Y)) / 2;
    lots.forEach((l, row) => xy.set(l, [PAD + column * (NODE_W + GAP_X), top + row * (NODE_H + GAP_Y)]));
  });
  const root = svg('svg', { class: 'genealogy', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': `Genealogy of lot ${lot}` });
  const edgeLayer = svg('g', { class: 'edges' });
  for (const e of edges) {
    const a = xy.get(e.input_lot), b = xy.get(e.output_lot);
    if (!a || !b) continue;
    const x1 = a[0] + NODE_W, y1 = a[1] + NODE_H / 2, x2 = b[0], y2 = b[1] + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    const title = svg('title');
    title.textContent = `${e.input_lot} → ${e.output_lot}${e.quantity != null ? ` (${e.quantity} ${e.uom || ''})` : ''}`;
    edgeLayer.append(svg('path', { class: 'edge', d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, 'data-from': e.input_lot, 'data-to': e.output_lot }, title));
  }
  const nodeLayer = svg('g', { class: 'nodes' });
  for (const n of nodes) {
    const [x, y] = xy.get(n.lot);
    const label = svg('text', { x: x + 8, y: y + 16 });
    label.textContent = n.lot.length > 20 ? n.lot.slice(0, 19) + '…' : n.lot;
    const sub = svg('text', { x: x + 8, y: y + 30, class: 'sub' });
    sub.textContent = [n.record?.material, n.record?.status].filter(Boolean).join(' · ') || (n.depth < 0 ? 'input' : n.depth > 0 ? 'output' : '');
    const title = svg('title');
    title.textContent = `${n.lot} (depth ${n.depth})`;
    const group = svg('g', { class: `node${n.lot === lot ? ' start' : ''}`, 'data-lot': n.lot, tabindex: 0, role: 'link' },
      svg('rect', { x, y, width: NODE_W, height: NODE_H, rx: 5 }), label, sub, title);
    group.addEventListener('click', () => onPick(n.lot));
    group.addEventListener('keydown', (e) => { if (e.key === 'Enter') onPick(n.lot); });
    nodeLayer.append(group);
  }
  root.append(edgeLayer, nodeLayer);
  return root;
}
