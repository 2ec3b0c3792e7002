import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { AdminClient } from '../../lib/admin-client.js';
import { removeDirAtomic, removeStaging, writeDirAtomic, writeFileAtomic } from '../../lib/files.js';
import type { Logger } from '../../lib/logger.js';
import { createCsr } from '../../lib/pki/certs.js';
import { renewalDueAt } from '../../lib/pki/renewal-due.js';
import {
  readUpdateIdentity,
  updateIdentityFiles,
  updateIdentityJson as identityJson,
  type UpdateIdentity,
} from '../../lib/update-identity-file.js';

// The answer's artifact_key is not read: verification keys come only from this process's own
// root-owned config (updates.artifact_keys), never from what the agent relays.
const answerSchema = z.object({
  fort_id: z.string().min(1),
  device_certificate: z.string().includes('BEGIN CERTIFICATE'),
  server_ca: z.string().includes('BEGIN CERTIFICATE'),
  update_server: z.object({ url: z.string().url() }).nullable(),
});

/**
 * This process's own identity at the update server, for a paired fort: a device key made here
 * (it never leaves this process's directory; the agent runs as another user), its CSR certified
 * through the agent's admin API, and everything written in one directory rename. Until the agent
 * is paired (409) it asks again every `retryMs`.
 */
export async function obtainUpdateIdentity(opts: {
  dir: string;
  admin: Pick<AdminClient, 'updateIdentity'>;
  retryMs: number;
  signal: AbortSignal;
  log: Logger;
}): Promise<UpdateIdentity | undefined> {
  // What a crash while writing or removing it left (never used).
  removeStaging(opts.dir);
  const have = readUpdateIdentity(opts.dir);
  if (have) return have;
  let said = '';
  while (!opts.signal.aborted) {
    const got = await askAgent(opts.admin);
    if (got.ok) {
      write(opts.dir, got.answer, got.keyPem);
      opts.log.info(
        { fortId: got.answer.fort_id, updateServer: got.answer.update_server?.url ?? null },
        'update identity obtained through the agent',
      );
      return readUpdateIdentity(opts.dir);
    }
    if (got.why !== said) opts.log.warn({ retrySeconds: opts.retryMs / 1000 }, `no update identity yet: ${got.why}`);
    said = got.why;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, opts.retryMs);
      opts.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }
  return undefined;
}

type Answer = z.output<typeof answerSchema>;

/** A new device key made here and its CSR certified through the agent, once. */
async function askAgent(
  admin: Pick<AdminClient, 'updateIdentity'>,
): Promise<{ ok: true; answer: Answer; keyPem: string } | { ok: false; why: string }> {
  const device = await createCsr('deployment-manager');
  try {
    const res = await admin.updateIdentity(device.csrPem);
    if (res.statusCode === 200) return { ok: true, answer: answerSchema.parse(res.body), keyPem: device.keyPem };
    return {
      ok: false,
      why:
        res.statusCode === 409
          ? 'the fort is not paired yet (fortctl pair)'
          : `the agent answered ${res.statusCode}: ${res.body.detail ?? ''}`,
    };
  } catch (err) {
    return { ok: false, why: `the agent could not be asked: ${(err as Error).message}` };
  }
}

function write(dir: string, answer: Answer, keyPem: string, authKeyPem?: string): void {
  const f = updateIdentityFiles('');
  writeDirAtomic(dir, [
    ...(authKeyPem ? [{ name: f.authKey, data: authKeyPem, mode: 0o600 }] : []),
    { name: f.key, data: keyPem, mode: 0o600 },
    { name: f.cert, data: answer.device_certificate, mode: 0o644 },
    { name: f.ca, data: answer.server_ca, mode: 0o644 },
    {
      name: 'identity.json',
      data: identityJson({
        fortId: answer.fort_id,
        url: answer.update_server?.url ?? null,
        obtainedAt: new Date().toISOString(),
        admittedAt: null,
      }),
      mode: 0o644,
    },
  ]);
}

/** What runs with one identity (the update service); `admission` is told each change of the server's answer. */
export type StartWithIdentity = (
  id: UpdateIdentity,
  admission: (admitted: boolean) => void,
) => { stop(): Promise<void> };

/**
 * Keeps this process on the fort's current identity: after `fortctl unpair` and a new pairing the
 * identity it has is the old fort's (revoked with it). It is discarded and a new one obtained
 * through the agent when the agent's fort id (each health check) is another than the identity's,
 * or when the update server refuses an identity it had admitted (a revoked certificate; also
 * a fort re-paired under the same id). A pending device is refused too, but was never admitted,
 * so waiting for an operator never renews it. Renewal stops the running service first, so one
 * identity is in use at a time, and never exits the process.
 */
export function followUpdateIdentity(opts: {
  dir: string;
  admin: Pick<AdminClient, 'updateIdentity'>;
  retryMs: number;
  log: Logger;
  start: StartWithIdentity;
  agentFortId?: string | undefined;
}) {
  const abort = new AbortController();
  let running: { id: UpdateIdentity; stop(): Promise<void> } | undefined;
  let renewing: Promise<void> | undefined;

  const admission = (id: UpdateIdentity) => (admitted: boolean) => {
    if (running?.id !== id) return;
    if (admitted && !id.admittedAt) {
      // Persisted: after a restart a refusal still tells a revoked identity from a pending one.
      id.admittedAt = new Date().toISOString();
      writeFileAtomic(join(opts.dir, 'identity.json'), identityJson(id), 0o644);
    } else if (!admitted && id.admittedAt) renew('the update server refuses the identity it had admitted');
  };

  const begin = async (why: string | undefined) => {
    if (running) {
      await running.stop();
      running = undefined;
    }
    if (why) {
      opts.log.warn({ reason: why }, "update identity discarded; asking the agent for the fort's current one");
      removeDirAtomic(opts.dir);
    }
    const id = await obtainUpdateIdentity({ ...opts, signal: abort.signal });
    if (!id || abort.signal.aborted) return;
    const service = opts.start(id, admission(id));
    running = { id, stop: () => service.stop() };
  };
  function renew(why?: string): void {
    if (abort.signal.aborted || renewing) return;
    renewing = begin(why)
      .catch((err: unknown) => opts.log.error({ err }, 'cannot obtain the update identity'))
      .finally(() => (renewing = undefined));
  }
  /**
   * Past two thirds of its certificate's life the identity is renewed: the new one is obtained
   * first, and only then does it replace the old (a refusal or an unreachable cloud leaves the old
   * one in use, tried again after `retryMs`).
   */
  let lastRenewalTry = -Infinity;
  /** The running identity's certificate, read once per identity (not at every health check). */
  let held: { id: UpdateIdentity; cert: X509Certificate | undefined } | undefined;
  function renewIfDue(): void {
    const id = running?.id;
    if (!id || abort.signal.aborted || renewing || performance.now() - lastRenewalTry < opts.retryMs) return;
    if (held?.id !== id) {
      let read: X509Certificate | undefined;
      try {
        read = new X509Certificate(readFileSync(id.files.cert));
      } catch {
        read = undefined; // unreadable: the update server's refusal renews it
      }
      held = { id, cert: read };
    }
    const cert = held.cert;
    if (!cert || Date.now() < renewalDueAt(cert)) return;
    lastRenewalTry = performance.now();
    renewing = (async () => {
      const got = await askAgent(opts.admin);
      if (!got.ok) throw new Error(got.why);
      if (abort.signal.aborted || running?.id !== id) return;
      // The update server knows the device by its auth key, not its TLS certificate: kept, the
      // device stays accepted (a new key would wait for an operator's accept again).
      const authKey = existsSync(id.files.authKey) ? readFileSync(id.files.authKey, 'utf8') : undefined;
      await running.stop();
      running = undefined;
      removeDirAtomic(opts.dir);
      write(opts.dir, got.answer, got.keyPem, authKey);
      const next = readUpdateIdentity(opts.dir)!;
      opts.log.warn(
        { notAfter: new Date(cert.validTo).toISOString() },
        'update certificate renewed (two thirds of its life had passed)',
      );
      const service = opts.start(next, admission(next));
      running = { id: next, stop: () => service.stop() };
    })()
      .catch((err: unknown) =>
        opts.log.error(
          { reason: (err as Error).message, notAfter: new Date(cert.validTo).toISOString() },
          'update certificate renewal failed; the current one stays in use',
        ),
      )
      .finally(() => (renewing = undefined));
  }
  // An identity kept from another fort (unpaired or paired anew while this process was stopped)
  // is dropped at once, not used until the next health check: the agent's answer at start says so.
  let kept: UpdateIdentity | undefined;
  try {
    kept = readUpdateIdentity(opts.dir);
  } catch {
    kept = undefined; // unreadable: obtainUpdateIdentity says so
  }
  renew(
    kept && opts.agentFortId && kept.fortId !== opts.agentFortId
      ? `the fort is now ${opts.agentFortId}, the identity is ${kept.fortId}'s`
      : undefined,
  );

  return {
    /** The fort id the agent answers with now ("unpaired" after fortctl unpair). */
    agentIs(fortId: string): void {
      if (running && fortId !== running.id.fortId)
        renew(`the fort is now ${fortId}, the identity is ${running.id.fortId}'s`);
      else renewIfDue();
    },
    async stop(): Promise<void> {
      abort.abort();
      await renewing;
      await running?.stop();
    },
  };
}
