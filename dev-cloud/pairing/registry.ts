import { createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../lib/files.js';
import { acceptedAlgorithm } from '../cloud-api/jws-algorithm.js';
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
  /** Certificates issued to its other processes (the deployment manager's), revoked with it. */
  otherSerials: z.array(z.string()).default([]),
  /** What it rotated away from: accepted until `until`, refused after. */
  previous: z.strictObject({ jwtPublicKey: z.string(), deviceCertSerial: z.string(), until: z.string() }).optional(),
  rotatedAt: z.string().optional(),
  /** Serials revoked with an earlier pairing of this id: a new pairing must not revive them. */
  revokedSerials: z.array(z.string()).default([]),
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
        alg = acceptedAlgorithm(createPublicKey(pem));
      } catch {
        throw new PairingRequestRefused('jwt_public_key is not a PEM public key');
      }
      if (!alg) throw new PairingRequestRefused('jwt_public_key must be an EC P-256 (ES256) or Ed25519 (EdDSA) key');
    },
    add(f: Omit<PairedFort, 'pairedAt' | 'revokedAt' | 'otherSerials' | 'revokedSerials'>): PairedFort {
      const before = forts.get(f.id);
      const revokedSerials = before?.revokedAt
        ? [
            ...before.revokedSerials,
            before.deviceCertSerial,
            ...before.otherSerials,
            ...(before.previous ? [before.previous.deviceCertSerial] : []),
          ]
        : [];
      const record: PairedFort = { ...f, otherSerials: [], revokedSerials, pairedAt: opts.now().toISOString() };
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
    /** New keys for a fort: the old ones stay valid for `overlapSeconds`. */
    rotate(id: string, next: { jwtPublicKey: string; deviceCertSerial: string }, overlapSeconds: number): PairedFort {
      const f = forts.get(id);
      if (!f || f.revokedAt) throw new PairingRequestRefused(`${id} is not a paired fort`);
      const t = opts.now();
      f.previous = {
        jwtPublicKey: f.jwtPublicKey,
        deviceCertSerial: f.deviceCertSerial,
        until: new Date(t.getTime() + overlapSeconds * 1000).toISOString(),
      };
      f.jwtPublicKey = next.jwtPublicKey;
      f.deviceCertSerial = next.deviceCertSerial;
      f.rotatedAt = t.toISOString();
      save();
      return f;
    },
    /** Another certificate of a paired fort (its deployment manager's), revoked with it. */
    addSerial(id: string, serial: string): void {
      const f = forts.get(id);
      if (!f || f.revokedAt) throw new PairingRequestRefused(`${id} is not a paired fort`);
      f.otherSerials.push(serial.toUpperCase());
      save();
    },
    /** A revoked fort's certificates, and a certificate rotated away from once the overlap ended. */
    isRevokedSerial(serial: string): boolean {
      const s = serial.toUpperCase();
      const t = opts.now().getTime();
      return [...forts.values()].some((f) => {
        const prev = f.previous?.deviceCertSerial === s;
        if (f.revokedSerials.includes(s)) return true;
        if (f.revokedAt && (f.deviceCertSerial === s || prev || f.otherSerials.includes(s))) return true;
        return prev && t >= Date.parse(f.previous!.until);
      });
    },
    /** The ids of a tenant's paired forts that are not revoked. */
    fortsOf(tenant: string): string[] {
      return [...forts.values()].filter((f) => f.tenant === tenant && !f.revokedAt).map((f) => f.id);
    },
    /** For the token endpoint: a paired fort that is not revoked. */
    client(id: string): RegisteredClient | undefined {
      const f = forts.get(id);
      if (!f || f.revokedAt) return undefined;
      const key = createPublicKey(f.jwtPublicKey);
      const prev = f.previous && createPublicKey(f.previous.jwtPublicKey);
      return {
        id: f.id,
        key,
        alg: acceptedAlgorithm(key)!,
        ...(prev ? { previous: { key: prev, alg: acceptedAlgorithm(prev)!, until: new Date(f.previous!.until) } } : {}),
      };
    },
  };
}
export type FortRegistry = ReturnType<typeof createFortRegistry>;
