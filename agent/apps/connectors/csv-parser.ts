import { FortError } from '../../../lib/errors.js';

/**
 * RFC 4180 tokenizer: records as fields, or a quote-free line's bounds for the caller to
 * convert in place (csv.ts maps either to typed columns).
 *
 * Our own rather than csv-parse: on a 1 000 000-row, 10-column file csv-parse alone takes
 * ~3.5 s, where the sqlite3 CLI imports the whole file in ~1.7 s and the load must keep 70 %
 * of the CLI's speed. A line without quotes (the usual case) is left where it lies in the
 * chunk, without a string per field; lines with quotes are walked field by field. The unit
 * tests hold it against csv-parse.
 */

/** A record (row) this long is refused: an unclosed quote must not swallow the file into memory. */
export const MAX_RECORD_CHARS = 16 * 1024 * 1024;

/** Malformed CSV; `record` counts every record, the header included (1-based). The reader names the table. */
export class CsvSyntaxError extends FortError {
  constructor(
    message: string,
    readonly record: number,
  ) {
    super('FORT_ERR_RELOAD_SOURCE', message);
  }
}

/**
 * Incremental, pull-style parser: `feed` each decoded text chunk (then `finish`), and take
 * records with `next` (or `nextLine`) until it returns undefined (the rest of the record is
 * in a later chunk). Records are taken one at a time on purpose: handed on at once, they
 * die young, where a chunk's worth of records held together outlives the agent's 1 MB
 * young generation and costs old-generation collections (measured: 2x slower, 2x the RSS).
 *
 * Fields may be quoted (the quote doubled inside) and hold delimiters and line breaks;
 * records end with \n or \r\n; empty lines are skipped; a leading BOM is dropped. A quote
 * inside an unquoted field is taken literally (as csv-parse's relax_quotes does).
 */
export class CsvParser {
  private text = '';
  private pos = 0;
  private final = false;
  private started = false;
  /** Next quote at or after `pos`, -1 = none in `text`, -2 = not searched yet. Searched again only once passed: linear. */
  private nextQuote = -2;
  private readonly d: number;
  private readonly q: number;
  /** Records returned so far, the header included. */
  count = 0;

  constructor(
    private readonly delimiter: string,
    private readonly quote: string,
    private readonly maxRecordChars = MAX_RECORD_CHARS,
  ) {
    if (
      delimiter.length !== 1 ||
      quote.length !== 1 ||
      delimiter === quote ||
      '\r\n'.includes(delimiter) ||
      '\r\n'.includes(quote)
    ) {
      throw new RangeError(
        'CsvParser: delimiter and quote must be two different single characters other than CR and LF',
      );
    }
    this.d = delimiter.charCodeAt(0);
    this.q = quote.charCodeAt(0);
  }

  feed(chunk: string): void {
    if (this.final) throw new Error('CsvParser: feed after finish');
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    this.text = this.pos < this.text.length ? this.text.slice(this.pos) + chunk : chunk;
    this.pos = 0;
    this.nextQuote = -2;
  }

  /** No more chunks: the last record may end without a line break. */
  finish(): void {
    this.final = true;
  }

  /** The text the current line's positions refer to (valid until the next `feed`). */
  get buffer(): string {
    return this.text;
  }

  /** Where the line `nextLine` returned `true` for lies in `buffer`: [lineStart, lineEnd), line break excluded. */
  lineStart = 0;
  lineEnd = 0;

  /** The next record as fields. */
  next(): string[] | undefined {
    const r = this.nextLine();
    return r === true ? this.text.slice(this.lineStart, this.lineEnd).split(this.delimiter) : r;
  }

  /**
   * The next record: `true` for a line without any quote, left in `buffer` at
   * [lineStart, lineEnd) for the caller to take apart without a string per field; a
   * record with quotes as its fields; undefined when the rest is in a later chunk.
   */
  nextLine(): true | string[] | undefined {
    const { text, final } = this;
    const len = text.length;
    for (;;) {
      const pos = this.pos;
      if (pos >= len) return undefined;
      const c0 = text.charCodeAt(pos);
      if (c0 === 10) {
        this.pos = pos + 1;
        continue;
      } // empty line
      if (c0 === 13) {
        if (pos + 1 === len) {
          if (!final) return undefined; // maybe a \r\n cut in two
          this.pos = len;
          continue;
        }
        if (text.charCodeAt(pos + 1) === 10) {
          this.pos = pos + 2;
          continue;
        }
      }
      const nl = text.indexOf('\n', pos);
      if (nl === -1 && !final) return this.incomplete();
      const end = nl === -1 ? len : nl;
      if (this.nextQuote !== -1 && this.nextQuote < pos) this.nextQuote = text.indexOf(this.quote, pos);
      if (this.nextQuote === -1 || this.nextQuote >= end) {
        this.pos = end + 1;
        this.count += 1;
        this.lineStart = pos;
        this.lineEnd = end > pos && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
        return true;
      }
      return this.quotedRecord(pos);
    }
  }

  private incomplete(): undefined {
    if (this.text.length - this.pos > this.maxRecordChars) {
      throw new CsvSyntaxError(
        `a record is longer than ${this.maxRecordChars} characters (an unclosed quote?)`,
        this.count + 1,
      );
    }
    return undefined;
  }

  /** A record with a quote somewhere, field by field; it may span lines. */
  private quotedRecord(pos: number): string[] | undefined {
    const { text, final, d, q } = this;
    const len = text.length;
    const rec: string[] = [];
    let i = pos;
    fields: for (;;) {
      if (text.charCodeAt(i) === q) {
        let value = '';
        let from = i + 1;
        for (;;) {
          const e = text.indexOf(this.quote, from);
          if (e < 0 || (e + 1 === len && !final)) {
            if (final)
              throw new CsvSyntaxError('a quoted field is not closed before the end of the data', this.count + 1);
            return this.incomplete(); // the closing quote (or what follows it) is in a later chunk
          }
          if (text.charCodeAt(e + 1) === q) {
            value += text.slice(from, e + 1);
            from = e + 2;
            continue;
          }
          value += text.slice(from, e);
          i = e + 1;
          break;
        }
        rec.push(value);
        if (i === len) {
          if (!final) return this.incomplete();
          break;
        }
        const c = text.charCodeAt(i);
        if (c === d) {
          i += 1;
          continue;
        }
        if (c === 10) {
          i += 1;
          break;
        }
        if (c === 13 && i + 1 === len) {
          if (!final) return this.incomplete();
          i += 1;
          break;
        }
        if (c === 13 && text.charCodeAt(i + 1) === 10) {
          i += 2;
          break;
        }
        throw new CsvSyntaxError(
          'unexpected character after a closing quote (expected the delimiter or the end of the line)',
          this.count + 1,
        );
      }
      for (let j = i; ; j++) {
        if (j === len) {
          if (!final) return this.incomplete();
          rec.push(text.slice(i, j > i && text.charCodeAt(j - 1) === 13 ? j - 1 : j));
          i = len;
          break fields;
        }
        const c = text.charCodeAt(j);
        if (c === d) {
          rec.push(text.slice(i, j));
          i = j + 1;
          continue fields;
        }
        if (c === 10) {
          rec.push(text.slice(i, j > i && text.charCodeAt(j - 1) === 13 ? j - 1 : j));
          i = j + 1;
          break fields;
        }
      }
    }
    this.pos = i;
    this.count += 1;
    return rec;
  }
}
