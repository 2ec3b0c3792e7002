import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpdatableFort, type UpdatableFort } from '../../../helpers/update-fort.js';

/**
 * Below a wait the timers and the clock may show it: the server stamps arrivals in whole
 * milliseconds (two stamps: up to 1 ms each way) and Node may fire a timer 1 ms early.
 */
const ROUNDING_MS = 10;
/** A poll every second (poll_seconds = retry_seconds = 1, ±10 %) plus a cycle's own work, on a busy machine. */
const ABOUT_A_SECOND = { min: 900 - ROUNDING_MS, max: 3000 };

/**
 * The real deployment manager against the dev update server, with poll_seconds = retry_seconds
 * = 1: a `deployments/next` refused with 429 or 503 and a Retry-After makes the next poll wait
 * that long (service.ts: the cycle's error carries `retryAfterMs`, the next timer is that ÷ 0.9
 * before the ±10 % jitter), once; without a Retry-After it retries after retry_seconds, and
 * after the wait it polls every poll_seconds again. Measured where the server saw the requests
 * arrive.
 */
describe("poll cycle: the update server's Retry-After (deployment manager, dev update server)", () => {
  let fort: UpdatableFort;

  /** Arrival (ms) and answer of every `deployments/next` so far, oldest first. */
  const nexts = () =>
    fort.dev.mender.requests({ route: 'next' }).map((r) => ({ at: Date.parse(r.at), status: r.status }));
  /** Waits until `n` answered `next` requests follow the one at index `i`; returns every `next` so far. */
  const answeredAfter = (i: number, n: number, timeoutMs: number) =>
    fort.dev.mender.waitFor(
      () => {
        const all = nexts();
        return all.length > i + n && all.slice(i + 1, i + n + 1).every((r) => r.status !== null) ? all : undefined;
      },
      timeoutMs,
      `${n} answered deployments/next after #${i}`,
    );
  /** Arms `refuse` for the next `times` (default 1) `next` requests; resolves with the index of the first refused. */
  const refuseNext = async (refusal: { status: 429 | 503; retryAfter?: number; times?: number }) => {
    const from = nexts().length;
    fort.dev.mender.refuse({ ...refusal, routes: ['next'] });
    return fort.dev.mender.waitFor(
      () => {
        const i = nexts().findIndex((r, k) => k >= from && r.status === refusal.status);
        return i >= 0 ? { i } : undefined;
      },
      20_000,
      `a deployments/next answered ${refusal.status}`,
    );
  };
  /** Milliseconds between the arrivals of `next` requests k and k + 1, for k from `i` on, `n` of them. */
  const gaps = (all: { at: number }[], i: number, n: number) =>
    Array.from({ length: n }, (_, k) => all[i + k + 1]!.at - all[i + k]!.at);

  beforeAll(async () => {
    fort = await startUpdatableFort({ fortId: 'fort-retry-after', pollSeconds: 1, retrySeconds: 1 });
    // Admitted now, but its first cycle was the pending 401, whose Retry-After (the dev server's
    // pending_seconds, 60 s) it waits out: a deployment manager started again is admitted at once.
    await fort.dm!.stop();
    await fort.startDm();
    // Polling: two answered polls in a row.
    await fort.dev.mender.waitFor(
      () => {
        const all = nexts();
        return all.length >= 2 && all.slice(-2).every((r) => r.status === 204) ? true : undefined;
      },
      20_000,
      'the admitted device polling deployments/next',
    );
  });
  afterAll(async () => {
    await fort?.stop();
  });

  it('a 429 with Retry-After: 4 holds the next poll back at least 4 s, once; then it polls every second again', async () => {
    const { i } = await refuseNext({ status: 429, retryAfter: 4 });
    const all = await answeredAfter(i, 4, 30_000);
    const measured = gaps(all, i, 4);
    const [waited, ...after] = measured;
    const why = `gaps between polls from the refused one on: ${measured.join(', ')} ms`;
    expect(waited, why).toBeGreaterThanOrEqual(4000 - ROUNDING_MS);
    expect(waited, why).toBeLessThanOrEqual(15_000);
    // The wait was for that cycle only: every poll after it answered, one a second.
    expect(all.slice(i + 1, i + 5).map((r) => r.status)).toEqual([204, 204, 204, 204]);
    for (const g of after) {
      expect(g, why).toBeGreaterThanOrEqual(ABOUT_A_SECOND.min);
      expect(g, why).toBeLessThanOrEqual(ABOUT_A_SECOND.max);
    }
  });

  it('a 503 with Retry-After: 2 twice holds each retry back at least 2 s', async () => {
    const { i } = await refuseNext({ status: 503, retryAfter: 2, times: 2 });
    const all = await answeredAfter(i, 3, 30_000);
    expect(all.slice(i, i + 4).map((r) => r.status)).toEqual([503, 503, 204, 204]);
    const measured = gaps(all, i, 3);
    const [first, second, after] = measured;
    const why = `gaps between polls from the first refused one on: ${measured.join(', ')} ms`;
    for (const g of [first!, second!]) {
      expect(g, why).toBeGreaterThanOrEqual(2000 - ROUNDING_MS);
      expect(g, why).toBeLessThanOrEqual(15_000);
    }
    expect(after, why).toBeGreaterThanOrEqual(ABOUT_A_SECOND.min);
    expect(after, why).toBeLessThanOrEqual(ABOUT_A_SECOND.max);
  });

  it('a 429 without Retry-After is retried after retry_seconds (about 1 s)', async () => {
    const { i } = await refuseNext({ status: 429 });
    const all = await answeredAfter(i, 2, 20_000);
    expect(all.slice(i, i + 3).map((r) => r.status)).toEqual([429, 204, 204]);
    const measured = gaps(all, i, 2);
    const why = `gaps between polls from the refused one on: ${measured.join(', ')} ms`;
    for (const g of measured) {
      expect(g, why).toBeGreaterThanOrEqual(ABOUT_A_SECOND.min);
      expect(g, why).toBeLessThanOrEqual(ABOUT_A_SECOND.max);
    }
  });
});
