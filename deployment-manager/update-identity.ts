import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import type { AdminClient } from '../lib/admin-client.js';
import { fsyncDir, writeFileAtomic } from '../lib/files.js';
import type { Logger } from '../lib/logger.js';
import { createCsr } from '../lib/pki/certs.js';

const answerSchema = z.object({
  fort_id: z.string().min(1),
  device_certificate: z.string().includes('BEGIN CERTIFICATE'),
  server_ca: z.string().includes('BEGIN CERTIFICATE'),
  update_server: z.object({ url: z.string().url() }).nullable(),
  artifact_key: z.string().nullable(),
});
const identitySchema = z.object({ fort_id: z.string(), update_url: z.string().nullable(), obtained_at: z.string() });

export interface UpdateIdentity {
  fortId: string;
  /** Null when the cloud has no update server for this fort: only `install FILE`. */
  url: string | null;
  files: { key: string; cert: string; ca: string; artifactKey: string | undefined; authKey: string };
}

const filesOf = (dir: string, artifactKey: boolean) => ({
  key: join(dir, 'device.key'),
  cert: join(dir, 'device.pem'),
  ca: join(dir, 'server-ca.pem'),
  artifactKey: artifactKey ? join(dir, 'artifact-key.pub.pem') : undefined,
  authKey: join(dir, 'mender-auth.pem'),
});

function read(dir: string): UpdateIdentity | undefined {
  const file = join(dir, 'identity.json');
  if (!existsSync(file)) return undefined;
  const id = identitySchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  return { fortId: id.fort_id, url: id.update_url, files: filesOf(dir, existsSync(join(dir, 'artifact-key.pub.pem'))) };
}

/**
 * This process's own identity at the update server, for a paired fort. Made once: a device key
 * made here (it never leaves this process's directory; the agent runs as another user), its CSR
 * certified through the agent's admin API, and everything written in one directory rename.
 * Until the agent is paired (409) it asks again every `retryMs`.
 */
export async function obtainUpdateIdentity(opts: { dir: string; admin: Pick<AdminClient, 'updateIdentity'>; retryMs: number; signal: AbortSignal; log: Logger }): Promise<UpdateIdentity | undefined> {
  const have = read(opts.dir);
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
        return read(opts.dir);
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
  mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
  const staging = mkdtempSync(join(dirname(dir), `.${basename(dir)}.tmp-`));
  const f = filesOf(staging, answer.artifact_key !== null);
  writeFileAtomic(f.key, keyPem, 0o600);
  writeFileAtomic(f.cert, answer.device_certificate, 0o644);
  writeFileAtomic(f.ca, answer.server_ca, 0o644);
  if (f.artifactKey && answer.artifact_key) writeFileAtomic(f.artifactKey, answer.artifact_key, 0o644);
  writeFileAtomic(join(staging, 'identity.json'), `${JSON.stringify({ fort_id: answer.fort_id, update_url: answer.update_server?.url ?? null, obtained_at: new Date().toISOString() }, null, 2)}\n`, 0o644);
  renameSync(staging, dir);
  fsyncDir(dirname(dir));
}
