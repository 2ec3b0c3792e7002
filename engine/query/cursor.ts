import { z } from 'zod';
import { FortError } from '../../lib/errors.js';
import { cellValue, type CellValue } from './spec.js';

/**
 * A page's `next`: the version it was computed on and the last row's sort-key values,
 * base64url JSON. Stable across requests on one version (versions are immutable); a cursor of
 * another version or query shape is refused, not silently misread.
 */
const cursorSchema = z.strictObject({ version: z.string().max(128), keys: z.array(cellValue).max(64) });

export function encodeCursor(version: string, keys: CellValue[]): string {
  return Buffer.from(JSON.stringify({ version, keys })).toString('base64url');
}

export function decodeCursor(text: string, version: string, keyCount: number): CellValue[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new FortError('FORT_ERR_BAD_REQUEST', 'after: not a cursor this API returned');
  }
  const c = cursorSchema.safeParse(parsed);
  if (!c.success || c.data.keys.length !== keyCount)
    throw new FortError('FORT_ERR_BAD_REQUEST', 'after: not a cursor of this query (its sort keys differ)');
  if (c.data.version !== version)
    throw new FortError(
      'FORT_ERR_CONFLICT',
      `after: the cursor is of version ${c.data.version}; the app now serves ${version} (start again without after)`,
    );
  return c.data.keys;
}
