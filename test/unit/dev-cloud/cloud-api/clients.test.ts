import { describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadClients } from '../../../../dev-cloud/cloud-api/clients.js';
import { tempDir } from '../../../helpers/fort.js';

const pem = (type: 'ec' | 'ed25519' | 'rsa', name: string, dir: string) => {
  const { publicKey } =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ed25519');
  const file = join(dir, name);
  writeFileSync(file, publicKey.export({ format: 'pem', type: 'spki' }));
  return file;
};

describe('registered clients', () => {
  it('load P-256 and Ed25519 keys with their algorithm; refuse other keys, duplicates, unreadable files', () => {
    const dir = tempDir('clients');
    const clients = loadClients([
      { id: 'fort-ec', public_key: pem('ec', 'ec.pem', dir) },
      { id: 'fort-ed', public_key: pem('ed25519', 'ed.pem', dir) },
    ]);
    expect([...clients.values()].map((c) => [c.id, c.alg])).toEqual([
      ['fort-ec', 'ES256'],
      ['fort-ed', 'EdDSA'],
    ]);
    const rsa = pem('rsa', 'rsa.pem', dir);
    expect(() => loadClients([{ id: 'fort-rsa', public_key: rsa }])).toThrow(
      `public key of client fort-rsa (${rsa}) is rsa; expected an EC P-256 or Ed25519 key`,
    );
    expect(() =>
      loadClients([
        { id: 'a', public_key: join(dir, 'ec.pem') },
        { id: 'a', public_key: join(dir, 'ed.pem') },
      ]),
    ).toThrow('client a is registered twice');
    expect(() => loadClients([{ id: 'a', public_key: join(dir, 'none.pem') }])).toThrow(
      /cannot load public key of client a from .*none\.pem: ENOENT/,
    );
  });
});
