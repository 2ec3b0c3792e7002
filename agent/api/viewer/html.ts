/** Markup of the viewer page: only the skeleton; every piece of fort data is added by /viewer.js as text. */

const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

export function viewerHtml(opts: {
  loginUrl?: string | undefined;
  tenant?: string | undefined;
  fortId?: string | undefined;
}): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fort viewer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/viewer.css"></head>
<body data-login-url="${escapeAttr(opts.loginUrl ?? '')}" data-tenant="${escapeAttr(opts.tenant ?? '')}" data-fort="${escapeAttr(opts.fortId ?? '')}">
<header class="top">
<h1>Fort viewer</h1>
<nav aria-label="Apps"><ul id="apps"></ul></nav>
<p id="who"></p>
</header>
<form id="login" hidden><label>User <input id="user" autocomplete="username" required></label> <button>Log in</button></form>
<p id="error" role="alert"></p>
<p id="status" class="sr-only" aria-live="polite"></p>
<main>
<section id="simple" hidden aria-label="Tables">
<p id="note"></p>
<ul id="tables"></ul>
<div class="scroll"><table id="rows"><caption id="caption"></caption><thead></thead><tbody></tbody></table></div>
<p class="pager"><button id="prev" type="button" hidden>Previous</button> <button id="next" type="button" hidden>Next</button></p>
</section>
<section id="viewer" hidden aria-busy="false" aria-labelledby="app-title">
<h2 id="app-title"></h2>
<div id="table-tabs" role="group" aria-label="Tables" hidden></div>
<section id="selections" class="selections" aria-labelledby="selections-title">
<h3 id="selections-title" tabindex="-1">Current selections</h3>
<p id="no-selections">None: every row counts.</p>
<ul id="chips"></ul>
<button id="clear-all" type="button" hidden>Clear all</button>
</section>
<section aria-labelledby="kpi-title"><h3 id="kpi-title" class="sr-only">Key figures</h3><dl id="kpis" class="kpis"></dl></section>
<div class="layout">
<aside id="filters" class="filters" aria-label="Fields"></aside>
<div class="content">
<section id="chart-box" class="panel" aria-labelledby="chart-title"><h3 id="chart-title"></h3><div id="chart"></div></section>
<section class="panel" aria-labelledby="grid-title"><h3 id="grid-title">Rows</h3>
<div class="scroll"><table id="grid"><caption id="grid-caption"></caption><thead></thead><tbody></tbody></table></div>
<p class="pager"><button id="grid-prev" type="button" disabled>Previous</button> <button id="grid-next" type="button" disabled>Next</button></p>
</section>
</div>
</div>
</section>
</main>
<script src="/viewer.js"></script>
</body></html>`;
}
