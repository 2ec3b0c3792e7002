import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { httpsOrigin, httpsUrl, identifier } from '../../lib/config/fields.js';
import { fsyncDir, removeDirAtomic, removeStaging, writeDirAtomic } from '../../lib/files.js';

const pem = (what: 'CERTIFICATE' | 'PUBLIC KEY') =>
  z.string().regex(new RegExp(`^\\s*-----BEGIN ${what}-----[\\s\\S]+-----END ${what}-----\\s*$`), {
    error: `expected a PEM ${what.toLowerCase()}`,
  });

/**
 * What the cloud's pairing endpoint answers (dev-cloud/CLOUD-API.md "Pairing"), checked as
 * strictly as agent.toml: these values become the MQTT client id, file names, URLs the fort
 * calls and the origins its API trusts, so a compromised or buggy cloud cannot slip in a path,
 * a plain-http URL or a wildcard origin through them. Every problem names its field.
 */
export const pairingAnswerSchema = z.object({
  fort_id: identifier(),
  tenant: identifier(),
  client_id: identifier(),
  // AWS IoT thing names: letters, digits, ":", "_", "-".
  thing_name: z.string().regex(/^[A-Za-z0-9:_-]{1,128}$/, { error: 'expected an AWS IoT thing name' }),
  device_certificate: pem('CERTIFICATE'),
  device_ca: pem('CERTIFICATE'),
  server_ca: pem('CERTIFICATE'),
  cloud: z.object({ url: httpsUrl(), token_endpoint: httpsUrl() }),
  user_tokens: z.object({
    issuer: httpsUrl(),
    audience: z.string().regex(/^[\x21-\x7e]{1,256}$/, { error: 'expected 1-256 printable characters' }),
    jwks_url: httpsUrl(),
  }),
  iot: z
    .object({
      endpoint: z.string().regex(/^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$/, { error: 'expected host[:port]' }),
      region: identifier(),
      role_alias: identifier(),
      credentials_url: httpsUrl(),
    })
    .nullable(),
  update_server: z.object({ url: httpsUrl() }).nullable(),
  artifact_key: pem('PUBLIC KEY').nullable(),
  cors_origins: z.array(httpsOrigin()).max(64),
});
export type PairingAnswer = z.output<typeof pairingAnswerSchema>;

/** identity.json: the answer without its PEMs, which are files beside it. */
const identitySchema = pairingAnswerSchema
  .omit({ device_certificate: true, device_ca: true, server_ca: true, artifact_key: true })
  .extend({
    paired_at: z.string(),
    cloud_url: httpsUrl(),
  });
export type FortIdentity = z.output<typeof identitySchema>;

/** File names of a paired fort's identity, all in one directory (the agent's data dir, not /etc). */
const NAMES = {
  identity: 'identity.json',
  jwtKey: 'jwt.key',
  deviceKey: 'device.key',
  deviceCert: 'device.pem',
  deviceCa: 'device-ca.pem',
  serverCa: 'server-ca.pem',
  artifactKey: 'artifact-key.pub.pem',
} as const;

export function identityFiles(dir: string) {
  return {
    dir,
    identity: join(dir, NAMES.identity),
    jwtKey: join(dir, NAMES.jwtKey),
    deviceKey: join(dir, NAMES.deviceKey),
    deviceCert: join(dir, NAMES.deviceCert),
    deviceCa: join(dir, NAMES.deviceCa),
    serverCa: join(dir, NAMES.serverCa),
    artifactKey: join(dir, NAMES.artifactKey),
  };
}
export type IdentityFiles = ReturnType<typeof identityFiles>;

/** The identity in `dir`, or undefined when this fort is not paired. */
export function readIdentity(dir: string): FortIdentity | undefined {
  const files = identityFiles(dir);
  if (!existsSync(files.identity)) return undefined;
  return identitySchema.parse(JSON.parse(readFileSync(files.identity, 'utf8')));
}

/**
 * Writes a whole identity at once (`writeDirAtomic`): a crash leaves either no identity or all
 * of it; what a crash left is removed by `removeUnfinished` at the next start.
 */
export function writeIdentity(
  dir: string,
  answer: PairingAnswer,
  keys: { jwtKeyPem: string; deviceKeyPem: string },
  cloudUrl: string,
  now: Date,
): FortIdentity {
  if (existsSync(dir)) throw new Error(`${dir} already holds an identity`);
  const f = NAMES;
  const { device_certificate, device_ca, server_ca, artifact_key, ...rest } = answer;
  const identity: FortIdentity = { ...rest, paired_at: now.toISOString(), cloud_url: cloudUrl };
  writeDirAtomic(dir, [
    { name: f.jwtKey, data: keys.jwtKeyPem, mode: 0o600 },
    { name: f.deviceKey, data: keys.deviceKeyPem, mode: 0o600 },
    { name: f.deviceCert, data: device_certificate, mode: 0o644 },
    { name: f.deviceCa, data: device_ca, mode: 0o644 },
    { name: f.serverCa, data: server_ca, mode: 0o644 },
    ...(artifact_key ? [{ name: f.artifactKey, data: artifact_key, mode: 0o644 }] : []),
    { name: f.identity, data: `${JSON.stringify(identity, null, 2)}\n`, mode: 0o644 },
  ]);
  return identity;
}

/** What a crash during pairing or unpairing left beside `dir` (never used): removed, their names. */
export function removeUnfinished(dir: string): string[] {
  return removeStaging(dir);
}

/** Forgets the identity (`removeDirAtomic`: a crash leaves the fort unpaired), keys included. */
export function removeIdentity(dir: string): void {
  removeDirAtomic(dir);
}

const PENDING = 'rotate-pending';
const ROTATED = [NAMES.jwtKey, NAMES.deviceKey, NAMES.deviceCert] as const;

/**
 * Commits new keys and certificate for a paired fort: written into a temporary directory, then
 * renamed to `rotate-pending` in one step. `applyPendingRotation` moves them into place; a
 * crash before the rename keeps the old keys (still valid during the cloud's overlap), one
 * after it is rolled forward at the next start.
 */
export function stageRotation(
  dir: string,
  next: { jwtKeyPem: string; deviceKeyPem: string; deviceCertPem: string },
): void {
  writeDirAtomic(join(dir, PENDING), [
    { name: NAMES.jwtKey, data: next.jwtKeyPem, mode: 0o600 },
    { name: NAMES.deviceKey, data: next.deviceKeyPem, mode: 0o600 },
    { name: NAMES.deviceCert, data: next.deviceCertPem, mode: 0o644 },
  ]);
}

/** Moves committed rotated files into place (each rename atomic; safe to repeat); drops uncommitted ones. Answers whether there was one. */
export function applyPendingRotation(dir: string): boolean {
  if (!existsSync(dir)) return false;
  const pending = join(dir, PENDING);
  removeStaging(pending);
  if (!existsSync(pending)) return false;
  for (const name of ROTATED) {
    const from = join(pending, name);
    if (existsSync(from)) renameSync(from, join(dir, name));
  }
  fsyncDir(dir);
  rmSync(pending, { recursive: true, force: true });
  return true;
}
