import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * The deployment manager's identity at the update server, as it keeps it on disk (its
 * `updates.paired.identity_dir`): `identity.json` and the files beside it. A contract between
 * the deployment manager, which writes it, and `fortctl doctor`, which checks the update server
 * with it; neither reads the other's code.
 */
export interface UpdateIdentity {
  fortId: string;
  /** Null when the cloud has no update server for this fort: only `install FILE`. */
  url: string | null;
  obtainedAt: string;
  /** When the update server first admitted this identity; null: not yet. */
  admittedAt: string | null;
  files: UpdateIdentityFiles;
}

export interface UpdateIdentityFiles {
  key: string;
  cert: string;
  ca: string;
  /** Mender device auth key; the deployment manager makes it at its first start. */
  authKey: string;
}

const identitySchema = z.object({
  fort_id: z.string(),
  update_url: z.string().nullable(),
  obtained_at: z.string(),
  admitted_at: z.string().nullable().default(null),
});

/** The files of the identity in `dir` (relative names with `dir` = ''). */
export const updateIdentityFiles = (dir: string): UpdateIdentityFiles => ({
  key: join(dir, 'device.key'),
  cert: join(dir, 'device.pem'),
  ca: join(dir, 'server-ca.pem'),
  authKey: join(dir, 'mender-auth.pem'),
});

/** The identity obtained earlier in `dir`, or undefined (none yet); throws when identity.json is unreadable. */
export function readUpdateIdentity(dir: string): UpdateIdentity | undefined {
  const file = join(dir, 'identity.json');
  if (!existsSync(file)) return undefined;
  const id = identitySchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  return {
    fortId: id.fort_id,
    url: id.update_url,
    obtainedAt: id.obtained_at,
    admittedAt: id.admitted_at,
    files: updateIdentityFiles(dir),
  };
}

/** identity.json of `id`. */
export const updateIdentityJson = (id: Omit<UpdateIdentity, 'files'>): string =>
  `${JSON.stringify({ fort_id: id.fortId, update_url: id.url, obtained_at: id.obtainedAt, admitted_at: id.admittedAt }, null, 2)}\n`;
