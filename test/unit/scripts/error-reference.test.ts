import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERRORS } from '../../../lib/errors.js';
import { errorReference, withErrorReference } from '../../../scripts/error-reference.js';
import { REPO } from '../../helpers/fort.js';

describe('error catalogue reference', () => {
  it('has a row per code: status, title, exit, fatal or transient', () => {
    const ref = errorReference();
    for (const code of Object.keys(ERRORS)) expect(ref).toContain(`| \`${code}\` |`);
    expect(ref).toContain('| `FORT_ERR_CONFLICT` | 409 | Conflict | 1 failed | fatal |');
    expect(ref).toContain('| `FORT_ERR_BUSY` | 503 | Busy | 75 busy | transient |');
  });

  it('is current in the README (regenerate: node dist/scripts/error-reference.js --write README.md)', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    expect(withErrorReference(readme)).toBe(readme);
  });
});
