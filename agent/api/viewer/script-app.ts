/**
 * The viewer script's app view (browser JavaScript as text, see script-shell.ts): for an app
 * fort-engine serves, defaults picked from its schema — list boxes (possible / excluded values
 * with counts, search), KPIs, a bar chart (SVG made with DOM calls), the rows in keyset pages,
 * selections as chips — all recomputed on every selection change.
 */
export const APP_JS = `
  /** A list box shows this many values (search finds the others); fields with more distinct values get none. */
  const BOX_LIMIT = 100;
  const MAX_BOX_DISTINCT = 1000;
  const MAX_BOXES = 8;
  const CHART_BARS = 20;
  const GRID_PAGE = 20;
  const NUMERIC = new Set(['integer', 'number']);

  /** The app on screen: { app, schema } (schema null in the simple view). */
  let current = null;
  /** The engine view of one table: fields, plan, widgets, and one request counter per widget. */
  let view = null;

  const selOf = (field) => state.sel.find((s) => s.field === field);
  const isSelected = (field, value) => { const s = selOf(field); return !!s && s.values.some((x) => sameValue(x, value)); };
  const notInEngine = (err) => err.status === 404 || (err.status === 503 && !!err.body && err.body.code === 'FORT_ERR_NOT_CONFIGURED');

  const openApp = async (id) => {
    clearError();
    current = { app: id, schema: null };
    view = null;
    $('viewer').hidden = true;
    $('simple').hidden = true;
    let schema;
    try {
      schema = await api(appPath(id) + '/schema', { quiet: notInEngine });
    } catch (err) {
      // Data the engine does not serve (no engine, loaded before it, none yet): the plain rows.
      if (current && current.app === id && err instanceof ApiError && notInEngine(err))
        await showSimple(id, err.status === 404 && err.body ? err.body.detail : '');
      return;
    }
    if (!current || current.app !== id) return;
    current.schema = schema;
    if (!schema.tables.length) return showSimple(id, 'This app has no tables.');
    await openTable();
  };

  /** Defaults from the schema: list boxes for text fields of few values, a measure, the chart's dimension. */
  const planFor = async (t) => {
    const candidates = t.fields.filter((f) => f.kind === 'text' || f.kind === 'boolean');
    const measure = t.fields.find((f) => f.kind === 'number') ||
      t.fields.find((f) => f.kind === 'integer' && !/^id$|_id$/i.test(f.name)) || null;
    let boxes = candidates;
    const asked = candidates.slice(0, 16);
    if (asked.length) {
      try {
        const a = await api(appPath(state.app) + '/query', {
          json: { table: t.name, measures: asked.map((f, i) => ({ op: 'count_distinct', field: f.name, as: 'd' + i })) },
          quiet: () => true,
        });
        const few = asked.filter((_, i) => Number(a.rows[0][i]) <= MAX_BOX_DISTINCT);
        if (few.length) boxes = few;
      } catch {
        // Without the counts every text field gets a list box.
      }
    }
    boxes = boxes.slice(0, MAX_BOXES);
    const dim = boxes.find((f) => f.kind === 'text') || t.fields.find((f) => f.kind === 'text') || null;
    return { boxes, measure, dim };
  };

  /** The table with the most rows (the facts, usually) unless the address names one. */
  const defaultTable = (schema) => schema.tables.reduce((a, b) => (b.rows > a.rows ? b : a));
  const openTable = async () => {
    const schema = current.schema;
    const t = schema.tables.find((x) => x.name === state.table) || defaultTable(schema);
    state.table = t.name;
    const names = new Set(t.fields.map((f) => f.name));
    state.sel = state.sel.filter((s) => names.has(s.field));
    if (state.sort && !names.has(state.sort.by)) state.sort = null;
    saveUrl(false);
    const app = apps.find((a) => a.id === state.app);
    $('app-title').textContent = app ? app.name : state.app;
    renderTabs(schema);
    const v = { app: state.app, table: t, fields: t.fields, pages: [null], next: null, kpiReq: 0, chartReq: 0, gridReq: 0, chart: null };
    view = v;
    document.body.dataset.view = 'engine';
    $('viewer').hidden = false;
    const planned = track(planFor(t).then((p) => { v.plan = p; }));
    await planned;
    if (view !== v || !v.plan) return;
    v.boxes = v.plan.boxes.map((f, i) => buildBox(v, f, i));
    $('filters').replaceChildren(...v.boxes.map((b) => b.section));
    $('filters').hidden = v.boxes.length === 0;
    $('chart-box').hidden = !v.plan.dim;
    $('chart-title').textContent = v.plan.dim ? measureLabel(v) + ' by ' + v.plan.dim.name : '';
    buildGridHead(v);
    refresh();
  };

  const renderTabs = (schema) => {
    const tabs = $('table-tabs');
    tabs.replaceChildren();
    tabs.hidden = schema.tables.length < 2;
    for (const t of schema.tables) {
      const b = h('button', { type: 'button', 'aria-pressed': String(t.name === state.table), 'data-table': t.name, text: t.name + ' (' + nf.format(t.rows) + ' rows)' });
      b.addEventListener('click', () => { if (t.name !== state.table) navigate({ table: t.name, sel: [], sort: null }); });
      tabs.append(b);
    }
  };

  /** Every widget asks again under the current selections; the rows start from their first page. */
  const refresh = () => {
    const v = view;
    if (!v || !v.plan) return;
    clearError();
    renderChips();
    track(loadKpis(v));
    if (v.plan.dim) track(loadChart(v));
    track(loadGrid(v, true));
    for (const b of v.boxes) track(loadBox(v, b));
  };

  const toggle = (field, value) => {
    const s = selOf(field);
    if (!s) state.sel.push({ field, values: [value] });
    else if (s.values.some((x) => sameValue(x, value))) {
      s.values = s.values.filter((x) => !sameValue(x, value));
      if (!s.values.length) state.sel = state.sel.filter((x) => x !== s);
    } else s.values.push(value);
    saveUrl(true);
    refresh();
  };

  // -- current selections
  const renderChips = () => {
    const list = $('chips');
    list.replaceChildren();
    state.sel.forEach((s, i) => {
      const all = s.values.map(valueText);
      const shown = all.length > 3 ? all.slice(0, 3).join(', ') + ' +' + (all.length - 3) : all.join(', ');
      const remove = h('button', { type: 'button', 'aria-label': 'Remove selection ' + s.field + ': ' + all.join(', '), title: 'Remove', text: '×' });
      remove.addEventListener('click', () => {
        state.sel = state.sel.filter((x) => x.field !== s.field);
        saveUrl(true);
        refresh();
        // Focus stays in the selections bar: the next chip, or its heading when none is left.
        const buttons = list.querySelectorAll('button');
        (buttons[Math.min(i, buttons.length - 1)] || $('selections-title')).focus();
      });
      list.append(h('li', { class: 'chip', 'data-field': s.field },
        h('span', { class: 'chip-field', text: s.field + ':' }), ' ', h('span', { class: 'chip-values', text: shown }), remove));
    });
    $('no-selections').hidden = state.sel.length > 0;
    $('clear-all').hidden = state.sel.length === 0;
  };
  $('clear-all').addEventListener('click', () => {
    state.sel = [];
    saveUrl(true);
    refresh();
    $('selections-title').focus();
  });

  // -- list boxes
  const buildBox = (v, f, i) => {
    const id = 'lb-' + i;
    const search = h('input', { type: 'search', id: id + '-search', placeholder: 'Search', maxlength: 256, autocomplete: 'off', 'aria-label': 'Search ' + f.name });
    const list = h('ul', { class: 'values', 'aria-label': f.name + ' values' });
    const note = h('p', { class: 'note', 'aria-live': 'polite' });
    const section = h('section', { class: 'listbox', 'data-field': f.name, 'aria-labelledby': id + '-title' },
      h('h3', { id: id + '-title', text: f.name }), search, list, note);
    const b = { field: f, section, search, list, note, req: 0 };
    search.addEventListener('input', () => track(loadBox(v, b)));
    return b;
  };
  const loadBox = async (v, b) => {
    const n = ++b.req;
    const q = new URLSearchParams({ table: v.table.name, selections: JSON.stringify(state.sel), limit: String(BOX_LIMIT) });
    if (b.search.value) q.set('search', b.search.value);
    const a = await api(appPath(v.app) + '/fields/' + encodeURIComponent(b.field.name) + '/values?' + q.toString());
    if (n === b.req && view === v) renderBox(b, a);
  };
  const renderBox = (b, a) => {
    // A value that had the focus keeps it once the list is redrawn (keyboard users stay in place).
    const focused = b.list.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    let refocus = null;
    b.list.replaceChildren(...a.values.map((x) => {
      const text = valueText(x.value);
      const key = JSON.stringify(x.value);
      const btn = h('button', {
        type: 'button',
        class: 'value ' + x.state,
        'aria-pressed': String(x.selected),
        'aria-label': text + ', ' + nf.format(x.count) + (x.count === 1 ? ' row' : ' rows') + (x.state === 'excluded' ? ', excluded' : ''),
        'data-key': key,
        'data-value': text,
        'data-state': x.state,
        'data-count': x.count,
      }, h('span', { class: 'v', text }), h('span', { class: 'n', text: nf.format(x.count) }));
      btn.addEventListener('click', () => toggle(b.field.name, x.value));
      if (key === focused) refocus = btn;
      return h('li', null, btn);
    }));
    if (refocus) refocus.focus();
    b.note.textContent = a.values.length === 0 ? (b.search.value ? 'No value matches.' : 'No values.')
      : a.truncated ? 'The first ' + a.values.length + ' values; search to find the others.' : '';
  };

  // -- KPIs
  const measureLabel = (v) => (v.plan.measure ? 'Sum of ' + v.plan.measure.name : 'Rows');
  const loadKpis = async (v) => {
    const n = ++v.kpiReq;
    const m = v.plan.measure;
    const measures = [{ op: 'count' }];
    const labels = ['Rows'];
    if (m) {
      measures.push({ op: 'sum', field: m.name }, { op: 'avg', field: m.name });
      labels.push('Sum of ' + m.name, 'Average ' + m.name);
    }
    const a = await api(appPath(v.app) + '/query', { json: { table: v.table.name, selections: state.sel, measures } });
    if (n !== v.kpiReq || view !== v) return;
    const row = a.rows[0] || [];
    $('kpis').replaceChildren(...a.columns.map((c, i) =>
      h('div', { class: 'kpi', 'data-kpi': c.name },
        h('dt', { text: labels[i] }),
        h('dd', { 'data-value': cellText(row[i]), text: row[i] === null || row[i] === undefined ? '–' : valueText(row[i]) }))));
    $('status').textContent = nf.format(row[0] || 0) + ' rows' + (state.sel.length ? ' under the current selections' : '');
  };

  // -- bar chart
  const niceStep = (span, count) => {
    const raw = span / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  };
  const loadChart = async (v) => {
    const n = ++v.chartReq;
    const m = v.plan.measure;
    const measure = m ? { op: 'sum', field: m.name } : { op: 'count' };
    const name = m ? 'sum_' + m.name : 'count';
    const a = await api(appPath(v.app) + '/query', {
      json: { table: v.table.name, selections: state.sel, dimensions: [v.plan.dim.name], measures: [measure], sort: [{ by: name, dir: 'desc' }], limit: CHART_BARS },
    });
    if (n !== v.chartReq || view !== v) return;
    v.chart = a;
    drawChart(v);
  };
  const drawChart = (v) => {
    const a = v.chart;
    const box = $('chart');
    if (!a) return;
    if (!a.rows.length) { box.replaceChildren(h('p', { class: 'empty', text: 'No rows under the current selections.' })); return; }
    const dim = v.plan.dim.name;
    const W = Math.max(300, Math.round(box.clientWidth || 600));
    const LEFT = Math.min(170, Math.round(W * 0.32));
    const RIGHT = 64;
    const TOP = 24;
    const ROW = 30;
    const BOTTOM = 46;
    const n = a.rows.length;
    const vals = a.rows.map((r) => Number(r[1]) || 0);
    let lo = Math.min(0, ...vals);
    let hi = Math.max(0, ...vals);
    if (hi === lo) hi = lo + 1;
    const step = niceStep(hi - lo, W < 480 ? 3 : 5);
    lo = Math.floor(lo / step) * step;
    hi = Math.ceil(hi / step) * step;
    const plotW = W - LEFT - RIGHT;
    const x = (val) => LEFT + ((val - lo) / (hi - lo)) * plotW;
    const bottom = TOP + n * ROW;
    const H = bottom + BOTTOM;
    const title = measureLabel(v) + ' by ' + dim;
    const summary = a.rows.map((r) => valueText(r[0]) + ': ' + valueText(r[1])).join('; ') + (a.next ? '; only the top ' + n + ' are shown' : '');
    const chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-labelledby': 'chart-svg-title chart-svg-desc' },
      svg('title', { id: 'chart-svg-title', text: title }), svg('desc', { id: 'chart-svg-desc', text: summary }));
    for (let t = lo; t <= hi + step / 2; t += step) {
      const tx = x(t);
      chart.append(svg('line', { class: 'grid', x1: tx, x2: tx, y1: TOP, y2: bottom }),
        svg('text', { class: 'tick', x: tx, y: bottom + 16, 'text-anchor': 'middle', text: compact.format(t) }));
    }
    chart.append(svg('line', { class: 'axis', x1: LEFT, x2: LEFT + plotW, y1: bottom, y2: bottom }),
      svg('line', { class: 'axis', x1: x(0), x2: x(0), y1: TOP, y2: bottom }),
      svg('text', { class: 'axis-title', x: LEFT + plotW / 2, y: H - 6, 'text-anchor': 'middle', text: measureLabel(v) }),
      svg('text', { class: 'axis-title', x: LEFT - 8, y: 14, 'text-anchor': 'end', text: dim }));
    a.rows.forEach((r, i) => {
      const val = vals[i];
      const y = TOP + i * ROW + 4;
      const mid = y + (ROW - 8) / 2;
      const label = valueText(r[0]);
      const end = x(Math.max(0, val));
      const g = svg('g', { class: 'bar' + (isSelected(dim, r[0]) ? ' selected' : ''), 'data-label': label, 'data-value': cellText(r[1]) },
        svg('title', { text: dim + ' ' + label + ': ' + valueText(r[1]) }),
        svg('rect', { x: x(Math.min(0, val)), y, width: Math.max(1, Math.abs(x(val) - x(0))), height: ROW - 8, rx: 2 }),
        svg('text', { class: 'cat', x: LEFT - 8, y: mid, 'dominant-baseline': 'middle', 'text-anchor': 'end', text: shorten(label, Math.max(8, Math.floor(LEFT / 8))) }),
        svg('text', { class: 'val', x: end + 4, y: mid, 'dominant-baseline': 'middle', text: Math.abs(val) >= 100000 ? compact.format(val) : valueText(r[1]) }));
      // A click selects the bar's value too (the list box is the keyboard's way to it).
      g.addEventListener('click', () => toggle(dim, r[0]));
      chart.append(g);
    });
    box.replaceChildren(chart);
  };
  let resizing = 0;
  window.addEventListener('resize', () => {
    cancelAnimationFrame(resizing);
    resizing = requestAnimationFrame(() => { if (view && view.chart) drawChart(view); });
  });

  // -- rows: sortable, keyset pages (a stack of the cursors that led to each page)
  const buildGridHead = (v) => {
    const head = $('grid').tHead;
    head.replaceChildren(h('tr', null, ...v.fields.map((f) => {
      const b = h('button', { type: 'button', class: 'sort', text: f.name }, h('span', { class: 'arrow', 'aria-hidden': 'true' }));
      b.addEventListener('click', () => sortBy(v, f.name));
      return h('th', { scope: 'col', 'data-field': f.name, class: NUMERIC.has(f.kind) ? 'num' : null }, b);
    })));
    showSort();
  };
  const showSort = () => {
    for (const th of $('grid').tHead.querySelectorAll('th')) {
      const on = state.sort && state.sort.by === th.dataset.field;
      if (on) th.setAttribute('aria-sort', state.sort.dir === 'asc' ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
      th.querySelector('.arrow').textContent = on ? (state.sort.dir === 'asc' ? '▲' : '▼') : '';
    }
  };
  /** Ascending, then descending, then the storage order again. */
  const sortBy = (v, field) => {
    const s = state.sort;
    state.sort = !s || s.by !== field ? { by: field, dir: 'asc' } : s.dir === 'asc' ? { by: field, dir: 'desc' } : null;
    saveUrl(false);
    showSort();
    track(loadGrid(v, true));
  };
  const loadGrid = async (v, first) => {
    if (first) v.pages = [null];
    const n = ++v.gridReq;
    $('grid-prev').disabled = true;
    $('grid-next').disabled = true;
    const q = new URLSearchParams({ limit: String(GRID_PAGE), selections: JSON.stringify(state.sel) });
    if (state.sort) q.set('sort', state.sort.by + ':' + state.sort.dir);
    const after = v.pages[v.pages.length - 1];
    if (after) q.set('after', after);
    let page;
    try {
      page = await api(appPath(v.app) + '/tables/' + encodeURIComponent(v.table.name) + '/rows?' + q.toString(), { quiet: (e) => e.status === 409 && !first });
    } catch (err) {
      // The app was reloaded meanwhile: a cursor of its previous version means nothing; start over.
      if (err instanceof ApiError && err.status === 409 && !first && n === v.gridReq) return loadGrid(v, true);
      throw err;
    }
    if (n !== v.gridReq || view !== v) return;
    const kinds = page.columns.map((c) => { const f = v.fields.find((x) => x.name === c); return f ? f.kind : 'other'; });
    $('grid').tBodies[0].replaceChildren(...page.rows.map((r) =>
      h('tr', null, ...r.map((c, i) => h('td', { class: NUMERIC.has(kinds[i]) ? 'num' : null, text: cellText(c) })))));
    const from = (v.pages.length - 1) * GRID_PAGE + 1;
    $('grid-caption').textContent = page.rows.length
      ? v.table.name + ': rows ' + nf.format(from) + '–' + nf.format(from + page.rows.length - 1) + ' of ' + nf.format(page.total)
      : v.table.name + ': no rows under the current selections';
    v.next = page.next;
    $('grid-prev').disabled = v.pages.length === 1;
    $('grid-next').disabled = !page.next;
  };
  $('grid-next').addEventListener('click', () => {
    if (!view || !view.next) return;
    view.pages.push(view.next);
    track(loadGrid(view, false));
  });
  $('grid-prev').addEventListener('click', () => {
    if (!view || view.pages.length < 2) return;
    view.pages.pop();
    track(loadGrid(view, false));
  });

  /** Shows what the address says: the app (asked once), its table, the selections. */
  const route = () => {
    markCurrentApp();
    if (!state.app) {
      current = null; view = null;
      $('viewer').hidden = true; $('simple').hidden = true;
      return track(Promise.resolve());
    }
    if (!current || current.app !== state.app) return track(openApp(state.app));
    if (!current.schema) return track(Promise.resolve());
    if (!view || view.table.name !== (state.table || defaultTable(current.schema).name)) return track(openTable());
    if (view.plan) { showSort(); refresh(); }
    return track(Promise.resolve());
  };
  window.addEventListener('popstate', () => { readUrl(); route(); });

  const start = async () => {
    if (!token) { showLogin(); return; }
    readUrl();
    const body = await api('/api/v1/apps');
    apps = body.apps;
    $('who').textContent = apps.length + ' app(s)';
    for (const a of apps) {
      const link = h('a', { href: '?app=' + encodeURIComponent(a.id), 'data-app-id': a.id, text: a.name });
      link.addEventListener('click', (e) => {
        e.preventDefault();
        navigate({ app: a.id, table: null, sel: [], sort: null });
      });
      $('apps').append(h('li', null, link));
    }
    route();
  };
  track(start());
`;
