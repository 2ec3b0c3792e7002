import type { ProxySettings } from '../../../lib/proxy.js';
import { ConfinedFileRefused, openConfined } from '../../../lib/confined-file.js';
import { sourceError } from './types.js';
import { resolveDataFile } from '../confine.js';
import type { TableDefinition } from '../definition.js';
import { csvFileSource } from './csv.js';
import { httpSource } from './http.js';
import { sqliteSource } from './sqlite.js';
import type { TableSource } from './types.js';

export type { ColumnSpec, ColumnType, TableSource } from './types.js';

export interface SourceOptions {
  dataDirs: string[];
  httpAllowedHosts: string[];
  proxy?: ProxySettings;
  /** CA bundle for http sources; default: Node's bundled roots. */
  caFile?: string;
}

/** A checked file's descriptor, read by the connector: what is read is what was checked (lib/confined-file.ts). */
function openSourceFile(table: string, file: string, dataDirs: string[]): number {
  try {
    return openConfined(file, dataDirs).fd;
  } catch (err) {
    if (err instanceof ConfinedFileRefused) throw sourceError(table, `the file ${err.message}`);
    throw err;
  }
}

/**
 * The source of one table of a definition. Confinement and the host list are checked again
 * here, whatever checkDefinitionSources said earlier: files and config change in between,
 * and the file opened is the real path that was checked.
 */
export function openTableSource(table: TableDefinition, opts: SourceOptions): TableSource {
  switch (table.connector) {
    case 'csv': {
      const file = resolveDataFile(table.path, opts.dataDirs, `table "${table.name}" path`);
      return csvFileSource(
        file,
        { table: table.name, columns: table.columns, delimiter: table.delimiter, quote: table.quote },
        (f) => openSourceFile(table.name, f, opts.dataDirs),
      );
    }
    case 'sqlite': {
      const file = resolveDataFile(table.database, opts.dataDirs, `table "${table.name}" database`);
      return sqliteSource(table.name, file, table.query, opts.dataDirs);
    }
    case 'http':
      return httpSource({
        table: table.name,
        url: table.url,
        format: table.format,
        columns: table.columns,
        delimiter: table.delimiter,
        quote: table.quote,
        httpAllowedHosts: opts.httpAllowedHosts,
        ...(opts.proxy ? { proxy: opts.proxy } : {}),
        ...(opts.caFile ? { caFile: opts.caFile } : {}),
      });
  }
}
