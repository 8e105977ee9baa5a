// The console's shell: login, the page router (the URL's hash holds the
// page and its view, so a view can be shared), theme and navigation.

import { api, setCsrf, el } from './api.js';
import { trendPage } from './trend.js';
import { lotPage } from './lot.js';
import { auditPage } from './audit.js';
import { statusPage } from './status.js';
import { sqlPage } from './sql.js';

const pages = { trend: trendPage, lot: lotPage, audit: auditPage, status: statusPage, sql: sqlPage };
const main = document.getElementById('main');
const loginView = document.getElementById('login-view');
let session = null;
let current = null; // { name, dispose }

// What tests and scripts can look at.
window.lotline = { session: null, page: null };

export function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = hash.split('?');
  const [name, ...rest] = path.split('/');
  const decode = (part) => { try { return decodeURIComponent(part); } catch { return part; } };
  return { name: pages[name] ? name : 'trend', arg: rest.map(decode).join('/'), params: new URLSearchParams(query) };
}

export function navigate(name, arg, params, replace = false) {
  const query = params && [...params].length ? '?' + params.toString() : '';
  const hash = `#/${name}${arg ? '/' + encodeURIComponent(arg) : ''}${query}`;
  if (replace) history.replaceState(null, '', hash);
  else history.pushState(null, '', hash);
  render();
}

function render() {
  if (!session) return;
  const { name, arg, params } = route();
  if (current && current.name === name && current.update && current.update(arg, params)) return;
  if (current && current.dispose) current.dispose();
  main.replaceChildren();
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === name);
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const page = pages[name](main, { arg, params, session, navigate });
  current = { name, ...page };
  window.lotline.page = name;
  document.title = `lotline · ${name}`;
}

function showLogin(message) {
  session = null;
  window.lotline.session = null;
  if (current && current.dispose) current.dispose();
  current = null;
  main.replaceChildren();
  loginView.hidden = false;
  document.getElementById('logout').hidden = true;
  document.getElementById('who').textContent = '';
  document.getElementById('login-error').textContent = message || '';
  loginView.querySelector('input[name=user]').focus();
}

function loggedIn(answer) {
  session = answer;
  window.lotline.session = answer;
  setCsrf(answer.csrf);
  loginView.hidden = true;
  document.getElementById('who').textContent = `${answer.user} (${answer.role})`;
  document.getElementById('logout').hidden = !answer.authentication;
  render();
}

document.getElementById('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const answer = await api('session/login', { method: 'POST', body: { user: form.get('user'), password: form.get('password') } });
    event.target.reset();
    loggedIn(answer);
  } catch (e) {
    document.getElementById('login-error').textContent = `Login refused: ${e.message}`;
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  try { await api('session', { method: 'DELETE' }); } finally { showLogin('Logged out.'); }
});

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}
applyTheme(localStorage.getItem('lotline-theme'));
document.getElementById('theme').addEventListener('click', () => {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === 'dark'
    : matchMedia('(prefers-color-scheme: dark)').matches;
  const next = dark ? 'light' : 'dark';
  localStorage.setItem('lotline-theme', next);
  applyTheme(next);
  window.dispatchEvent(new CustomEvent('lotline:theme'));
});

// Back, forward and links change the hash (one event: hashchange fires
// for them, as popstate would too); navigate() renders by itself.
window.addEventListener('hashchange', render);
window.addEventListener('lotline:logged-out', () => showLogin('The session has ended; log in again.'));

api('session').then(loggedIn, () => showLogin(''));
export { el };
