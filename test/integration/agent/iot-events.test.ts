import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { httpsRequest } from '../../helpers/https.js';
import { DIST, eventually, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';

const run = promisify(execFile);

// The device certificate's CN (the PKI's fort id) must equal the thing name, as AWS checks.
const FORT = 'fort-dev-1';

/** The real agent process, linked to the dev bridge through the credentials provider. */
describe('agent event path over the IoT link', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT, iot: true });
    dev = await testDevCloud(pki, { ports: inst.layout.ports });
  });
  afterAll(async () => {
    await agent?.stop();
    await dev.stop();
    inst.cleanup();
  });

  const admin = async () => {
    const tls = {
      ca: readFileSync(pki.trustZone.ca),
      cert: readFileSync(pki.trustZone.fortctlCert),
      key: readFileSync(pki.trustZone.fortctlKey),
    };
    const res = await httpsRequest(`https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/health`, tls);
    return JSON.parse(res.body) as {
      status: string;
      modules: Record<string, { state: string; info?: Record<string, unknown> }>;
    };
  };
  const linkUp = () =>
    eventually(
      async () => ((await admin()).modules['iot-link']?.state === 'ready' ? true : undefined),
      20_000,
      'iot-link ready',
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
    dev.bridge.messages
      .filter((m) => m.topic === `forts/${FORT}/status`)
      .map((m) => JSON.parse(m.payload.toString()) as { id: string; type: string; data: { pingId: string } })
      .filter((m) => m.type === 'pong');

  it('answers a ping with a pong through the outbox, and health shows the link', async () => {
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
    await linkUp();
    const ping = event('ping', { echo: 'hello' });
    await send(ping);
    const pong = await eventually(() => pongs().find((p) => p.data.pingId === ping.id), 10_000, 'the pong');
    expect(pong.data).toEqual({ pingId: ping.id, echo: 'hello' });
    const health = await admin();
    expect(health.status).toBe('healthy');
    expect(health.modules['iot-link']?.info).toMatchObject({
      state: 'connected',
      connects: 1,
      outbox: { size: 0, dropped: 0 },
    });
  });

  it('dead-letters every kind of malformed event, acks it, and keeps the link up', async () => {
    const before = (await admin()).modules['iot-link']!.info!;
    const malformed = [
      '{"not json',
      JSON.stringify({ ...event('ping'), fortId: 'someone-else' }),
      JSON.stringify(event('no.such.type')),
      JSON.stringify({ ...event('ping'), id: 'not-a-uuid' }),
      JSON.stringify({ ...event('ping'), v: 99 }),
      JSON.stringify(event('ping', { blob: 'x'.repeat(130 * 1024) })),
    ];
    for (const m of malformed) await send(m);
    const ping = event('ping');
    await send(ping);
    await eventually(() => pongs().find((p) => p.data.pingId === ping.id), 10_000, 'a pong after the junk');
    const after = (await admin()).modules['iot-link']!.info! as { deadLetters: number; connects: number };
    expect(after.deadLetters - (before['deadLetters'] as number)).toBe(malformed.length);
    expect(after.connects).toBe(before['connects']);
    const db = new Database(join(inst.dir, 'data/agent/agent.db'), { readonly: true });
    const codes = (
      db.prepare('SELECT reason_code FROM dead_letters ORDER BY seq').all() as { reason_code: string }[]
    ).map((r) => r.reason_code);
    db.close();
    expect(codes).toEqual([
      'bad_json',
      'wrong_fort',
      'unknown_type',
      'bad_envelope',
      'unsupported_version',
      'too_large',
    ]);

    // What the operator sees: newest first, with why, never the payload.
    const listed = await run(process.execPath, [
      join(DIST, 'fortctl/main.js'),
      '-c',
      inst.files.fortctl,
      '--json',
      'events',
      'dead',
      '--limit',
      '6',
    ]);
    const dead = JSON.parse(listed.stdout) as { reasonCode: string; reason: string; size: number }[];
    expect(dead.map((d) => d.reasonCode)).toEqual([...codes].reverse());
    expect(dead[0]).toMatchObject({ reasonCode: 'too_large', size: expect.any(Number) });
    expect(dead[0]!.size).toBeGreaterThan(128 * 1024);
    expect(listed.stdout).not.toContain('xxxxxxxx');
    const table = await run(process.execPath, [
      join(DIST, 'fortctl/main.js'),
      '-c',
      inst.files.fortctl,
      'events',
      'dead',
    ]);
    expect(table.stdout).toMatch(/^seq +received +reason +type +event id +bytes +why/);
    expect(table.stdout).toMatch(/bad_json/);
  });

  it('handles every event exactly once across repeated kill -9 during ingest, and delivers every pong', async () => {
    const sent: string[] = [];
    for (let round = 0; round < 10; round++) {
      const burst = Array.from({ length: 30 }, () => event('ping'));
      for (const e of burst) {
        sent.push(e.id);
        void send(e);
      }
      // Kill while the burst is being ingested: after the first pong of this round, before the last.
      await eventually(
        () => (pongs().some((p) => burst.some((b) => b.id === p.data.pingId)) ? true : undefined),
        10_000,
        `ingest of round ${round}`,
      );
      agent.kill('SIGKILL');
      await agent.waitExit(5000);
      await agent.stop();
      agent = await startAgent(inst.files.agent);
      await agent.waitReady(20_000);
    }
    await eventually(
      () => (new Set(pongs().map((p) => p.data.pingId)).size >= sent.length + 2 ? true : undefined),
      30_000,
      'every pong',
    );
    const byPing = new Map<string, Set<string>>();
    for (const p of pongs()) byPing.set(p.data.pingId, (byPing.get(p.data.pingId) ?? new Set()).add(p.id));
    for (const id of sent) expect(byPing.get(id)?.size, `ping ${id} handled once`).toBe(1);
    const db = new Database(join(inst.dir, 'data/agent/agent.db'), { readonly: true });
    const handled = db
      .prepare(`SELECT COUNT(*) AS n FROM inbox WHERE id IN (${sent.map(() => '?').join(',')})`)
      .get(...sent) as { n: number };
    db.close();
    expect(handled.n).toBe(sent.length);
  });

  it('forgets event ids older than iot.dedup_hours (default a week) at start, keeps recent ones', async () => {
    await agent.stop();
    const file = join(inst.dir, 'data/agent/agent.db');
    const rw = new Database(file);
    const insert = rw.prepare('INSERT INTO inbox (id, type, received_at, payload) VALUES (?, ?, ?, ?)');
    const old = randomUUID();
    const recent = randomUUID();
    insert.run(old, 'ping', new Date(Date.now() - 8 * 24 * 3_600_000).toISOString(), '{}');
    insert.run(recent, 'ping', new Date(Date.now() - 3_600_000).toISOString(), '{}');
    rw.close();
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
    await linkUp();
    const db = new Database(file, { readonly: true });
    const ids = (db.prepare('SELECT id FROM inbox WHERE id IN (?, ?)').all(old, recent) as { id: string }[]).map(
      (r) => r.id,
    );
    db.close();
    expect(ids).toEqual([recent]);
  });
});
