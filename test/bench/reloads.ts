import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createAdminClient } from '../../lib/admin-client.js';
import { loadTlsMaterial } from '../../lib/tls.js';
import { nodeArgsFromUnit } from '../../scripts/supervisor/unit-file.js';
import { testDevCloud } from '../helpers/dev-cloud.js';
import type { Benchmark } from './benchmark.js';
import { installation } from './fixture.js';
import { percentile, round } from './measure.js';

const FORT = 'fort-dev-1';
const ROUNDS = 100;
const APP = `id = "tiny"\nname = "tiny"\nspace = "s"\n[[tables]]\nname = "t"\nconnector = "csv"\npath = "tiny.csv"\ncolumns = [{ name = "n", type = "integer" }]\n`;

/** Polls until `f` returns a value (bench-side waiting, not a measurement). */
async function until<T>(f: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Event received → reload started, with an idle queue: `reloads.requested_at` is written in
 * the inbox transaction that records the event, `started_at` when the executor claims it.
 * Baseline: the same interval for reloads the operator asks for over the admin API (no event path).
 */
export const eventToReloadP99: Benchmark = {
  name: 'event-to-reload-p99',
  unit: 'ms',
  goal: { below: 50 },
  async run(ctx) {
    const inst = await installation(ctx.tmp, ctx.pki, 1, true);
    writeFileSync(join(inst.layout.sourcesDir!, 'tiny.csv'), 'n\n1\n2\n3\n');
    writeFileSync(join(inst.dir, 'tiny.toml'), APP);
    const dev = await testDevCloud(ctx.pki, { ports: inst.layout.ports });
    const agent = await ctx.scope.start({
      name: 'agent',
      script: join(ctx.dist, 'agent/main.js'),
      args: ['--config', inst.files.agent],
      nodeArgs: nodeArgsFromUnit(join(ctx.dist, '..', 'systemd', 'fort-agent.service')),
    });
    const admin = createAdminClient({
      url: `https://127.0.0.1:${inst.layout.ports.admin}`,
      tls: loadTlsMaterial({
        ca: ctx.pki.trustZone.ca,
        cert: ctx.pki.trustZone.fortctlCert,
        key: ctx.pki.trustZone.fortctlKey,
      }),
    });
    try {
      await agent.waitReady(30_000);
      const added = await admin.addApp(APP, 'toml');
      if (added.statusCode !== 201) throw new Error(`bench: app refused: ${added.body.detail}`);
      const db = new Database(join(inst.dir, 'data/agent/agent.db'), { readonly: true });
      const row = db.prepare<
        [string],
        { state: string; requestedAt: string; startedAt: string | null; source: string }
      >('SELECT state, requested_at AS requestedAt, started_at AS startedAt, source FROM reloads WHERE id = ?');
      const bySource = db.prepare<[string], { id: string }>('SELECT id FROM reloads WHERE source = ?');
      const finished = async (id: string) => {
        const r = await until(() => {
          const x = row.get(id);
          return x && ['succeeded', 'failed'].includes(x.state) ? x : undefined;
        }, `reload ${id}`);
        if (r.state !== 'succeeded') throw new Error(`bench: reload ${id} ${r.state}`);
        return Date.parse(r.startedAt!) - Date.parse(r.requestedAt);
      };
      // The link must be up before events can arrive.
      await until(
        () => (dev.bridge.messages.some((m) => m.topic === `forts/${FORT}/presence`) ? true : undefined),
        'the IoT link',
      );
      const viaEvent: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const id = randomUUID();
        await dev.bridge.publish(
          `forts/${FORT}/events`,
          JSON.stringify({
            v: 1,
            id,
            type: 'reload.requested',
            fortId: FORT,
            ts: new Date().toISOString(),
            data: { appId: 'tiny' },
          }),
        );
        const r = await until(() => bySource.get(`event:${id}`), `the reload of event ${id}`);
        viaEvent.push(await finished(r.id));
      }
      const viaAdmin: number[] = [];
      for (let i = 0; i < ROUNDS; i++) viaAdmin.push(await finished((await admin.startReload('tiny')).body.reload.id));
      db.close();
      process.stdout.write(
        `bench: event → reload started p50 ${percentile(viaEvent, 50)} ms p99 ${percentile(viaEvent, 99)} ms; operator request → started p50 ${percentile(viaAdmin, 50)} ms p99 ${percentile(viaAdmin, 99)} ms (${ROUNDS} each, idle queue)\n`,
      );
      return {
        value: round(percentile(viaEvent, 99), 1),
        baseline: { name: 'admin-request-to-start-p99-ms', value: round(percentile(viaAdmin, 99), 1) },
      };
    } finally {
      admin.close();
      await dev.stop();
    }
  },
};
