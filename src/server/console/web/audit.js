// The Audit page: the hash-chained audit log as a filterable table (newest
// first, older entries on demand), and a button that runs verify_audit().

import { api, el, errorBox, table } from './api.js';

const COLUMNS = ['seq', 'ts', 'actor', 'action', 'table_name', 'row_count', 'reason', 'detail'];

export function auditPage(main, { params, navigate }) {
  const field = (name, label, type = 'text') => el('label', {}, `${label} `, el('input', { name, type, value: params.get(name) || '', step: type === 'datetime-local' ? 1 : undefined }));
  const form = el('form', { class: 'toolbar filters' },
    field('actor', 'Actor'), field('table', 'Table'), field('action', 'Action'),
    field('from', 'From', 'datetime-local'), field('to', 'To', 'datetime-local'),
    el('button', { type: 'submit' }, 'Filter'));
  const verifyButton = el('button', { type: 'button', class: 'verify' }, 'Verify chain');
  const verdict = el('div', { class: 'verdict', role: 'status' });
  const list = el('div', { class: 'entries' });
  const more = el('button', { type: 'button', hidden: true }, 'Older entries');
  main.append(el('section', { class: 'page audit' }, form, el('div', { class: 'toolbar' }, verifyButton, verdict), list, more));
  const filter = {};
  for (const key of ['actor', 'table', 'action']) if (params.get(key)) filter[key] = params.get(key);
  for (const key of ['from', 'to']) if (params.get(key)) filter[key] = Date.parse(params.get(key));
  const rows = [];

  async function load(before) {
    try {
      const answer = await api('audit', { params: { ...filter, before, limit: 200 } });
      rows.push(...answer.entries);
      list.replaceChildren(el('p', { class: 'muted' }, `${rows.length} entries${answer.truncated ? ' (more below)' : ''}`), table(rows, COLUMNS));
      more.hidden = !answer.truncated;
    } catch (e) { list.replaceChildren(errorBox(e)); }
  }
  more.addEventListener('click', () => load(rows[rows.length - 1].seq));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
    navigate('audit', '', p);
  });
  verifyButton.addEventListener('click', async () => {
    verifyButton.disabled = true;
    verdict.replaceChildren(el('span', { class: 'muted' }, 'Verifying…'));
    try {
      const answer = await api('audit/verify');
      const summary = answer.rows.find((r) => r.check === 'summary') || {};
      const findings = answer.rows.filter((r) => r.check !== 'summary');
      verdict.replaceChildren(el('strong', { class: summary.ok ? 'ok' : 'bad' },
        summary.ok ? `Chain verified: ${summary.entries_checked} entries, ${summary.segments_checked} segments` : `Verification FAILED: ${summary.detail}`),
      el('span', { class: 'muted' }, ` (${answer.elapsed_ms.toFixed(0)} ms)`),
      findings.length ? table(findings) : '');
      verdict.dataset.ok = String(!!summary.ok);
    } catch (e) { verdict.replaceChildren(errorBox(e)); }
    verifyButton.disabled = false;
  });
  load();
  return {};
}
