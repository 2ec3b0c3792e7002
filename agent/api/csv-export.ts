import { Readable } from 'node:stream';

type Cell = string | number | boolean | null;

/** One CSV field (RFC 4180); text a spreadsheet would run as a formula gets a leading quote mark. */
export function csvField(v: Cell): string {
  if (v === null) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export const csvLine = (cells: readonly Cell[]) => `${cells.map(csvField).join(',')}\r\n`;

export interface AnswerPage {
  columns: { name: string }[];
  rows: Cell[][];
  next: string | null;
}

/**
 * A query's whole answer as CSV, page after page (keyset: `after` = the last page's `next`), so
 * neither the agent nor the engine holds more than one page. At most `maxRows` rows; a longer
 * answer ends with a line saying where it was cut. A page that fails ends the stream with the
 * error (the download is visibly incomplete, never silently short).
 */
export function csvExport(first: AnswerPage, nextPage: (after: string) => Promise<AnswerPage>, maxRows: number) {
  async function* lines() {
    yield csvLine(first.columns.map((c) => c.name));
    let page = first;
    let sent = 0;
    for (;;) {
      const room = maxRows - sent;
      const rows = page.rows.slice(0, room);
      if (rows.length) yield rows.map(csvLine).join('');
      sent += rows.length;
      if (page.rows.length > room || (sent >= maxRows && page.next)) {
        yield `# cut at ${maxRows} rows (api.export_max_rows)\r\n`;
        return;
      }
      if (!page.next) return;
      page = await nextPage(page.next);
    }
  }
  return Readable.from(lines(), { objectMode: false });
}
