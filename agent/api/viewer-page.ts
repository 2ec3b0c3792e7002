/**
 * The fort's own small viewer (`/`): takes the user token from the cloud's login redirect
 * (`#token=...`, a fragment so it never reaches a server log), then lists apps and rows with
 * the same API a hub page uses. No framework, no inline script (the CSP is default-src 'self').
 */
const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

export function viewerHtml(opts: { loginUrl?: string | undefined; tenant?: string | undefined }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fort viewer</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body data-login-url="${escapeAttr(opts.loginUrl ?? '')}" data-tenant="${escapeAttr(opts.tenant ?? '')}">
<h1>Fort viewer</h1>
<form id="login" hidden><label>User <input id="user" autocomplete="username"></label> <button>Log in</button></form>
<p id="who"></p><p id="error" role="alert"></p>
<ul id="apps"></ul><ul id="tables"></ul>
<table id="rows"><caption id="caption"></caption><thead></thead><tbody></tbody></table>
<p><button id="prev" hidden>Previous</button> <button id="next" hidden>Next</button></p>
<script src="/viewer.js"></script>
</body></html>`;
}

const PAGE = 50;

export const VIEWER_JS = `'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get('token')) {
    sessionStorage.setItem('fort-token', hash.get('token'));
    history.replaceState(null, '', location.pathname);
  }
  let token = sessionStorage.getItem('fort-token');
  const showError = (status, body) => { $('error').textContent = 'HTTP ' + status + (body && body.code ? ' ' + body.code : '') + (body && body.detail ? ': ' + body.detail : ''); };
  const showLogin = () => {
    const login = document.body.dataset.loginUrl;
    if (!login) { $('who').textContent = 'Open this page through your cloud hub to sign in.'; return; }
    $('login').hidden = false;
  };
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const u = new URL(document.body.dataset.loginUrl);
    u.searchParams.set('user', $('user').value);
    u.searchParams.set('tenant', document.body.dataset.tenant || '');
    u.searchParams.set('redirect_uri', location.origin + '/');
    location.assign(u.href);
  });
  const api = async (path) => {
    const res = await fetch(path, { headers: { authorization: 'Bearer ' + token } });
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      showError(res.status, body);
      // An expired or refused token is useless: forget it and offer a new sign-in.
      if (res.status === 401) { sessionStorage.removeItem('fort-token'); token = null; showLogin(); }
      throw new Error('HTTP ' + res.status);
    }
    $('error').textContent = '';
    return body;
  };
  const item = (list, text, attr, value, onClick) => {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = '#'; a.textContent = text; a.setAttribute(attr, value);
    a.addEventListener('click', (e) => { e.preventDefault(); onClick().catch(() => {}); });
    li.append(a); list.append(li);
  };
  const showRows = async (appId, table, offset) => {
    const page = await api('/api/v1/apps/' + encodeURIComponent(appId) + '/tables/' + encodeURIComponent(table) + '/rows?limit=${PAGE}&offset=' + offset);
    const head = $('rows').tHead; const body = $('rows').tBodies[0];
    head.replaceChildren(); body.replaceChildren();
    $('rows').dataset.table = table;
    const tr = head.insertRow();
    for (const c of page.columns) { const th = document.createElement('th'); th.textContent = c; tr.append(th); }
    for (const r of page.rows) { const row = body.insertRow(); for (const v of r) row.insertCell().textContent = v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v); }
    $('caption').textContent = page.rows.length ? table + ': rows ' + (offset + 1) + '-' + (offset + page.rows.length) + ' of ' + page.total : table + ': no rows';
    $('prev').hidden = offset === 0;
    $('next').hidden = offset + page.rows.length >= page.total;
    $('prev').onclick = () => showRows(appId, table, Math.max(0, offset - ${PAGE})).catch(() => {});
    $('next').onclick = () => showRows(appId, table, offset + ${PAGE}).catch(() => {});
  };
  const showTables = async (appId) => {
    const { tables } = await api('/api/v1/apps/' + encodeURIComponent(appId) + '/tables');
    $('tables').replaceChildren();
    for (const t of tables) item($('tables'), t.name + ' (' + t.rowCount + ')', 'data-table', t.name, () => showRows(appId, t.name, 0));
  };
  if (!token) { showLogin(); return; }
  api('/api/v1/apps').then(({ apps }) => {
    $('who').textContent = apps.length + ' app(s)';
    for (const a of apps) item($('apps'), a.name, 'data-app-id', a.id, () => showTables(a.id));
  }).catch(() => {});
})();
`;
