// The Lot page: a lot's genealogy backward and forward (depth and direction
// controls; click a lot to go to it), its record, work orders, equipment and
// production runs, and for each run a trend of its equipment's tags over
// the run's time window.

import { api, el, errorBox, table, formatCell } from './api.js';
import { genealogyGraph } from './graph.js';
import { miniTrend } from './trend.js';

const MAX_RUN_TAGS = 6;

export function lotPage(main, { arg, params, navigate }) {
  const input = el('input', { type: 'search', placeholder: 'Lot id', 'aria-label': 'Lot id', value: arg || '' });
  const depth = el('input', { type: 'number', min: 0, max: 50, value: params.get('depth') || 3, 'aria-label': 'Depth' });
  const direction = el('select', { 'aria-label': 'Direction' },
    ['both', 'backward', 'forward'].map((d) => el('option', { value: d, selected: d === (params.get('direction') || 'both') }, d)));
  const graphBox = el('div', { class: 'graph-box' });
  const details = el('div', { class: 'details' });
  const go = (lot) => {
    const p = new URLSearchParams({ depth: depth.value, direction: direction.value });
    navigate('lot', lot, p);
  };
  main.append(el('section', { class: 'page lot' },
    el('form', { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) go(input.value.trim()); } },
      input, el('label', {}, 'Depth ', depth), el('label', {}, 'Direction ', direction), el('button', { type: 'submit' }, 'Show')),
    graphBox, details));
  const charts = [];
  window.lotline.lot = { graph: null };
  if (!arg) { graphBox.append(el('p', { class: 'muted' }, 'Enter a lot id to see its genealogy.')); return {}; }
  depth.addEventListener('change', () => go(arg));
  direction.addEventListener('change', () => go(arg));

  api(`lots/${encodeURIComponent(arg)}/trace`, { params: { depth: depth.value, direction: direction.value } })
    .then((trace) => {
      window.lotline.lot.graph = trace;
      graphBox.append(el('p', { class: 'muted' }, `${trace.nodes.length} lots, ${trace.edges.length} edges` + (trace.truncated ? ' (cut at 500 lots)' : '')),
        genealogyGraph(trace, (lot) => go(lot)));
    }, (e) => graphBox.append(errorBox(e)));

  api(`lots/${encodeURIComponent(arg)}`).then((lot) => {
    details.append(el('h2', {}, `Lot ${lot.id}`));
    if (lot.lot) details.append(table([lot.lot]));
    if (lot.work_orders.length) details.append(el('h3', {}, 'Work orders'), table(lot.work_orders));
    if (lot.equipment.length) details.append(el('h3', {}, 'Equipment'), table(lot.equipment));
    details.append(el('h3', {}, 'Production runs'));
    if (!lot.runs.length) details.append(el('p', { class: 'muted' }, 'No production runs recorded for this lot.'));
    for (const run of lot.runs) {
      const tags = lot.tags.filter((t) => t.equipment === run.equipment).map((t) => t.tag).slice(0, MAX_RUN_TAGS);
      const from = Date.parse(run.start_ts);
      const to = run.end_ts ? Date.parse(run.end_ts) : Date.now();
      const box = el('div', { class: 'run card' },
        el('h4', {}, `${run.operation || 'run'} on ${run.equipment}`),
        el('p', { class: 'muted' }, `${formatCell(run.start_ts)} – ${run.end_ts ? formatCell(run.end_ts) : 'running'} · work order ${run.work_order || '–'}`));
      details.append(box);
      if (!tags.length) { box.append(el('p', { class: 'muted' }, 'No tags recorded for this equipment.')); continue; }
      const p = new URLSearchParams({ tags: tags.join(','), from: String(from), to: String(to) });
      box.append(el('a', { href: `#/trend?${p}` }, 'Open in Trend'));
      charts.push(miniTrend(box, tags, from, to));
    }
  }, (e) => details.append(errorBox(e)));

  return { dispose() { charts.forEach((c) => c.dispose()); } };
}
