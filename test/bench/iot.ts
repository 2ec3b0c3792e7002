import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import type { ProcessSpec } from '../../scripts/supervisor/process.js';
import { nodeArgsFromUnit } from '../../scripts/supervisor/unit-file.js';
import { connectBareClient, testDevCloud, type TestDevCloud } from '../helpers/dev-cloud.js';
import type { Benchmark, BenchContext } from './benchmark.js';
import { installation, type Installation } from './fixture.js';
import { maxIdleRssMb, median, round, percentile } from './measure.js';

/** IoT link benchmarks: the real agent process against the dev bridge, vs a bare MQTT subscriber. */

const FORT = 'fort-dev-1';
const BASE = 'bench-base';

const agentSpec = (ctx: BenchContext, inst: Installation): ProcessSpec => ({
  name: 'agent',
  script: join(ctx.dist, 'agent/main.js'),
  args: ['--config', inst.files.agent],
  nodeArgs: nodeArgsFromUnit(join(ctx.dist, '..', 'systemd', 'fort-agent.service')),
});

/** Resolves when `clientId` next subscribes at the broker. */
const nextSubscribe = (dev: TestDevCloud, clientId: string) =>
  new Promise<void>((resolve) => {
    const on = (_subs: unknown, client: { id: string } | null) => {
      if (client?.id !== clientId) return;
      dev.bridge.broker.off('subscribe', on);
      resolve();
    };
    dev.bridge.broker.on('subscribe', on);
  });

async function poll<T>(probe: () => T | undefined, timeoutMs: number, what: string, everyMs = 10): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`bench: no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A linked agent and the dev cloud; the agent's DB is read (read-only) to see what it handled. */
async function linkedAgent(ctx: BenchContext) {
  const inst = await installation(ctx.tmp, ctx.pki, 1, true);
  const dev = await testDevCloud(ctx.pki, { ports: inst.layout.ports });
  const subscribed = nextSubscribe(dev, FORT);
  const agent = await ctx.scope.start(agentSpec(ctx, inst));
  await agent.waitReady(30_000);
  await subscribed;
  const db = new Database(join(inst.dir, 'data/agent/agent.db'), { readonly: true, fileMustExist: true });
  const handled = db.prepare('SELECT COUNT(*) AS n FROM inbox');
  return {
    dev,
    agent,
    handledCount: () => (handled.get() as { n: number }).n,
    receivedAt: (ids: string[]) =>
      new Map(
        (
          db.prepare(`SELECT id, received_at FROM inbox WHERE id IN (${ids.map(() => '?').join(',')})`).all(...ids) as {
            id: string;
            received_at: string;
          }[]
        ).map((r) => [r.id, Date.parse(r.received_at)]),
      ),
    async close() {
      db.close();
      await ctx.scope.stop(agent);
      await dev.stop();
    },
  };
}

/** The baseline: a bare mqtt.js subscriber on the same bridge, same TLS and SigV4 path. */
async function bareSubscriber(dev: TestDevCloud, onMessage: (payload: Buffer) => void): Promise<MqttClient> {
  const client = await connectBareClient(dev, BASE);
  await client.subscribeAsync(`forts/${BASE}/events`, { qos: 1 });
  client.on('message', (_t, payload) => onMessage(payload));
  return client;
}

const ping = (fortId: string) => ({
  v: 1,
  id: randomUUID(),
  type: 'ping',
  fortId,
  ts: new Date().toISOString(),
  data: {},
});

export const eventIngest: Benchmark = {
  name: 'event-ingest',
  unit: 'events/s',
  goal: { atLeast: 5000 },
  async run(ctx) {
    const N = 5000;
    const rig = await linkedAgent(ctx);
    try {
      const burst = async (fortId: string, done: () => boolean) => {
        const payloads = Array.from({ length: N }, () => JSON.stringify(ping(fortId)));
        const t0 = performance.now();
        await Promise.all(payloads.map((pl) => rig.dev.bridge.publish(`forts/${fortId}/events`, pl)));
        await poll(() => (done() ? true : undefined), 120_000, `${N} events handled`);
        return N / ((performance.now() - t0) / 1000);
      };
      let got = 0;
      const base = await bareSubscriber(rig.dev, () => (got += 1));
      const baseline = await burst(BASE, () => got >= N);
      await base.endAsync();
      const before = rig.handledCount();
      const value = await burst(FORT, () => rig.handledCount() >= before + N);
      return { value: Math.round(value), baseline: { name: 'bare-mqtt-subscriber', value: Math.round(baseline) } };
    } finally {
      await rig.close();
    }
  },
};

export const eventLatencyP99: Benchmark = {
  name: 'event-latency-p99',
  unit: 'ms',
  goal: { below: 50 },
  async run(ctx) {
    const RATE = 100;
    const N = 500;
    const rig = await linkedAgent(ctx);
    try {
      const paced = async (fortId: string) => {
        const sentAt = new Map<string, number>();
        for (let i = 0; i < N; i++) {
          const e = ping(fortId);
          sentAt.set(e.id, Date.now());
          void rig.dev.bridge.publish(`forts/${fortId}/events`, JSON.stringify(e));
          await new Promise((r) => setTimeout(r, 1000 / RATE));
        }
        return sentAt;
      };
      const baseSeen = new Map<string, number>();
      const base = await bareSubscriber(rig.dev, (payload) =>
        baseSeen.set((JSON.parse(payload.toString()) as { id: string }).id, Date.now()),
      );
      const baseSent = await paced(BASE);
      await poll(() => (baseSeen.size >= N ? true : undefined), 30_000, 'baseline events');
      await base.endAsync();
      const sent = await paced(FORT);
      const ids = [...sent.keys()];
      const handledAt = await poll(
        () => {
          const m = rig.receivedAt(ids);
          return m.size >= N ? m : undefined;
        },
        60_000,
        'latency events handled',
        50,
      );
      const lat = ids.map((id) => handledAt.get(id)! - sent.get(id)!);
      const baseLat = [...baseSent].map(([id, t]) => baseSeen.get(id)! - t);
      process.stdout.write(
        `bench: event latency p50 ${percentile(lat, 50)} ms, p99 ${percentile(lat, 99)} ms (bare subscriber p50 ${percentile(baseLat, 50)}, p99 ${percentile(baseLat, 99)})\n`,
      );
      return {
        value: percentile(lat, 99),
        baseline: { name: 'bare-mqtt-subscriber-p99', value: percentile(baseLat, 99) },
      };
    } finally {
      await rig.close();
    }
  },
};

export const reconnectToSubscribed: Benchmark = {
  name: 'reconnect-to-subscribed',
  unit: 'ms',
  goal: { below: 200 },
  async run(ctx) {
    const ROUNDS = 7;
    const rig = await linkedAgent(ctx);
    try {
      const agentMs: number[] = [];
      const bareMs: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        // AWS allows one CONNECT per second per client id, and the link honours it.
        await new Promise((r) => setTimeout(r, 1100));
        const again = nextSubscribe(rig.dev, FORT);
        const t0 = performance.now();
        rig.dev.bridge.dropConnections();
        await again;
        agentMs.push(performance.now() - t0);
        // Baseline: a bare client doing the same presign → connect → subscribe from scratch.
        const t1 = performance.now();
        const c = await bareSubscriber(rig.dev, () => {});
        bareMs.push(performance.now() - t1);
        await c.endAsync();
      }
      return {
        value: round(median(agentMs), 1),
        baseline: { name: 'bare-mqtt-connect-subscribe', value: round(median(bareMs), 1) },
      };
    } finally {
      await rig.close();
    }
  },
};

export const idleRssAgentLinked: Benchmark = {
  name: 'idle-rss-agent-linked',
  unit: 'MB',
  goal: { below: 80 },
  async run(ctx) {
    const rig = await linkedAgent(ctx);
    let value: number;
    try {
      value = await maxIdleRssMb(rig.agent.pid!);
    } finally {
      await rig.close();
    }
    const inst = await installation(ctx.tmp, ctx.pki);
    const unlinked = await ctx.scope.start(agentSpec(ctx, inst));
    await unlinked.waitReady(30_000);
    const baseline = await maxIdleRssMb(unlinked.pid!);
    await ctx.scope.stop(unlinked);
    return { value: round(value, 1), baseline: { name: 'agent-without-link', value: round(baseline, 1) } };
  },
};
