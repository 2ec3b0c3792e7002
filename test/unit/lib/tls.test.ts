import { beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTlsMaterial } from '../../../lib/tls.js';
import { TlsMaterialError } from '../../../lib/errors.js';
import { writeSecretFile } from '../../../lib/files.js';
import { createCa, issueCert } from '../../../lib/pki/certs.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { tempDir, testPki } from '../../helpers/fort.js';

describe('TLS material loading', () => {
  let pki: PkiPaths;
  let dir: string;
  beforeAll(async () => {
    pki = await testPki();
    dir = tempDir('tls');
  });
  const tz = () => ({ ca: pki.trustZone.ca, cert: pki.trustZone.agentCert, key: pki.trustZone.agentKey });

  it('loads a cert, its key and the CA', () => {
    const m = loadTlsMaterial(tz());
    expect(m.leaf.subject).toContain('CN=agent');
    expect(m.ca?.toString()).toContain('BEGIN CERTIFICATE');
  });

  for (const mode of [0o640, 0o604, 0o644]) {
    it(`refuses a key file with mode ${mode.toString(8)} without printing the key`, () => {
      const key = join(dir, `agent-${mode.toString(8)}.key`);
      copyFileSync(pki.trustZone.agentKey, key);
      chmodSync(key, mode);
      let error: unknown;
      try {
        loadTlsMaterial({ ...tz(), key });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TlsMaterialError);
      expect((error as TlsMaterialError).code).toBe('FORT_ERR_SECRET_PERMISSIONS');
      expect((error as Error).message).toBe(
        `key file ${key} has mode 0${mode.toString(8)}; it must not be readable by group or others (chmod 600 ${key})`,
      );
      const body = readFileSync(key, 'utf8').split('\n')[1]!;
      expect(JSON.stringify(error) + String(error)).not.toContain(body);
    });
  }

  it('refuses a key that does not belong to the certificate', () => {
    expect(() => loadTlsMaterial({ ...tz(), key: pki.trustZone.fortctlKey })).toThrow(
      `private key ${pki.trustZone.fortctlKey} does not belong to certificate ${pki.trustZone.agentCert}`,
    );
  });

  it('refuses an expired certificate at start', async () => {
    const ca = await createCa({ commonName: 'expired test CA' });
    const old = await issueCert(ca, {
      commonName: 'agent',
      usage: 'server',
      notBefore: new Date('2020-01-01'),
      notAfter: new Date('2021-01-01'),
    });
    const cert = join(dir, 'old.pem');
    const key = join(dir, 'old.key');
    writeSecretFile(cert, old.certPem);
    writeSecretFile(key, old.keyPem);
    expect(() => loadTlsMaterial({ cert, key })).toThrow(`certificate ${cert} expired on 2021-01-01T00:00:00.000Z`);
  });

  it('reports a missing file by path', () => {
    expect(() => loadTlsMaterial({ ...tz(), ca: join(dir, 'missing.pem') })).toThrow(
      `cannot load CA bundle ${join(dir, 'missing.pem')}: ENOENT`,
    );
  });
});
