import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configReference, withReference } from '../../../scripts/config-reference.js';
import { REPO } from '../../helpers/fort.js';

describe('configuration reference', () => {
  it('documents every field of every schema', () => {
    const ref = configReference();
    for (const key of [
      '`fort.id`',
      '`api.port`',
      '`admin.tls.key`',
      '`admin.allowed_clients`',
      '`agent.admin_url`',
      '`state.path`',
      '`admin.url`',
    ]) {
      expect(ref).toContain(key);
    }
    expect(ref).not.toMatch(/\| {2}\|$/m); // no field without a meaning
  });

  it('is current in the README (regenerate: node dist/scripts/config-reference.js --write README.md)', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    expect(withReference(readme)).toBe(readme);
  });
});
