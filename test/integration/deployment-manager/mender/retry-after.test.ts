import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadOrCreateAuthKey } from '../../../../deployment-manager/mender/auth-key.js';
import { createMenderClient, type MenderClient } from '../../../../deployment-manager/mender/client.js';
import { FortError } from '../../../../lib/errors.js';
import type { PkiPaths } from '../../../../lib/pki/layout.js';
import { tempDir, testPki } from '../../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../../helpers/dev-cloud.js';

const log = pino({ level: 'silent' });

/**
 * The Mender client against the dev update server (real mutual TLS) when it answers 429 or 503
 * with Retry-After: the client never waits itself, it puts the server's wait (clamped to
 * 1 s .. 1 h) on the error as `retryAfterMs` for the poll loop.
 */
describe('Mender client: Retry-After on the thrown error', () => {
  let pki: PkiPaths;
  let dev: TestDevCloud;
  let agent: Agent;
  const clients: MenderClient[] = [];

  const client = (fortId: string) => {
    const c = createMenderClient({
      serverUrl: new URL(dev.mender.url),
      agent,
      authKey: loadOrCreateAuthKey(join(tempDir('mender-key'), 'auth.pem')),
      idData: { fort_id: fortId },
      deviceType: 'fort-test',
      timeoutMs: 10_000,
      log,
    });
    clients.push(c);
    return c;
  };
  /** A client of an accepted device, authenticated. */
  const admitted = async (fortId: string) => {
    const c = client(fortId);
    await c.authenticate().catch(() => undefined); // pending: the device now exists
    dev.mender.accept(fortId);
    await c.authenticate();
    return c;
  };
  /** What a call threw: code, message, retryAfterMs. */
  const thrown = async (p: Promise<unknown>) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FortError);
    const e = err as FortError;
    return { code: e.code, message: e.message.replace(/^update server [^:]+:\d+: /, ''), retryAfterMs: e.retryAfterMs };
  };

  beforeAll(async () => {
    pki = await testPki();
    dev = await testDevCloud(pki);
    agent = new Agent({
      ca: readFileSync(pki.cloudServer.ca),
      cert: readFileSync(pki.cloudDevice.deviceCert),
      key: readFileSync(pki.cloudDevice.deviceKey),
    });
  });
  afterAll(async () => {
    agent?.destroy();
    await dev?.stop();
  });

  it("a pending device's 401 carries the server's Retry-After (60 s by default)", async () => {
    expect(await thrown(client('fort-pending').authenticate())).toEqual({
      code: 'FORT_ERR_NOT_ACCEPTED',
      message: 'this device ({"fort_id":"fort-pending"}) is not accepted yet (retry after 60 s)',
      retryAfterMs: 60_000,
    });
  });

  it('deployments/next: 429 and 503 with delta-seconds, without falling back to v1', async () => {
    const c = await admitted('fort-next');
    dev.mender.refuse({ status: 429, retryAfter: 120, routes: ['next'] });
    expect(await thrown(c.nextDeployment('fort-1.0.0'))).toEqual({
      code: 'FORT_ERR_UPDATE_SERVER',
      message: 'deployments/next answered 429 (retry after 2 min)',
      retryAfterMs: 120_000,
    });
    dev.mender.refuse({ status: 503, retryAfter: 5, routes: ['next'] });
    expect((await thrown(c.nextDeployment('fort-1.0.0'))).retryAfterMs).toBe(5000);
    // Nothing armed: the same client polls normally.
    expect(await c.nextDeployment('fort-1.0.0')).toBeUndefined();
  });

  it('an HTTP-date is measured from the answer (±1 s: both dates are whole seconds)', async () => {
    const c = await admitted('fort-date');
    dev.mender.refuse({ status: 503, retryAfter: new Date(Date.now() + 1800_000), routes: ['next'] });
    const { retryAfterMs } = await thrown(c.nextDeployment('fort-1.0.0'));
    expect(retryAfterMs).toBeGreaterThanOrEqual(1798_000);
    expect(retryAfterMs).toBeLessThanOrEqual(1800_000);
  });

  it('clamped: a huge value to 1 h, 0 and a past date to 1 s; none or a malformed one → undefined', async () => {
    const c = await admitted('fort-clamp');
    const cases: [number | Date | string | undefined, number | undefined][] = [
      [999_999_999, 3_600_000],
      ['9'.repeat(40), 3_600_000],
      [0, 1000],
      [new Date(Date.UTC(1994, 10, 6)), 1000],
      [undefined, undefined],
      ['in a while', undefined],
      ['-30', undefined],
      ['2026-11-23T10:00:00Z', undefined],
    ];
    for (const [retryAfter, want] of cases) {
      dev.mender.refuse({ status: 503, routes: ['next'], ...(retryAfter === undefined ? {} : { retryAfter }) });
      expect([retryAfter, (await thrown(c.nextDeployment('fort-1.0.0'))).retryAfterMs]).toEqual([retryAfter, want]);
    }
  });

  it('status reports, logs and inventory carry it too; other refusals do not', async () => {
    const c = await admitted('fort-status');
    dev.mender.refuse({ status: 503, retryAfter: 30, routes: ['status'] });
    expect(await thrown(c.reportStatus('d-1', 'downloading'))).toEqual({
      code: 'FORT_ERR_UPDATE_SERVER',
      message: 'status downloading answered 503 (retry after 30 s)',
      retryAfterMs: 30_000,
    });
    dev.mender.refuse({ status: 429, retryAfter: 45, routes: ['log'] });
    expect((await thrown(c.uploadLog('d-1', []))).retryAfterMs).toBe(45_000);
    dev.mender.refuse({ status: 429, retryAfter: 50, routes: ['inventory'] });
    expect((await thrown(c.sendInventory([{ name: 'x', value: 1 }]))).retryAfterMs).toBe(50_000);
    // A 404 (not this device's deployment) has no retry hint, whatever the headers.
    expect(await thrown(c.reportStatus('no-such-deployment', 'downloading'))).toEqual({
      code: 'FORT_ERR_UPDATE_SERVER',
      message: 'status downloading answered 404',
      retryAfterMs: undefined,
    });
  });

  it('auth_requests refused with 429 on the way to a call: the call throws with its wait', async () => {
    const c = client('fort-auth-busy');
    dev.mender.refuse({ status: 429, retryAfter: 15, routes: ['auth'] });
    expect(await thrown(c.nextDeployment('fort-1.0.0'))).toEqual({
      code: 'FORT_ERR_UPDATE_SERVER',
      message: 'authentication answered 429 (retry after 15 s)',
      retryAfterMs: 15_000,
    });
  });
});
