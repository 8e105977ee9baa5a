// The Trend page: pick tags (search as you type), a time range (presets,
// from/to, zoom and pan on the chart, each re-querying plot values for the
// chart's width), live mode appending new samples every second. The URL's
// hash holds tags and range, so a view can be shared.

import { api, el, errorBox, formatTime } from './api.js';
import { Chart, color } from './chart.js';

const PRESETS = [['Last hour', 3600e3], ['Shift (8 h)', 8 * 3600e3], ['Day', 86400e3], ['Week', 7 * 86400e3]];

// One tag's plot values as a chart series.
function toSeries(answer) {
  const p = answer.plot;
  const step = p.step_ns / 1e6;
  const def = answer.definition || {};
  return {
    // Booleans and states step, as the historian functions treat them.
    tag: answer.tag, unit: def.unit || '',
    interpolation: def.value_type === 'bool' || def.value_type === 'string' ? 'step' : (def.interpolation || 'linear'),
    // `to`: the end of what was read (ranges are [from, to)); live mode
    // reads again from a little before it.
    t: p.t, v: p.v, c: p.c, samples: p.samples, stepMs: step, stepNs: p.step_ns, from: answer.from, to: answer.to,
    quality: p.quality.map(([c0, c1, s]) => [answer.from + c0 * step, answer.from + (c1 + 1) * step, s]),
  };
}

function loadOne(tag, from, to, width) {
  return api('history', { params: { tag, from: Math.round(from), to: Math.round(to), width } }).then(toSeries);
}

export function loadSeries(tags, from, to, width) {
  return Promise.all(tags.map((tag) => loadOne(tag, from, to, width)));
}

// A chart of `tags` over [from, to] that re-queries on zoom and pan; for
// the Lot page's runs, without the page around it.
export function miniTrend(container, tags, from, to) {
  const status = el('p', { class: 'muted' }, 'Loading…');
  container.append(status);
  let seq = 0;
  const chart = new Chart(container, { onView: (a, b) => show(a, b) });
  chart.canvas.classList.add('small');
  async function show(a, b) {
    const mine = ++seq;
    chart.setView(a, b);
    try {
      const series = await loadSeries(tags, a, b, chart.plotWidth());
      if (mine !== seq) return;
      chart.setSeries(series);
      status.textContent = series.map((s) => `${s.tag}: ${s.samples} samples`).join(' · ');
    } catch (e) { status.replaceWith(errorBox(e)); }
  }
  show(from, to);
  return chart;
}

export function trendPage(main, { params, navigate }) {
  const state = readState(params);
  const chips = el('div', { class: 'chips', 'aria-label': 'Tags on the chart' });
  const results = el('ul', { class: 'results', role: 'listbox', id: 'tag-results' });
  const search = el('input', { type: 'search', placeholder: 'Search tags (name, part of it)…', 'aria-label': 'Search tags', 'aria-controls': 'tag-results', autocomplete: 'off' });
  const fromInput = el('input', { type: 'datetime-local', step: 1, 'aria-label': 'From' });
  const toInput = el('input', { type: 'datetime-local', step: 1, 'aria-label': 'To' });
  const live = el('input', { type: 'checkbox', 'aria-label': 'Live' });
  const info = el('p', { class: 'muted', role: 'status' });
  const legend = el('div', { class: 'legend' });
  const presets = PRESETS.map(([label, span]) => el('button', { type: 'button', onclick: () => go({ ...state, span, live: state.live, from: null, to: null }) }, label));
  main.append(el('section', { class: 'page trend' },
    el('div', { class: 'toolbar' },
      el('div', { class: 'search' }, search, results),
      el('div', { class: 'range' }, presets,
        el('label', {}, 'From ', fromInput), el('label', {}, 'To ', toInput),
        el('button', { type: 'button', onclick: () => go({ ...state, from: Date.parse(fromInput.value), to: Date.parse(toInput.value), span: null, live: false }) }, 'Apply'),
        el('label', { class: 'live' }, live, ' Live'))),
    chips, legend));
  const chart = new Chart(main.querySelector('.trend'), { onView: (from, to) => go({ ...state, from, to, span: null, live: false }) });
  main.querySelector('.trend').append(info);
  const exposed = { chart, series: [], requests: 0 };
  window.lotline.trend = exposed;
  let seq = 0, timer = null;

  function readState(p) {
    return {
      tags: (p.get('tags') || '').split(',').filter(Boolean),
      from: p.has('from') ? +p.get('from') : null,
      to: p.has('to') ? +p.get('to') : null,
      span: p.has('span') ? +p.get('span') : (p.has('from') ? null : 3600e3),
      live: p.get('live') === '1',
    };
  }

  function go(next) {
    const p = new URLSearchParams();
    if (next.tags.length) p.set('tags', next.tags.join(','));
    if (next.span) p.set('span', String(Math.round(next.span)));
    else { p.set('from', String(Math.round(next.from))); p.set('to', String(Math.round(next.to))); }
    if (next.live) p.set('live', '1');
    navigate('trend', '', p);
  }

  function range() {
    if (state.span) { const to = Date.now(); return [to - state.span, to]; }
    return [state.from, state.to];
  }

  function toLocalInput(ms) { const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3); return d.toISOString().slice(0, 19); }

  async function load() {
    const mine = ++seq;
    const [from, to] = range();
    fromInput.value = toLocalInput(from); toInput.value = toLocalInput(to);
    live.checked = state.live;
    chips.replaceChildren(...state.tags.map((tag, i) => el('span', { class: 'chip' },
      el('i', { class: 'swatch', 'data-color': color(i) }), tag,
      el('button', { type: 'button', 'aria-label': `Remove ${tag}`, onclick: () => go({ ...state, tags: state.tags.filter((t) => t !== tag) }) }, '×'))));
    for (const swatch of chips.querySelectorAll('.swatch')) swatch.style.background = swatch.dataset.color;
    chart.setView(from, to);
    if (!state.tags.length) { exposed.series = []; chart.setSeries([]); info.textContent = 'Search for tags above to draw them.'; return; }
    info.textContent = 'Loading…';
    const started = performance.now();
    try {
      exposed.requests += state.tags.length;
      const series = await loadSeries(state.tags, from, to, chart.plotWidth());
      if (mine !== seq) return;
      exposed.series = series;
      chart.setSeries(series);
      const elapsed = performance.now() - started;
      exposed.drawnAt = performance.now();
      exposed.lastLoadMs = elapsed;
      info.textContent = `${series.reduce((n, s) => n + s.samples, 0).toLocaleString()} samples, ` +
        `${series.reduce((n, s) => n + s.t.length, 0).toLocaleString()} points drawn, ${formatTime(from)} – ${formatTime(to)}, ${elapsed.toFixed(0)} ms`;
      legend.replaceChildren(...series.map((s, i) => el('span', { class: 'legend-item', 'data-color': color(i) }, `${s.tag} [${s.unit || 'no unit'}]`)));
      for (const item of legend.querySelectorAll('.legend-item')) item.style.borderColor = item.dataset.color;
    } catch (e) { if (mine === seq) info.replaceChildren(errorBox(e)); }
  }

  // Live: every second, fetch what came since the last answer and append it.
  // One tick at a time; a tick that a new view (zoom, other tags) overtook
  // is dropped.
  let ticking = false;
  async function tick() {
    if (ticking || !state.live || !exposed.series.length) return;
    ticking = true;
    const mine = seq;
    const series = exposed.series;
    const now = Math.round(Date.now());
    const from = now - state.span;
    try {
      // Samples arrive late (collectors batch, edges forward): each tick
      // reads again a trailing part of what it read before and replaces it.
      const lookback = Math.min(300e3, Math.max(5e3, state.span / 10));
      const fresh = await Promise.all(series.map((s) => {
        const since = Math.round(Math.max(s.to - lookback, from));
        if (now <= since) return null;
        const width = Math.max(1, Math.ceil((now - since) / s.stepMs));
        return loadOne(s.tag, since, now, width);
      }));
      if (mine !== seq || !state.live || series !== exposed.series) return;
      series.forEach((s, i) => {
        const f = fresh[i];
        if (!f) return;
        // Keep what is still in the window and before the re-read part.
        const keep = (t) => t >= from && t < f.from;
        const kept = s.t.map((t, k) => k).filter((k) => keep(s.t[k]));
        s.t = kept.map((k) => s.t[k]).concat(f.t);
        s.v = kept.map((k) => s.v[k]).concat(f.v);
        s.quality = s.quality.filter(([t0, t1]) => t1 >= from && t0 < f.from)
          .map(([t0, t1, q]) => [t0, Math.min(t1, f.from), q]).concat(f.quality);
        s.to = f.to;
      });
      chart.setView(from, now);
      chart.setSeries(series);
      exposed.appended = (exposed.appended || 0) + fresh.reduce((n, s) => n + (s ? s.t.length : 0), 0);
    } catch (e) { info.replaceChildren(errorBox(e)); } finally { ticking = false; }
  }

  live.addEventListener('change', () => {
    const [from, to] = range();
    go({ ...state, live: live.checked, span: live.checked ? (to - from) : null, from, to });
  });

  let searchSeq = 0;
  search.addEventListener('input', async () => {
    const mine = ++searchSeq;
    const q = search.value.trim();
    if (!q) { results.replaceChildren(); return; }
    try {
      const answer = await api('tags', { params: { q, limit: 20 } });
      if (mine !== searchSeq) return;
      results.replaceChildren(...answer.tags.map((t) => el('li', { role: 'option', tabindex: 0, 'data-tag': t.tag,
        onclick: () => pick(t.tag), onkeydown: (e) => { if (e.key === 'Enter') pick(t.tag); } },
      el('b', {}, t.tag), ' ', el('span', { class: 'muted' }, [t.unit, t.equipment, t.description].filter(Boolean).join(' · ')))));
    } catch (e) { results.replaceChildren(el('li', {}, errorBox(e))); }
  });
  search.addEventListener('keydown', (e) => { if (e.key === 'ArrowDown') results.querySelector('li')?.focus(); });
  function pick(tag) {
    search.value = ''; results.replaceChildren();
    if (!state.tags.includes(tag)) go({ ...state, tags: [...state.tags, tag] });
    search.focus();
  }

  load();
  timer = setInterval(tick, 1000);
  return {
    dispose() { clearInterval(timer); chart.dispose(); },
    update(_arg, p) { Object.assign(state, readState(p)); load(); return true; },
  };
}
