import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { createCa, issueCert } from '../../../../lib/pki/certs.js';
import type { PkiPaths } from '../../../../lib/pki/layout.js';
import {
  eventually,
  jsonLines,
  startAgent,
  startDeploymentManager,
  testInstallation,
  testPki,
  type TestInstallation,
} from '../../../helpers/fort.js';

describe('deployment manager → agent admin link', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { healthIntervalSeconds: 1 });
  });
  afterAll(() => inst.cleanup());

  it('refuses a rogue agent whose server certificate chains to another CA, sending it no request', async () => {
    // Same subject names, same SANs, same port: only the issuing root differs.
    const rogueCa = await createCa({ commonName: 'Fort trust-zone root CA fort-dev-1' });
    const rogueLeaf = await issueCert(rogueCa, {
      commonName: 'agent',
      usage: 'server+client',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const requests: string[] = [];
    const rogue: Server = createServer({ cert: rogueLeaf.certPem, key: rogueLeaf.keyPem }, (req, res) => {
      requests.push(`${req.method} ${req.url} ${JSON.stringify(req.headers)}`);
      res.end(JSON.stringify({ status: 'healthy', version: '6.6.6' }));
    });
    await new Promise<void>((r) => rogue.listen(inst.layout.ports.admin, '127.0.0.1', r));
    const dm = await startDeploymentManager(inst.files.dm);
    try {
      const ready = await dm.waitReady(20_000);
      expect(ready['STATUS']).toMatch(/\(agent unreachable\)$/);
      const failure = await eventually(
        () => jsonLines(dm.stdout).find((l) => l['msg'] === 'agent health check failed'),
        10_000,
        'the refused health check in the log',
      );
      expect(failure['code']).toMatch(
        /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)$/,
      );
      expect(requests).toEqual([]);
      expect(jsonLines(dm.stdout).some((l) => l['msg'] === 'agent healthy')).toBe(false);
    } finally {
      await dm.stop();
      await new Promise((r) => rogue.close(r));
    }
  });

  it('health-checks the real agent, notices it going away and coming back', async () => {
    const agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
    const dm = await startDeploymentManager(inst.files.dm);
    try {
      const ready = await dm.waitReady(20_000);
      expect(ready['STATUS']).toMatch(/\(agent healthy\)$/);
      expect(jsonLines(dm.stdout).find((l) => l['msg'] === 'agent healthy')).toMatchObject({ version: '0.1.0' });
      const statePath = join(inst.dir, 'data/deployment-manager/state.json');
      expect(statSync(statePath).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(statePath, 'utf8'))).toMatchObject({ schema: 2, step: 'idle' });

      await agent.stop();
      await eventually(
        () =>
          jsonLines(dm.stdout).find((l) => l['msg'] === 'agent health check failed' && l['code'] === 'ECONNREFUSED'),
        10_000,
        'DM noticing the agent is down',
      );
      const again = await startAgent(inst.files.agent);
      await again.waitReady(20_000);
      await eventually(
        () => (jsonLines(dm.stdout).filter((l) => l['msg'] === 'agent healthy').length >= 2 ? true : undefined),
        10_000,
        'DM seeing the agent back',
      );
      await again.stop();
    } finally {
      expect((await dm.stop()).code).toBe(0);
      expect(dm.notify.messages.some((m) => m['STOPPING'] === '1')).toBe(true);
    }
  });
});
