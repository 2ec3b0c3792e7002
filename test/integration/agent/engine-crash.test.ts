import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWriteStream, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import Database from 'better-sqlite3';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { PolicyInput } from '../../../dev-cloud/cloud-api/policy.js';
import { eventually, jsonLines, testPki } from '../../helpers/fort.js';
import { startEngineStack, type EngineStack } from '../../helpers/engine-stack.js';
import { httpsCall } from '../../helpers/https.js';

/**
 * kill -9 of fort-engine, restarted by its supervisor as systemd would (Restart=always): during a
 * load the reload completes once, under the same start, in a version of its own (nothing the
 * killed load left behind survives); during queries the client API says 503 with a retry hint,
 * then answers again; the agent's IoT link never notices.
 */

const FORT = 'fort-dev-1';
const POLICY: PolicyInput = {
  decision_ttl_seconds: 600,
  tenants: {
    t1: {
      forts: [FORT],
      users: { alice: { groups: ['g'] } },
      spaces: { sales: { g: ['app.list', 'app.read', 'app.reload'] } },
      apps: { big: { space: 'sales' } },
    },
  },
};
const ROWS = 1_500_000;
const APP = `id = "big"
name = "Big"
space = "sales"
[[tables]]
name = "facts"
connector = "csv"
path = "big.csv"
columns = [ { name = "id", type = "integer" }, { name = "region", type = "string" }, { name = "amount", type = "number" } ]
`;

async function writeBigCsv(file: string) {
  const out = createWriteStream(file);
  out.write('id,region,amount\n');
  const regions = ['north', 'south', 'east', 'west'];
  for (let i = 0; i < ROWS; i += 10_000) {
    let chunk = '';
    for (let j = i; j < i + 10_000; j++) chunk += `${j},${regions[j % 4]},${(j % 1000) / 10}\n`;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

describe('fort-engine killed (-9) during a load and during queries', () => {
  let pki: PkiPaths;
  let stack: EngineStack;
  let token: string;
  const engine = () => stack.engine;
  const admin = () => stack.admin;

  const engineData = () => join(stack.inst.dir, 'data', 'engine', 'apps', 'big');
  const linkInfo = async () =>
    (await admin().health()).body.modules['iot-link'] as { state: string; info?: { connects?: number } };
  const query = () =>
    httpsCall(stack.clientApi, readFileSync(pki.clientZone.ca), 'POST', '/api/v1/apps/big/query', {
      headers: { authorization: `Bearer ${token}` },
      json: { dimensions: ['region'], measures: [{ op: 'count' }], sort: [{ by: 'region' }] },
    });

  beforeAll(async () => {
    pki = await testPki();
    stack = await startEngineStack(pki, {
      fortId: FORT,
      policy: POLICY,
      iot: true,
      prepare: (inst) => writeBigCsv(join(inst.layout.sourcesDir!, 'big.csv')),
      // RestartSec=2, as fort-engine.service says.
      engine: { restart: true, restartDelayMs: 2000 },
    });
    await eventually(async () => ((await linkInfo()).state === 'ready' ? true : undefined), 20_000, 'the IoT link up');
    token = await stack.dev.login('alice', 't1');
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('a load killed midway: the reload completes once, in one version, nothing left behind', async () => {
    const connectsBefore = (await linkInfo()).info?.connects;
    // Killed once the engine has started writing the version (a 1.5 M-row CSV takes it a while).
    const killed = new Promise<void>((resolve, reject) => {
      const onLine = (line: string) => {
        if (!line.includes('"load started"')) return;
        engine().events.off('stdout', onLine);
        eventually(
          () =>
            existsSync(engineData()) && readdirSync(engineData()).some((f) => f.endsWith('.partial'))
              ? true
              : undefined,
          10_000,
          'the partial version file',
        ).then(() => {
          engine().kill('SIGKILL');
          resolve();
        }, reject);
      };
      engine().events.on('stdout', onLine);
    });
    const starts = engine().starts;
    const done = await stack.loadApp(APP, 'big', 90_000);
    await killed;
    expect((await admin().reloads({ app: 'big' })).body.reloads).toHaveLength(1);
    expect(engine().starts).toBe(starts + 1);
    expect(done).toMatchObject({ attempts: 1, rows: ROWS, errorCode: null });
    // One version, the retry's own id; the killed load's partial file was removed at the restart.
    const db = new Database(join(stack.inst.dir, 'data/agent/agent.db'), { readonly: true });
    const versions = db.prepare('SELECT engine_version FROM app_versions WHERE app_id = ?').pluck().all('big');
    db.close();
    // Asked again under a new id after each refused connection while the engine was down.
    expect(versions).toEqual([expect.stringMatching(new RegExp(`^${done.id}-1-r\\d+$`))]);
    expect(readdirSync(engineData())).toEqual([`${versions[0] as string}.duckdb`]);
    const removedAtStart = jsonLines(engine().stdout).find(
      (l) => l['msg'] === 'removed what loads interrupted by the last stop left',
    );
    expect(removedAtStart?.['removed']).toEqual(expect.arrayContaining([`big/${done.id}-1.duckdb.partial`]));
    const link = await linkInfo();
    expect(link.state).toBe('ready');
    expect(link.info?.connects).toBe(connectsBefore);
  });

  it('status to the cloud carries counts and codes only, never a value the engine loaded or refused', async () => {
    const ok = await stack.dev.reloadStatus.waitFor((r) => r.appId === 'big' && r.type === 'reload.succeeded', 10_000);
    expect(ok.data).toMatchObject({ rows: ROWS, tables: [{ name: 'facts', rows: ROWS }] });
    for (const value of ['north', 'south', 'east', 'west']) expect(JSON.stringify(ok)).not.toContain(value);

    writeFileSync(
      join(stack.inst.layout.sourcesDir!, 'bad.csv'),
      'id,region,amount\n1,north,2.5\n2,south,NOT-A-NUMBER-SECRETVALUE\n',
    );
    expect((await admin().addApp(APP.replaceAll('big', 'bad'), 'toml')).statusCode).toBeLessThan(300);
    await admin().startReload('bad');
    const failed = await stack.dev.reloadStatus.waitFor((r) => r.appId === 'bad' && r.type === 'reload.failed', 30_000);
    expect(failed.data).toMatchObject({ code: 'FORT_ERR_RELOAD_SOURCE', message: expect.stringMatching(/amount/) });
    expect(JSON.stringify(failed)).not.toContain('SECRETVALUE');
    expect(JSON.stringify(failed)).not.toContain('north');
    const recorded = (await admin().reloads({ app: 'bad' })).body.reloads[0]!;
    expect(recorded).toMatchObject({ state: 'failed', errorCode: 'FORT_ERR_RELOAD_SOURCE' });
    expect(recorded.errorMessage).not.toContain('SECRETVALUE');
  });

  it('queries during the outage get 503 with a retry hint, then answer again', async () => {
    const before = await query();
    expect(before.status, before.body).toBe(200);
    const connectsBefore = (await linkInfo()).info?.connects;
    const starts = engine().starts;
    engine().kill('SIGKILL');
    const down = await eventually(
      async () => {
        const r = await query();
        return r.status === 503 ? r : undefined;
      },
      10_000,
      'a query while the engine is down',
    );
    expect(down.headers['retry-after']).toBe('2');
    expect((down.json() as { code: string }).code).toBe('FORT_ERR_ENGINE_UNAVAILABLE');
    const after = await eventually(
      async () => {
        const r = await query();
        return r.status === 200 ? r : undefined;
      },
      30_000,
      'queries answered again after the restart',
    );
    expect(engine().starts).toBe(starts + 1);
    expect(after.json()).toMatchObject({
      rows: [
        ['east', ROWS / 4],
        ['north', ROWS / 4],
        ['south', ROWS / 4],
        ['west', ROWS / 4],
      ],
    });
    expect((await linkInfo()).info?.connects).toBe(connectsBefore);
  });
});
