import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { loadClientKey } from '../../../agent/cloud/client-key.js';
import { createCloudClient, type CloudClientOptions } from '../../../agent/cloud/client.js';
import { FortError } from '../../../lib/errors.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { testPki } from '../../helpers/fort.js';
import { TEST_CLIENT_ID, testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';

const log = pino({ level: 'silent' });
const QUESTION = { user: 'alice', tenant: 't1', action: 'app.read', resource: 'sales-2026' } as const;

/**
 * The agent's cloud client against the dev cloud API (real TLS) when it answers 429 or 503 with
 * Retry-After: the retry waits that long, clamped to 1 s .. maxRetryAfterMs (default: the
 * request timeout). Waits are recorded through the client's `sleep` (no timing involved), and
 * one test measures a real one.
 */
describe('cloud client: Retry-After on 429/503', () => {
  let pki: PkiPaths;
  let dev: TestDevCloud;
  const agents: Agent[] = [];

  /** A client whose waits are recorded in `waits` and end at once. */
  const client = (over: Partial<CloudClientOptions> = {}) => {
    const waits: number[] = [];
    const agent = new Agent({ ca: dev.ca });
    agents.push(agent);
    const c = createCloudClient({
      baseUrl: new URL(dev.apiUrl),
      tokenEndpoint: new URL(dev.tokenUrl),
      clientId: TEST_CLIENT_ID,
      signingKey: loadClientKey(pki.jwt.privateKey),
      agent,
      timeoutMs: 10_000,
      retries: 2,
      log,
      random: () => 0.5,
      sleep: async (ms) => void waits.push(ms),
      ...over,
    });
    return { c, waits };
  };

  beforeAll(async () => {
    pki = await testPki();
    dev = await testDevCloud(pki);
  });
  afterAll(async () => {
    for (const a of agents) a.destroy();
    await dev?.stop();
  });

  it('waits the delta-seconds of a 429 or 503 before the next try (token and authorize)', async () => {
    const { c, waits } = client();
    dev.cloudApi.refuse({ status: 503, retryAfter: 4, routes: ['token'] });
    dev.cloudApi.refuse({ status: 429, retryAfter: 7, routes: ['authorize'] });
    expect(await c.authorize(QUESTION)).toEqual({ allow: true, ttl: 60 });
    expect(waits).toEqual([4000, 7000]);
    expect(c.stats()).toMatchObject({ tokensFetched: 1, requests: 4, retries: 2 });
  });

  it("an HTTP-date: the time until then by the answer's Date (within the whole second both are rounded to)", async () => {
    const { c, waits } = client();
    await c.accessToken();
    dev.cloudApi.refuse({ status: 503, retryAfter: new Date(Date.now() + 8000), routes: ['authorize'] });
    await c.authorize(QUESTION);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThanOrEqual(6000);
    expect(waits[0]).toBeLessThanOrEqual(8000);
  });

  it('clamped: huge → the request timeout (or maxRetryAfterMs), 0 → 1 s', async () => {
    const a = client();
    dev.cloudApi.refuse({ status: 429, retryAfter: 999_999_999, routes: ['token'] });
    dev.cloudApi.refuse({ status: 503, retryAfter: 0, routes: ['token'] });
    await a.c.accessToken();
    expect(a.waits).toEqual([10_000, 1000]);

    const b = client({ maxRetryAfterMs: 30_000 });
    dev.cloudApi.refuse({ status: 429, retryAfter: '9'.repeat(30), routes: ['token'] });
    await b.c.accessToken();
    expect(b.waits).toEqual([30_000]);
  });

  it('no or a malformed Retry-After: the jittered backoff as before; a 429 is retried too', async () => {
    const { c, waits } = client();
    dev.cloudApi.refuse({ status: 503, routes: ['token'] });
    dev.cloudApi.refuse({ status: 429, retryAfter: 'soon', routes: ['token'] });
    await c.accessToken();
    // fullJitterDelay with random 0.5: 100 ms, then 200 ms.
    expect(waits).toEqual([100, 200]);
  });

  it("out of retries: the error carries the server's wait (clamped to 1 h), not the shorter one waited", async () => {
    const { c, waits } = client({ retries: 1 });
    await c.accessToken();
    dev.cloudApi.refuse({ status: 429, retryAfter: 30, routes: ['authorize'] });
    dev.cloudApi.refuse({ status: 503, retryAfter: 86_400, routes: ['authorize'] });
    const err = await c.authorize(QUESTION).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FortError);
    expect([(err as FortError).code, (err as FortError).message, (err as FortError).retryAfterMs]).toEqual([
      'FORT_ERR_UPSTREAM',
      'cloud API answered 503 to an authorisation (retry after 60 min)',
      3_600_000,
    ]);
    expect(waits).toEqual([10_000]);
  });

  it('a real wait: the retry comes no sooner than Retry-After', async () => {
    const { c } = client({ sleep: undefined });
    await c.accessToken();
    dev.cloudApi.refuse({ status: 429, retryAfter: 1, routes: ['authorize'] });
    const asked = dev.cloudApi.stats().authorize;
    const started = performance.now();
    expect(await c.authorize(QUESTION)).toEqual({ allow: true, ttl: 60 });
    const took = performance.now() - started;
    expect(dev.cloudApi.stats().authorize).toBe(asked + 2);
    expect(took).toBeGreaterThanOrEqual(1000 - 1); // 1 ms for timer rounding
    expect(took).toBeLessThan(30_000);
  });
});
