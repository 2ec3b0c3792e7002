import { createLru } from '../../lib/lru.js';
import type { VersionReader } from './version-reader.js';

export interface PageCacheOptions {
  reader: VersionReader;
  /** Bytes of serialized pages kept; least recently used pages are dropped beyond this. */
  maxBytes: number;
  /** One page's JSON at most (the reader stops reading past it); default 16 MiB. */
  maxPageBytes?: number;
}

/**
 * The JSON body of a rows page. Version files are never written after they are renamed into
 * place, so a page of (file, table, offset, limit) never changes: it is read from SQLite and
 * serialized once, then served from memory until evicted.
 */
export function createPageCache(opts: PageCacheOptions) {
  const pages = createLru<string, Buffer>(opts.maxBytes, undefined, (body) => body.length);
  let hits = 0;
  let misses = 0;
  return {
    /** The rows page as UTF-8 JSON; throws the reader's NotFoundError for a table the file lacks. */
    json(file: string, table: string, offset: number, limit: number): Buffer {
      const key = `${file}\0${table}\0${offset}\0${limit}`;
      const cached = pages.get(key);
      if (cached !== undefined) {
        hits++;
        return cached;
      }
      misses++;
      const page = opts.reader.rows(file, table, offset, limit, opts.maxPageBytes ?? 16 * 1024 * 1024);
      // Bytes, not a string: the socket then writes them as they are, without encoding each time.
      const body = Buffer.from(
        JSON.stringify({ columns: page.columns, rows: page.rows, offset, limit, total: page.total }),
      );
      pages.set(key, body);
      return body;
    },
    stats: () => ({ pages: pages.size, bytes: pages.weight, hits, misses }),
    clear: () => pages.clear(),
  };
}
export type PageCache = ReturnType<typeof createPageCache>;
