import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { httpsRequest } from '../../helpers/https.js';
import {
  eventually,
  jsonLines,
  startAgent,
  testInstallation,
  testPki,
  type TestInstallation,
} from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';

interface Health {
  status: string;
  modules: Record<string, { state: string; detail?: string; info?: Record<string, unknown> }>;
}

describe('clock skew against the cloud', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: 'fort-dev-1', iot: true });
    // The cloud's clock runs 10 minutes ahead: to it, the fort's clock is 10 minutes behind.
    dev = await testDevCloud(pki, { clockOffsetSeconds: 600, ports: inst.layout.ports });
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
  });
  afterAll(async () => {
    await agent.stop();
    await dev.stop();
    inst.cleanup();
  });

  it('reports the measured offset in health and logs, keeps serving, and keeps retrying the link', async () => {
    const tls = {
      ca: readFileSync(pki.trustZone.ca),
      cert: readFileSync(pki.trustZone.fortctlCert),
      key: readFileSync(pki.trustZone.fortctlKey),
    };
    const health = () =>
      httpsRequest(`https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/health`, tls).then(
        (r) => JSON.parse(r.body) as Health,
      );
    const h = await eventually(
      async () => {
        const x = await health();
        return x.modules['clock']?.state === 'degraded' &&
          (x.modules['iot-link']?.info?.['connectAttempts'] as number) >= 2
          ? x
          : undefined;
      },
      20_000,
      'clock reported degraded after two link attempts',
    );
    expect(h.modules['clock']!.detail).toMatch(/^host clock is (599|600|601) s behind the cloud$/);
    expect(Math.round((h.modules['clock']!.info!['skewMs'] as number) / 1000)).toBeGreaterThanOrEqual(-601);
    expect(Math.round((h.modules['clock']!.info!['skewMs'] as number) / 1000)).toBeLessThanOrEqual(-599);
    expect(h.status).toBe('degraded'); // still serving the private network
    expect(h.modules['iot-link']!.state).toBe('degraded');
    expect(dev.bridge.stats.lastRejection).toBe('request date outside ±300 s');
    const logged = jsonLines(agent.stdout).find((l) => String(l['msg']).startsWith('clock problem: host clock is'));
    expect(logged?.['level']).toBe('error');
  });
});
