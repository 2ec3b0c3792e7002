import { parse as csvParseSync } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { CsvParser, CsvSyntaxError } from '../../../../../agent/apps/connectors/csv-parser.js';

function parseAll(text: string, size: number, delimiter = ',', quote = '"'): string[][] {
  const p = new CsvParser(delimiter, quote);
  const out: string[][] = [];
  for (let i = 0; i < text.length; i += size) {
    p.feed(text.slice(i, i + size));
    for (let r = p.next(); r; r = p.next()) out.push(r);
  }
  p.finish();
  for (let r = p.next(); r; r = p.next()) out.push(r);
  return out;
}

describe('CSV parser', () => {
  const samples = [
    'a,b,c\n1,2,3\n4,5,6\n',
    'a,b,c\r\n1,2,3\r\n4,5,6',
    '\uFEFFname,note\n"Smith, Ann","said ""hi"""\n"multi\nline",x\n',
    'a,b\n"",\n,""\n"x""",y\n\n\nlast,"quoted at end"',
    'a,b\r\n"line\r\nbreak",2\r\n"x",""\r\n',
    'a,b\nun"quoted,"q"\n',
    'x\ny\nz',
    'é,ü\n"日本","ß"\n😀,"😀,😀"\n',
  ];

  it('gives what csv-parse gives, however the text is cut into chunks', () => {
    for (const text of samples) {
      const expected: string[][] = csvParseSync(text, {
        bom: true,
        relax_quotes: true,
        skip_empty_lines: true,
        relax_column_count: true,
      });
      for (const size of [1, 2, 3, 5, 7, 64, text.length])
        expect(parseAll(text, size), `${JSON.stringify(text)} in chunks of ${size}`).toEqual(expected);
    }
  });

  it('takes another delimiter and quote', () => {
    expect(parseAll("id;name\n1;'a;b'\n2;'it''s'\n", 4, ';', "'")).toEqual([
      ['id', 'name'],
      ['1', 'a;b'],
      ['2', "it's"],
    ]);
    expect(parseAll('id\tname\n1\t"tab\there"\n', 3, '\t')).toEqual([
      ['id', 'name'],
      ['1', 'tab\there'],
    ]);
  });

  it('refuses an unclosed quote and junk after a closing quote, counting records', () => {
    expect(() => parseAll('a,b\n1,2\n"open,3\n', 4)).toThrow(
      expect.objectContaining({ record: 3, message: 'a quoted field is not closed before the end of the data' }),
    );
    expect(() => parseAll('a,b\n"x"y,2\n', 100)).toThrow(expect.objectContaining({ record: 2 }));
    expect(() => parseAll('"', 1)).toThrow(CsvSyntaxError);
    expect(() => parseAll('"', 1)).toThrow(expect.objectContaining({ code: 'FORT_ERR_RELOAD_SOURCE', record: 1 }));
  });

  it('leaves a quote-free line in its buffer, line break excluded, and counts records', () => {
    const p = new CsvParser(',', '"');
    p.feed('a,b\r\n1,2\n"q",3\n');
    expect(p.nextLine()).toBe(true);
    expect(p.buffer.slice(p.lineStart, p.lineEnd)).toBe('a,b');
    expect(p.nextLine()).toBe(true);
    expect(p.buffer.slice(p.lineStart, p.lineEnd)).toBe('1,2');
    expect(p.nextLine()).toEqual(['q', '3']);
    expect(p.nextLine()).toBeUndefined();
    expect(p.count).toBe(3);
  });

  it('bounds a record held across chunks', () => {
    const p = new CsvParser(',', '"', 100);
    p.feed('a\n"');
    expect(p.next()).toEqual(['a']);
    expect(() => {
      for (let i = 0; i < 10; i++) {
        p.feed('x'.repeat(20));
        p.next();
      }
    }).toThrow(/longer than 100 characters/);
  });
});
