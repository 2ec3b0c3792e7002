import { describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { createFortRegistry } from '../../../dev-cloud/pairing/registry.js';
import { tempDir } from '../../helpers/fort.js';

const jwtPublicKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();

describe('dev cloud fort registry', () => {
  it('a fort id paired again after its revocation keeps its old certificates revoked', () => {
    const file = join(tempDir('registry'), 'forts.json');
    const registry = createFortRegistry({ file, now: () => new Date() });
    registry.add({ id: 'fort-a', tenant: 't1', jwtPublicKey, deviceCertSerial: 'AA01' });
    registry.addSerial('fort-a', 'aa02'); // its deployment manager's
    registry.revoke('fort-a');
    expect(registry.isRevokedSerial('AA01')).toBe(true);
    registry.add({ id: 'fort-a', tenant: 't1', jwtPublicKey, deviceCertSerial: 'BB01' });
    expect(registry.isRevokedSerial('AA01')).toBe(true);
    expect(registry.isRevokedSerial('AA02')).toBe(true);
    expect(registry.isRevokedSerial('BB01')).toBe(false);
    // And after a restart of the dev cloud (its file).
    const restarted = createFortRegistry({ file, now: () => new Date() });
    expect(restarted.isRevokedSerial('AA02')).toBe(true);
    expect(restarted.isRevokedSerial('BB01')).toBe(false);
  });
});
