// Calls to lotline's JSON API (/api/v1/). The session cookie goes along by
// itself; changes also carry the session's CSRF token.

let csrf = '';

export function setCsrf(token) { csrf = token || ''; }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(path, { method = 'GET', body, params } = {}) {
  const url = new URL('/api/v1/' + path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value);
  }
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-lotline-csrf'] = csrf;
  const response = await fetch(url, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (!response.ok) {
    if (response.status === 401 && path !== 'session/login') {
      window.dispatchEvent(new CustomEvent('lotline:logged-out'));
    }
    throw new ApiError(response.status, (data && data.error) || response.statusText);
  }
  return data;
}

// Small DOM helper: el('div', {class: 'x', onclick: f}, child, 'text', ...).
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (key in node && typeof value !== 'string') node[key] = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function formatTime(ms) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// A cell of an API answer as text: timestamps in local time.
export function formatCell(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(value)) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return formatTime(ms);
  }
  if (Array.isArray(value)) return value.map(formatCell).join(' → ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// A table of rows with the given columns (all keys of the rows when
// absent); `value` reads a row's cell (objects by name unless told).
export function table(rows, columns, value = (row, name) => row[name]) {
  const names = columns || [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return el('div', { class: 'table-wrap' }, el('table', {},
    el('thead', {}, el('tr', {}, names.map((n) => el('th', { scope: 'col' }, n)))),
    el('tbody', {}, rows.map((row) => el('tr', {},
      names.map((n, i) => cell(formatCell(value(row, n, i)))))))));
}

// A table cell; long text (an audit entry's file list) is cut, whole in its tooltip.
const LONG = 240;
function cell(text) {
  return text.length > LONG ? el('td', { title: text }, text.slice(0, LONG) + '…') : el('td', {}, text);
}

export function errorBox(error) {
  return el('p', { class: 'error', role: 'alert' }, error.message || String(error));
}
