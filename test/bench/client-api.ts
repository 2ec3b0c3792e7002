import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { pino } from 'pino';
import { openStore } from '../../agent/store/database.js';
import { seedApp } from '../../agent/apps/seed.js';
import { nodeArgsFromUnit } from '../../scripts/supervisor/unit-file.js';
import { freePort } from '../../scripts/dev-config.js';
import { testDevCloud } from '../helpers/dev-cloud.js';
import { httpsCall } from '../helpers/https.js';
import type { Benchmark, BenchContext } from './benchmark.js';
import { installation } from './fixture.js';
import type { PolicyInput } from '../../dev-cloud/cloud-api/policy.js';
import { round } from './measure.js';

/** Client API benchmarks: the real agent (JWT + cached authz + SQLite) vs bare Fastify sending the same bytes. */

const ROWS_PATH = '/api/v1/apps/sales/tables/orders/rows?limit=100';

async function load(url: string, ca: Buffer, headers: Record<string, string>, seconds: number) {
  const r = await autocannon({ url, connections: 10, duration: seconds, headers, tlsOptions: { ca } } as autocannon.Options);
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`bench: ${r.non2xx} non-2xx and ${r.errors} errors from ${url}`);
  return { rps: r.requests.average, p99: r.latency.p99 };
}

/** An agent with the cloud API configured, one seeded app, and the dev cloud in this process. */
async function rig(ctx: BenchContext) {
  const inst = await installation(ctx.tmp, ctx.pki, 1, false, true);
  // Load from one IP and one user is the point here, not what the rate limits are for.
  appendFileSync(inst.files.agent, '\n[api.rate_limit]\nper_ip_per_minute = 1000000\nper_user_per_minute = 1000000\n');
  const dbPath = join(inst.layout.dataDir, 'agent', 'agent.db');
  const store = openStore({ path: dbPath, log: pino({ level: 'silent' }) });
  const rows = Array.from({ length: 1000 }, (_, i) => [i + 1, `customer-${i % 97}`, (i * 7919) % 100_000, '2026-11-23']);
  seedApp(store.db, join(inst.layout.dataDir, 'agent', 'apps'), { id: 'sales', name: 'Sales', space: 'sales', tables: { orders: { columns: ['id', 'customer', 'amount', 'day'], rows } } });
  store.close();
  const policy: PolicyInput = { decision_ttl_seconds: 3600, tenants: { t1: { forts: ['fort-dev-1'], users: { alice: { groups: ['g'] } }, spaces: { sales: { g: ['app.list', 'app.read'] } }, apps: { sales: { space: 'sales' } } } } };
  const dev = await testDevCloud(ctx.pki, { ports: inst.layout.ports, policy });
  const agent = await ctx.scope.start({ name: 'agent', script: join(ctx.dist, 'agent/main.js'), args: ['--config', inst.files.agent], nodeArgs: nodeArgsFromUnit(join(ctx.dist, '..', 'systemd', 'fort-agent.service')) });
  await agent.waitReady(30_000);
  const ca = readFileSync(ctx.pki.clientZone.ca);
  const base = `https://127.0.0.1:${inst.layout.ports.clientApi}`;
  return { inst, dev, agent, ca, base };
}

export const clientApiRows: Benchmark = {
  name: 'client-api-rows',
  unit: 'ratio',
  goal: { atLeast: 0.8 },
  async run(ctx) {
    const { inst, dev, ca, base } = await rig(ctx);
    try {
      const token = await dev.login('alice', 't1', 3600);
      const first = await httpsCall(base, ca, 'GET', ROWS_PATH, { headers: { authorization: `Bearer ${token}` } }); // warms the JWKS and the decision cache
      if (first.status !== 200) throw new Error(`bench: rows answered ${first.status}: ${first.body}`);
      const agentRun = await load(`${base}${ROWS_PATH}`, ca, { authorization: `Bearer ${token}` }, 8);
      // Baseline: bare Fastify over the same TLS sending the same bytes.
      const bodyFile = join(inst.dir, 'rows.json');
      writeFileSync(bodyFile, first.body);
      const port = await freePort();
      const bare = await ctx.scope.start({ name: 'bare', script: join(ctx.dist, 'test/bench/baseline-server.js'), args: [ctx.pki.clientZone.clientApiCert, ctx.pki.clientZone.clientApiKey, String(port), bodyFile], nodeArgs: nodeArgsFromUnit(join(ctx.dist, '..', 'systemd', 'fort-agent.service')) });
      await bare.waitReady(30_000);
      const bareRun = await load(`https://127.0.0.1:${port}/body`, ca, {}, 8);
      process.stdout.write(`bench: client-api-rows agent ${round(agentRun.rps, 0)} req/s p99 ${agentRun.p99} ms; bare fastify ${round(bareRun.rps, 0)} req/s p99 ${bareRun.p99} ms (${Buffer.byteLength(first.body)} bytes)\n`);
      return { value: round(agentRun.rps / bareRun.rps, 2), baseline: { name: 'bare-fastify-same-bytes-rps', value: round(bareRun.rps, 0) } };
    } finally {
      await dev.stop();
    }
  },
};
