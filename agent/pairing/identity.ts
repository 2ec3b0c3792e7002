import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { fsyncDir, writeFileAtomic } from '../../lib/files.js';

/** What the cloud's pairing endpoint answers (dev-cloud/CLOUD-API.md "Pairing"). */
export const pairingAnswerSchema = z.object({
  fort_id: z.string().min(1),
  tenant: z.string().min(1),
  client_id: z.string().min(1),
  thing_name: z.string().min(1),
  device_certificate: z.string().includes('BEGIN CERTIFICATE'),
  device_ca: z.string().includes('BEGIN CERTIFICATE'),
  server_ca: z.string().includes('BEGIN CERTIFICATE'),
  cloud: z.object({ url: z.string().url(), token_endpoint: z.string().url() }),
  user_tokens: z.object({ issuer: z.string().url(), audience: z.string().min(1), jwks_url: z.string().url() }),
  iot: z.object({ endpoint: z.string().min(1), region: z.string().min(1), role_alias: z.string().min(1), credentials_url: z.string().url() }).nullable(),
  update_server: z.object({ url: z.string().url() }).nullable(),
  artifact_key: z.string().includes('BEGIN PUBLIC KEY').nullable(),
  cors_origins: z.array(z.string()),
});
export type PairingAnswer = z.output<typeof pairingAnswerSchema>;

/** identity.json: the answer without its PEMs, which are files beside it. */
const identitySchema = pairingAnswerSchema.omit({ device_certificate: true, device_ca: true, server_ca: true, artifact_key: true }).extend({
  paired_at: z.string(),
  cloud_url: z.string().url(),
});
export type FortIdentity = z.output<typeof identitySchema>;

/** The files of a paired fort, all in one directory (the agent's data dir, not /etc). */
export function identityFiles(dir: string) {
  return {
    dir,
    identity: join(dir, 'identity.json'),
    jwtKey: join(dir, 'jwt.key'),
    deviceKey: join(dir, 'device.key'),
    deviceCert: join(dir, 'device.pem'),
    deviceCa: join(dir, 'device-ca.pem'),
    serverCa: join(dir, 'server-ca.pem'),
    artifactKey: join(dir, 'artifact-key.pub.pem'),
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
 * Writes a whole identity at once: every file into a new sibling directory (each fsynced), then
 * one rename onto `dir`. A crash leaves either no identity or all of it; the half-written
 * sibling is removed by `removeUnfinished` at the next start.
 */
export function writeIdentity(dir: string, answer: PairingAnswer, keys: { jwtKeyPem: string; deviceKeyPem: string }, cloudUrl: string, now: Date): FortIdentity {
  if (existsSync(dir)) throw new Error(`${dir} already holds an identity`);
  const parent = dirname(dir);
  const staging = mkdtempSync(join(parent, `.${basename(dir)}.pairing-`));
  const f = identityFiles(staging);
  const { device_certificate, device_ca, server_ca, artifact_key, ...rest } = answer;
  const identity: FortIdentity = { ...rest, paired_at: now.toISOString(), cloud_url: cloudUrl };
  writeFileAtomic(f.jwtKey, keys.jwtKeyPem, 0o600);
  writeFileAtomic(f.deviceKey, keys.deviceKeyPem, 0o600);
  writeFileAtomic(f.deviceCert, device_certificate, 0o644);
  writeFileAtomic(f.deviceCa, device_ca, 0o644);
  writeFileAtomic(f.serverCa, server_ca, 0o644);
  if (artifact_key) writeFileAtomic(f.artifactKey, artifact_key, 0o644);
  writeFileAtomic(f.identity, `${JSON.stringify(identity, null, 2)}\n`, 0o644);
  renameSync(staging, dir);
  fsyncDir(parent);
  return identity;
}

/** Staging directories a crash left beside `dir` (never renamed into place, so never used). */
export function removeUnfinished(dir: string): string[] {
  const parent = dirname(dir);
  if (!existsSync(parent)) return [];
  const prefix = `.${basename(dir)}.pairing-`;
  const left = readdirSync(parent).filter((n) => n.startsWith(prefix));
  for (const n of left) rmSync(join(parent, n), { recursive: true, force: true });
  return left;
}

/**
 * Forgets the identity: one rename out of the way (so a crash leaves the fort unpaired, the
 * leftover removed by `removeUnfinished`), then the keys are deleted.
 */
export function removeIdentity(dir: string): void {
  if (!existsSync(dir)) return;
  const parent = dirname(dir);
  const away = join(parent, `.${basename(dir)}.pairing-unpaired-${Date.now()}`);
  renameSync(dir, away);
  fsyncDir(parent);
  rmSync(away, { recursive: true, force: true });
}

const PENDING = 'rotate-pending';
const ROTATED = ['jwt.key', 'device.key', 'device.pem'] as const;

/**
 * Commits new keys and certificate for a paired fort: written into a temporary directory, then
 * renamed to `rotate-pending` in one step. `applyPendingRotation` moves them into place; a
 * crash before the rename keeps the old keys (still valid during the cloud's overlap), one
 * after it is rolled forward at the next start.
 */
export function stageRotation(dir: string, next: { jwtKeyPem: string; deviceKeyPem: string; deviceCertPem: string }): void {
  const tmp = mkdtempSync(join(dir, '.rotate-tmp-'));
  writeFileAtomic(join(tmp, 'jwt.key'), next.jwtKeyPem, 0o600);
  writeFileAtomic(join(tmp, 'device.key'), next.deviceKeyPem, 0o600);
  writeFileAtomic(join(tmp, 'device.pem'), next.deviceCertPem, 0o644);
  renameSync(tmp, join(dir, PENDING));
  fsyncDir(dir);
}

/** Moves committed rotated files into place (each rename atomic; safe to repeat); drops uncommitted ones. Answers whether there was one. */
export function applyPendingRotation(dir: string): boolean {
  if (!existsSync(dir)) return false;
  for (const n of readdirSync(dir)) if (n.startsWith('.rotate-tmp-')) rmSync(join(dir, n), { recursive: true, force: true });
  const pending = join(dir, PENDING);
  if (!existsSync(pending)) return false;
  for (const name of ROTATED) {
    const from = join(pending, name);
    if (existsSync(from)) renameSync(from, join(dir, name));
  }
  fsyncDir(dir);
  rmSync(pending, { recursive: true, force: true });
  return true;
}
