/**
 * The dev hub page. Markup and script are separate responses so the page runs under a CSP
 * without 'unsafe-inline'; the script only ever sets textContent (data from a fort is data).
 */
export const HUB_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Fort dev hub</title>
<script src="/hub/app.js" defer></script>
</head>
<body>
<h1>Fort dev hub</h1>
<p>
<label>User <input id="user" value="alice" autocomplete="off"></label>
<label>Tenant <input id="tenant" value="t1" autocomplete="off"></label>
<label>Fort URL <input id="fort" type="url" size="40" placeholder="https://127.0.0.1:8443"></label>
<button id="login" type="button">Log in</button>
</p>
<p id="status"></p>
<p id="error" role="alert" hidden></p>
<ul id="apps"></ul>
<ul id="tables"></ul>
<div id="data"></div>
</body>
</html>
`;

export const HUB_JS = `'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const query = new URLSearchParams(location.search);
  for (const k of ['fort', 'user', 'tenant']) if (query.get(k)) $(k).value = query.get(k);
  let fort = '';
  let token = '';

  class HttpError extends Error {
    constructor(status, code, detail) {
      super('HTTP ' + status + (code ? ' ' + code : '') + (detail ? ': ' + detail : ''));
      this.status = status;
      this.code = code;
    }
  }

  async function call(url, init) {
    const res = await fetch(url, init);
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = null; }
    if (!res.ok) throw new HttpError(res.status, (body && (body.code || body.error)) || '', (body && (body.detail || body.title)) || '');
    return body;
  }
  const fromFort = (path) => call(fort + path, { headers: { authorization: 'Bearer ' + token } });
  const seg = encodeURIComponent;

  function show(id, text) { $(id).textContent = text; }
  function clear(id) { $(id).replaceChildren(); }
  function showError(err) {
    const el = $('error');
    el.textContent = err instanceof HttpError ? err.message : 'Error: ' + (err && err.message ? err.message : String(err));
    el.hidden = false;
  }
  async function run(task) {
    $('error').hidden = true;
    show('error', '');
    try { await task(); } catch (err) { showError(err); }
  }
  function item(list, label, attr, value, onClick) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.setAttribute(attr, value);
    button.textContent = label;
    button.addEventListener('click', () => run(onClick));
    li.append(button);
    $(list).append(li);
  }
  function cell(tag, value) {
    const el = document.createElement(tag);
    el.textContent = value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
    return el;
  }

  async function showRows(appId, table) {
    const page = await fromFort('/api/v1/apps/' + seg(appId) + '/tables/' + seg(table) + '/rows?limit=50');
    const t = document.createElement('table');
    t.id = 'rows';
    t.dataset.appId = appId;
    t.dataset.table = table;
    const caption = document.createElement('caption');
    caption.textContent = table + ': rows ' + (page.rows.length ? page.offset + 1 : 0) + '-' + (page.offset + page.rows.length) + ' of ' + page.total;
    const head = document.createElement('tr');
    for (const c of page.columns) head.append(cell('th', c));
    const thead = document.createElement('thead');
    thead.append(head);
    const tbody = document.createElement('tbody');
    for (const r of page.rows) {
      const tr = document.createElement('tr');
      for (const v of r) tr.append(cell('td', v));
      tbody.append(tr);
    }
    t.append(caption, thead, tbody);
    $('data').replaceChildren(t);
  }

  async function openApp(appId) {
    clear('tables');
    clear('data');
    const { tables } = await fromFort('/api/v1/apps/' + seg(appId) + '/tables');
    for (const t of tables) item('tables', t.name + ' (' + t.rowCount + ' rows)', 'data-table', t.name, () => showRows(appId, t.name));
    if (tables.length > 0) await showRows(appId, tables[0].name);
    else show('data', 'This app has no tables.');
  }

  $('login').addEventListener('click', () => run(async () => {
    for (const id of ['apps', 'tables', 'data']) clear(id);
    const url = new URL($('fort').value);
    if (url.protocol !== 'https:') throw new Error('the fort URL must be https://');
    fort = url.href.replace(/\\/+$/, '');
    const user = $('user').value;
    const tenant = $('tenant').value;
    const login = await call('/dev/v1/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, tenant }) });
    token = login.token;
    show('status', 'Logged in as ' + user + ' (tenant ' + tenant + ') until ' + login.expires_at);
    const { apps } = await fromFort('/api/v1/apps');
    for (const a of apps) item('apps', a.name + ' [' + a.space + ']', 'data-app-id', a.id, () => openApp(a.id));
    if (apps.length === 0) show('data', 'No apps visible to ' + user + '.');
  }));
})();
`;
