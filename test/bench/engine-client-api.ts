import { appendFileSync, linkSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createAdminClient } from '../../lib/admin-client.js';
import { loadTlsMaterial } from '../../lib/tls.js';
import type { PolicyInput } from '../../dev-cloud/cloud-api/policy.js';
import { nodeArgsFromUnit } from '../../scripts/supervisor/unit-file.js';
import { eventually } from '../helpers/fort.js';
import { testDevCloud } from '../helpers/dev-cloud.js';
import type { BenchContext } from './benchmark.js';
import { COLUMNS } from './csv-load.js';
import { installation } from './fixture.js';

const POLICY: PolicyInput = {
  decision_ttl_seconds: 3600,
  tenants: {
    t1: {
      forts: ['fort-dev-1'],
      users: { alice: { groups: ['g'] } },
      spaces: { bench: { g: ['app.read'] } },
      apps: { bench: { space: 'bench' } },
    },
  },
};

/**
 * The whole path a browser's query takes: the real agent (TLS, JWT, cached authorisation, audit)
 * relaying to the real fort-engine over trust-zone mTLS, the app loaded by a reload as in
 * production. `n` sequential queries on one kept-alive connection (as a browser's), after a warm-up;
 * the time of each in ms.
 */
export async function clientApiQueryTimes(ctx: BenchContext, csv: string, spec: object, n: number): Promise<number[]> {
  const inst = await installation(ctx.tmp, ctx.pki, 1, false, true, true);
  appendFileSync(inst.files.agent, '\n[api.rate_limit]\nper_ip_per_minute = 1000000\nper_user_per_minute = 1000000\n');
  linkSync(csv, join(inst.layout.sourcesDir!, basename(csv)));
  const dev = await testDevCloud(ctx.pki, { ports: inst.layout.ports, policy: POLICY });
  const unitArgs = (unit: string) => nodeArgsFromUnit(join(ctx.dist, '..', 'systemd', unit));
  const engine = await ctx.scope.start({
    name: 'engine',
    script: join(ctx.dist, 'engine/main.js'),
    args: ['--config', inst.files.engine],
    nodeArgs: unitArgs('fort-engine.service'),
  });
  const agent = await ctx.scope.start({
    name: 'agent',
    script: join(ctx.dist, 'agent/main.js'),
    args: ['--config', inst.files.agent],
    nodeArgs: unitArgs('fort-agent.service'),
  });
  const admin = createAdminClient({
    url: `https://127.0.0.1:${inst.layout.ports.admin}`,
    tls: loadTlsMaterial({
      ca: ctx.pki.trustZone.ca,
      cert: ctx.pki.trustZone.fortctlCert,
      key: ctx.pki.trustZone.fortctlKey,
    }),
    timeoutMs: 30_000,
  });
  const keepAlive = new Agent({ ca: readFileSync(ctx.pki.clientZone.ca), keepAlive: true, maxSockets: 1 });
  try {
    await Promise.all([engine.waitReady(30_000), agent.waitReady(30_000)]);
    const app = { id: 'bench', name: 'Bench', space: 'bench' };
    const definition = {
      ...app,
      tables: [{ name: 'orders', connector: 'csv', path: basename(csv), columns: COLUMNS }],
    };
    const added = await admin.addApp(JSON.stringify(definition), 'json');
    if (added.statusCode >= 300) throw new Error(`bench: the app was refused: ${JSON.stringify(added.body)}`);
    await admin.startReload('bench');
    await eventually(
      async () => {
        const r = (await admin.reloads({ app: 'bench' })).body.reloads;
        if (r.some((x) => x.state === 'failed')) throw new Error(`bench: the reload failed: ${JSON.stringify(r)}`);
        return r.find((x) => x.state === 'succeeded');
      },
      300_000,
      'the bench app loaded by fort-engine',
    );
    const token = await dev.login('alice', 't1', 3600);
    const body = JSON.stringify(spec);
    const once = () =>
      new Promise<number>((resolve, reject) => {
        const t0 = performance.now();
        const req = request(
          `https://127.0.0.1:${inst.layout.ports.clientApi}/api/v1/apps/bench/query`,
          {
            method: 'POST',
            agent: keepAlive,
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200
                ? resolve(performance.now() - t0)
                : reject(new Error(`bench: the query answered ${res.statusCode}`)),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    for (let i = 0; i < 20; i++) await once();
    const times: number[] = [];
    for (let i = 0; i < n; i++) times.push(await once());
    return times;
  } finally {
    keepAlive.destroy();
    admin.close();
    await ctx.scope.stop(agent);
    await ctx.scope.stop(engine);
    await dev.stop();
  }
}
