import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'smol-toml';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import { createAdminClient, type AdminClient } from '../../../lib/admin-client.js';
import { loadTlsMaterial } from '../../../lib/tls.js';
import { eventually, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { httpsCall } from '../../helpers/https.js';
import { fakeClockEnv } from '../../helpers/fake-clock.js';

const FORT = 'fort-dev-1';

/**
 * The real agent's host clock jumps at runtime (libfaketime: the wall clock moves, the monotonic
 * one does not, as with an NTP step or `date -s`): a day forward, then an hour back behind true
 * time, then right again. The clock module names each jump; user tokens are judged by the new
 * time (refused as expired a day on, accepted again once the clock is right); the IoT link's
 * waits are monotonic, so a clock set back does not hold its reconnects for an hour; events
 * keep flowing.
 */
describe('a host clock that jumps under the running agent', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  let admin: AdminClient;
  let base: string;
  let token: string;
  const offsetFile = () => join(inst.dir, 'faketime');
  /** libfaketime reads it again within a second (FAKETIME_CACHE_DURATION). */
  const setClock = (offset: string) => writeFileSync(offsetFile(), `${offset}\n`);
  const health = async () => (await admin.health()).body;
  const clockDetail = async () => (await health()).modules['clock']?.detail ?? '';
  const link = async () =>
    (await health()).modules['iot-link'] as { state: string; info?: { connectAttempts: number } };
  const apps = () =>
    httpsCall(base, readFileSync(pki.clientZone.ca), 'GET', '/api/v1/apps', {
      headers: { authorization: `Bearer ${token}` },
    });
  const roundTrip = async () => {
    const id = randomUUID();
    await dev.bridge.publish(
      `forts/${FORT}/events`,
      JSON.stringify({ v: 1, id, type: 'ping', fortId: FORT, ts: new Date().toISOString(), data: {} }),
    );
    await eventually(
      () =>
        dev.bridge.messages.some(
          (m) => m.topic === `forts/${FORT}/status` && m.payload.toString().includes(`"pingId":"${id}"`),
        )
          ? true
          : undefined,
      20_000,
      'a pong',
    );
  };

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT, iot: true, cloudAuth: true });
    const config = parse(readFileSync(inst.files.agent, 'utf8')) as Record<string, Record<string, unknown>>;
    config['iot'] = { ...config['iot'], reconnect_cap_ms: 2000 };
    writeFileSync(inst.files.agent, stringify(config));
    dev = await testDevCloud(pki, {
      ports: inst.layout.ports,
      policy: {
        decision_ttl_seconds: 1,
        tenants: {
          t1: { forts: [FORT], users: { alice: { groups: ['g'] } }, spaces: { s: { g: ['app.list'] } }, apps: {} },
        },
      },
    });
    agent = await startAgent(inst.files.agent, { env: fakeClockEnv(offsetFile()) });
    await agent.waitReady(20_000);
    admin = createAdminClient({
      url: `https://127.0.0.1:${inst.layout.ports.admin}`,
      tls: loadTlsMaterial({ ca: pki.trustZone.ca, cert: pki.trustZone.fortctlCert, key: pki.trustZone.fortctlKey }),
    });
    base = `https://127.0.0.1:${inst.layout.ports.clientApi}`;
    token = await dev.login('alice', 't1', 3600);
    await eventually(async () => ((await link()).state === 'ready' ? true : undefined), 20_000, 'the IoT link up');
  });
  afterAll(async () => {
    admin?.close();
    await agent?.stop();
    await dev?.stop();
    inst?.cleanup();
  });

  it('a day forward: the jump is named, a token of an hour is refused as expired, events still flow', async () => {
    expect((await apps()).status).toBe(200);
    setClock('+1d');
    const detail = await eventually(
      async () => ((await clockDetail()).includes('jumped forward') ? clockDetail() : undefined),
      20_000,
      'the jump named',
    );
    expect(detail).toMatch(/^host clock jumped forward 1d( \d+s)? at 2\d{3}-/);
    const jump = (await health()).modules['clock']!.info!['lastJump'] as { byMs: number };
    expect(Math.abs(jump.byMs - 86_400_000)).toBeLessThan(3000);
    const refused = await eventually(
      async () => {
        const r = await apps();
        return r.status === 401 ? r : undefined;
      },
      10_000,
      'the token refused',
    );
    expect(refused.body).toMatch(/expired/);
    expect(refused.body).not.toContain(token);
    await roundTrip();
    expect(agent.starts).toBe(1);
  });

  it('an hour back behind true time: named too; the link retries at once after a drop, not an hour later', async () => {
    setClock('-1h');
    await eventually(
      async () => ((await clockDetail()).includes('jumped back 1d 1h') ? true : undefined),
      20_000,
      'the jump back named',
    );
    const attempts = (await link()).info!.connectAttempts;
    dev.bridge.dropConnections();
    await eventually(
      async () => ((await link()).info!.connectAttempts > attempts ? true : undefined),
      10_000,
      'a reconnect attempt',
    );
  });

  it('the clock right again: the link is up, events flow, the token is accepted', async () => {
    setClock('+0');
    await eventually(async () => ((await link()).state === 'ready' ? true : undefined), 30_000, 'the IoT link up');
    await roundTrip();
    await eventually(async () => ((await apps()).status === 200 ? true : undefined), 10_000, 'the token accepted');
    expect(agent.starts).toBe(1);
  });
});
