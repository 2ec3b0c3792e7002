/**
 * The viewer script's shell (browser JavaScript, kept as text: no template literal, no backslash,
 * so it reads the same here as in the browser): DOM helpers, sign-in (the token arrives in
 * `#token=`, moves to sessionStorage and leaves the address bar at once), the API call, the
 * URL state (`?app=&table=&sel=&sort=`: shareable, never a token), the app list, and the simple
 * rows table for apps whose data fort-engine does not serve.
 */
export const SHELL_JS = `
  const $ = (id) => document.getElementById(id);
  const SVG_NS = 'http://www.w3.org/2000/svg';
  /** Attributes and children of an element; 'text' and string children are text nodes, never markup. */
  const fill = (e, attrs, kids) => {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  };
  const h = (tag, attrs, ...kids) => fill(document.createElement(tag), attrs, kids);
  const svg = (tag, attrs, ...kids) => fill(document.createElementNS(SVG_NS, tag), attrs, kids);

  const nf = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
  const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
  /** A cell as the rows table shows it: raw, as the API sent it. */
  const cellText = (v) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  /** A value as a person reads it (list boxes, chips, chart labels). */
  const valueText = (v) => (v === null || v === undefined ? '(empty)' : typeof v === 'number' ? nf.format(v) : cellText(v));
  const shorten = (t, n) => (t.length > n ? t.slice(0, n - 1) + '…' : t);
  const sameValue = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  const TOKEN = 'fort-token';
  const RETURN = 'fort-return';
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get('token')) {
    sessionStorage.setItem(TOKEN, hash.get('token'));
    // Back from the cloud's sign-in (always to /): the viewer's own state returns, the token leaves
    // the address bar and this history entry, so no URL that is copied or shared carries it.
    const back = sessionStorage.getItem(RETURN) || '';
    sessionStorage.removeItem(RETURN);
    history.replaceState(null, '', location.pathname + (location.search || (/^[?][^#]*$/.test(back) ? back : '')));
  }
  let token = sessionStorage.getItem(TOKEN);

  const showError = (text) => { $('error').textContent = text; };
  const clearError = () => { $('error').textContent = ''; };
  const problemText = (status, body) =>
    'HTTP ' + status + (body && body.code ? ' ' + body.code : '') + (body && body.detail ? ': ' + body.detail : '');
  const showLogin = () => {
    $('viewer').hidden = true;
    $('simple').hidden = true;
    const login = document.body.dataset.loginUrl;
    if (!login) { $('who').textContent = 'Open this page through your cloud hub to sign in.'; return; }
    $('login').hidden = false;
  };
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const u = new URL(document.body.dataset.loginUrl);
    u.searchParams.set('user', $('user').value);
    u.searchParams.set('tenant', document.body.dataset.tenant || '');
    // The cloud mints the token for this fort only (its aud): another fort of the tenant refuses it.
    if (document.body.dataset.fort) u.searchParams.set('fort', document.body.dataset.fort);
    u.searchParams.set('redirect_uri', location.origin + '/');
    sessionStorage.setItem(RETURN, location.search);
    location.assign(u.href);
  });

  class ApiError extends Error {
    constructor(status, body) { super(problemText(status, body)); this.status = status; this.body = body; }
  }
  /** GET (or POST with opts.json); a refusal is shown in the alert region unless opts.quiet(error) says it is expected. */
  const api = async (path, opts) => {
    const o = opts || {};
    const init = { headers: { authorization: 'Bearer ' + token } };
    if (o.json !== undefined) {
      init.method = 'POST';
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(o.json);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      showError('The fort cannot be reached: ' + err.message);
      throw err;
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const err = new ApiError(res.status, body);
      if (!(o.quiet && o.quiet(err))) showError(err.message);
      // An expired or refused token is useless: forget it and offer a new sign-in.
      if (res.status === 401) { sessionStorage.removeItem(TOKEN); token = null; showLogin(); }
      throw err;
    }
    return body;
  };
  const appPath = (id) => '/api/v1/apps/' + encodeURIComponent(id);

  /** What the address says: the app, its table, the selections (JSON: exact values, nulls too), the rows' sort. */
  const state = { app: null, table: null, sel: [], sort: null };
  const isCell = (v) => v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
  const parseSelections = (text) => {
    if (!text) return [];
    let o;
    try { o = JSON.parse(text); } catch { return []; }
    if (!o || typeof o !== 'object' || Array.isArray(o)) return [];
    return Object.keys(o)
      .filter((f) => Array.isArray(o[f]) && o[f].length > 0 && o[f].every(isCell))
      .map((f) => ({ field: f, values: o[f] }));
  };
  const parseSort = (text) => {
    if (!text) return null;
    const i = text.lastIndexOf(':');
    const dir = i > 0 ? text.slice(i + 1) : '';
    return dir === 'asc' || dir === 'desc' ? { by: text.slice(0, i), dir } : { by: text, dir: 'asc' };
  };
  const readUrl = () => {
    const q = new URLSearchParams(location.search);
    state.app = q.get('app');
    state.table = q.get('table');
    state.sel = parseSelections(q.get('sel'));
    state.sort = parseSort(q.get('sort'));
  };
  const urlOf = () => {
    const q = new URLSearchParams();
    if (state.app) q.set('app', state.app);
    if (state.app && state.table) q.set('table', state.table);
    if (state.sel.length) {
      const o = Object.create(null);
      for (const s of state.sel) o[s.field] = s.values;
      q.set('sel', JSON.stringify(o));
    }
    if (state.sort) q.set('sort', state.sort.by + ':' + state.sort.dir);
    const text = q.toString();
    return location.pathname + (text ? '?' + text : '');
  };
  /** The address follows the state: a new history entry for what Back should undo (push), else replaced. */
  const saveUrl = (push) => {
    const url = urlOf();
    if (url !== location.pathname + location.search) history[push ? 'pushState' : 'replaceState'](null, '', url);
  };
  const navigate = (next) => {
    Object.assign(state, next);
    saveUrl(true);
    route();
  };

  /** One in-flight counter for the viewer: aria-busy is true until every answer asked for has come. */
  let inflight = 0;
  const track = (p) => {
    inflight++;
    $('viewer').setAttribute('aria-busy', 'true');
    return p
      .catch((err) => { if (!(err instanceof ApiError) && !(err instanceof TypeError && /fetch/i.test(err.message))) showError('Error: ' + err.message); })
      .finally(() => { if (--inflight === 0) $('viewer').setAttribute('aria-busy', 'false'); });
  };

  let apps = [];
  const markCurrentApp = () => {
    for (const a of $('apps').querySelectorAll('a')) {
      if (a.dataset.appId === state.app) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  };

  /** The rows of a version the agent itself keeps (no fort-engine): tables, then 50 rows a page by offset. */
  const SIMPLE_PAGE = 50;
  const showRows = async (appId, table, offset) => {
    clearError();
    const page = await api(appPath(appId) + '/tables/' + encodeURIComponent(table) + '/rows?limit=' + SIMPLE_PAGE + '&offset=' + offset);
    const head = $('rows').tHead; const body = $('rows').tBodies[0];
    head.replaceChildren(); body.replaceChildren();
    $('rows').dataset.table = table;
    const tr = head.insertRow();
    for (const c of page.columns) tr.append(h('th', { scope: 'col', text: c }));
    for (const r of page.rows) { const row = body.insertRow(); for (const v of r) row.insertCell().textContent = cellText(v); }
    $('caption').textContent = page.rows.length ? table + ': rows ' + (offset + 1) + '-' + (offset + page.rows.length) + ' of ' + page.total : table + ': no rows';
    $('prev').hidden = offset === 0;
    $('next').hidden = offset + page.rows.length >= page.total;
    $('prev').onclick = () => showRows(appId, table, Math.max(0, offset - SIMPLE_PAGE)).catch(() => {});
    $('next').onclick = () => showRows(appId, table, offset + SIMPLE_PAGE).catch(() => {});
  };
  const showSimple = async (appId, note) => {
    document.body.dataset.view = 'simple';
    $('simple').hidden = false;
    $('note').textContent = note || '';
    $('tables').replaceChildren();
    $('rows').tHead.replaceChildren(); $('rows').tBodies[0].replaceChildren();
    $('caption').textContent = ''; $('prev').hidden = true; $('next').hidden = true;
    const { tables } = await api(appPath(appId) + '/tables');
    for (const t of tables) {
      const a = h('a', { href: '#', 'data-table': t.name, text: t.name + ' (' + t.rowCount + ')' });
      a.addEventListener('click', (e) => { e.preventDefault(); showRows(appId, t.name, 0).catch(() => {}); });
      $('tables').append(h('li', null, a));
    }
  };
`;
