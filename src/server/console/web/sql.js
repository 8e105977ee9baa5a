// The SQL page: any statement the user's role allows, as over Flight SQL
// (a reader's INSERT is refused the same way). Ctrl+Enter runs.

import { api, el, errorBox, table } from './api.js';

export function sqlPage(main, { params }) {
  const text = el('textarea', { rows: 6, 'aria-label': 'SQL', spellcheck: false },
    params.get('q') || "SELECT tag, count(*) AS samples, avg(value) AS mean\nFROM samples GROUP BY tag ORDER BY tag LIMIT 20");
  const reason = el('input', { type: 'text', placeholder: 'Reason (for writes)', 'aria-label': 'Reason' });
  const run = el('button', { type: 'button' }, 'Run');
  const out = el('div', { class: 'result', role: 'status' });
  main.append(el('section', { class: 'page sql' }, text, el('div', { class: 'toolbar' }, reason, run), out));
  async function execute() {
    run.disabled = true;
    out.replaceChildren(el('span', { class: 'muted' }, 'Running…'));
    try {
      const r = await api('sql', { method: 'POST', body: { sql: text.value, reason: reason.value || undefined } });
      // Rows are arrays: columns may share a name (SELECT 1, 1).
      out.replaceChildren(el('p', { class: 'muted' }, `${r.rows.length} rows${r.truncated ? ' (cut)' : ''}, ${r.elapsed_ms.toFixed(0)} ms`),
        table(r.rows, r.columns, (row, _name, i) => row[i]));
    } catch (e) { out.replaceChildren(errorBox(e)); }
    run.disabled = false;
  }
  run.addEventListener('click', execute);
  text.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); execute(); } });
  return {};
}
