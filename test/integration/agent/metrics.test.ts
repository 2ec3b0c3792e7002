import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import type { PolicyInput } from '../../../dev-cloud/cloud-api/policy.js';
import { createAdminClient, type AdminClient } from '../../../lib/admin-client.js';
import { loadTlsMaterial } from '../../../lib/tls.js';
import type { UpdateSummary } from '../../../lib/update-state.js';
import { DIST, eventually, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { httpsCall, httpsRequest } from '../../helpers/https.js';
import { parseMetrics, sample } from '../../helpers/metrics.js';

const run = promisify(execFile);
const FORT = 'fort-dev-1';
const POLICY: PolicyInput = {
  decision_ttl_seconds: 600,
  tenants: {
    t1: {
      forts: [FORT],
      users: { alice: { groups: ['g'] } },
      spaces: { sales: { g: ['app.list', 'app.read'] } },
      apps: { orders: { space: 'sales' } },
    },
  },
};
const ROWS = '/api/v1/apps/:id/tables/:table/rows';

/** A real agent linked to the dev cloud (IoT bridge, cloud API), scraped over the trust-zone admin API. */
describe('agent metrics (GET /admin/v1/metrics)', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  let admin: AdminClient;
  let dmAdmin: AdminClient;
  let base: string;
  let token: string;

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT, iot: true, cloudAuth: true });
    writeFileSync(join(inst.layout.sourcesDir!, 'orders.csv'), 'id,amount\n1,2.5\n2,4\n');
    dev = await testDevCloud(pki, { ports: inst.layout.ports, policy: POLICY });
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
    const url = `https://127.0.0.1:${inst.layout.ports.admin}`;
    admin = createAdminClient({
      url,
      tls: loadTlsMaterial({ ca: pki.trustZone.ca, cert: pki.trustZone.fortctlCert, key: pki.trustZone.fortctlKey }),
    });
    dmAdmin = createAdminClient({
      url,
      tls: loadTlsMaterial({
        ca: pki.trustZone.ca,
        cert: pki.trustZone.deploymentManagerCert,
        key: pki.trustZone.deploymentManagerKey,
      }),
    });
    base = `https://127.0.0.1:${inst.layout.ports.clientApi}`;
    token = await dev.login('alice', 't1', 3600);
  });
  afterAll(async () => {
    admin?.close();
    dmAdmin?.close();
    await agent?.stop();
    await dev?.stop();
    inst?.cleanup();
  });

  const scrape = async () => {
    const res = await admin.metrics();
    expect(res.statusCode).toBe(200);
    return parseMetrics(res.text);
  };
  /** Scrapes until `probe` accepts what it sees. */
  const scrapeUntil = (probe: (m: Map<string, number>) => boolean, what: string) =>
    eventually(
      async () => {
        const m = await scrape();
        return probe(m) ? m : undefined;
      },
      20_000,
      what,
    );
  const event = (type: string, data: Record<string, unknown> = {}) => ({
    v: 1,
    id: randomUUID(),
    type,
    fortId: FORT,
    ts: new Date().toISOString(),
    data,
  });
  const send = (payload: string | object) =>
    dev.bridge.publish(`forts/${FORT}/events`, typeof payload === 'string' ? payload : JSON.stringify(payload));
  const pongs = () =>
    dev.bridge.messages.filter((m) => m.topic === `forts/${FORT}/status` && m.payload.toString().includes('"pong"'))
      .length;
  const rows = () =>
    httpsCall(base, readFileSync(pki.clientZone.ca), 'GET', '/api/v1/apps/orders/tables/orders/rows?limit=10', {
      headers: { authorization: `Bearer ${token}` },
    });

  it('shows the IoT link up once linked, in the Prometheus text format, with the process metrics', async () => {
    const m = await scrapeUntil((s) => sample(s, 'fort_iot_link_up') === 1, 'fort_iot_link_up 1');
    expect(sample(m, 'fort_iot_reconnects_total')).toBe(0);
    expect(sample(m, 'fort_outbox_backlog')).toBeGreaterThanOrEqual(0);
    expect(sample(m, 'process_resident_memory_bytes')).toBeGreaterThan(10e6);
    expect((await admin.metrics()).contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('counts exactly the events the inbox committed, and dead letters by reason', async () => {
    const before = await scrape();
    const received = sample(before, 'fort_events_received_total')!;
    const deadOf = (m: Map<string, number>, reason: string) =>
      sample(m, 'fort_events_dead_lettered_total', { reason }) ?? 0;
    const pongsBefore = pongs();
    for (let i = 0; i < 5; i++) await send(event('ping'));
    await send('{"not json');
    await send({ ...event('ping'), fortId: 'someone-else' });
    await eventually(() => (pongs() >= pongsBefore + 5 ? true : undefined), 10_000, 'five pongs');
    const after = await scrapeUntil(
      (m) => sample(m, 'fort_events_received_total')! >= received + 7,
      'seven more events received',
    );
    expect(sample(after, 'fort_events_received_total')).toBe(received + 7);
    expect(deadOf(after, 'bad_json')).toBe(deadOf(before, 'bad_json') + 1);
    expect(deadOf(after, 'wrong_fort')).toBe(deadOf(before, 'wrong_fort') + 1);
  });

  it('counts a reload with its duration, and a request by its route pattern, never its URL', async () => {
    const added = await admin.addApp(
      'id = "orders"\nname = "orders"\nspace = "sales"\n[[tables]]\nname = "orders"\nconnector = "csv"\npath = "orders.csv"\ncolumns = [ { name = "id", type = "integer" }, { name = "amount", type = "number" } ]\n',
      'toml',
    );
    expect(added.statusCode).toBe(201);
    const before = await scrape();
    const succeeded = (m: Map<string, number>) => sample(m, 'fort_reloads_total', { outcome: 'succeeded' }) ?? 0;
    expect((await admin.startReload('orders')).statusCode).toBe(202);
    const after = await scrapeUntil((m) => succeeded(m) > succeeded(before), 'the reload to be counted');
    expect(succeeded(after)).toBe(succeeded(before) + 1);
    expect(sample(after, 'fort_reload_duration_seconds_count', { outcome: 'succeeded' })).toBe(
      (sample(before, 'fort_reload_duration_seconds_count', { outcome: 'succeeded' }) ?? 0) + 1,
    );
    expect(sample(after, 'fort_reload_backlog', { state: 'queued' })).toBe(0);
    // The admin API's own requests, under their patterns too.
    expect(
      sample(after, 'fort_api_requests_total', {
        api: 'admin',
        route: '/admin/v1/reloads',
        method: 'POST',
        status: '202',
      }),
    ).toBe(1);

    const ok = await rows();
    expect(ok.status).toBe(200);
    expect((await httpsCall(base, readFileSync(pki.clientZone.ca), 'GET', '/no/such/path?x=1')).status).toBe(404);
    const m = await scrape();
    expect(sample(m, 'fort_api_requests_total', { api: 'client', route: ROWS, method: 'GET', status: '200' })).toBe(1);
    expect(sample(m, 'fort_api_request_duration_seconds_count', { api: 'client', route: ROWS, method: 'GET' })).toBe(1);
    expect(
      sample(m, 'fort_api_requests_total', { api: 'client', route: 'unmatched', method: 'GET', status: '404' }),
    ).toBe(1);
    expect([...m.keys()].filter((k) => k.includes('orders') || k.includes('/no/such'))).toEqual([]);
  });

  it('counts the authorisation cache: the first question asks the cloud, the same one again is a hit', async () => {
    const before = await scrape();
    const of = (m: Map<string, number>, result: string) =>
      sample(m, 'fort_authz_cache_requests_total', { result }) ?? 0;
    expect((await rows()).status).toBe(200);
    const after = await scrape();
    expect(of(after, 'hit')).toBeGreaterThan(of(before, 'hit'));
    expect(of(after, 'miss')).toBe(of(before, 'miss'));
  });

  it('shows the update state the deployment manager reports, in the metrics and fortctl update status', async () => {
    const fortctl = (...args: string[]) =>
      run(process.execPath, [join(DIST, 'fortctl/main.js'), '--config', inst.files.fortctl, ...args]);
    const none = await fortctl('update', 'status');
    expect(none.stdout).toMatch(
      /has not reported its update state since the agent started[\s\S]*fort-deployment-manager status/,
    );
    expect([...(await scrape()).keys()].some((k) => k.startsWith('fort_update_state'))).toBe(false);

    const summary: UpdateSummary = {
      step: 'downloading',
      installed: '1.0.0',
      installedArtifact: 'fort-1.0.0',
      previous: null,
      deployment: {
        id: 'dep-1',
        artifactName: 'fort-1.0.1',
        source: 'server',
        downloaded: 1024,
        target: null,
        deadline: null,
        reason: null,
      },
      lastError: null,
      updatedAt: new Date().toISOString(),
    };
    // Only the deployment manager reports it.
    expect((await admin.reportUpdateState(summary)).statusCode).toBe(403);
    expect((await dmAdmin.reportUpdateState(summary)).statusCode).toBe(204);
    const m = await scrape();
    expect(sample(m, 'fort_update_state', { step: 'downloading' })).toBe(1);
    expect(sample(m, 'fort_update_state', { step: 'idle' })).toBe(0);
    expect(sample(m, 'fort_update_info', { installed: '1.0.0', previous: '', artifact: 'fort-1.0.0' })).toBe(1);
    const shown = await fortctl('update', 'status');
    expect(shown.stdout).toContain('step        downloading\n');
    expect(shown.stdout).toContain('deployment  dep-1 fort-1.0.1\n');
    expect(shown.stdout).toContain('why         downloading fort-1.0.1 (deployment dep-1): 1024 bytes so far');
    const json = JSON.parse((await fortctl('update', 'status', '--json')).stdout) as {
      state: UpdateSummary;
      reportedAt: string;
    };
    expect(json.state).toEqual(summary);
  });

  it('serves the metrics to trust-zone members only', async () => {
    const url = `https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/metrics`;
    const trust = readFileSync(pki.trustZone.ca);
    await expect(httpsRequest(url, { ca: trust })).rejects.toThrow(
      /certificate|ECONNRESET|EPIPE|socket hang up|alert/i,
    );
    // A trust-zone member without an allowed role (the agent's own certificate).
    const res = await httpsRequest(url, {
      ca: trust,
      cert: readFileSync(pki.trustZone.agentCert),
      key: readFileSync(pki.trustZone.agentKey),
    });
    expect(res.status).toBe(403);
    expect(res.body).not.toContain('# TYPE');
  });
});
