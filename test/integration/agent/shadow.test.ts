import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import { cloudRequest, testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { DIST, eventually, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';

const run = promisify(execFile);
const FORT = 'fort-dev-1';
/** A value that exists only in the app's data: it must never reach the cloud. */
const SECRET_CELL = 'Customer-Zebra-7731';

/**
 * The fort's reported state in its `fort` named shadow, on the real agent and the dev cloud's
 * bridge: versions, health per module, the last reload per app, certificates' days left, free
 * disk; at most 8 KB; sent again when something changes; never customer data.
 */
describe('reported state (AWS IoT named shadow "fort")', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;

  const fortctl = (...args: string[]) =>
    run(process.execPath, [join(DIST, 'fortctl/main.js'), '--config', inst.files.fortctl, ...args]);
  const shadow = () => dev.bridge.shadows.get(FORT);

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT, iot: true });
    writeFileSync(join(inst.layout.sourcesDir!, 'orders.csv'), `id,customer\n1,${SECRET_CELL}\n2,Other\n`);
    dev = await testDevCloud(pki, { ports: inst.layout.ports });
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
  });
  afterAll(async () => {
    await agent?.stop();
    await dev?.stop();
    inst?.cleanup();
  });

  it('is reported once the link is up: versions, health, certificates, disk; within 8 KB', async () => {
    const s = await eventually(shadow, 20_000, 'the first shadow update');
    const reported = s.state.reported;
    expect(reported).toMatchObject({
      fortId: FORT,
      versions: { agent: expect.any(String) },
      health: expect.objectContaining({ 'iot-link': expect.any(String), store: 'ready' }),
      disk: { freeBytes: expect.any(Number), freePercent: expect.any(Number) },
      reloads: [],
    });
    expect((reported['certificates'] as { role: string; daysLeft: number }[]).length).toBeGreaterThan(0);
    const message = dev.bridge.messages.findLast((m) => m.topic === `$aws/things/${FORT}/shadow/name/fort/update`)!;
    expect(message.payload.length).toBeLessThanOrEqual(8 * 1024);
    expect(JSON.parse(message.payload.toString())).toMatchObject({
      clientToken: expect.stringMatching(/^fort-dev-1-\d+$/),
    });
  });

  it('a finished reload is reported (app, state, rows), never the data; the dev cloud shows it', async () => {
    const before = shadow()!.version;
    const def = join(inst.dir, 'orders.toml');
    writeFileSync(
      def,
      'id = "orders"\nname = "Orders"\nspace = "s"\n[[tables]]\nname = "orders"\nconnector = "csv"\npath = "orders.csv"\ncolumns = [ { name = "id", type = "integer" }, { name = "customer", type = "string" } ]\n',
    );
    await fortctl('apps', 'add', def);
    await fortctl('reloads', 'start', 'orders');
    const s = await eventually(
      () => {
        const now = shadow();
        const r = (now?.state.reported['reloads'] ?? []) as { app: string }[];
        return now && now.version > before && r.some((x) => x.app === 'orders') ? now : undefined;
      },
      30_000,
      'a shadow update with the reload',
    );
    expect(s.state.reported['reloads']).toEqual([
      { app: 'orders', state: 'succeeded', at: expect.any(String), rows: 2 },
    ]);
    const everything = dev.bridge.messages
      .filter((m) => m.topic.startsWith('$aws/things/'))
      .map((m) => m.payload.toString())
      .join('\n');
    expect(everything).not.toContain(SECRET_CELL);
    const listed = await cloudRequest(dev.apiUrl, dev.ca, 'GET', '/dev/v1/shadows');
    expect(listed.status).toBe(200);
    expect((listed.json() as { shadows: { thing: string; version: number }[] }).shadows).toEqual([
      expect.objectContaining({ thing: FORT, version: s.version }),
    ]);
  });

  it('the bridge refuses an update that is not {state: {reported}}, keeping the last one', () => {
    const s = dev.bridge.shadows;
    expect(s.update(FORT, Buffer.from('{"state":{}}'))).toEqual({
      rejected: 'expected {"state": {"reported": {...}}}',
    });
    expect(s.list().map((x) => x.thing)).toEqual([FORT]);
  });
});
