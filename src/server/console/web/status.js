// The Collectors and server page: collector_status and the server's
// figures from /metrics' sources, refreshed every two seconds; the ingest
// rate is the change of lotline_rows_ingested_total between refreshes.

import { api, el, errorBox, table } from './api.js';

const sum = (metrics, name, label) => metrics.filter(([n, l]) => n === name && (!label || Object.entries(label).every(([k, v]) => l[k] === v))).reduce((a, [, , v]) => a + v, 0);

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function statusPage(main) {
  const health = el('div', { class: 'health card', role: 'status' });
  const figures = el('dl', { class: 'figures' });
  const collectors = el('div', { class: 'collectors' });
  main.append(el('section', { class: 'page status' }, el('h2', {}, 'Server'), health, figures, el('h2', {}, 'Collectors'), collectors));
  let previous = null;

  async function refresh() {
    try {
      const [server, status] = await Promise.all([api('server'), api('collectors')]);
      const h = server.health, m = server.metrics;
      health.className = `health card ${h.status}`;
      health.replaceChildren(el('strong', {}, h.status.toUpperCase()), ` ${h.message} · version ${h.version} · up ${h.uptime_secs} s`);
      const ingested = sum(m, 'lotline_rows_ingested_total');
      const now = performance.now();
      const rate = previous ? ((ingested - previous.ingested) / ((now - previous.at) / 1000)) : null;
      previous = { ingested, at: now };
      const fsyncs = sum(m, 'lotline_wal_fsync_seconds_count'), fsyncTime = sum(m, 'lotline_wal_fsync_seconds_sum');
      const items = [
        ['Ingest rate', rate === null ? '…' : `${Math.max(0, rate).toFixed(0)} rows/s`],
        ['Rows ingested', ingested.toLocaleString()],
        ['Buffered rows', sum(m, 'lotline_buffer_rows').toLocaleString()],
        ['Buffered bytes', bytes(sum(m, 'lotline_buffer_bytes'))],
        ['WAL group commits', `${fsyncs.toLocaleString()} (mean ${fsyncs ? ((fsyncTime / fsyncs) * 1e3).toFixed(2) : 0} ms)`],
        ['Segments', `${sum(m, 'lotline_segments').toLocaleString()} (${bytes(sum(m, 'lotline_segment_bytes'))})`],
        ['Queries', sum(m, 'lotline_queries_total').toLocaleString()],
        ['Rejected requests', sum(m, 'lotline_requests_rejected_total').toLocaleString()],
        ['Server errors', sum(m, 'lotline_errors_total').toLocaleString()],
      ];
      figures.replaceChildren(...items.map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', {}, v))));
      collectors.replaceChildren(status.collectors.length ? table(status.collectors) : el('p', { class: 'muted' }, 'No collectors configured (serve --collectors FILE).'));
    } catch (e) { health.replaceChildren(errorBox(e)); }
  }
  refresh();
  const timer = setInterval(() => { if (!document.hidden) refresh(); }, 2000);
  return { dispose() { clearInterval(timer); } };
}
