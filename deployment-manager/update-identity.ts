import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { AdminClient } from '../lib/admin-client.js';
import { removeStaging, writeDirAtomic } from '../lib/files.js';
import type { Logger } from '../lib/logger.js';
import { createCsr } from '../lib/pki/certs.js';

// The answer's artifact_key is not read: verification keys come only from this process's own
// root-owned config (updates.artifact_keys), never from what the agent relays.
const answerSchema = z.object({
  fort_id: z.string().min(1),
  device_certificate: z.string().includes('BEGIN CERTIFICATE'),
  server_ca: z.string().includes('BEGIN CERTIFICATE'),
  update_server: z.object({ url: z.string().url() }).nullable(),
});
const identitySchema = z.object({ fort_id: z.string(), update_url: z.string().nullable(), obtained_at: z.string() });

export interface UpdateIdentity {
  fortId: string;
  /** Null when the cloud has no update server for this fort: only `install FILE`. */
  url: string | null;
  files: { key: string; cert: string; ca: string; authKey: string };
}

const filesOf = (dir: string) => ({ key: join(dir, 'device.key'), cert: join(dir, 'device.pem'), ca: join(dir, 'server-ca.pem'), authKey: join(dir, 'mender-auth.pem') });

/** The identity obtained earlier in `dir`, or undefined (none yet). */
export function readUpdateIdentity(dir: string): UpdateIdentity | undefined {
  const file = join(dir, 'identity.json');
  if (!existsSync(file)) return undefined;
  const id = identitySchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  return { fortId: id.fort_id, url: id.update_url, files: filesOf(dir) };
}

/**
 * This process's own identity at the update server, for a paired fort. Made once: a device key
 * made here (it never leaves this process's directory; the agent runs as another user), its CSR
 * certified through the agent's admin API, and everything written in one directory rename.
 * Until the agent is paired (409) it asks again every `retryMs`.
 */
export async function obtainUpdateIdentity(opts: { dir: string; admin: Pick<AdminClient, 'updateIdentity'>; retryMs: number; signal: AbortSignal; log: Logger }): Promise<UpdateIdentity | undefined> {
  // What a crash while writing it left (never used).
  removeStaging(opts.dir);
  const have = readUpdateIdentity(opts.dir);
  if (have) return have;
  let said = '';
  while (!opts.signal.aborted) {
    const device = await createCsr('deployment-manager');
    let why: string;
    try {
      const res = await opts.admin.updateIdentity(device.csrPem);
      if (res.statusCode === 200) {
        const answer = answerSchema.parse(res.body);
        write(opts.dir, answer, device.keyPem);
        opts.log.info({ fortId: answer.fort_id, updateServer: answer.update_server?.url ?? null }, 'update identity obtained through the agent');
        return readUpdateIdentity(opts.dir);
      }
      why = res.statusCode === 409 ? 'the fort is not paired yet (fortctl pair)' : `the agent answered ${res.statusCode}: ${res.body.detail ?? ''}`;
    } catch (err) {
      why = `the agent could not be asked: ${(err as Error).message}`;
    }
    if (why !== said) opts.log.warn({ retrySeconds: opts.retryMs / 1000 }, `no update identity yet: ${why}`);
    said = why;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, opts.retryMs);
      opts.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }
  return undefined;
}

function write(dir: string, answer: z.output<typeof answerSchema>, keyPem: string): void {
  const f = filesOf('');
  writeDirAtomic(dir, [
    { name: f.key, data: keyPem, mode: 0o600 },
    { name: f.cert, data: answer.device_certificate, mode: 0o644 },
    { name: f.ca, data: answer.server_ca, mode: 0o644 },
    { name: 'identity.json', data: `${JSON.stringify({ fort_id: answer.fort_id, update_url: answer.update_server?.url ?? null, obtained_at: new Date().toISOString() }, null, 2)}\n`, mode: 0o644 },
  ]);
}
