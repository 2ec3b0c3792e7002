import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { httpsRequest } from '../../helpers/https.js';
import { startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';

/** systemd's view of the agent: READY only when serving, STOPPING and exit 0 on SIGTERM, watchdog pings. */
describe('agent lifecycle under a notify socket', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki);
  });
  afterAll(() => inst.cleanup());

  it('sends READY=1 only once both APIs accept connections, then STOPPING=1 and exits 0 on SIGTERM within 5 s', async () => {
    const agent = await startAgent(inst.files.agent);
    const ready = await agent.waitReady(20_000);
    expect(ready['STATUS']).toMatch(/^serving: client API 127\.0\.0\.1:\d+, admin API 127\.0\.0\.1:\d+$/);
    // READY means serving: the client API answers right away, without retries.
    const res = await httpsRequest(`https://127.0.0.1:${inst.layout.ports.clientApi}/health`, {
      ca: readFileSync(pki.clientZone.ca),
    });
    expect(res.status).toBe(200);

    const t0 = Date.now();
    agent.kill('SIGTERM');
    const exit = await agent.waitExit(5_000);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(exit).toEqual({ code: 0, signal: null });
    const stopping = agent.notify.messages.find((m) => m['STOPPING'] === '1');
    expect(stopping?.['STATUS']).toBe('stopping: SIGTERM');
    expect(agent.notify.messages.findIndex((m) => m['STOPPING'] === '1')).toBeGreaterThan(
      agent.notify.messages.findIndex((m) => m['READY'] === '1'),
    );
    await agent.stop();
  });

  it('pings WATCHDOG=1 at half the WATCHDOG_USEC period', async () => {
    const agent = await startAgent(inst.files.agent, { watchdogUsec: 200_000 });
    await agent.waitReady(20_000);
    const count = () => agent.notify.messages.filter((m) => m['WATCHDOG'] === '1').length;
    await agent.notify.waitFor(() => count() >= 3, 5_000, 'three WATCHDOG=1 pings');
    expect(count()).toBeGreaterThanOrEqual(3);
    expect((await agent.stop()).code).toBe(0);
  });

  it('drains on request over the admin API: 202, STOPPING=1, exit 0, then restarts healthy like Restart=always', async () => {
    const agent = await startAgent(inst.files.agent, { restart: true, restartDelayMs: 100 });
    await agent.waitReady(20_000);
    const firstPid = agent.pid;
    const tls = {
      ca: readFileSync(pki.trustZone.ca),
      cert: readFileSync(pki.trustZone.fortctlCert),
      key: readFileSync(pki.trustZone.fortctlKey),
    };
    const exited = new Promise<{ code: number | null }>((resolve) => agent.events.once('exit', resolve));
    const res = await httpsRequest(`https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/drain`, tls, 'POST');
    expect(res.status).toBe(202);
    expect(JSON.parse(res.body)).toEqual({ status: 'draining' });
    expect((await exited).code).toBe(0);
    expect(
      agent.notify.messages.some(
        (m) => m['STOPPING'] === '1' && m['STATUS'] === 'stopping: drain requested by fortctl',
      ),
    ).toBe(true);
    await new Promise<void>((resolve) => agent.events.once('restart', () => resolve()));
    await agent.waitReady(20_000);
    expect(agent.pid).not.toBe(firstPid);
    const health = await httpsRequest(`https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/health`, tls);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'healthy' });
    expect((await agent.stop()).code).toBe(0);
  });
});
