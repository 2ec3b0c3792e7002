import { createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../lib/files.js';
import { jwsAlgorithmFor } from '../../lib/jws-algorithm.js';
import type { RegisteredClient } from '../cloud-api/clients.js';

const fortRecord = z.strictObject({
  id: z.string(),
  tenant: z.string(),
  /** SPKI PEM of the key that signs its client assertions. */
  jwtPublicKey: z.string(),
  /** Upper-case hex serial of its device certificate (IoT credentials provider, update server). */
  deviceCertSerial: z.string(),
  pairedAt: z.string(),
  revokedAt: z.string().optional(),
});
export type PairedFort = z.output<typeof fortRecord>;
const registryFile = z.strictObject({ forts: z.array(fortRecord) });

export class PairingRequestRefused extends Error {}

/**
 * Forts that paired, kept in a JSON file (written atomically) so they survive a restart of the
 * dev cloud. Revoked forts stay listed, refused everywhere.
 */
export function createFortRegistry(opts: { file: string; now: () => Date }) {
  const forts = new Map<string, PairedFort>();
  if (existsSync(opts.file)) {
    for (const f of registryFile.parse(JSON.parse(readFileSync(opts.file, 'utf8'))).forts) forts.set(f.id, f);
  }
  const save = () => {
    mkdirSync(dirname(opts.file), { recursive: true, mode: 0o700 });
    writeFileAtomic(opts.file, `${JSON.stringify({ forts: [...forts.values()] }, null, 2)}\n`);
  };
  return {
    /** A new fort id, e.g. fort-3f9a0c12e4 (unique here). */
    newId(): string {
      for (;;) {
        const id = `fort-${randomBytes(5).toString('hex')}`;
        if (!forts.has(id)) return id;
      }
    },
    /** The algorithm its key signs with; throws PairingRequestRefused for other key types. */
    checkJwtKey(pem: string): void {
      let alg;
      try {
        alg = jwsAlgorithmFor(createPublicKey(pem));
      } catch {
        throw new PairingRequestRefused('jwt_public_key is not a PEM public key');
      }
      if (!alg) throw new PairingRequestRefused('jwt_public_key must be an EC P-256 (ES256) or Ed25519 (EdDSA) key');
    },
    add(f: Omit<PairedFort, 'pairedAt' | 'revokedAt'>): PairedFort {
      const record: PairedFort = { ...f, pairedAt: opts.now().toISOString() };
      forts.set(f.id, record);
      save();
      return record;
    },
    get: (id: string): PairedFort | undefined => forts.get(id),
    list: (): PairedFort[] => [...forts.values()],
    revoke(id: string): PairedFort | undefined {
      const f = forts.get(id);
      if (!f) return undefined;
      f.revokedAt ??= opts.now().toISOString();
      save();
      return f;
    },
    isRevokedSerial: (serial: string): boolean => [...forts.values()].some((f) => f.revokedAt && f.deviceCertSerial === serial.toUpperCase()),
    /** For the token endpoint: a paired fort that is not revoked. */
    client(id: string): RegisteredClient | undefined {
      const f = forts.get(id);
      if (!f || f.revokedAt) return undefined;
      const key = createPublicKey(f.jwtPublicKey);
      return { id: f.id, key, alg: jwsAlgorithmFor(key)! };
    },
  };
}
export type FortRegistry = ReturnType<typeof createFortRegistry>;
