/**
 * The viewer's stylesheet (`/viewer.css`; the CSP allows no inline style): one column on a phone,
 * fields beside the chart and rows from 800 px; focus always visible; selected / possible /
 * excluded values told apart by more than colour (weight, a check mark, strike-through count).
 */
export const VIEWER_CSS = `*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; padding: 0 16px 32px; font: 15px/1.4 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1d2430; background: #f4f6f9; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 22px; margin: 12px 0 8px; }
h3 { font-size: 15px; margin: 0 0 8px; }
a { color: #0b57d0; }
button, input { font: inherit; color: inherit; }
button { cursor: pointer; border: 1px solid #9aa5b4; background: #fff; border-radius: 6px; padding: 4px 10px; min-height: 32px; }
button:hover:not(:disabled) { background: #e8eef8; }
button:disabled { cursor: default; color: #6b7482; border-color: #c9d0da; }
:focus-visible { outline: 3px solid #0b57d0; outline-offset: 2px; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 20px; padding: 12px 0; border-bottom: 1px solid #d5dbe4; }
.top nav ul, #tables { display: flex; flex-wrap: wrap; gap: 4px 14px; list-style: none; margin: 0; padding: 0; }
.top nav a[aria-current="page"] { font-weight: 700; color: #1d2430; text-decoration-thickness: 3px; }
#who { margin: 0 0 0 auto; color: #4a5363; }
#error:not(:empty) { margin: 12px 0; padding: 8px 12px; border-left: 4px solid #b3261e; background: #fdecea; color: #8c1d18; }
#login { margin: 16px 0; display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
#login input { padding: 4px 8px; border: 1px solid #9aa5b4; border-radius: 6px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; background: #fff; }
caption { text-align: left; padding: 6px 0; color: #4a5363; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e3e7ee; text-align: left; white-space: nowrap; }
th { background: #eef1f6; }
td.num, th.num { text-align: right; }
th button.sort { border: 0; background: none; padding: 2px 0; min-height: 0; font-weight: 700; display: inline-flex; gap: 4px; }
th button.sort .arrow { color: #0b57d0; min-width: 1em; }
.pager { display: flex; gap: 8px; align-items: center; margin: 8px 0 0; }
#table-tabs { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 10px; }
#table-tabs button[aria-pressed="true"] { background: #0b57d0; border-color: #0b57d0; color: #fff; }
.selections { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; padding: 8px 12px; background: #fff; border: 1px solid #d5dbe4; border-radius: 8px; }
.selections h3 { margin: 0; font-size: 14px; color: #4a5363; }
#no-selections { margin: 0; color: #6b7482; }
#chips { display: flex; flex-wrap: wrap; gap: 6px; list-style: none; margin: 0; padding: 0; }
.chip { display: inline-flex; align-items: center; gap: 4px; padding: 2px 2px 2px 10px; border-radius: 16px; background: #1e6b33; color: #fff; max-width: 100%; }
.chip .chip-values { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 40ch; }
.chip button { border: 0; background: transparent; color: #fff; border-radius: 50%; min-height: 28px; min-width: 28px; padding: 0; font-size: 18px; line-height: 1; }
.chip button:hover:not(:disabled) { background: #14522a; }
.chip button:focus-visible { outline-color: #fff; outline-offset: -3px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; margin: 12px 0; }
.kpi { background: #fff; border: 1px solid #d5dbe4; border-radius: 8px; padding: 10px 14px; }
.kpi dt { color: #4a5363; font-size: 13px; }
.kpi dd { margin: 2px 0 0; font-size: 26px; font-weight: 700; font-variant-numeric: tabular-nums; }
.layout { display: grid; grid-template-columns: minmax(0, 1fr); gap: 12px; }
@media (min-width: 800px) { .layout { grid-template-columns: minmax(220px, 280px) minmax(0, 1fr); } }
.filters { display: grid; gap: 12px; align-content: start; }
@media (min-width: 520px) and (max-width: 799px) { .filters { grid-template-columns: 1fr 1fr; } }
.content { display: grid; gap: 12px; align-content: start; min-width: 0; }
.panel, .listbox { background: #fff; border: 1px solid #d5dbe4; border-radius: 8px; padding: 10px 12px; min-width: 0; }
.listbox input { width: 100%; padding: 4px 8px; border: 1px solid #9aa5b4; border-radius: 6px; margin-bottom: 6px; }
.listbox ul { list-style: none; margin: 0; padding: 0; max-height: 232px; overflow-y: auto; }
@media (max-width: 519px) { .listbox ul { max-height: 172px; } }
.listbox li + li { margin-top: 2px; }
.value { display: flex; width: 100%; justify-content: space-between; gap: 8px; text-align: left; border-radius: 4px; border-color: #c9d0da; }
.value .v { overflow-wrap: anywhere; }
.value .n { font-variant-numeric: tabular-nums; color: #4a5363; }
.value[aria-pressed="true"] { background: #1e6b33; border-color: #1e6b33; color: #fff; font-weight: 700; }
.value[aria-pressed="true"] .v::before { content: "✓ "; }
.value[aria-pressed="true"] .n { color: #fff; }
.value[aria-pressed="true"]:hover { background: #14522a; }
.value.excluded { background: #dde1e7; color: #4a5363; border-color: #dde1e7; }
.value.excluded .n { text-decoration: line-through; }
.listbox .note { margin: 6px 0 0; color: #6b7482; font-size: 13px; }
.listbox .note:empty { display: none; }
#chart svg { display: block; width: 100%; height: auto; font-size: 12px; }
#chart .bar rect { fill: #3b6fd4; }
#chart .bar:hover rect { fill: #224fa8; }
#chart .bar.selected rect { fill: #1e6b33; }
#chart .bar { cursor: pointer; }
#chart .grid { stroke: #e3e7ee; }
#chart .axis { stroke: #6b7482; }
#chart text { fill: #1d2430; }
#chart .tick, #chart .axis-title { fill: #4a5363; }
#chart .axis-title { font-weight: 700; }
#chart .empty { color: #6b7482; }
[aria-busy="true"] .kpi dd, [aria-busy="true"] #chart { opacity: 0.6; }
`;
