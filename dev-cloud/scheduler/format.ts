import type { ReloadStatusRecord } from './status-log.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const first = (...vs: unknown[]) => vs.find((v) => v !== undefined && v !== null);
const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

function duration(ms: unknown): string | undefined {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return undefined;
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/**
 * The detail column: rows, duration and version of a success; error code and message of a
 * failure or cancellation. Reads what the agent sends (`data.rows`, `data.durationMs`,
 * `data.versionId`; `data.code`, `data.message`), and also `rowCount`, `version`,
 * `error.{code,message}`, `errorCode`/`errorMessage`.
 */
export function reloadStatusDetail(r: Pick<ReloadStatusRecord, 'type' | 'data'>): string {
  const d = r.data;
  if (r.type === 'reload.succeeded') {
    const rows = first(d.rows, d.rowCount);
    const dur = duration(d.durationMs);
    const version = first(d.versionId, d.version);
    return [
      rows !== undefined ? `rows=${text(rows)}` : '',
      dur ? `duration=${dur}` : '',
      version !== undefined ? `version=${text(version)}` : '',
    ]
      .filter(Boolean)
      .join(' ');
  }
  if (r.type === 'reload.failed' || r.type === 'reload.cancelled') {
    const err = isObject(d.error) ? d.error : {};
    const code = first(d.code, err.code, d.errorCode);
    const message = first(d.message, err.message, d.errorMessage, typeof d.error === 'string' ? d.error : undefined);
    return [code !== undefined ? text(code) : '', message !== undefined ? text(message) : '']
      .filter(Boolean)
      .join(': ');
  }
  const attempt = d.attempt;
  return typeof attempt === 'number' ? `attempt=${attempt}` : '';
}

/** A plain-text table of status records (oldest first), one line each, for `dev-cloud reloads`. */
export function formatReloadTable(records: readonly ReloadStatusRecord[]): string {
  if (records.length === 0) return 'no reload status events recorded\n';
  const head = ['TIME', 'FORT', 'APP', 'TYPE', 'RELOAD', 'DETAIL'];
  const rows = records.map((r) => [
    r.at,
    r.fortId,
    r.appId ?? '-',
    r.type,
    r.reloadId ?? '-',
    reloadStatusDetail(r).replace(/\s+/g, ' '),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[head, ...rows].map(line).join('\n')}\n`;
}
