import { describe, expect, it } from 'vitest';
import prom from 'prom-client';
import { createAgentMetrics } from '../../../agent/metrics.js';
import { counter, histogram } from '../../../agent/metrics-exposition.js';
import { parseMetrics, sample } from '../../helpers/metrics.js';

const summary = {
  step: 'health_checking' as const,
  installed: '1.0.0',
  installedArtifact: 'fort-1.0.0',
  previous: null,
  deployment: {
    id: 'd1',
    artifactName: 'fort-1.0.1',
    source: 'server',
    downloaded: 10,
    target: '1.0.1',
    deadline: '2026-01-01T00:00:00Z',
    reason: null,
  },
  lastError: null,
  updatedAt: '2026-01-01T00:00:00Z',
};

describe('agent metrics', () => {
  it('counts what the modules report and reads the sources at scrape time', async () => {
    const m = createAgentMetrics();
    let outbox = 3;
    m.sample({ outboxBacklog: () => outbox, reloadBacklog: () => ({ queued: 2, running: 1 }) });
    // Registered later, as main.ts does once the link and the cloud service exist.
    m.sample({
      link: () => ({ up: true, connects: 2 }),
      inbox: () => ({ received: 5, duplicates: 1, deadLetteredBy: { bad_json: 2, wrong_fort: 1 } }),
      authorizer: () => ({ hits: 1, misses: 1, coalesced: 0 }),
    });
    m.reloadFinished('succeeded', 0.3);
    m.reloadFinished('failed', 20);
    m.apiRequest('client', '/api/v1/apps/:appId', 'GET', 200, 0.004);
    m.apiRequest('client', '/api/v1/apps/:appId', 'GET', 200, 0.02);
    m.apiRequest('admin', 'unmatched', 'GET', 404, 0.001);
    const first = await m.scrape();
    expect(first.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const s = parseMetrics(first.text);
    expect(sample(s, 'fort_iot_link_up')).toBe(1);
    expect(sample(s, 'fort_iot_reconnects_total')).toBe(1);
    expect(sample(s, 'fort_events_received_total')).toBe(5);
    expect(sample(s, 'fort_events_duplicates_total')).toBe(1);
    expect(sample(s, 'fort_events_dead_lettered_total', { reason: 'bad_json' })).toBe(2);
    expect(sample(s, 'fort_events_dead_lettered_total', { reason: 'wrong_fort' })).toBe(1);
    expect(sample(s, 'fort_outbox_backlog')).toBe(3);
    expect(sample(s, 'fort_reload_backlog', { state: 'queued' })).toBe(2);
    expect(sample(s, 'fort_reloads_total', { outcome: 'failed' })).toBe(1);
    expect(sample(s, 'fort_reload_duration_seconds_bucket', { outcome: 'succeeded', le: '0.5' })).toBe(1);
    expect(sample(s, 'fort_reload_duration_seconds_bucket', { outcome: 'failed', le: '15' })).toBe(0);
    expect(sample(s, 'fort_reload_duration_seconds_bucket', { outcome: 'failed', le: '60' })).toBe(1);
    expect(sample(s, 'fort_authz_cache_requests_total', { result: 'hit' })).toBe(1);
    expect(sample(s, 'fort_authz_cache_requests_total', { result: 'miss' })).toBe(1);
    expect(
      sample(s, 'fort_api_requests_total', {
        api: 'client',
        route: '/api/v1/apps/:appId',
        method: 'GET',
        status: '200',
      }),
    ).toBe(2);
    expect(
      sample(s, 'fort_api_request_duration_seconds_count', {
        api: 'client',
        route: '/api/v1/apps/:appId',
        method: 'GET',
      }),
    ).toBe(2);
    expect(
      sample(s, 'fort_api_requests_total', { api: 'admin', route: 'unmatched', method: 'GET', status: '404' }),
    ).toBe(1);
    // Process metrics come from prom-client, loaded by the first scrape.
    expect(sample(s, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    // Nothing reported by the deployment manager yet: no update series.
    expect([...s.keys()].some((k) => k.startsWith('fort_update_'))).toBe(false);

    outbox = 0;
    expect(sample(parseMetrics((await m.scrape()).text), 'fort_outbox_backlog')).toBe(0);
  });

  it('shows the reported update step as 1 and every other step as 0', async () => {
    const m = createAgentMetrics();
    m.sample({ updateState: () => ({ state: summary, reportedAt: '2026-01-01T00:00:05.000Z' }) });
    const s = parseMetrics((await m.scrape()).text);
    expect(sample(s, 'fort_update_state', { step: 'health_checking' })).toBe(1);
    expect(sample(s, 'fort_update_state', { step: 'idle' })).toBe(0);
    expect(sample(s, 'fort_update_info', { installed: '1.0.0', previous: '', artifact: 'fort-1.0.0' })).toBe(1);
    expect(sample(s, 'fort_update_reported_timestamp_seconds')).toBe(Date.parse('2026-01-01T00:00:05Z') / 1000);
  });

  it("keeps two agents' metrics apart (no global registry)", async () => {
    const a = createAgentMetrics();
    const b = createAgentMetrics();
    a.reloadFinished('succeeded', 1);
    expect(
      sample(parseMetrics((await b.scrape()).text), 'fort_reloads_total', { outcome: 'succeeded' }),
    ).toBeUndefined();
    expect(sample(parseMetrics((await a.scrape()).text), 'fort_reloads_total', { outcome: 'succeeded' })).toBe(1);
  });
});

describe('metrics exposition', () => {
  it('writes the same samples as prom-client for the same counts', async () => {
    const registry = new prom.Registry();
    const pc = new prom.Counter({ name: 'x_total', help: 'x', labelNames: ['a', 'b'], registers: [registry] });
    const ph = new prom.Histogram({
      name: 'x_seconds',
      help: 'x',
      labelNames: ['a'],
      buckets: [0.1, 1, 10],
      registers: [registry],
    });
    const oc = counter('x_total', 'x', ['a', 'b']);
    const oh = histogram('x_seconds', 'x', ['a'], [0.1, 1, 10]);
    const labels = [
      { a: 'p', b: 'q' },
      { a: 'p', b: 'r' },
      { a: 'we"ird\\ \nvalue', b: 'q' },
    ];
    for (const [i, l] of labels.entries()) {
      pc.inc(l, i + 1);
      oc.inc(l, i + 1);
      for (const v of [0.05, 0.1, 0.5, 3, 100]) {
        ph.observe({ a: l.a }, v * (i + 1));
        oh.observe({ a: l.a }, v * (i + 1));
      }
    }
    expect(parseMetrics(`${oc.render()}\n${oh.render()}`)).toEqual(parseMetrics(await registry.metrics()));
  });

  it('shows a counter without labels as 0 before anything is counted', () => {
    expect(counter('n_total', 'help with a \\ and\na newline').render()).toBe(
      '# HELP n_total help with a \\\\ and\\na newline\n# TYPE n_total counter\nn_total 0\n',
    );
  });
});
