import { afterEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { createShadowReporter, fit, MAX_SHADOW_BYTES } from '../../../../agent/shadow/reporter.js';

const log = pino({ level: 'silent' });
afterEach(() => {
  vi.useRealTimers();
});

describe('shadow reporter', () => {
  it('fits the document in 8 KB by halving the longest list, saying so', () => {
    const reloads = Array.from({ length: 500 }, (_, i) => ({ app: `app-${i}`, state: 'succeeded', rows: i }));
    const state = { fortId: 'f', reloads, versions: { agent: '1.0.0' } };
    const fitted = fit(state);
    expect(Buffer.byteLength(JSON.stringify({ state: { reported: fitted } }))).toBeLessThanOrEqual(MAX_SHADOW_BYTES);
    expect(fitted).toMatchObject({ truncated: true, versions: { agent: '1.0.0' } });
    expect((fitted['reloads'] as unknown[]).length).toBeGreaterThan(0);
    expect(fit({ fortId: 'f', reloads: reloads.slice(0, 3) })).toEqual({ fortId: 'f', reloads: reloads.slice(0, 3) });
  });

  it('sends a burst of changes once (debounced), again when the link is back, and at least hourly', async () => {
    vi.useFakeTimers();
    let t = 0;
    let state = { n: 0 };
    const sent: { n: number }[] = [];
    const r = createShadowReporter({
      thingName: 'fort-1',
      collect: async () => state,
      publish: async (_topic, payload) =>
        void sent.push((JSON.parse(payload) as { state: { reported: { n: number } } }).state.reported),
      log,
      checkMs: 1000,
      debounceMs: 500,
      maxIntervalMs: 3_600_000,
      now: () => t,
    });
    r.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([{ n: 0 }]); // the first check: never sent before
    for (let i = 1; i <= 5; i++) {
      state = { n: i };
      t += 100;
      await vi.advanceTimersByTimeAsync(100);
    }
    t += 3000;
    await vi.advanceTimersByTimeAsync(3000);
    expect(sent.map((s) => s.n)).toEqual([0, 5]);
    r.linkUp();
    await vi.advanceTimersByTimeAsync(0);
    expect(sent.map((s) => s.n)).toEqual([0, 5, 5]);
    t += 3_600_000;
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent.map((s) => s.n)).toEqual([0, 5, 5, 5]);
    r.stop();
  });
});
