import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { pino } from 'pino';
import { openStore } from '../../agent/store/database.js';
import { loadAgentConfig } from '../../agent/config.js';
import { seedApp } from '../helpers/apps.js';
import { nodeArgsFromUnit } from '../../scripts/supervisor/unit-file.js';
import { reservePort } from '../../scripts/port-reservation.js';
import { testDevCloud } from '../helpers/dev-cloud.js';
import { httpsCall } from '../helpers/https.js';
import type { Benchmark, BenchContext } from './benchmark.js';
import { installation } from './fixture.js';
import type { PolicyInput } from '../../dev-cloud/cloud-api/policy.js';
import { percentile, rssMb, round } from './measure.js';
import { performance } from 'node:perf_hooks';

/** Client API benchmarks: the real agent (JWT + cached authz + SQLite) vs bare Fastify sending the same bytes. */

const ROWS_PATH = '/api/v1/apps/sales/tables/orders/rows?limit=100';
/** baseline-server.js layers, each adding one of the client API's to the one before. */
const LAYERS = ['bare', 'plumbing', 'token', 'authz', 'audit'] as const;
/** Distinct users of the cold-path and growth benches (each has its own token and decisions). */
const USERS = 300;

async function load(url: string, ca: Buffer, headers: Record<string, string>, seconds: number) {
  const r = await autocannon({ url, connections: 10, duration: seconds, headers, tlsOptions: { ca } });
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
  const rows = Array.from({ length: 1000 }, (_, i) => [
    i + 1,
    `customer-${i % 97}`,
    (i * 7919) % 100_000,
    '2026-11-23',
  ]);
  for (const id of ['sales', 'sales2'])
    seedApp(store.db, join(inst.layout.dataDir, 'agent', 'apps'), {
      id,
      name: id,
      space: 'sales',
      tables: { orders: { columns: ['id', 'customer', 'amount', 'day'], rows } },
    });
  store.close();
  const users = Object.fromEntries(
    ['alice', ...Array.from({ length: USERS }, (_, i) => `u${i}`)].map((u) => [u, { groups: ['g'] }]),
  );
  const policy: PolicyInput = {
    decision_ttl_seconds: 3600,
    tenants: {
      t1: {
        forts: ['fort-dev-1'],
        users,
        spaces: { sales: { g: ['app.list', 'app.read'] } },
        apps: { sales: { space: 'sales' }, sales2: { space: 'sales' } },
      },
    },
  };
  const dev = await testDevCloud(ctx.pki, { ports: inst.layout.ports, policy });
  const agent = await ctx.scope.start({
    name: 'agent',
    script: join(ctx.dist, 'agent/main.js'),
    args: ['--config', inst.files.agent],
    nodeArgs: nodeArgsFromUnit(join(ctx.dist, '..', 'systemd', 'fort-agent.service')),
  });
  await agent.waitReady(30_000);
  const ca = readFileSync(ctx.pki.clientZone.ca);
  const base = `https://127.0.0.1:${inst.layout.ports.clientApi}`;
  return { inst, dev, agent, ca, base };
}

export const clientApiRows: Benchmark = {
  name: 'client-api-rows',
  unit: 'ratio',
  goal: { atLeast: 0.6 },
  async run(ctx) {
    const { inst, dev, ca, base } = await rig(ctx);
    try {
      const token = await dev.login('alice', 't1', 3600);
      const first = await httpsCall(base, ca, 'GET', ROWS_PATH, { headers: { authorization: `Bearer ${token}` } }); // warms the JWKS and the decision cache
      if (first.status !== 200) throw new Error(`bench: rows answered ${first.status}: ${first.body}`);
      const agentRun = await load(`${base}${ROWS_PATH}`, ca, { authorization: `Bearer ${token}` }, 8);
      // Baseline: bare Fastify over the same TLS sending the same bytes, then the client API's
      // layers added one at a time (each the agent's own module), so each one's cost shows.
      const bodyFile = join(inst.dir, 'rows.json');
      writeFileSync(bodyFile, first.body);
      const layersFile = join(inst.dir, 'layers.json');
      const jwks = await httpsCall(dev.issuer, dev.ca, 'GET', '/.well-known/jwks.json');
      writeFileSync(
        layersFile,
        JSON.stringify({
          auth: loadAgentConfig(inst.files.agent).api.auth,
          fortId: loadAgentConfig(inst.files.agent).fort.id,
          jwks: JSON.parse(jwks.body),
          auditPath: join(inst.dir, 'layers-audit.db'),
        }),
      );
      const layer = async (name: (typeof LAYERS)[number]) => {
        const { port, release } = await reservePort();
        try {
          const proc = await ctx.scope.start({
            name: `layer-${name}`,
            script: join(ctx.dist, 'test/bench/baseline-server.js'),
            args: [
              ctx.pki.clientZone.clientApiCert,
              ctx.pki.clientZone.clientApiKey,
              String(port),
              bodyFile,
              `--layers=${name}`,
              layersFile,
            ],
            nodeArgs: nodeArgsFromUnit(join(ctx.dist, '..', 'systemd', 'fort-agent.service')),
          });
          await proc.waitReady(30_000);
          try {
            return await load(`https://127.0.0.1:${port}/body`, ca, { authorization: `Bearer ${token}` }, 8);
          } finally {
            await ctx.scope.stop(proc);
          }
        } finally {
          release();
        }
      };
      const runs: Record<string, { rps: number; p99: number }> = {};
      for (const name of LAYERS) runs[name] = await layer(name);
      const bareRun = runs.bare!;
      const line = (name: string, r: { rps: number }) =>
        `${name} ${round(r.rps, 0)} req/s (${round(r.rps / bareRun.rps, 2)}x)`;
      process.stdout.write(
        `bench: client-api-rows ${line('agent', agentRun)} p99 ${agentRun.p99} ms; layers: ` +
          `${LAYERS.map((n) => line(n, runs[n]!)).join(', ')}; the agent adds the catalog, params and page cache ` +
          `(${Buffer.byteLength(first.body)} bytes)\n`,
      );
      return {
        value: round(agentRun.rps / bareRun.rps, 2),
        baseline: { name: 'bare-fastify-same-bytes-rps', value: round(bareRun.rps, 0) },
      };
    } finally {
      await dev.stop();
    }
  },
};

/** Sequential GETs, one at a time: latency of each in ms. */
async function timedGets(
  base: string,
  ca: Buffer,
  path: (i: number) => string,
  token: (i: number) => string,
  n: number,
) {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await httpsCall(base, ca, 'GET', path(i), { headers: { authorization: `Bearer ${token(i)}` } });
    ms.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`bench: ${path(i)} answered ${res.status}: ${res.body}`);
  }
  return ms;
}

export const authzColdP99: Benchmark = {
  name: 'authz-cold-p99',
  unit: 'ms',
  goal: { below: 50 },
  async run(ctx) {
    const { dev, ca, base } = await rig(ctx);
    try {
      const tokens = await Promise.all(Array.from({ length: USERS }, (_, i) => dev.login(`u${i}`, 't1', 3600)));
      // Each user's token verified and one decision cached first: the measured request then misses
      // only the decision cache (another app) and pays one authorise round trip to the cloud.
      await timedGets(
        base,
        ca,
        () => '/api/v1/apps/sales',
        (i) => tokens[i]!,
        USERS,
      );
      const asked = dev.cloudApi.stats().authorize;
      const cold = await timedGets(
        base,
        ca,
        () => '/api/v1/apps/sales2/tables/orders/rows?limit=100',
        (i) => tokens[i]!,
        USERS,
      );
      if (dev.cloudApi.stats().authorize - asked !== USERS)
        throw new Error('bench: the cold requests did not each ask the cloud');
      // Baseline: the same requests again, every decision now cached.
      const warm = await timedGets(
        base,
        ca,
        () => '/api/v1/apps/sales2/tables/orders/rows?limit=100',
        (i) => tokens[i]!,
        USERS,
      );
      process.stdout.write(
        `bench: authz cold p50 ${round(percentile(cold, 50), 1)} ms p99 ${round(percentile(cold, 99), 1)} ms; cached p50 ${round(percentile(warm, 50), 1)} ms p99 ${round(percentile(warm, 99), 1)} ms (${USERS} users, new connection per request)\n`,
      );
      return {
        value: round(percentile(cold, 99), 1),
        baseline: { name: 'cached-decision-p99-ms', value: round(percentile(warm, 99), 1) },
      };
    } finally {
      await dev.stop();
    }
  },
};

/** Load of the growth bench: rows pages at every offset, app lists and tables, from many users. */
const GROWTH_MINUTES = 5;

export const clientApiRssGrowth: Benchmark = {
  name: 'client-api-rss-growth',
  unit: '%',
  goal: { below: 10 },
  async run(ctx) {
    const { dev, agent, ca, base } = await rig(ctx);
    try {
      const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => dev.login(`u${i}`, 't1', 3600)));
      const paths = [
        '/api/v1/apps',
        '/api/v1/apps/sales/tables',
        ...Array.from(
          { length: 10 },
          (_, i) => `/api/v1/apps/sales${i % 2 ? '2' : ''}/tables/orders/rows?offset=${i * 100}&limit=100`,
        ),
      ];
      let n = 0;
      const requests = [
        {
          setupRequest: (req: Record<string, unknown>) => {
            n++;
            return {
              ...req,
              path: paths[n % paths.length],
              headers: { authorization: `Bearer ${tokens[n % tokens.length]}` },
            };
          },
        },
      ];
      const run = async (seconds: number) => {
        const r = await autocannon({
          url: base,
          connections: 10,
          duration: seconds,
          requests,
          tlsOptions: { ca },
        } as unknown as autocannon.Options);
        if (r.non2xx > 0 || r.errors > 0)
          throw new Error(`bench: ${r.non2xx} non-2xx and ${r.errors} errors under load`);
        return r.requests.total;
      };
      const pid = agent.pid;
      if (!pid) throw new Error('bench: the agent has no pid');
      await run(20); // caches, JIT and heap settle: growth is measured from here
      const start = rssMb(pid);
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(rssMb(pid)), 5000);
      let total = 0;
      try {
        total = await run(GROWTH_MINUTES * 60);
      } finally {
        clearInterval(sampler);
      }
      const end = percentile(samples.slice(-6), 50); // the last half minute, median
      const growth = ((end - start) / start) * 100;
      process.stdout.write(
        `bench: client-api RSS ${round(start, 1)} MB after warm-up, ${round(end, 1)} MB after ${GROWTH_MINUTES} min (${total} requests; min ${round(Math.min(...samples), 1)}, max ${round(Math.max(...samples), 1)})\n`,
      );
      return { value: round(growth, 1), baseline: { name: 'rss-after-warmup-mb', value: round(start, 1) } };
    } finally {
      await dev.stop();
    }
  },
};
